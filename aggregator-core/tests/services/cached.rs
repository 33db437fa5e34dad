use aggregator_core::prelude::*;
use std::sync::Arc;
use std::time::Duration;

use aggregator_core::domain::StalenessLimit;
use aggregator_core::error::{Error, Result};
use aggregator_core::memory::InMemoryCache;
use aggregator_core::service::{
    CacheStats, CachedCatalog, Catalog, LimiterSource, OrderConfig, OrderService, RateLimiter,
};
use aggregator_core::traits::{Cache, RateDecision, RateLimit};
use async_trait::async_trait;

use super::support::{World, product, request, sku};

/// A cache that is always down.
#[derive(Debug)]
struct DownCache;

#[async_trait]
impl Cache for DownCache {
    async fn get(&self, _key: &str) -> Result<Option<Vec<u8>>> {
        Err(Error::transient("redis", "connection refused"))
    }
    async fn set(&self, _key: &str, _value: &[u8], _ttl: Duration) -> Result<()> {
        Err(Error::transient("redis", "connection refused"))
    }
    async fn set_if_absent(&self, _key: &str, _value: &[u8], _ttl: Duration) -> Result<bool> {
        Err(Error::transient("redis", "connection refused"))
    }
    async fn delete(&self, _key: &str) -> Result<()> {
        Err(Error::transient("redis", "connection refused"))
    }
    async fn rate_limit(&self, _key: &str, _limit: RateLimit) -> Result<RateDecision> {
        Err(Error::transient("redis", "connection refused"))
    }
    async fn take_slot(&self, _key: &str, _max: u32, _ttl: Duration) -> Result<Option<String>> {
        Err(Error::transient("redis", "connection refused"))
    }
    async fn give_back_slot(&self, _key: &str, _token: &str) -> Result<()> {
        Err(Error::transient("redis", "connection refused"))
    }
}

fn cached(world: &World, cache: Arc<dyn Cache>) -> Arc<CachedCatalog> {
    let catalog = Catalog::new(world.dyn_store(), world.clock(), StalenessLimit::DEFAULT);
    Arc::new(CachedCatalog::new(
        catalog,
        world.dyn_store(),
        cache,
        Duration::from_secs(60),
    ))
}

