//! One mock vendor's state: catalog, orders and fault switches, behind one lock.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use serde::Serialize;
use time::OffsetDateTime;

use crate::catalog::{self, CatalogItem};
use crate::faults::Faults;
use crate::rng::SeededRng;

/// What a mock vendor is: its id, display name and catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockVendorConfig {
    /// The vendor's id, e.g. `VendorA`.
    pub id: String,
    /// Display name, e.g. `Vendor A`.
    pub name: String,
    /// How many SKUs it sells (the seed's ten products first).
    pub sku_count: usize,
    /// Fixes quantities, prices and fluctuations.
    pub seed: u64,
    /// Every generated quantity is this many times the seed's draw (1: as the seed's
    /// mock), so a long load run does not sell the catalog out.
    pub stock_scale: u32,
}

impl MockVendorConfig {
    /// A vendor with the seed's ten products, named after its id, with a seed taken
    /// from its id (so two vendors differ but each repeats from run to run).
    pub fn new(id: impl Into<String>) -> Self {
        let id = id.into();
        let name = match id.strip_prefix("Vendor") {
            Some(rest) if !rest.is_empty() => format!("Vendor {rest}"),
            _ => id.clone(),
        };
        let seed = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
        Self {
            id,
            name,
            sku_count: catalog::SEED_PRODUCT_COUNT,
            seed,
            stock_scale: 1,
        }
    }

    /// The same vendor with `sku_count` SKUs.
    pub fn with_sku_count(mut self, sku_count: usize) -> Self {
        self.sku_count = sku_count;
        self
    }

    /// The same vendor with another seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The same vendor with every generated quantity `stock_scale` times the seed's draw.
    pub fn with_stock_scale(mut self, stock_scale: u32) -> Self {
        self.stock_scale = stock_scale;
        self
    }
}

/// A line of an order at a mock vendor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlacedLine {
    /// The vendor's SKU.
    pub sku: String,
    /// Units.
    pub quantity: i64,
}

/// Whether an order at a mock vendor stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum VendorOrderStatus {
    /// Placed and holding its units.
    Confirmed,
    /// Cancelled; its units went back on the shelf (if it was ever placed).
    Cancelled,
}

/// An order as a mock vendor records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VendorOrderRecord {
    /// The vendor's id for the order; `None` for a key cancelled before any placement.
    pub order_id: Option<String>,
    /// The idempotency key it was placed (or cancelled) under.
    pub idempotency_key: String,
    /// Its status.
    pub status: VendorOrderStatus,
    /// Its lines (empty for a key cancelled before any placement).
    pub lines: Vec<PlacedLine>,
    /// The vendor's clock when it was placed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub confirmed_at: Option<OffsetDateTime>,
    /// The vendor's clock when it was cancelled.
    #[serde(with = "time::serde::rfc3339::option")]
    pub cancelled_at: Option<OffsetDateTime>,
}

/// A SKU a placement could not get in full.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShortSku {
    /// The SKU.
    pub sku: String,
    /// Units asked for.
    pub requested: i64,
    /// Units on hand (0 for a SKU the vendor does not sell).
    pub available: i64,
}

/// How a placement went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Placement {
    /// Placed now.
    Created(VendorOrderRecord),
    /// The same key and lines were placed before; this is that order.
    Replayed(VendorOrderRecord),
    /// Not enough stock; nothing changed.
    Short(Vec<ShortSku>),
    /// The key was used for other lines.
    KeyReused,
    /// The key's order was cancelled; it cannot be placed again.
    Cancelled(VendorOrderRecord),
}

/// One page of the stock feed.
#[derive(Debug, Clone)]
pub(crate) struct StockPage {
    pub(crate) items: Vec<CatalogItem>,
    pub(crate) total: usize,
    pub(crate) as_of: OffsetDateTime,
}

/// One SKU moved by a fluctuation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Fluctuation {
    /// The SKU.
    pub sku: String,
    /// Units before.
    pub before: i64,
    /// Units after.
    pub after: i64,
}

#[derive(Debug)]
struct Inner {
    items: Vec<CatalogItem>,
    index: HashMap<String, usize>,
    orders: HashMap<String, VendorOrderRecord>,
    keys_by_order_id: HashMap<String, String>,
    next_order: u64,
    faults: Faults,
    rng: SeededRng,
    /// API requests received per second (Unix seconds), the newest 3,600 seconds.
    arrivals: std::collections::BTreeMap<i64, u64>,
    /// Requests answered `429` by the rate-limit switch.
    refused_for_rate: u64,
}

