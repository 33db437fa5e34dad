//! The audit after a case: it reads our store and the vendors' own records and counts
//! every broken promise. All of its figures must be 0.

use aggregator_core::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use aggregator_core::domain::{Order, OrderId, OrderStatus};
use aggregator_core::traits::OrderQuery;
use mock_vendors::VendorOrderStatus;

use crate::cluster::World;
use crate::load::Ledger;

/// The figures of one audit.
#[derive(Debug, Clone, Default)]
pub(crate) struct Audit {
    /// Orders told success that the store does not have.
    pub(crate) lost: u64,
    /// Units told success whose order then failed because no vendor had them.
    pub(crate) oversold_units: i64,
    /// Live vendor orders that are not a placement of one of our confirmed orders.
    pub(crate) ghost_vendor_orders: u64,
    /// Placements of our confirmed orders that the vendor does not hold (live).
    pub(crate) missing_vendor_orders: u64,
    /// Orders still pending or reserved.
    pub(crate) not_terminal: u64,
    /// 2xx answers to requests that needed another key.
    pub(crate) unauthenticated_2xx: u64,
    /// Outbox messages not yet published.
    pub(crate) outbox_left: i64,
    /// Units still held for vendor cancellations that did not happen.
    pub(crate) held_units: i64,
    /// Units still reserved (by orders or holds).
    pub(crate) reserved_units: i64,
    /// (Vendor, SKU) rows whose units left at the vendor differ from what it started
    /// with less its live orders (a cancellation restoring twice, or never).
    pub(crate) vendor_units_mismatch: u64,
    /// Cancellations at vendors still pending (never confirmed done).
    pub(crate) cancellations_pending: i64,
    /// Deadlocks PostgreSQL broke in the case's database.
    pub(crate) deadlocks: i64,
    /// Allocations of quoted lines charged anything but the quote.
    pub(crate) mischarged: u64,
    /// Seconds in which a vendor with its own rate limit received more than it.
    pub(crate) over_vendor_limit: u64,
    /// Orders in the store by status (for the report).
    pub(crate) by_status: BTreeMap<&'static str, u64>,
    /// Why orders failed, by reason (for the report).
    pub(crate) failures: BTreeMap<String, u64>,
}

impl Audit {
    /// True when every promise held.
    pub(crate) fn clean(&self) -> bool {
        self.lost == 0
            && self.oversold_units == 0
            && self.ghost_vendor_orders == 0
            && self.missing_vendor_orders == 0
            && self.not_terminal == 0
            && self.unauthenticated_2xx == 0
            && self.outbox_left == 0
            && self.held_units == 0
            && self.reserved_units == 0
            && self.vendor_units_mismatch == 0
            && self.cancellations_pending == 0
            && self.deadlocks == 0
            && self.mischarged == 0
            && self.over_vendor_limit == 0
    }

