//! [`SystemGauges`]: what the system holds right now (orders by status, queue depths, the
//! outbox backlog, pending cancellations at vendors, vendors' sync age, health and
//! breakers, cache reads), read at scrape time into a [`Telemetry`].

use std::sync::Arc;

use aggregator_core::clock::Clock;
use aggregator_core::domain::{OrderStatus, QueueName, VendorHealth};
use aggregator_core::resilience::BreakerState;
use aggregator_core::service::CachedCatalog;
use aggregator_core::traits::{OrderQuery, OrderQueue, StockStore, VendorDirectory};
use metrics::Unit;

use super::telemetry::Telemetry;

/// Orders by `status`.
pub const ORDERS: &str = "aggregator_orders";
/// Messages waiting in a queue, by `queue` (`order_queue`, `order_queue.retry.1`, ...,
/// `order_queue.dlq`, and the same for `stock_sync_queue`).
pub const QUEUE_MESSAGES: &str = "aggregator_queue_messages";
/// Outbox messages not yet published.
pub const OUTBOX_MESSAGES: &str = "aggregator_outbox_messages";
/// Age of the oldest unpublished outbox message.
pub const OUTBOX_OLDEST_AGE: &str = "aggregator_outbox_oldest_age_seconds";
/// Cancellations at vendors that no vendor has confirmed yet.
pub const CANCELLATIONS_PENDING: &str = "aggregator_vendor_cancellations_pending";
/// Time since the key of the oldest pending cancellation died.
pub const CANCELLATIONS_OLDEST_AGE: &str = "aggregator_vendor_cancellations_oldest_age_seconds";
/// Time since a vendor's last good sync, by `vendor`.
pub const VENDOR_SYNC_AGE: &str = "aggregator_vendor_sync_age_seconds";
/// A vendor's health, by `vendor`: 0 healthy, 1 degraded, 2 down.
pub const VENDOR_HEALTH: &str = "aggregator_vendor_health";
/// Failed syncs since a vendor's last good one, by `vendor`.
pub const VENDOR_FAILURES: &str = "aggregator_vendor_consecutive_failures";
/// A vendor client's circuit breaker, by `vendor`: 0 closed, 1 half-open, 2 open.
pub const VENDOR_BREAKER: &str = "aggregator_vendor_breaker_state";
/// Availability reads through the cache, by `outcome` (hit, miss, error).
pub const CACHE_READS: &str = "aggregator_cache_reads_total";
/// Whether the last scrape could read a `component` (store, queue): 1 yes, 0 no. The
/// figures from a component that could not be read keep their previous values.
pub const COMPONENT_UP: &str = "aggregator_component_up";

/// Reads the system's state into gauges of a [`Telemetry`] when asked.
#[derive(Debug, Clone)]
pub struct SystemGauges {
    telemetry: Telemetry,
    store: Arc<dyn StockStore>,
    queue: Arc<dyn OrderQueue>,
    vendors: VendorDirectory,
    clock: Arc<dyn Clock>,
    catalog: Option<Arc<CachedCatalog>>,
}

impl SystemGauges {
    /// Gauges over these parts, written into `telemetry`. `vendors` gives the breaker
    /// states (empty: none shown); `catalog`, when given, its cache reads.
    pub fn new(
        telemetry: Telemetry,
        store: Arc<dyn StockStore>,
        queue: Arc<dyn OrderQueue>,
        vendors: VendorDirectory,
        clock: Arc<dyn Clock>,
        catalog: Option<Arc<CachedCatalog>>,
    ) -> Self {
        telemetry.describe_gauge(ORDERS, None, "Orders by status.");
        telemetry.describe_gauge(
            QUEUE_MESSAGES,
            None,
            "Messages waiting in a queue (ready, each retry delay, dead letters), not counting deliveries out with consumers.",
        );
        telemetry.describe_gauge(OUTBOX_MESSAGES, None, "Outbox messages not yet published.");
        telemetry.describe_gauge(
            OUTBOX_OLDEST_AGE,
            Some(Unit::Seconds),
            "Age of the oldest unpublished outbox message (0 when none).",
        );
        telemetry.describe_gauge(
            CANCELLATIONS_PENDING,
            None,
            "Cancellations at vendors not yet confirmed by the vendor (retried until they are).",
        );
        telemetry.describe_gauge(
            CANCELLATIONS_OLDEST_AGE,
            Some(Unit::Seconds),
            "Time since the oldest pending cancellation's key died (0 when none).",
        );
        telemetry.describe_gauge(
            VENDOR_SYNC_AGE,
            Some(Unit::Seconds),
            "Time since the vendor's last good stock sync.",
        );
        telemetry.describe_gauge(VENDOR_HEALTH, None, "0 healthy, 1 degraded, 2 down.");
        telemetry.describe_gauge(
            VENDOR_FAILURES,
            None,
            "Failed syncs since the vendor's last good one.",
        );
        telemetry.describe_gauge(
            VENDOR_BREAKER,
            None,
            "The vendor client's circuit breaker: 0 closed, 1 half-open, 2 open.",
        );
        telemetry.describe_counter(CACHE_READS, "Availability reads by outcome.");
        telemetry.describe_gauge(
            COMPONENT_UP,
            None,
            "1 when the last scrape could read the component; its figures are stale otherwise.",
        );
        Self {
            telemetry,
            store,
            queue,
            vendors,
            clock,
            catalog,
        }
    }

