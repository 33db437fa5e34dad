//! A model of the stock arithmetic to hold a store to: random sequences of place,
//! cancel, confirm, fail, expire, sync and vendor cancellations, applied to the store and
//! to a plain model side by side; after every step the two must agree, and no placement
//! may succeed beyond what the model says is sellable. The property test runs it on the
//! in-memory store with proptest; the PostgreSQL backend runs it with
//! [`ModelStep::random`].

use std::collections::BTreeMap;
use std::sync::Arc;

use time::{Duration, OffsetDateTime};

use crate::domain::{
    Currency, CustomerId, Money, OrderDetails, OrderId, OrderStatus, ProductId, Quantity,
    SnapshotRow, StatusChange, Transition, Vendor, VendorId, VendorPlacement, VendorSku,
};
use crate::error::Error;
use crate::traits::{OrderPlacement, PlannedAllocation, PlannedLine, StockStore};

/// Our clock's reservation lifetime, in steps of one second.
const TTL_SECONDS: i64 = 10;

const KEYS: [(&str, &str, &str); 3] = [
    ("VendorA", "LAPTOP-a-001", "LAPTOP-001"),
    ("VendorA", "PHONE-a-002", "PHONE-002"),
    ("VendorB", "LAPTOP-b-001", "LAPTOP-001"),
];

/// The confirmation margin the store is run with: a report prunes a confirmation only
/// when it is later by more than this many seconds.
const MARGIN_SECONDS: i64 = 2;

#[derive(Debug, Clone, Default)]
struct ModelStock {
    reported: i64,
    reserved: i64,
    as_of: i64,
    /// (units, vendor confirmation time)
    pending: Vec<(i64, i64)>,
    /// Units held for dead vendor keys, by key, until the vendor cancels.
    cancelling: BTreeMap<String, i64>,
}

impl ModelStock {
    fn confirmed(&self) -> i64 {
        self.pending.iter().map(|(units, _)| units).sum::<i64>()
            + self.cancelling.values().sum::<i64>()
    }
    fn sellable(&self) -> i64 {
        self.reported - self.reserved - self.confirmed()
    }
}

#[derive(Debug, Clone)]
struct ModelOrder {
    id: OrderId,
    lines: Vec<(usize, u32)>,
    status: OrderStatus,
    deadline: i64,
}

/// A store and the model it is held to.
#[derive(Debug)]
pub struct StockModel {
    store: Arc<dyn StockStore>,
    base: OffsetDateTime,
    clock: i64,
    stock: Vec<ModelStock>,
    orders: Vec<ModelOrder>,
}

/// The key a reserved order (at version 1: the model never re-routes) is placed under
/// at the vendor of stock row `key`.
fn dead_key(order: OrderId, key: usize) -> String {
    format!("{order}:{}:v1", KEYS[key].0)
}

fn vendor_id(key: usize) -> VendorId {
    VendorId::new(KEYS[key].0).expect("vendor id")
}
fn sku(key: usize) -> VendorSku {
    VendorSku::new(KEYS[key].1).expect("sku")
}
fn product(key: usize) -> ProductId {
    ProductId::new(KEYS[key].2).expect("product")
}

impl StockModel {
    /// Registers the model's two vendors in `store` (which must not know them yet) and
    /// reports `initial` units for its three stock rows.
    pub async fn new(store: Arc<dyn StockStore>, initial: [i64; 3]) -> Self {
        let base = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time");
        for (name, priority) in [("VendorA", 1), ("VendorB", 2)] {
            let vendor = Vendor::new(
                VendorId::new(name).expect("id"),
                name,
                "http://127.0.0.1:1",
                priority,
            )
            .expect("vendor");
            store.upsert_vendor(&vendor).await.expect("upsert");
        }
        let mut harness = Self {
            store,
            base,
            clock: 0,
            stock: vec![ModelStock::default(); KEYS.len()],
            orders: Vec::new(),
        };
        for (key, units) in initial.iter().enumerate() {
            harness.sync(key, *units, 0).await;
        }
        for name in ["VendorA", "VendorB"] {
            harness
                .store
                .complete_snapshot(
                    &VendorId::new(name).expect("id"),
                    &[],
                    base,
                    base,
                    time::Duration::ZERO,
                )
                .await
                .expect("complete");
        }
        harness
    }