#[tokio::test]
async fn reads_are_cached_and_changes_invalidate_them() {
    let world = World::new(4, 6, 0).await;
    let cache: Arc<dyn Cache> = Arc::new(InMemoryCache::new());
    let catalog = cached(&world, cache);
    let laptops = product("LAPTOP-001");
    assert_eq!(
        catalog
            .availability(&laptops)
            .await
            .expect("read")
            .available,
        10
    );
    assert_eq!(
        catalog
            .availability(&laptops)
            .await
            .expect("read")
            .available,
        10
    );
    assert_eq!(
        catalog.stats(),
        CacheStats {
            hits: 1,
            misses: 1,
            errors: 0
        }
    );

    let orders = OrderService::new(
        world.dyn_store(),
        world.dyn_store(),
        world.dyn_store(),
        world.clock(),
        OrderConfig::default(),
    )
    .expect("service")
    .with_cache(Arc::clone(&catalog));
    let placed = orders
        .place(&request("c1", &[("LAPTOP-001", 3)]), None)
        .await
        .expect("placed");
    assert_eq!(
        catalog
            .availability(&laptops)
            .await
            .expect("read")
            .available,
        7,
        "placing invalidated the entry"
    );
    let per_sku = catalog.sku(&sku("LAPTOP-a-001")).await.expect("sku");
    assert_eq!(per_sku[0].sellable, 1);
    orders
        .cancel(placed.order.id, "", &aggregator_core::service::Scope::All)
        .await
        .expect("cancel");
    // The units wait for the vendor to confirm the cancellation (as the worker does).
    world
        .store
        .vendor_cancellation_done(
            &super::support::vendor("VendorA"),
            &placed.order.vendor_key(&super::support::vendor("VendorA")),
        )
        .await
        .expect("done");
    assert_eq!(
        catalog
            .availability(&laptops)
            .await
            .expect("read")
            .available,
        10,
        "cancelling invalidated it"
    );
    assert_eq!(
        catalog.sku(&sku("LAPTOP-a-001")).await.expect("sku")[0].sellable,
        4
    );
    assert_eq!(catalog.vendors().await.expect("vendors").len(), 2);
    assert!(matches!(
        catalog.availability(&product("NOPE-1")).await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn a_down_cache_never_fails_a_read_or_an_order() {
    let world = World::new(4, 6, 0).await;
    let catalog = cached(&world, Arc::new(DownCache));
    let laptops = product("LAPTOP-001");
    assert_eq!(
        catalog
            .availability(&laptops)
            .await
            .expect("from the store")
            .available,
        10
    );
    assert_eq!(catalog.vendors().await.expect("from the store").len(), 2);
    let orders = OrderService::new(
        world.dyn_store(),
        world.dyn_store(),
        world.dyn_store(),
        world.clock(),
        OrderConfig::default(),
    )
    .expect("service")
    .with_cache(Arc::clone(&catalog));
    orders
        .place(&request("c1", &[("LAPTOP-001", 2)]), None)
        .await
        .expect("placed anyway");
    assert_eq!(
        catalog
            .availability(&laptops)
            .await
            .expect("from the store")
            .available,
        8
    );
    let stats = catalog.stats();
    assert_eq!((stats.hits, stats.misses), (0, 0));
    assert!(stats.errors >= 4, "{stats:?}");
}

#[tokio::test]
async fn rate_limits_fall_back_to_the_process_when_the_shared_limiter_is_down() {
    let limit = RateLimit {
        max_requests: 3,
        window: Duration::from_secs(60),
    };
    let down = RateLimiter::new(Arc::new(DownCache));
    let mut allowed = 0;
    for _ in 0..5 {
        let (decision, source) = down.check("key-1", limit).await;
        assert_eq!(source, LimiterSource::Local);
        allowed += usize::from(decision.allowed);
    }
    assert_eq!(allowed, 3, "the limit still holds, per process");
    let up = RateLimiter::new(Arc::new(InMemoryCache::new()));
    let (decision, source) = up.check("key-1", limit).await;
    assert!(decision.allowed);
    assert_eq!(source, LimiterSource::Shared);
}

#[tokio::test]
async fn a_sync_invalidates_what_it_reports_and_the_vendor_list() {
    use aggregator_core::domain::{HealthPolicy, SnapshotRow, VendorHealth};
    use aggregator_core::service::{StockSync, SyncConfig};
    use aggregator_core::traits::{StockPage, VendorClient, VendorDirectory};

    let world = World::new(4, 6, 0).await;
    let catalog = cached(&world, Arc::new(InMemoryCache::new()));
    let laptops = product("LAPTOP-001");
    assert_eq!(
        catalog
            .availability(&laptops)
            .await
            .expect("read")
            .available,
        10
    );
    assert_eq!(
        catalog.vendors().await.expect("vendors")[0].health,
        VendorHealth::Healthy
    );

    let as_of = world.later(5);
    let mut a = super::support::mock_vendor("VendorA");
    a.expect_stock_page().returning(move |_, _| {
        Ok(StockPage {
            rows: vec![SnapshotRow {
                sku: sku("LAPTOP-a-001"),
                product: product("LAPTOP-001"),
                quantity: 9,
                price: super::support::usd(100),
                as_of,
            }],
            as_of,
            next_page: None,
            last_page: None,
        })
    });
    let directory: VendorDirectory = [Arc::new(a) as Arc<dyn VendorClient>].into_iter().collect();
    let sync = StockSync::new(
        world.dyn_store(),
        directory,
        world.clock(),
        SyncConfig::default(),
    )
    .expect("sync")
    .with_cache(Arc::clone(&catalog));
    sync.sync_vendor(&super::support::vendor("VendorA"))
        .await
        .expect("synced");
    assert_eq!(
        catalog
            .availability(&laptops)
            .await
            .expect("read")
            .available,
        15,
        "the sync invalidated it"
    );

    let mut failing = super::support::mock_vendor("VendorB");
    failing
        .expect_stock_page()
        .returning(|_, _| Err(Error::transient("vendor VendorB", "timeout")));
    let directory: VendorDirectory = [Arc::new(failing) as Arc<dyn VendorClient>]
        .into_iter()
        .collect();
    let config = SyncConfig {
        health: HealthPolicy {
            down_after_failures: 1,
        },
        ..SyncConfig::default()
    };
    let sync = StockSync::new(world.dyn_store(), directory, world.clock(), config)
        .expect("sync")
        .with_cache(Arc::clone(&catalog));
    sync.sync_vendor(&super::support::vendor("VendorB"))
        .await
        .expect_err("fails");
    let vendors = catalog.vendors().await.expect("vendors");
    let b = vendors
        .iter()
        .find(|v| v.id.as_str() == "VendorB")
        .expect("B");
    assert_eq!(
        b.health,
        VendorHealth::Down,
        "the cached vendor list was dropped"
    );
}
