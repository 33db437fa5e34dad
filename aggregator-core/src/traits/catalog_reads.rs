//! [`CatalogReads`]: the store's role of answering what is in stock where.

use std::fmt::Debug;

use async_trait::async_trait;

use crate::domain::{ProductId, Vendor, VendorSku, VendorStock};
use crate::error::Result;
use crate::traits::Page;

/// Reads of the vendors and their stock rows: what the catalog and the allocator plan
/// with. Every row
/// read carries `sellable = reported − reserved − confirmed_not_yet_reported` as of one
/// consistent moment; a plan made from it is only a proposal, the store decides at
/// commit.
#[async_trait]
pub trait CatalogReads: Send + Sync + Debug + 'static {
    /// Every registered vendor, by id, with its health and last good sync.
    async fn vendors(&self) -> Result<Vec<Vendor>>;

    /// Every vendor's row for `product`.
    async fn stock_for_product(&self, product: &ProductId) -> Result<Vec<VendorStock>>;

    /// Every vendor's row carrying `sku`.
    async fn stock_for_sku(&self, sku: &VendorSku) -> Result<Vec<VendorStock>>;

    /// Canonical products that have any stock row, by id.
    async fn products(&self, offset: u64, limit: u32) -> Result<Page<ProductId>>;
}
