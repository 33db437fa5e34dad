//! The four backends chosen by the settings: real services where a URL is set, in-memory
//! ones otherwise.

use std::sync::Arc;

use aggregator_core::clock::Clock;
use aggregator_core::clock::SystemClock;
use aggregator_core::error::Result;
use aggregator_core::memory::{InMemoryCache, InMemoryOrderQueue, InMemoryStockStore};
use aggregator_core::traits::{Cache, OrderQueue, StockStore};
use aggregator_http::api::{HealthProbes, Probe, ReplicaProbe};
use aggregator_postgres::{PostgresConfig, PostgresStockStore, ReplicaReads};
use aggregator_rabbitmq::RabbitQueue;
use aggregator_redis::RedisCache;

use crate::settings::Settings;

/// The backends one process runs on, with health checks for the API.
#[derive(Debug, Clone)]
pub struct Backends {
    /// Where vendors, stock, orders, holds and the outbox live (every store role).
    pub store: Arc<dyn StockStore>,
    /// Where order and sync messages travel.
    pub queue: Arc<dyn OrderQueue>,
    /// Cached availability, rate limits and idempotent answers.
    pub cache: Arc<dyn Cache>,
    /// Our clock.
    pub clock: Arc<dyn Clock>,
    /// Health checks of the queue and the cache (and the read replica's state).
    pub probes: HealthProbes,
    /// Where catalog and order-list reads go when not to `store`: a read replica.
    pub replica: Option<ReplicaReads>,
}

impl Backends {
    /// In-memory backends: everything in this process, lost at exit.
    pub fn in_memory(settings: &Settings) -> Self {
        Self {
            store: Arc::new(InMemoryStockStore::new()),
            queue: Arc::new(InMemoryOrderQueue::new(settings.queue.retry.clone())),
            cache: Arc::new(InMemoryCache::new()),
            clock: Arc::new(SystemClock),
            probes: HealthProbes::default(),
            replica: None,
        }
    }
}

/// Connects what the settings name (PostgreSQL migrated at once) and uses in-memory
/// backends for the rest, and logs which is which. Fails if a named service cannot be
/// reached.
pub async fn connect(settings: &Settings) -> Result<Backends> {
    let mut replica = None;
    let (store, store_kind): (Arc<dyn StockStore>, _) = match &settings.store.database_url {
        Some(url) => {
            let store =
                PostgresStockStore::connect(&PostgresConfig::new(url.expose().to_owned())).await?;
            store.migrate().await?;
            if let Some(config) = settings.store.replica() {
                replica = Some(ReplicaReads::start(store.pool().clone(), &config)?);
            }
            (Arc::new(store), "postgres")
        }
        None if settings.store.database_read_url.is_some() => {
            return Err(aggregator_core::Error::invalid(
                "databaseReadUrl",
                "a read replica needs DATABASE_URL (its primary) too",
            ));
        }
        None => (Arc::new(InMemoryStockStore::new()), "memory"),
    };
    let up: Probe = Arc::new(|| Box::pin(async { Ok(()) }));
    let (queue, queue_probe, queue_kind): (Arc<dyn OrderQueue>, Probe, _) =
        match &settings.queue.amqp_url {
            Some(url) => {
                let queue = RabbitQueue::connect(settings.queue.rabbit(url)).await?;
                let checked = queue.clone();
                let probe: Probe = Arc::new(move || {
                    let queue = checked.clone();
                    Box::pin(async move {
                        if queue.is_connected().await {
                            Ok(())
                        } else {
                            Err(aggregator_core::Error::transient(
                                "rabbitmq",
                                "not connected",
                            ))
                        }
                    })
                });
                (Arc::new(queue), probe, "rabbitmq")
            }
            None => (
                Arc::new(InMemoryOrderQueue::new(settings.queue.retry.clone())),
                up.clone(),
                "memory",
            ),
        };
    let (cache, cache_probe, cache_kind): (Arc<dyn Cache>, Probe, _) =
        match &settings.cache.redis_url {
            Some(url) => {
                let cache = Arc::new(RedisCache::new(settings.cache.redis(url))?);
                let checked = cache.clone();
                let probe: Probe = Arc::new(move || {
                    let cache = checked.clone();
                    Box::pin(async move { cache.ping().await })
                });
                (cache, probe, "redis")
            }
            None => (Arc::new(InMemoryCache::new()), up, "memory"),
        };
    let replica_probe = replica.clone().map(|reads: ReplicaReads| -> ReplicaProbe {
        Arc::new(move || {
            let state = reads.state();
            if state.is_serving() {
                Ok(state.to_string())
            } else {
                Err(state.to_string())
            }
        })
    });
    tracing::info!(
        store = store_kind,
        read_replica = replica.is_some(),
        queue = queue_kind,
        cache = cache_kind,
        "backends connected"
    );
    Ok(Backends {
        store,
        queue,
        cache,
        clock: Arc::new(SystemClock),
        probes: HealthProbes {
            queue: queue_probe,
            cache: cache_probe,
            replica: replica_probe,
        },
        replica,
    })
}