    fn now(&self) -> OffsetDateTime {
        self.base + Duration::seconds(self.clock)
    }

    async fn sync(&mut self, key: usize, units: i64, as_of: i64) {
        let row = SnapshotRow {
            sku: sku(key),
            product: product(key),
            quantity: units,
            price: Money::new(500, Currency::USD).expect("price"),
            as_of: self.base + Duration::seconds(as_of),
        };
        let outcome = self
            .store
            .apply_snapshot(&vendor_id(key), &[row], Duration::seconds(MARGIN_SECONDS))
            .await
            .expect("snapshot");
        let model = &mut self.stock[key];
        let applies = as_of >= model.as_of;
        assert_eq!(
            outcome.applied == 1,
            applies,
            "snapshot applied iff not older"
        );
        if applies {
            model.reported = units;
            model.as_of = as_of;
            model
                .pending
                .retain(|(_, confirmed_at)| as_of <= *confirmed_at + MARGIN_SECONDS);
        }
    }

    async fn place(&mut self, lines: Vec<(usize, u32)>) {
        let mut demand: BTreeMap<usize, i64> = BTreeMap::new();
        for (key, units) in &lines {
            *demand.entry(*key).or_default() += i64::from(*units);
        }
        let fits = demand
            .iter()
            .all(|(key, units)| self.stock[*key].sellable() >= *units);
        let id = OrderId::new();
        let placement = OrderPlacement {
            id,
            details: OrderDetails {
                customer: CustomerId::new("model").expect("customer"),
                email: None,
                shipping_address: None,
                payment_method: None,
                notes: None,
            },
            lines: lines
                .iter()
                .map(|(key, units)| {
                    let quantity = Quantity::try_from(*units).expect("quantity");
                    PlannedLine {
                        item: KEYS[*key].1.to_owned(),
                        product: product(*key),
                        quantity,
                        allocations: vec![PlannedAllocation {
                            vendor: vendor_id(*key),
                            sku: sku(*key),
                            quantity,
                        }],
                        quoted: None,
                    }
                })
                .collect(),
            at: self.now(),
            reserved_until: self.now() + Duration::seconds(TTL_SECONDS),
            fresh_since: self.base - Duration::days(1),
            idempotency: None,
            outbox: Vec::new(),
        };
        match self.store.place_order(placement).await {
            Ok(placed) => {
                assert!(
                    fits,
                    "placement succeeded beyond what was sellable: {lines:?}"
                );
                assert_eq!(placed.order.status, OrderStatus::Reserved);
                for (key, units) in demand {
                    self.stock[key].reserved += units;
                }
                self.orders.push(ModelOrder {
                    id,
                    lines,
                    status: OrderStatus::Reserved,
                    deadline: self.clock + TTL_SECONDS,
                });
            }
            Err(Error::InsufficientStock { .. }) => {
                assert!(
                    !fits,
                    "placement refused although stock was sellable: {lines:?}"
                );
            }
            Err(other) => panic!("unexpected placement error: {other}"),
        }
    }

