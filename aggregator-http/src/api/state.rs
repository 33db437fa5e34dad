//! What every handler shares: the services over the backends, settings and metrics.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aggregator_core::clock::Clock;
use aggregator_core::error::Result;
use aggregator_core::service::{CachedCatalog, Catalog, OrderConfig, OrderService, RateLimiter};
use aggregator_core::traits::{Cache, OrderQueue, StockStore};
use futures_util::future::BoxFuture;

use super::config::ApiConfig;
use super::metrics::Metrics;

/// A health check of one component: `Ok` when it answers.
pub type Probe = Arc<dyn Fn() -> BoxFuture<'static, Result<()>> + Send + Sync>;

/// How to tell whether the queue and the cache are up (the store is checked by reading
/// its vendor list). Backends that can say more (a ping, a connection flag) plug in
/// here; the defaults report them up.
#[derive(Clone)]
pub struct HealthProbes {
    /// The queue's check.
    pub queue: Probe,
    /// The cache's check.
    pub cache: Probe,
}

impl Default for HealthProbes {
    fn default() -> Self {
        let up: Probe = Arc::new(|| Box::pin(async { Ok(()) }));
        Self {
            queue: up.clone(),
            cache: up,
        }
    }
}

impl fmt::Debug for HealthProbes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HealthProbes")
    }
}

/// The API's shared state: cheap to clone.
#[derive(Debug, Clone)]
pub struct ApiState {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) orders: OrderService,
    pub(crate) catalog: Arc<CachedCatalog>,
    pub(crate) listing: Catalog,
    pub(crate) store: Arc<dyn StockStore>,
    pub(crate) queue: Arc<dyn OrderQueue>,
    pub(crate) cache: Arc<dyn Cache>,
    pub(crate) limiter: RateLimiter,
    pub(crate) config: ApiConfig,
    pub(crate) metrics: Metrics,
    pub(crate) probes: HealthProbes,
}

/// How long cached availability may lag behind changes this process did not see.
const CACHE_TTL: Duration = Duration::from_secs(2);

/// The backends the API runs on.
#[derive(Debug, Clone)]
pub struct ApiBackends {
    /// Where orders, holds and stock live.
    pub store: Arc<dyn StockStore>,
    /// Where sync requests are queued and dead letters inspected.
    pub queue: Arc<dyn OrderQueue>,
    /// Cached availability, rate limits and idempotent answers.
    pub cache: Arc<dyn Cache>,
    /// Our clock.
    pub clock: Arc<dyn Clock>,
    /// Health checks of the queue and the cache.
    pub probes: HealthProbes,
}

impl ApiBackends {
    /// These backends, with health checks that report the queue and cache up.
    pub fn new(
        store: Arc<dyn StockStore>,
        queue: Arc<dyn OrderQueue>,
        cache: Arc<dyn Cache>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            queue,
            cache,
            clock,
            probes: HealthProbes::default(),
        }
    }
}

impl ApiState {
    /// The API over `backends`. Refuses an invalid order configuration.
    pub fn new(backends: ApiBackends, orders: OrderConfig, config: ApiConfig) -> Result<Self> {
        let ApiBackends {
            store,
            queue,
            cache,
            clock,
            probes,
        } = backends;
        let staleness = orders.staleness;
        let listing = Catalog::new(store.clone(), clock.clone(), staleness);
        let catalog = Arc::new(CachedCatalog::new(
            listing.clone(),
            store.clone(),
            cache.clone(),
            CACHE_TTL,
        ));
        let orders = OrderService::new(store.clone(), store.clone(), store.clone(), clock, orders)?
            .with_cache(catalog.clone());
        Ok(Self {
            inner: Arc::new(Inner {
                orders,
                catalog,
                listing,
                store,
                queue,
                limiter: RateLimiter::new(cache.clone()),
                cache,
                config,
                metrics: Metrics::default(),
                probes,
            }),
        })
    }

    /// The settings.
    pub fn config(&self) -> &ApiConfig {
        &self.inner.config
    }
}
