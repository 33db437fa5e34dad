//! RedisCache against a real Redis (`REDIS_URL`), each test under its own key prefix.
//! Without `REDIS_URL` the tests print one line and pass, unless
//! `AGGREGATOR_REQUIRE_SERVICES=1`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aggregator_core::conformance::{self, service_url};
use aggregator_core::traits::{Cache, RateLimit};
use aggregator_redis::{RedisCache, RedisConfig};
use futures_util::future::join_all;

fn cache(url: String) -> RedisCache {
    let mut config = RedisConfig::new(url);
    config.key_prefix = format!("test:{}:", uuid::Uuid::now_v7().simple());
    RedisCache::new(config).expect("valid config")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_suite_passes() {
    let Some(url) = service_url("REDIS_URL") else {
        return;
    };
    let cache = cache(url);
    cache.ping().await.expect("redis answers");
    conformance::cache_suite(&cache).await;
    let shared: Arc<dyn Cache> = Arc::new(cache);
    conformance::rate_limit_is_exact_under_concurrency(&shared).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_caches_share_one_limit() {
    let Some(url) = service_url("REDIS_URL") else {
        return;
    };
    let first = cache(url.clone());
    let mut config = RedisConfig::new(url);
    config.key_prefix = first.config().key_prefix.clone();
    let second = RedisCache::new(config).expect("config");
    let limit = RateLimit {
        max_requests: 10,
        window: Duration::from_secs(5),
    };
    let calls = (0..30).map(|n| {
        let cache = if n % 2 == 0 { &first } else { &second };
        cache.rate_limit("api-key-1", limit)
    });
    let allowed = join_all(calls)
        .await
        .into_iter()
        .filter(|d| d.as_ref().expect("decision").allowed)
        .count();
    assert_eq!(allowed, 10, "the limit holds across API servers");
}

#[tokio::test]
async fn a_closed_port_fails_fast_and_never_hangs() {
    let mut config = RedisConfig::new("redis://127.0.0.1:1");
    config.timeout = Duration::from_millis(200);
    let cache = RedisCache::new(config).expect("valid config");
    for _ in 0..3 {
        let started = Instant::now();
        let errors = [
            cache.get("k").await.expect_err("down"),
            cache
                .set("k", b"v", Duration::from_secs(1))
                .await
                .expect_err("down"),
            cache.delete("k").await.expect_err("down"),
            cache
                .rate_limit(
                    "k",
                    RateLimit {
                        max_requests: 1,
                        window: Duration::from_secs(1),
                    },
                )
                .await
                .expect_err("down"),
            cache.ping().await.expect_err("down"),
        ];
        assert!(
            errors.iter().all(aggregator_core::Error::is_retryable),
            "{errors:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn a_bad_url_is_refused() {
    assert!(matches!(
        RedisCache::new(RedisConfig::new("http://nope")),
        Err(aggregator_core::Error::Invalid { .. })
    ));
}

mod through_the_catalog {
    use std::sync::Arc;
    use std::time::Duration;

    use aggregator_core::SystemClock;
    use aggregator_core::conformance::{Fixture, service_url};
    use aggregator_core::domain::StalenessLimit;
    use aggregator_core::memory::InMemoryStockStore;
    use aggregator_core::service::{CachedCatalog, Catalog, LimiterSource, RateLimiter};
    use aggregator_core::traits::{Cache, RateLimit};
    use aggregator_redis::{RedisCache, RedisConfig};

    fn catalog(store: Arc<InMemoryStockStore>, cache: Arc<dyn Cache>) -> CachedCatalog {
        let catalog = Catalog::new(
            store.clone(),
            Arc::new(SystemClock),
            StalenessLimit::new(time::Duration::days(3650)).expect("limit"),
        );
        CachedCatalog::new(catalog, store, cache, Duration::from_secs(2))
    }

    #[tokio::test]
    async fn availability_is_served_from_redis_and_invalidated() {
        let Some(url) = service_url("REDIS_URL") else {
            return;
        };
        let store = Arc::new(InMemoryStockStore::new());
        let fx = Fixture::new(store.as_ref(), 5, 5).await;
        let cache: Arc<dyn Cache> = Arc::new(super::cache(url));
        let catalog = catalog(store.clone(), cache);
        assert_eq!(
            catalog
                .availability(&fx.product)
                .await
                .expect("miss")
                .available,
            10
        );
        assert_eq!(
            catalog
                .availability(&fx.product)
                .await
                .expect("hit")
                .available,
            10
        );
        let placed = fx
            .place(store.as_ref(), &fx.vendor_a, 2, 1)
            .await
            .expect("placed");
        assert_eq!(
            catalog
                .availability(&fx.product)
                .await
                .expect("stale hit")
                .available,
            10,
            "a change the cache did not hear of waits for the TTL"
        );
        catalog.invalidate_order(&placed.order).await;
        assert_eq!(
            catalog
                .availability(&fx.product)
                .await
                .expect("fresh")
                .available,
            8
        );
        let stats = catalog.stats();
        assert_eq!((stats.hits, stats.misses, stats.errors), (2, 2, 0));
    }

    #[tokio::test]
    async fn with_redis_unreachable_reads_come_from_the_store() {
        let store = Arc::new(InMemoryStockStore::new());
        let fx = Fixture::new(store.as_ref(), 5, 5).await;
        let mut config = RedisConfig::new("redis://127.0.0.1:1");
        config.timeout = Duration::from_millis(100);
        let cache: Arc<dyn Cache> = Arc::new(RedisCache::new(config).expect("config"));
        let catalog = catalog(store.clone(), Arc::clone(&cache));
        for _ in 0..3 {
            assert_eq!(
                catalog
                    .availability(&fx.product)
                    .await
                    .expect("from the store")
                    .available,
                10
            );
        }
        assert!(catalog.stats().errors >= 3);
        let limiter = RateLimiter::new(cache);
        let limit = RateLimit {
            max_requests: 2,
            window: Duration::from_secs(60),
        };
        let decisions = [
            limiter.check("k", limit).await,
            limiter.check("k", limit).await,
            limiter.check("k", limit).await,
        ];
        assert!(
            decisions
                .iter()
                .all(|(_, source)| *source == LimiterSource::Local)
        );
        assert_eq!(decisions.iter().filter(|(d, _)| d.allowed).count(), 2);
    }
}