    async fn change(&mut self, pick: usize, change: StatusChange) {
        if self.orders.is_empty() {
            return;
        }
        let index = pick % self.orders.len();
        let id = self.orders[index].id;
        let current = self.store.order(id).await.expect("order");
        let target = change.target();
        let transition = Transition {
            order: id,
            expected_version: current.version,
            change: change.clone(),
            reason: "model".into(),
            at: self.now(),
        };
        let result = self.store.transition(&transition, &[]).await;
        let model = self.orders[index].clone();
        let allowed = model.status.can_become(target);
        match result {
            Ok(order) => {
                assert!(allowed, "{:?} -> {target:?} was allowed", model.status);
                assert_eq!(order.status, target);
                if model.status.holds_stock() {
                    for (key, units) in &model.lines {
                        let stock = &mut self.stock[*key];
                        stock.reserved -= i64::from(*units);
                        if let StatusChange::Confirm { placements } = &change {
                            let confirmed_at =
                                (placements[0].confirmed_at - self.base).whole_seconds();
                            // Always pending: only a report applied later prunes it.
                            stock.pending.push((i64::from(*units), confirmed_at));
                        } else {
                            // The version's key dies; its units wait for the vendor.
                            *stock.cancelling.entry(dead_key(id, *key)).or_default() +=
                                i64::from(*units);
                        }
                    }
                }
                self.orders[index].status = target;
            }
            Err(Error::Conflict { .. }) => {
                assert!(!allowed, "{:?} -> {target:?} was refused", model.status)
            }
            Err(other) => panic!("unexpected transition error: {other}"),
        }
    }

    async fn confirm(&mut self, pick: usize, vendor_time: i64) {
        if self.orders.is_empty() {
            return;
        }
        let index = pick % self.orders.len();
        let order = self
            .store
            .order(self.orders[index].id)
            .await
            .expect("order");
        let placements = order
            .allocations_by_vendor()
            .into_iter()
            .map(|(vendor, _)| VendorPlacement {
                idempotency_key: order.vendor_key(&vendor),
                vendor,
                vendor_order_id: "v".into(),
                confirmed_at: self.base + Duration::seconds(vendor_time),
            })
            .collect();
        self.change(pick, StatusChange::Confirm { placements })
            .await;
    }

    async fn advance(&mut self, seconds: i64) {
        self.clock += seconds;
        let batch = self
            .store
            .expire_overdue(self.now(), 1_000)
            .await
            .expect("sweep");
        let mut expected = Vec::new();
        for order in &mut self.orders {
            if order.status.holds_stock() && order.deadline <= self.clock {
                order.status = OrderStatus::Expired;
                expected.push(order.id);
                for (key, units) in &order.lines {
                    let stock = &mut self.stock[*key];
                    stock.reserved -= i64::from(*units);
                    *stock
                        .cancelling
                        .entry(dead_key(order.id, *key))
                        .or_default() += i64::from(*units);
                }
            }
        }
        let mut got = batch.orders.clone();
        got.sort();
        expected.sort();
        assert_eq!(got, expected, "exactly the overdue orders expire");
    }

    /// The vendor confirms the cancellation of one dead key (if any is outstanding).
    async fn vendor_cancels(&mut self, pick: usize) {
        let outstanding: Vec<(usize, String)> = self
            .stock
            .iter()
            .enumerate()
            .flat_map(|(key, stock)| stock.cancelling.keys().map(move |k| (key, k.clone())))
            .collect();
        if outstanding.is_empty() {
            return;
        }
        let (key, dead) = outstanding[pick % outstanding.len()].clone();
        self.store
            .vendor_cancellation_done(&vendor_id(key), &dead)
            .await
            .expect("cancellation done");
        // One key covers every SKU of its vendor.
        for (other, stock) in self.stock.iter_mut().enumerate() {
            if KEYS[other].0 == KEYS[key].0 {
                stock.cancelling.remove(&dead);
            }
        }
    }

