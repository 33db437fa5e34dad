//! Read-side views of stock: aggregated availability per product.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::clock::Clock;
use crate::domain::{
    Money, ProductId, StalenessLimit, Vendor, VendorHealth, VendorId, VendorSku, VendorStock,
};
use crate::error::{Error, Result};
use crate::traits::{CatalogReads, Page};

/// One vendor's part of a product's availability.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VendorAvailability {
    /// The vendor.
    pub vendor: VendorId,
    /// Its SKU for the product.
    pub sku: VendorSku,
    /// `reported − reserved − confirmed_not_yet_reported` (may be negative).
    pub sellable: i64,
    /// Units the vendor last reported.
    pub reported: i64,
    /// Units we hold.
    pub reserved: i64,
    /// Units confirmed to us that the vendor's report does not include yet.
    pub confirmed_not_yet_reported: i64,
    /// Price per unit.
    pub price: Money,
    /// The vendor's time of its report.
    #[serde(with = "time::serde::rfc3339")]
    pub as_of: OffsetDateTime,
    /// Whether the vendor's data is fresh enough to count.
    pub fresh: bool,
    /// The vendor's health.
    pub health: VendorHealth,
}

/// A product's availability summed over vendors with fresh data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductAvailability {
    /// The product.
    pub product: ProductId,
    /// Units that can be sold now: the sum of positive sellable figures of fresh vendors.
    pub available: u64,
    /// Every vendor's row, counted or not.
    pub vendors: Vec<VendorAvailability>,
}

/// Aggregated availability, read from the store.
#[derive(Debug, Clone)]
pub struct Catalog {
    store: Arc<dyn CatalogReads>,
    clock: Arc<dyn Clock>,
    staleness: StalenessLimit,
}

impl Catalog {
    /// A catalog over `store` counting vendors synced within `staleness`.
    pub fn new(
        store: Arc<dyn CatalogReads>,
        clock: Arc<dyn Clock>,
        staleness: StalenessLimit,
    ) -> Self {
        Self {
            store,
            clock,
            staleness,
        }
    }

    /// One product's availability; `NotFound` if no vendor lists it.
    pub async fn availability(&self, product: &ProductId) -> Result<ProductAvailability> {
        let rows = self.store.stock_for_product(product).await?;
        if rows.is_empty() {
            return Err(Error::not_found("product", product));
        }
        let vendors = self.vendor_map().await?;
        Ok(aggregate(
            product.clone(),
            &rows,
            &vendors,
            self.fresh_since(),
        ))
    }

    /// Every vendor's row carrying `sku`; `NotFound` if none does.
    pub async fn sku(&self, sku: &VendorSku) -> Result<Vec<VendorAvailability>> {
        let rows = self.store.stock_for_sku(sku).await?;
        let Some(first) = rows.first() else {
            return Err(Error::not_found("sku", sku));
        };
        let vendors = self.vendor_map().await?;
        Ok(aggregate(first.product.clone(), &rows, &vendors, self.fresh_since()).vendors)
    }

    /// A page of products with their availability, by product id.
    pub async fn products(&self, offset: u64, limit: u32) -> Result<Page<ProductAvailability>> {
        let ids = self.store.products(offset, limit).await?;
        let vendors = self.vendor_map().await?;
        let fresh_since = self.fresh_since();
        let mut items = Vec::with_capacity(ids.items.len());
        for product in ids.items {
            let rows = self.store.stock_for_product(&product).await?;
            items.push(aggregate(product, &rows, &vendors, fresh_since));
        }
        Ok(Page {
            items,
            total: ids.total,
        })
    }

    fn fresh_since(&self) -> OffsetDateTime {
        self.staleness.fresh_since(self.clock.now())
    }

    async fn vendor_map(&self) -> Result<BTreeMap<VendorId, Vendor>> {
        Ok(self
            .store
            .vendors()
            .await?
            .into_iter()
            .map(|vendor| (vendor.id.clone(), vendor))
            .collect())
    }
}

/// Sums `rows` of `product` over vendors fresh at `fresh_since`.
pub fn aggregate(
    product: ProductId,
    rows: &[VendorStock],
    vendors: &BTreeMap<VendorId, Vendor>,
    fresh_since: OffsetDateTime,
) -> ProductAvailability {
    let mut available = 0_u64;
    let mut parts = Vec::with_capacity(rows.len());
    for row in rows {
        let vendor = vendors.get(&row.vendor);
        let fresh = vendor.is_some_and(|v| v.is_fresh(fresh_since));
        if fresh {
            available += u64::try_from(row.sellable().max(0)).unwrap_or(0);
        }
        parts.push(VendorAvailability {
            vendor: row.vendor.clone(),
            sku: row.sku.clone(),
            sellable: row.sellable(),
            reported: row.reported,
            reserved: row.reserved,
            confirmed_not_yet_reported: row.confirmed_not_yet_reported,
            price: row.price,
            as_of: row.as_of,
            fresh,
            health: vendor.map_or(VendorHealth::Down, |v| v.health),
        });
    }
    ProductAvailability {
        product,
        available,
        vendors: parts,
    }
}
