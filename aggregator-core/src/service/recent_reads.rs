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

/// What is remembered, each with the moment it is to be read again.
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
        self.state().vendors = Some((self.due(), fresh.clone()));
        Ok(fresh)
    }

    async fn renew_product(&self, product: &ProductId) -> Result<Vec<VendorStock>> {
        let fresh = self.store.stock_for_product(product).await?;
        let due = self.due();
        keep(
            &mut self.state().products,
            product.clone(),
            due,
            fresh.clone(),
        );
        Ok(fresh)
    }

    async fn renew_sku(&self, sku: &VendorSku) -> Result<Vec<VendorStock>> {
        let fresh = self.store.stock_for_sku(sku).await?;
        let due = self.due();
        keep(&mut self.state().skus, sku.clone(), due, fresh.clone());
        Ok(fresh)
    }

    /// When something read now is to be read again: after between three quarters of
    /// the ttl and all of it, so that entries read in one burst (a warm-up, a sale
    /// opening) do not all fall due in the same moment.
    fn due(&self) -> Instant {
        let spread = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.subsec_nanos() % 1_000);
        Instant::now() + self.ttl.mul_f64(0.75 + 0.25 * f64::from(spread) / 1_000.0)
    }

    /// The remembered value if it is not due yet. If it is, the caller reads it again
    /// and, until then, everyone else keeps planning from the old value for a moment
    /// (at most the renewal grace or the ttl, whichever is shorter), so one caller
    /// renews an entry, not every caller that finds it due at once.
    fn live<T: Clone>(&self, entry: Option<&mut (Instant, T)>) -> Option<T> {
        let (due, value) = entry?;
        let now = Instant::now();
        if *due > now {
            return Some(value.clone());
        }
        *due = now + RENEWAL_GRACE.min(self.ttl);
        None
    }
}

/// How long others plan from an entry that fell due while one caller renews it (never
/// longer than the ttl itself).
const RENEWAL_GRACE: Duration = Duration::from_millis(500);

fn keep<K: std::hash::Hash + Eq + Clone, V>(
    map: &mut HashMap<K, (Instant, V)>,
    key: K,
    due: Instant,
    value: V,
) {
    if map.len() >= MAX_ENTRIES {
        let mut dues: Vec<Instant> = map.values().map(|(due, _)| *due).collect();
        dues.sort_unstable();
        let cut = dues[dues.len() / 2];
        map.retain(|_, (due, _)| *due > cut);
    }
    map.insert(key, (due, value));
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
        if let Some(found) = self.live(self.state().vendors.as_mut()) {
            return Ok(found);
        }
        self.renew_vendors().await
    }

    async fn stock_for_product(&self, product: &ProductId) -> Result<Vec<VendorStock>> {
        if let Some(found) = self.live(self.state().products.get_mut(product)) {
            return Ok(found);
        }
        self.renew_product(product).await
    }

    async fn stock_for_sku(&self, sku: &VendorSku) -> Result<Vec<VendorStock>> {
        if let Some(found) = self.live(self.state().skus.get_mut(sku)) {
            return Ok(found);
        }
        self.renew_sku(sku).await
    }

    async fn products(&self, offset: u64, limit: u32) -> Result<Page<ProductId>> {
        self.store.products(offset, limit).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures_util::future::join_all;

    use super::*;

    /// A catalog whose product reads take a while and are counted.
    #[derive(Debug, Default)]
    struct SlowCatalog {
        product_reads: AtomicUsize,
    }

    #[async_trait]
    impl CatalogReads for SlowCatalog {
        async fn vendors(&self) -> Result<Vec<Vendor>> {
            Ok(Vec::new())
        }
        async fn stock_for_product(&self, _product: &ProductId) -> Result<Vec<VendorStock>> {
            self.product_reads.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(Vec::new())
        }
        async fn stock_for_sku(&self, _sku: &VendorSku) -> Result<Vec<VendorStock>> {
            Ok(Vec::new())
        }
        async fn products(&self, _offset: u64, _limit: u32) -> Result<Page<ProductId>> {
            Ok(Page {
                items: Vec::new(),
                total: 0,
            })
        }
    }

    #[tokio::test]
    async fn an_entry_that_falls_due_is_read_again_by_one_caller_while_the_rest_plan_on() {
        let store = Arc::new(SlowCatalog::default());
        let recent = RecentReads::new(store.clone(), Duration::from_millis(10));
        let product = ProductId::new("LAPTOP-001").expect("id");
        recent
            .stock_for_product(&product)
            .await
            .expect("first read");
        recent
            .stock_for_product(&product)
            .await
            .expect("remembered");
        assert_eq!(store.product_reads.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let answers = join_all((0..10).map(|_| recent.stock_for_product(&product))).await;
        assert!(answers.iter().all(Result::is_ok));
        assert_eq!(
            store.product_reads.load(Ordering::SeqCst),
            2,
            "ten callers found the entry due; one read it again"
        );
    }
}
