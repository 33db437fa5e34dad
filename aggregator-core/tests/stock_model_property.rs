//! Random sequences of place / cancel / confirm / fail / expire / sync against the
//! in-memory store and a plain model of the stock arithmetic. After every step the two
//! must agree, `reserved` must equal the sum of active reservations, and no placement may
//! succeed beyond what was sellable.

use std::collections::BTreeMap;

use aggregator_core::StockStore;
use aggregator_core::domain::{
    Currency, CustomerId, Money, OrderDetails, OrderId, OrderStatus, ProductId, Quantity,
    SnapshotRow, StatusChange, Transition, Vendor, VendorId, VendorPlacement, VendorSku,
};
use aggregator_core::error::Error;
use aggregator_core::memory::InMemoryStockStore;
use aggregator_core::traits::{OrderPlacement, PlannedAllocation, PlannedLine};
use proptest::prelude::*;
use time::{Duration, OffsetDateTime};

/// Proptest cases per run; each is a sequence of up to `MAX_STEPS` operations.
const CASES: u32 = 512;
const MAX_STEPS: usize = 40;
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

#[derive(Debug, Clone)]
enum Op {
    Place(Vec<(usize, u32)>),
    Cancel(usize),
    Confirm(usize, i64),
    Fail(usize),
    Advance(i64),
    Sync(usize, i64, i64),
    VendorCancels(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => prop::collection::vec((0..KEYS.len(), 1..6_u32), 1..3).prop_map(Op::Place),
        1 => any::<usize>().prop_map(Op::Cancel),
        2 => (any::<usize>(), 0..100_i64).prop_map(|(o, t)| Op::Confirm(o, t)),
        1 => any::<usize>().prop_map(Op::Fail),
        1 => (1..15_i64).prop_map(Op::Advance),
        2 => (0..KEYS.len(), 0..15_i64, 0..100_i64).prop_map(|(k, q, t)| Op::Sync(k, q, t)),
        1 => any::<usize>().prop_map(Op::VendorCancels),
    ]
}

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

struct Harness {
    store: InMemoryStockStore,
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

impl Harness {
    async fn new(initial: [i64; 3]) -> Self {
        let store = InMemoryStockStore::new();
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

    async fn check(&self) {
        let active = self.store.active_reservations();
        for (key, model) in self.stock.iter().enumerate() {
            let row = self.store.stock(&vendor_id(key), &sku(key)).expect("row");
            let held: i64 = active
                .iter()
                .filter(|r| r.vendor == row.vendor && r.sku == row.sku)
                .map(|r| r.quantity.as_i64())
                .sum();
            assert_eq!(
                row.reserved, held,
                "reserved equals the sum of active reservations"
            );
            assert!(row.reserved >= 0 && row.confirmed_not_yet_reported >= 0);
            assert_eq!(
                (row.reported, row.reserved, row.confirmed_not_yet_reported),
                (model.reported, model.reserved, model.confirmed()),
                "store and model agree on {}",
                KEYS[key].1
            );
        }
        for order in &self.orders {
            let stored = self.store.order(order.id).await.expect("order");
            assert_eq!(stored.status, order.status, "order status agrees");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    #[test]
    fn store_matches_the_model(
        initial in [0..12_i64, 0..12_i64, 0..12_i64],
        ops in prop::collection::vec(op(), 1..MAX_STEPS),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let mut harness = Harness::new(initial).await;
            harness.check().await;
            for op in ops {
                match op {
                    Op::Place(lines) => harness.place(lines).await,
                    Op::Cancel(pick) => harness.change(pick, StatusChange::Cancel).await,
                    Op::Confirm(pick, at) => harness.confirm(pick, at).await,
                    Op::Fail(pick) => harness.change(pick, StatusChange::Fail).await,
                    Op::Advance(seconds) => harness.advance(seconds).await,
                    Op::Sync(key, units, at) => harness.sync(key, units, at).await,
                    Op::VendorCancels(pick) => harness.vendor_cancels(pick).await,
                }
                harness.check().await;
            }
        });
    }
}
