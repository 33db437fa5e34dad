//! [`RecentReads`]: the catalog reads a placement plans from, remembered for a moment.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::domain::{ProductId, Vendor, VendorSku, VendorStock};
use crate::error::Result;
use crate::traits::{CatalogReads, Page};

/// Entries kept at most per kind; past it the oldest half is forgotten.
const MAX_ENTRIES: usize = 50_000;

/// Catalog reads remembered for `ttl`, for planning only.
///
/// A plan made from figures a moment old is safe: the store decides every placement
/// against its own rows at commit, so a stale plan can only be refused. The order
/// service plans from here first and, when that plan is short or refused, plans again
/// from the store before answering; so a customer is told "short" only from fresh
/// figures. What this saves is the store reads of every placement under load.
#[derive(Debug)]
pub struct RecentReads {
    store: Arc<dyn CatalogReads>,
    ttl: Duration,
    state: Mutex<Remembered>,
}

#[derive(Debug, Default)]
struct Remembered {
    skus: HashMap<VendorSku, (Instant, Vec<VendorStock>)>,
    products: HashMap<ProductId, (Instant, Vec<VendorStock>)>,
    vendors: Option<(Instant, Vec<Vendor>)>,
}

impl RecentReads {
    /// Remembers what `store` answers for `ttl`.
    pub fn new(store: Arc<dyn CatalogReads>, ttl: Duration) -> Self {
        Self {
            store,
            ttl,
            state: Mutex::new(Remembered::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, Remembered> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reads that always go to the store and renew what is remembered with the
    /// answer (for the plan made again after a plan from old figures failed).
    pub fn renewing(self: &Arc<Self>) -> Renewing {
        Renewing(self.clone())
    }

    async fn renew_vendors(&self) -> Result<Vec<Vendor>> {
        let fresh = self.store.vendors().await?;
        self.state().vendors = Some((Instant::now(), fresh.clone()));
        Ok(fresh)
    }

    async fn renew_product(&self, product: &ProductId) -> Result<Vec<VendorStock>> {
        let fresh = self.store.stock_for_product(product).await?;
        keep(&mut self.state().products, product.clone(), fresh.clone());
        Ok(fresh)
    }

    async fn renew_sku(&self, sku: &VendorSku) -> Result<Vec<VendorStock>> {
        let fresh = self.store.stock_for_sku(sku).await?;
        keep(&mut self.state().skus, sku.clone(), fresh.clone());
        Ok(fresh)
    }

    fn live<T: Clone>(&self, entry: Option<&(Instant, T)>) -> Option<T> {
        entry
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, value)| value.clone())
    }
}

fn keep<K: std::hash::Hash + Eq + Clone, V>(map: &mut HashMap<K, (Instant, V)>, key: K, value: V) {
    if map.len() >= MAX_ENTRIES {
        let mut ages: Vec<Instant> = map.values().map(|(at, _)| *at).collect();
        ages.sort_unstable();
        let cut = ages[ages.len() / 2];
        map.retain(|_, (at, _)| *at > cut);
    }
    map.insert(key, (Instant::now(), value));
}

/// Store reads that renew what a [`RecentReads`] remembers.
#[derive(Debug)]
pub struct Renewing(Arc<RecentReads>);

#[async_trait]
impl CatalogReads for Renewing {
    async fn vendors(&self) -> Result<Vec<Vendor>> {
        self.0.renew_vendors().await
    }

    async fn stock_for_product(&self, product: &ProductId) -> Result<Vec<VendorStock>> {
        self.0.renew_product(product).await
    }

    async fn stock_for_sku(&self, sku: &VendorSku) -> Result<Vec<VendorStock>> {
        self.0.renew_sku(sku).await
    }

    async fn products(&self, offset: u64, limit: u32) -> Result<Page<ProductId>> {
        self.0.store.products(offset, limit).await
    }
}

#[async_trait]
impl CatalogReads for RecentReads {
    async fn vendors(&self) -> Result<Vec<Vendor>> {
        if let Some(found) = self.live(self.state().vendors.as_ref()) {
            return Ok(found);
        }
        self.renew_vendors().await
    }

    async fn stock_for_product(&self, product: &ProductId) -> Result<Vec<VendorStock>> {
        if let Some(found) = self.live(self.state().products.get(product)) {
            return Ok(found);
        }
        self.renew_product(product).await
    }

    async fn stock_for_sku(&self, sku: &VendorSku) -> Result<Vec<VendorStock>> {
        if let Some(found) = self.live(self.state().skus.get(sku)) {
            return Ok(found);
        }
        self.renew_sku(sku).await
    }

    async fn products(&self, offset: u64, limit: u32) -> Result<Page<ProductId>> {
        self.store.products(offset, limit).await
    }
}
