//! Availability and vendor health through a [`Cache`], falling back to the store.
//!
//! How stale a cached figure can be: every change this process makes through a service
//! that holds the [`CachedCatalog`] (placing, cancelling, confirming, failing or
//! re-routing orders, holds, stock syncs) deletes the entries it touches right after
//! the store commits, so the next read sees the store. A change the cache did not hear
//! of (made by a process without the cache, or while the cache was down) shows up once
//! the entry's TTL runs out: `ttl` is the bound, 2 s by default. The cache is only a
//! read path: placements are always decided by the store.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::batcher::{BatchConfig, Batcher};
use super::catalog::{Catalog, ProductAvailability, VendorAvailability};
use crate::domain::{Order, OrderLine, ProductId, Vendor, VendorSku};
use crate::error::Result;
use crate::traits::{Cache, CacheExt, CatalogReads};

/// How often the cache answered, missed, or could not be reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Reads answered from the cache.
    pub hits: u64,
    /// Reads the cache did not have, answered from the store.
    pub misses: u64,
    /// Cache calls that failed (the store answered instead).
    pub errors: u64,
}

/// A [`Catalog`] whose reads go through a cache first.
#[derive(Debug)]
pub struct CachedCatalog {
    catalog: Catalog,
    store: Arc<dyn CatalogReads>,
    cache: Arc<dyn Cache>,
    ttl: Duration,
    hits: AtomicU64,
    misses: AtomicU64,
    errors: AtomicU64,
    invalidations: OnceLock<Batcher<Vec<String>, ()>>,
}

const VENDORS_KEY: &str = "vendors";

fn product_key(product: &ProductId) -> String {
    format!("availability:product:{product}")
}

fn sku_key(sku: &VendorSku) -> String {
    format!("availability:sku:{sku}")
}

impl CachedCatalog {
    /// How long entries live unless told otherwise: changes another process made show
    /// within this.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(2);

    /// Reads `catalog` (over `store`) through `cache`, keeping entries for `ttl`.
    pub fn new(
        catalog: Catalog,
        store: Arc<dyn CatalogReads>,
        cache: Arc<dyn Cache>,
        ttl: Duration,
    ) -> Self {
        Self {
            catalog,
            store,
            cache,
            ttl,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            invalidations: OnceLock::new(),
        }
    }

    /// Counts so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }

    /// A product's availability (see [`Catalog::availability`]).
    pub async fn availability(&self, product: &ProductId) -> Result<ProductAvailability> {
        let key = product_key(product);
        if let Some(found) = self.read(&key).await {
            return Ok(found);
        }
        let fresh = self.catalog.availability(product).await?;
        self.write(&key, &fresh).await;
        Ok(fresh)
    }

    /// Every vendor's row for one SKU (see [`Catalog::sku`]).
    pub async fn sku(&self, sku: &VendorSku) -> Result<Vec<VendorAvailability>> {
        let key = sku_key(sku);
        if let Some(found) = self.read(&key).await {
            return Ok(found);
        }
        let fresh = self.catalog.sku(sku).await?;
        self.write(&key, &fresh).await;
        Ok(fresh)
    }

    /// Every vendor with its health.
    pub async fn vendors(&self) -> Result<Vec<Vendor>> {
        if let Some(found) = self.read(VENDORS_KEY).await {
            return Ok(found);
        }
        let fresh = self.store.vendors().await?;
        self.write(VENDORS_KEY, &fresh).await;
        Ok(fresh)
    }

    /// Forgets what is cached for these products and SKUs (after a change to them).
    /// Invalidations that arrive while one is on its way to the cache go together in
    /// the next one (one round trip for many changes); each caller still returns only
    /// once its own keys are gone (or the cache failed: the entries then age out).
    pub async fn invalidate(&self, products: &[ProductId], skus: &[VendorSku]) {
        let keys: Vec<String> = products
            .iter()
            .map(product_key)
            .chain(skus.iter().map(sku_key))
            .collect();
        if keys.is_empty() {
            return;
        }
        let cache = self.cache.clone();
        let batcher = self.invalidations.get_or_init(|| {
            Batcher::start(
                "cache invalidation",
                BatchConfig {
                    window: Duration::ZERO,
                    max_batch: 1024,
                    in_flight: 1,
                },
                move |batch: Vec<Vec<String>>| {
                    let cache = cache.clone();
                    async move {
                        let count = batch.len();
                        let mut keys: Vec<String> = batch.into_iter().flatten().collect();
                        keys.sort_unstable();
                        keys.dedup();
                        let outcome = cache.delete_many(&keys).await;
                        vec![outcome; count]
                    }
                },
            )
        });
        if let Err(error) = batcher.submit(keys).await {
            self.errors.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%error, "cache invalidation failed; the entries age out");
        }
    }

    /// Forgets what is cached for the products and SKUs of `lines`.
    pub async fn invalidate_lines(&self, lines: &[OrderLine]) {
        let products: Vec<ProductId> = lines.iter().map(|line| line.product.clone()).collect();
        let skus: Vec<VendorSku> = lines
            .iter()
            .flat_map(|line| line.allocations.iter().map(|a| a.sku.clone()))
            .collect();
        self.invalidate(&products, &skus).await;
    }

    /// Forgets what is cached for an order's products and SKUs.
    pub async fn invalidate_order(&self, order: &Order) {
        self.invalidate_lines(&order.lines).await;
    }

    /// Forgets the cached vendor list (after a sync changed a vendor's health).
    pub async fn invalidate_vendors(&self) {
        if self.cache.delete(VENDORS_KEY).await.is_err() {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    async fn read<T: DeserializeOwned + Send>(&self, key: &str) -> Option<T> {
        match self.cache.get_json(key).await {
            Ok(Some(found)) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(found)
            }
            Ok(None) => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
            Err(error) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%error, key, "cache unavailable; reading the store");
                None
            }
        }
    }

    async fn write<T: serde::Serialize + Sync>(&self, key: &str, value: &T) {
        if let Err(error) = self.cache.set_json(key, value, self.ttl).await {
            self.errors.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%error, key, "cache unavailable; not caching");
        }
    }
}