    /// Audits every half second until everything settled (clean) or `within` passed;
    /// answers the last audit.
    pub(crate) async fn settle(world: &World, ledger: &Ledger, within: Duration) -> Self {
        let deadline = Instant::now() + within;
        loop {
            let audit = match Self::take(world, ledger).await {
                Ok(audit) => audit,
                Err(error) => {
                    eprintln!("faults: audit read failed ({error}); trying again");
                    Self {
                        not_terminal: u64::MAX,
                        ..Self::default()
                    }
                }
            };
            if audit.clean() || Instant::now() >= deadline {
                return audit;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn take(world: &World, ledger: &Ledger) -> Result<Self, String> {
        let store = &world.db.store;
        let mut orders: HashMap<OrderId, Order> = HashMap::new();
        let mut offset = 0;
        loop {
            let page = store
                .orders(&OrderQuery {
                    offset,
                    limit: 100,
                    ..OrderQuery::default()
                })
                .await
                .map_err(|e| e.to_string())?;
            let got = page.items.len() as u64;
            orders.extend(page.items.into_iter().map(|order| (order.id, order)));
            offset += got;
            if got == 0 || offset >= page.total {
                break;
            }
        }
        let mut audit = Self {
            unauthenticated_2xx: ledger.unauthenticated_2xx,
            ..Self::default()
        };
        for order in orders.values() {
            *audit.by_status.entry(order.status.as_str()).or_default() += 1;
            for line in &order.lines {
                if let Some(quoted) = &line.quoted_unit_price {
                    audit.mischarged += line
                        .allocations
                        .iter()
                        .filter(|a| !a.unit_price.is(quoted))
                        .count() as u64;
                }
            }
            if order.status.holds_stock() {
                audit.not_terminal += 1;
            }
            if order.status == OrderStatus::Failed {
                let reason = order.failure_reason.clone().unwrap_or_default();
                let kind = reason.split(':').next().unwrap_or_default().to_owned();
                *audit.failures.entry(kind).or_default() += 1;
            }
        }
        for told in &ledger.told_success {
            match orders.get(&told.id) {
                None => audit.lost += 1,
                Some(order) if order.status == OrderStatus::Failed && for_stock(order) => {
                    audit.oversold_units += told.units;
                }
                Some(_) => {}
            }
        }
        // Every live vendor order is a placement of a confirmed order of ours...
        let mut live_at_vendors: HashMap<(String, String), ()> = HashMap::new();
        for vendor in &world.vendors {
            for record in vendor.orders() {
                if record.status != VendorOrderStatus::Confirmed {
                    continue;
                }
                live_at_vendors
                    .insert((vendor.id().to_owned(), record.idempotency_key.clone()), ());
                let ours = record
                    .idempotency_key
                    .split(':')
                    .next()
                    .and_then(|id| id.parse::<OrderId>().ok())
                    .and_then(|id| orders.get(&id));
                let placed = ours.is_some_and(|order| {
                    order.status == OrderStatus::Confirmed
                        && order.vendor_placements.iter().any(|p| {
                            p.vendor.as_str() == vendor.id()
                                && p.idempotency_key == record.idempotency_key
                        })
                });
                if !placed {
                    audit.ghost_vendor_orders += 1;
                }
            }
        }
        // The vendors' own books balance: what they have left is what they started
        // with less what their live orders took.
        for ((vendor_id, sku), initial) in &world.initial {
            let vendor = world.vendor(vendor_id);
            let taken: i64 = vendor
                .orders()
                .iter()
                .filter(|record| record.status == VendorOrderStatus::Confirmed)
                .flat_map(|record| record.lines.iter())
                .filter(|line| &line.sku == sku)
                .map(|line| line.quantity)
                .sum();
            if vendor.quantity(sku) != Some(initial - taken) {
                audit.vendor_units_mismatch += 1;
            }
        }
        // ...and every placement of a confirmed order is live at its vendor.
        for order in orders
            .values()
            .filter(|o| o.status == OrderStatus::Confirmed)
        {
            for placement in &order.vendor_placements {
                let key = (
                    placement.vendor.to_string(),
                    placement.idempotency_key.clone(),
                );
                if !live_at_vendors.contains_key(&key) {
                    audit.missing_vendor_orders += 1;
                }
            }
        }
        let pool = store.pool();
        audit.outbox_left = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM outbox")
            .fetch_one(pool)
            .await
            .map_err(|e| e.to_string())?;
        audit.held_units = sqlx::query_scalar::<_, i64>(
            "SELECT COALESCE(sum(quantity), 0)::int8 FROM cancelling_units",
        )
        .fetch_one(pool)
        .await
        .map_err(|e| e.to_string())?;
        audit.reserved_units = sqlx::query_scalar::<_, i64>(
            "SELECT COALESCE(sum(reserved), 0)::int8 FROM vendor_stock",
        )
        .fetch_one(pool)
        .await
        .map_err(|e| e.to_string())?;
        audit.cancellations_pending =
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM pending_vendor_cancellations")
                .fetch_one(pool)
                .await
                .map_err(|e| e.to_string())?;
        audit.deadlocks = sqlx::query_scalar::<_, i64>(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()",
        )
        .fetch_one(pool)
        .await
        .map_err(|e| e.to_string())?;
        for (vendor_id, limit) in &world.vendor_limits {
            audit.over_vendor_limit += world
                .vendor(vendor_id)
                .arrivals_per_second()
                .iter()
                .filter(|(_, received)| received > limit)
                .count() as u64;
        }
        Ok(audit)
    }
}

/// Whether a failed order failed because the vendors had no stock for it (a promise
/// broken by our arithmetic), rather than because they could not be reached.
fn for_stock(order: &Order) -> bool {
    order.failure_reason.as_deref().is_some_and(|reason| {
        reason.contains("cannot serve")
            || reason.contains("refused the order")
            || reason.contains("kept refusing")
    })
}

/// One case run's report.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) case: String,
    pub(crate) round: u32,
    pub(crate) ledger: Ledger,
    pub(crate) audit: Audit,
    pub(crate) injected: Vec<String>,
    pub(crate) settled_in: Duration,
    pub(crate) took: Duration,
    pub(crate) logs: String,
}

impl Report {
    /// The one line the harness prints for a case run.
    pub(crate) fn line(&self) -> String {
        let a = &self.audit;
        let l = &self.ledger;
        let status = |s: &str| a.by_status.get(s).copied().unwrap_or(0);
        let mut faults: Vec<(String, usize)> = Vec::new();
        for fault in &self.injected {
            match faults.iter_mut().find(|(f, _)| f == fault) {
                Some((_, n)) => *n += 1,
                None => faults.push((fault.clone(), 1)),
            }
        }
        let faults: Vec<String> = faults
            .into_iter()
            .map(|(f, n)| if n > 1 { format!("{f} x{n}") } else { f })
            .collect();
        format!(
            "case={} round={} attempts={} told_success={} cancels={} refused={} unanswered={} \
             probes={} | confirmed={} cancelled={} failed={} expired={} | lost={} oversold={} \
             ghost_vendor_orders={} missing_vendor_orders={} not_terminal={} unauth_2xx={} \
             outbox_left={} held_units={} reserved_units={} vendor_units_mismatch={} \
             cancellations_pending={} deadlocks={} mischarged={} over_vendor_limit={} | settled_in={:.1}s took={:.1}s \
             faults=[{}] failures={:?}",
            self.case,
            self.round,
            l.attempts,
            l.told_success.len(),
            l.cancelled.len(),
            l.refused,
            l.unanswered,
            l.probes,
            status("confirmed"),
            status("cancelled"),
            status("failed"),
            status("expired"),
            a.lost,
            a.oversold_units,
            a.ghost_vendor_orders,
            a.missing_vendor_orders,
            a.not_terminal,
            a.unauthenticated_2xx,
            a.outbox_left,
            a.held_units,
            a.reserved_units,
            a.vendor_units_mismatch,
            a.cancellations_pending,
            a.deadlocks,
            a.mischarged,
            a.over_vendor_limit,
            self.settled_in.as_secs_f64(),
            self.took.as_secs_f64(),
            faults.join(", "),
            a.failures,
        )
    }
}

/// Sums over every case run.
#[derive(Debug, Default)]
pub(crate) struct Totals {
    pub(crate) runs: u64,
    attempts: u64,
    told_success: u64,
    faults: u64,
    broken: u64,
    longest_settle: Duration,
}

impl Totals {
    pub(crate) fn add(&mut self, report: &Report) {
        let a = &report.audit;
        self.runs += 1;
        self.attempts += report.ledger.attempts;
        self.told_success += report.ledger.told_success.len() as u64;
        self.faults += report.injected.len() as u64;
        self.broken += a.lost
            + u64::try_from(a.oversold_units).unwrap_or(0)
            + a.ghost_vendor_orders
            + a.missing_vendor_orders
            + a.not_terminal
            + a.unauthenticated_2xx
            + u64::try_from(a.cancellations_pending).unwrap_or(0)
            + u64::try_from(a.deadlocks).unwrap_or(0)
            + a.mischarged
            + a.over_vendor_limit;
        self.longest_settle = self.longest_settle.max(report.settled_in);
    }

    pub(crate) fn line(&self) -> String {
        format!(
            "{} order attempts, {} told success, {} faults injected, {} broken promises, \
             longest settle {:.1} s",
            self.attempts,
            self.told_success,
            self.faults,
            self.broken,
            self.longest_settle.as_secs_f64()
        )
    }
}