    /// Asserts that the store and the model agree on every stock row and order.
    pub async fn check(&self) {
        for (key, model) in self.stock.iter().enumerate() {
            let row = self
                .store
                .stock_for_sku(&sku(key))
                .await
                .expect("stock")
                .into_iter()
                .find(|row| row.vendor == vendor_id(key))
                .expect("row");
            assert!(row.reserved >= 0 && row.confirmed_not_yet_reported >= 0);
            assert_eq!(
                (row.reported, row.reserved, row.confirmed_not_yet_reported),
                (model.reported, model.reserved, model.confirmed()),
                "store and model agree on {}",
                KEYS[key].1
            );
        }
        // Every order's status, a page of the store's list at a time (one read per page,
        // not one per order: a long run checks after every step).
        let mut stored = std::collections::HashMap::new();
        let mut offset = 0;
        loop {
            let page = self
                .store
                .orders(&crate::traits::OrderQuery {
                    offset,
                    limit: 1_000,
                    ..crate::traits::OrderQuery::default()
                })
                .await
                .expect("orders");
            let read = page.items.len() as u64;
            stored.extend(page.items.into_iter().map(|order| (order.id, order.status)));
            offset += read;
            if read == 0 || offset >= page.total {
                break;
            }
        }
        for order in &self.orders {
            assert_eq!(
                stored.get(&order.id),
                Some(&order.status),
                "order status agrees"
            );
        }
    }

    /// Applies one step to the store and the model, asserting what the store answers.
    pub async fn apply(&mut self, step: &ModelStep) {
        match step {
            ModelStep::Place(lines) => self.place(lines.clone()).await,
            ModelStep::Cancel(pick) => self.change(*pick, StatusChange::Cancel).await,
            ModelStep::Confirm(pick, at) => self.confirm(*pick, *at).await,
            ModelStep::Fail(pick) => self.change(*pick, StatusChange::Fail).await,
            ModelStep::Advance(seconds) => self.advance(*seconds).await,
            ModelStep::Sync(key, units, at) => self.sync(*key, *units, *at).await,
            ModelStep::VendorCancels(pick) => self.vendor_cancels(*pick).await,
        }
    }

    /// The units the model has reserved on stock row `key` (0 to 2).
    pub fn reserved(&self, key: usize) -> i64 {
        self.stock.get(key).map_or(0, |stock| stock.reserved)
    }
}

/// One step of the model: what a client, the worker, the sweeper, the sync or a vendor
/// does. Picks (`usize`) choose among the orders placed so far, modulo their count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelStep {
    /// Place an order of these (stock row, units) lines.
    Place(Vec<(usize, u32)>),
    /// Cancel an order.
    Cancel(usize),
    /// Confirm an order at this vendor time (seconds from the start).
    Confirm(usize, i64),
    /// Fail an order.
    Fail(usize),
    /// Move our clock on by some seconds and sweep.
    Advance(i64),
    /// Report (stock row, units, as of seconds from the start).
    Sync(usize, i64, i64),
    /// A vendor confirms the cancellation of one outstanding dead key.
    VendorCancels(usize),
}

impl ModelStep {
    /// A step drawn from `seed` (which it moves on), with the same odds as the
    /// property test's strategy: places 4, confirms and syncs 2, the rest 1 in 13.
    pub fn random(seed: &mut u64) -> Self {
        let mut next = || {
            // SplitMix64.
            *seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = *seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        let pick = |n: u64, below: u64| usize::try_from(n % below).unwrap_or(0);
        let small = |n: u64, below: u64| i64::try_from(n % below).unwrap_or(0);
        match next() % 13 {
            0..=3 => {
                let lines = 1 + next() % 2;
                ModelStep::Place(
                    (0..lines)
                        .map(|_| {
                            let key = pick(next(), KEYS.len() as u64);
                            let units = 1 + u32::try_from(next() % 5).unwrap_or(0);
                            (key, units)
                        })
                        .collect(),
                )
            }
            4 => ModelStep::Cancel(pick(next(), u64::MAX)),
            5 | 6 => ModelStep::Confirm(pick(next(), u64::MAX), small(next(), 100)),
            7 => ModelStep::Fail(pick(next(), u64::MAX)),
            8 => ModelStep::Advance(1 + small(next(), 14)),
            9 | 10 => ModelStep::Sync(
                pick(next(), KEYS.len() as u64),
                small(next(), 15),
                small(next(), 100),
            ),
            _ => ModelStep::VendorCancels(pick(next(), u64::MAX)),
        }
    }
}