    /// The telemetry it writes into.
    pub fn telemetry(&self) -> &Telemetry {
        &self.telemetry
    }

    /// Reads everything now, then renders every figure (this instance's and the
    /// process-wide ones). A figure that cannot be read keeps its last value, and
    /// [`COMPONENT_UP`] says so.
    pub async fn render(&self) -> String {
        let store_up = self.read_store().await;
        let queue_up = self.read_queue().await;
        self.read_breakers_and_cache();
        let t = &self.telemetry;
        t.gauge(COMPONENT_UP, &[("component", "store".into())], up(store_up));
        t.gauge(COMPONENT_UP, &[("component", "queue".into())], up(queue_up));
        t.render()
    }

    /// Whether the store answers (it reads the vendor list).
    pub async fn store_answers(&self) -> bool {
        self.store.vendors().await.is_ok()
    }

    async fn read_store(&self) -> bool {
        let t = &self.telemetry;
        let mut ok = true;
        for status in OrderStatus::ALL {
            let query = OrderQuery {
                customer: None,
                status: Some(status),
                offset: 0,
                limit: 1,
            };
            match self.store.orders(&query).await {
                Ok(page) => t.gauge(
                    ORDERS,
                    &[("status", status.as_str().into())],
                    as_f64(page.total),
                ),
                Err(_) => ok = false,
            }
        }
        let now = self.clock.now();
        match self.store.outbox_backlog().await {
            Ok(backlog) => {
                t.gauge(OUTBOX_MESSAGES, &[], as_f64(backlog.messages));
                t.gauge(
                    OUTBOX_OLDEST_AGE,
                    &[],
                    backlog.oldest_age(now).as_seconds_f64(),
                );
            }
            Err(_) => ok = false,
        }
        match self.store.cancellation_backlog().await {
            Ok(backlog) => {
                t.gauge(CANCELLATIONS_PENDING, &[], as_f64(backlog.pending));
                let age = backlog
                    .oldest_killed_at
                    .map_or(0.0, |at| (now - at).as_seconds_f64().max(0.0));
                t.gauge(CANCELLATIONS_OLDEST_AGE, &[], age);
            }
            Err(_) => ok = false,
        }
        match self.store.vendors().await {
            Ok(vendors) => {
                for vendor in vendors {
                    let label = [("vendor", vendor.id.to_string())];
                    let health = match vendor.health {
                        VendorHealth::Healthy => 0.0,
                        VendorHealth::Degraded => 1.0,
                        VendorHealth::Down => 2.0,
                    };
                    t.gauge(VENDOR_HEALTH, &label, health);
                    t.gauge(
                        VENDOR_FAILURES,
                        &label,
                        f64::from(vendor.consecutive_failures),
                    );
                    if let Some(synced) = vendor.last_good_sync {
                        let age = (now - synced).as_seconds_f64().max(0.0);
                        t.gauge(VENDOR_SYNC_AGE, &label, age);
                    }
                }
            }
            Err(_) => ok = false,
        }
        ok
    }

    async fn read_queue(&self) -> bool {
        let mut ok = true;
        for queue in QueueName::ALL {
            match self.queue.depths(queue).await {
                Ok(depths) => {
                    for depth in depths {
                        self.telemetry.gauge(
                            QUEUE_MESSAGES,
                            &[("queue", depth.name())],
                            as_f64(depth.messages),
                        );
                    }
                }
                Err(_) => ok = false,
            }
        }
        ok
    }

    fn read_breakers_and_cache(&self) {
        let t = &self.telemetry;
        for vendor in self.vendors.ids() {
            let Ok(client) = self.vendors.get(vendor) else {
                continue;
            };
            if let Some(state) = client.breaker_state() {
                let value = match state {
                    BreakerState::Closed => 0.0,
                    BreakerState::HalfOpen => 1.0,
                    BreakerState::Open => 2.0,
                };
                t.gauge(VENDOR_BREAKER, &[("vendor", vendor.to_string())], value);
            }
        }
        if let Some(catalog) = &self.catalog {
            let stats = catalog.stats();
            for (outcome, total) in [
                ("hit", stats.hits),
                ("miss", stats.misses),
                ("error", stats.errors),
            ] {
                t.counter_total(CACHE_READS, &[("outcome", outcome.into())], total);
            }
        }
    }
}

fn up(yes: bool) -> f64 {
    if yes { 1.0 } else { 0.0 }
}

/// A count as a gauge value (exact below 2^53, far beyond any count here).
#[allow(clippy::cast_precision_loss)]
fn as_f64(count: u64) -> f64 {
    count as f64
}