/// The shared state of one running mock vendor.
#[derive(Debug)]
pub(crate) struct VendorState {
    pub(crate) config: MockVendorConfig,
    inner: Mutex<Inner>,
}

/// The vendor's own clock, to the microsecond.
pub(crate) fn vendor_now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_microsecond(now.microsecond()).unwrap_or(now)
}

impl VendorState {
    pub(crate) fn new(config: MockVendorConfig) -> Self {
        let tag = catalog::tag_for(&config.id);
        let items = catalog::generate(&tag, config.sku_count, config.seed, config.stock_scale);
        let index = items
            .iter()
            .enumerate()
            .map(|(i, item)| (item.sku.clone(), i))
            .collect();
        let rng = SeededRng::new(config.seed.rotate_left(17));
        Self {
            config,
            inner: Mutex::new(Inner {
                items,
                index,
                orders: HashMap::new(),
                keys_by_order_id: HashMap::new(),
                next_order: 1,
                faults: Faults::default(),
                rng,
                arrivals: std::collections::BTreeMap::new(),
                refused_for_rate: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn faults(&self) -> Faults {
        self.lock().faults
    }

    pub(crate) fn set_faults(&self, faults: Faults) {
        self.lock().faults = faults;
    }

    /// Counts one API request arriving now; answers how long the caller must wait when
    /// the rate-limit switch refuses it (the rest of the second).
    pub(crate) fn arrive(&self) -> Option<std::time::Duration> {
        let now = vendor_now();
        let second = now.unix_timestamp();
        let mut inner = self.lock();
        let count = {
            let count = inner.arrivals.entry(second).or_default();
            *count += 1;
            *count
        };
        while inner.arrivals.len() > 3_600 {
            inner.arrivals.pop_first();
        }
        let limit = u64::from(inner.faults.rate_limit_per_sec);
        if limit == 0 || count <= limit {
            return None;
        }
        inner.refused_for_rate += 1;
        let left = 1_000_000_000 - u64::from(now.nanosecond());
        Some(std::time::Duration::from_nanos(left))
    }

    /// API requests received in each second (Unix seconds) of the last hour.
    pub(crate) fn arrivals(&self) -> Vec<(i64, u64)> {
        self.lock()
            .arrivals
            .iter()
            .map(|(second, count)| (*second, *count))
            .collect()
    }

    /// Requests the rate-limit switch answered `429`.
    pub(crate) fn refused_for_rate(&self) -> u64 {
        self.lock().refused_for_rate
    }

    /// True with probability `rate`.
    pub(crate) fn roll(&self, rate: f64) -> bool {
        rate > 0.0 && self.lock().rng.unit() < rate
    }

    pub(crate) fn sku_count(&self) -> usize {
        self.lock().items.len()
    }

    pub(crate) fn all_orders(&self) -> Vec<VendorOrderRecord> {
        self.lock().orders.values().cloned().collect()
    }

    pub(crate) fn order_count(&self) -> usize {
        self.lock()
            .orders
            .values()
            .filter(|o| o.order_id.is_some())
            .count()
    }

    pub(crate) fn cancelled_count(&self) -> usize {
        self.lock()
            .orders
            .values()
            .filter(|o| o.status == VendorOrderStatus::Cancelled)
            .count()
    }

    /// Now by the stock feed's clock (the real clock moved by its fault switch).
    pub(crate) fn feed_now(&self) -> OffsetDateTime {
        vendor_now() + time::Duration::milliseconds(self.faults().feed_clock_offset_ms)
    }

    /// Now by the order endpoint's clock (the real clock moved by its fault switch).
    pub(crate) fn order_now(&self) -> OffsetDateTime {
        vendor_now() + time::Duration::milliseconds(self.faults().order_clock_offset_ms)
    }

    /// Page `page` (from 1) of at most `limit` SKUs, read at one instant.
    pub(crate) fn page(&self, page: usize, limit: usize) -> StockPage {
        let as_of = self.feed_now();
        let inner = self.lock();
        let start = page.saturating_sub(1).saturating_mul(limit);
        let items = inner
            .items
            .iter()
            .skip(start)
            .take(limit)
            .cloned()
            .collect();
        StockPage {
            items,
            total: inner.items.len(),
            as_of,
        }
    }

    pub(crate) fn item(&self, sku: &str) -> Option<CatalogItem> {
        let inner = self.lock();
        inner.index.get(sku).map(|&i| inner.items[i].clone())
    }

    pub(crate) fn items(&self) -> Vec<CatalogItem> {
        self.lock().items.clone()
    }

    /// Sets a SKU's units; false if the vendor does not sell it.
    pub(crate) fn set_quantity(&self, sku: &str, quantity: i64) -> bool {
        let mut inner = self.lock();
        match inner.index.get(sku).copied() {
            Some(i) => {
                inner.items[i].quantity = quantity.max(0);
                true
            }
            None => false,
        }
    }

    pub(crate) fn set_price(&self, sku: &str, price_minor: i64) -> bool {
        let mut inner = self.lock();
        match inner.index.get(sku).copied() {
            Some(i) if price_minor > 0 => {
                inner.items[i].price_minor = price_minor;
                true
            }
            _ => false,
        }
    }

    /// Places `lines` under `key`, all or nothing.
    pub(crate) fn place(&self, key: &str, lines: Vec<PlacedLine>) -> Placement {
        let confirmed_at = self.order_now();
        let mut inner = self.lock();
        if let Some(existing) = inner.orders.get(key) {
            return match existing.status {
                VendorOrderStatus::Cancelled => Placement::Cancelled(existing.clone()),
                VendorOrderStatus::Confirmed if existing.lines == lines => {
                    Placement::Replayed(existing.clone())
                }
                VendorOrderStatus::Confirmed => Placement::KeyReused,
            };
        }
        let short: Vec<ShortSku> = lines
            .iter()
            .filter_map(|line| {
                let available = inner
                    .index
                    .get(&line.sku)
                    .map_or(0, |&i| inner.items[i].quantity);
                (available < line.quantity).then(|| ShortSku {
                    sku: line.sku.clone(),
                    requested: line.quantity,
                    available,
                })
            })
            .collect();
        if !short.is_empty() {
            return Placement::Short(short);
        }
        for line in &lines {
            if let Some(&i) = inner.index.get(&line.sku) {
                inner.items[i].quantity -= line.quantity;
            }
        }
        let order_id = format!("{}-{:08}", self.config.id, inner.next_order);
        inner.next_order += 1;
        let record = VendorOrderRecord {
            order_id: Some(order_id.clone()),
            idempotency_key: key.to_owned(),
            status: VendorOrderStatus::Confirmed,
            lines,
            confirmed_at: Some(confirmed_at),
            cancelled_at: None,
        };
        inner.keys_by_order_id.insert(order_id, key.to_owned());
        inner.orders.insert(key.to_owned(), record.clone());
        Placement::Created(record)
    }

    /// The order placed under key (or with vendor order id) `id`.
    pub(crate) fn order(&self, id: &str) -> Option<VendorOrderRecord> {
        let inner = self.lock();
        let key = inner.keys_by_order_id.get(id).map_or(id, String::as_str);
        inner.orders.get(key).cloned()
    }

    /// As [`VendorState::cancel`] for an id this vendor has seen; `None`, recording
    /// nothing, for one it never saw.
    pub(crate) fn cancel_if_known(&self, id: &str) -> Option<VendorOrderRecord> {
        let known = {
            let inner = self.lock();
            inner.keys_by_order_id.contains_key(id) || inner.orders.contains_key(id)
        };
        known.then(|| self.cancel(id))
    }

    /// Cancels the order with key or vendor order id `id`, putting its units back once.
    /// An id never seen is recorded as a cancelled key, so a late placement under it is
    /// refused. Answers the record after the cancel.
    pub(crate) fn cancel(&self, id: &str) -> VendorOrderRecord {
        let mut inner = self.lock();
        let key = inner
            .keys_by_order_id
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_owned());
        let now = vendor_now();
        let Some(record) = inner.orders.get(&key).cloned() else {
            let tombstone = VendorOrderRecord {
                order_id: None,
                idempotency_key: key.clone(),
                status: VendorOrderStatus::Cancelled,
                lines: Vec::new(),
                confirmed_at: None,
                cancelled_at: Some(now),
            };
            inner.orders.insert(key, tombstone.clone());
            return tombstone;
        };
        if record.status == VendorOrderStatus::Cancelled {
            return record;
        }
        for line in &record.lines {
            if let Some(&i) = inner.index.get(&line.sku) {
                inner.items[i].quantity += line.quantity;
            }
        }
        let cancelled = VendorOrderRecord {
            status: VendorOrderStatus::Cancelled,
            cancelled_at: Some(now),
            ..record
        };
        inner.orders.insert(key, cancelled.clone());
        cancelled
    }

    /// Moves the stock of about a tenth of the SKUs (at least one) by -5..=+5 units,
    /// never below zero, as the seed's mock did.
    pub(crate) fn fluctuate(&self) -> Vec<Fluctuation> {
        let mut inner = self.lock();
        let count = (inner.items.len() / 10).max(1).min(inner.items.len());
        let mut changes = Vec::with_capacity(count);
        for _ in 0..count {
            let len = i64::try_from(inner.items.len()).unwrap_or(i64::MAX);
            let pick = usize::try_from(inner.rng.between(0, len - 1)).unwrap_or(0);
            let delta = match inner.rng.between(-5, 5) {
                0 => 1,
                d => d,
            };
            let item = &mut inner.items[pick];
            let before = item.quantity;
            item.quantity = (before + delta).max(0);
            changes.push(Fluctuation {
                sku: item.sku.clone(),
                before,
                after: item.quantity,
            });
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> VendorState {
        VendorState::new(MockVendorConfig::new("VendorA"))
    }

    fn line(sku: &str, quantity: i64) -> PlacedLine {
        PlacedLine {
            sku: sku.into(),
            quantity,
        }
    }

    #[test]
    fn placement_is_all_or_nothing_and_idempotent() {
        let state = state();
        state.set_quantity("LAPTOP-a-001", 3);
        state.set_quantity("MOUSE-a-007", 1);
        let short = state.place("k1", vec![line("LAPTOP-a-001", 2), line("MOUSE-a-007", 2)]);
        assert!(matches!(short, Placement::Short(ref s) if s.len() == 1 && s[0].available == 1));
        assert_eq!(state.item("LAPTOP-a-001").map(|i| i.quantity), Some(3));
        let Placement::Created(first) = state.place("k1", vec![line("LAPTOP-a-001", 2)]) else {
            panic!("expected a placement");
        };
        let again = state.place("k1", vec![line("LAPTOP-a-001", 2)]);
        assert_eq!(again, Placement::Replayed(first.clone()));
        assert_eq!(state.item("LAPTOP-a-001").map(|i| i.quantity), Some(1));
        assert_eq!(
            state.place("k1", vec![line("LAPTOP-a-001", 1)]),
            Placement::KeyReused
        );
        let unknown = state.place("k2", vec![line("NOPE-a-999", 1)]);
        assert!(matches!(unknown, Placement::Short(ref s) if s[0].available == 0));
    }

    #[test]
    fn cancel_restores_once_and_blocks_the_key() {
        let state = state();
        state.set_quantity("LAPTOP-a-001", 3);
        let Placement::Created(placed) = state.place("k", vec![line("LAPTOP-a-001", 2)]) else {
            panic!("expected a placement");
        };
        let id = placed.order_id.clone().expect("id");
        assert_eq!(state.cancel(&id).status, VendorOrderStatus::Cancelled);
        assert_eq!(state.cancel("k").status, VendorOrderStatus::Cancelled);
        assert_eq!(state.item("LAPTOP-a-001").map(|i| i.quantity), Some(3));
        assert!(matches!(
            state.place("k", vec![line("LAPTOP-a-001", 2)]),
            Placement::Cancelled(_)
        ));
        let tombstone = state.cancel("never-placed");
        assert_eq!(tombstone.order_id, None);
        assert!(matches!(
            state.place("never-placed", vec![line("LAPTOP-a-001", 1)]),
            Placement::Cancelled(_)
        ));
        assert_eq!(state.item("LAPTOP-a-001").map(|i| i.quantity), Some(3));
    }

    #[test]
    fn fluctuation_moves_stock_and_never_below_zero() {
        let state = VendorState::new(MockVendorConfig::new("VendorB").with_sku_count(100));
        for item in state.items() {
            state.set_quantity(&item.sku, 0);
        }
        let changes = state.fluctuate();
        assert_eq!(changes.len(), 10);
        assert!(
            changes
                .iter()
                .all(|c| c.after >= 0 && c.before == 0 || c.before > 0)
        );
        assert!(state.items().iter().all(|i| i.quantity >= 0));
    }

    #[test]
    fn pages_cover_the_catalog_once() {
        let state = VendorState::new(MockVendorConfig::new("VendorA").with_sku_count(25));
        let first = state.page(1, 10);
        assert_eq!((first.items.len(), first.total), (10, 25));
        assert_eq!(state.page(3, 10).items.len(), 5);
        assert!(state.page(4, 10).items.is_empty());
    }
}
