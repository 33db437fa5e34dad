//! Shared setup for the cases: vendors, stock and placements under fresh random ids.

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::domain::{
    Currency, CustomerId, Money, OrderDetails, OrderId, ProductId, Quantity, SnapshotRow, Vendor,
    VendorId, VendorSku, VendorStock,
};
use crate::error::Result;
use crate::traits::{OrderPlacement, Placed, PlannedAllocation, PlannedLine, StockStore};

/// Two vendors (A preferred) carrying one product under their own SKUs, synced at `now`.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// A fresh random suffix shared by every id of this fixture.
    pub tag: String,
    /// Vendor A (priority 1).
    pub vendor_a: VendorId,
    /// Vendor B (priority 2).
    pub vendor_b: VendorId,
    /// The product both carry.
    pub product: ProductId,
    /// A's SKU for it.
    pub sku_a: VendorSku,
    /// B's SKU for it.
    pub sku_b: VendorSku,
    /// The fixture's "now" (our clock, and the vendors' as_of of the first snapshot).
    pub now: OffsetDateTime,
}

/// Builds a valid value in a case; a failure is a broken test, so it panics with `what`.
pub(crate) fn valid<T>(result: Result<T>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{what}: {error}"),
    }
}

pub(crate) fn qty(units: u32) -> Quantity {
    valid(Quantity::try_from(units), "quantity")
}

impl Fixture {
    /// Registers the vendors and reports `stock_a` and `stock_b` units, synced at now.
    pub async fn new(store: &dyn StockStore, stock_a: i64, stock_b: i64) -> Self {
        // The last 12 hex digits of a v7 UUID are random.
        let tag = Uuid::now_v7().simple().to_string()[20..].to_owned();
        // Whole seconds keep every backend's timestamp precision out of the way.
        let now = OffsetDateTime::from_unix_timestamp(OffsetDateTime::now_utc().unix_timestamp())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let fixture = Self {
            vendor_a: valid(VendorId::new(format!("A-{tag}")), "vendor id"),
            vendor_b: valid(VendorId::new(format!("B-{tag}")), "vendor id"),
            product: valid(ProductId::new(format!("P-{tag}")), "product id"),
            sku_a: valid(VendorSku::new(format!("P-a-{tag}")), "sku"),
            sku_b: valid(VendorSku::new(format!("P-b-{tag}")), "sku"),
            tag,
            now,
        };
        for (vendor, priority) in [(&fixture.vendor_a, 1), (&fixture.vendor_b, 2)] {
            let record = valid(
                Vendor::new(
                    vendor.clone(),
                    vendor.as_str(),
                    "http://127.0.0.1:9",
                    priority,
                ),
                "vendor",
            );
            valid(store.upsert_vendor(&record).await, "upsert vendor");
        }
        fixture
            .report(store, &fixture.vendor_a.clone(), stock_a, now)
            .await;
        fixture
            .report(store, &fixture.vendor_b.clone(), stock_b, now)
            .await;
        for vendor in [&fixture.vendor_a, &fixture.vendor_b] {
            valid(
                store
                    .complete_snapshot(vendor, &[fixture.sku(vendor)], now, now, Duration::ZERO)
                    .await,
                "complete snapshot",
            );
        }
        fixture
    }

    /// The vendor's SKU for the product.
    pub fn sku(&self, vendor: &VendorId) -> VendorSku {
        if vendor == &self.vendor_a {
            self.sku_a.clone()
        } else {
            self.sku_b.clone()
        }
    }

    /// A snapshot row of `vendor`'s SKU with `quantity` units at `as_of`.
    pub fn row(&self, vendor: &VendorId, quantity: i64, as_of: OffsetDateTime) -> SnapshotRow {
        SnapshotRow {
            sku: self.sku(vendor),
            product: self.product.clone(),
            quantity,
            price: valid(Money::new(1_000, Currency::USD), "price"),
            as_of,
        }
    }

    /// Applies a one-row snapshot page for `vendor` (no confirmation margin).
    pub async fn report(
        &self,
        store: &dyn StockStore,
        vendor: &VendorId,
        quantity: i64,
        as_of: OffsetDateTime,
    ) {
        let row = self.row(vendor, quantity, as_of);
        valid(
            store.apply_snapshot(vendor, &[row], Duration::ZERO).await,
            "apply snapshot",
        );
    }

    /// The (vendor, SKU) row as the store has it.
    pub async fn stock(&self, store: &dyn StockStore, vendor: &VendorId) -> VendorStock {
        let sku = self.sku(vendor);
        let rows = valid(store.stock_for_sku(&sku).await, "stock for sku");
        match rows.into_iter().find(|row| &row.vendor == vendor) {
            Some(row) => row,
            None => panic!("no stock row for {vendor}/{sku}"),
        }
    }

    /// Order details for customer `c-<tag>-<n>`.
    pub fn details(&self, n: u32) -> OrderDetails {
        OrderDetails {
            customer: valid(CustomerId::new(format!("c-{}-{n}", self.tag)), "customer"),
            email: None,
            shipping_address: None,
            payment_method: None,
            notes: None,
        }
    }

    /// A one-allocation line taking `units` from `vendor`.
    pub fn line(&self, vendor: &VendorId, units: u32) -> PlannedLine {
        PlannedLine {
            item: self.sku(vendor).to_string(),
            product: self.product.clone(),
            quantity: qty(units),
            allocations: vec![PlannedAllocation {
                vendor: vendor.clone(),
                sku: self.sku(vendor),
                quantity: qty(units),
            }],
            quoted: None,
        }
    }

    /// A placement of `lines` for customer `n`, reserved for 15 minutes, no outbox.
    pub fn placement(&self, n: u32, lines: Vec<PlannedLine>) -> OrderPlacement {
        OrderPlacement {
            id: OrderId::new(),
            details: self.details(n),
            lines,
            at: self.now,
            reserved_until: self.now + Duration::minutes(15),
            fresh_since: self.fresh_since(),
            idempotency: None,
            outbox: Vec::new(),
        }
    }

    /// Vendors synced before this do not count; the fixture's placements use it.
    pub fn fresh_since(&self) -> OffsetDateTime {
        self.now - Duration::minutes(5)
    }

    /// Places one line of `from_a + from_b` units split over both vendors, for
    /// customer `n`.
    pub async fn place_split(
        &self,
        store: &dyn StockStore,
        from_a: u32,
        from_b: u32,
    ) -> Result<Placed> {
        let line = PlannedLine {
            item: self.product.to_string(),
            product: self.product.clone(),
            quantity: qty(from_a + from_b),
            allocations: vec![
                PlannedAllocation {
                    vendor: self.vendor_a.clone(),
                    sku: self.sku_a.clone(),
                    quantity: qty(from_a),
                },
                PlannedAllocation {
                    vendor: self.vendor_b.clone(),
                    sku: self.sku_b.clone(),
                    quantity: qty(from_b),
                },
            ],
            quoted: None,
        };
        store
            .place_order(self.placement(n_split(), vec![line]))
            .await
    }

    /// Places `units` from `vendor` for customer `n`.
    pub async fn place(
        &self,
        store: &dyn StockStore,
        vendor: &VendorId,
        units: u32,
        n: u32,
    ) -> Result<Placed> {
        store
            .place_order(self.placement(n, vec![self.line(vendor, units)]))
            .await
    }
}

/// The customer number split placements are made for.
fn n_split() -> u32 {
    900
}
