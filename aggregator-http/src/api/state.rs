//! What every handler shares: the services over the backends, settings and metrics.

use std::sync::Arc;

use aggregator_core::service::{
    CachedCatalog, Catalog, EventFollower, OrderService, RateLimiter, ShutdownSignal,
};
use aggregator_core::traits::{Cache, OrderQueue, StockStore};

use super::config::ApiConfig;
use crate::ops::{HealthProbes, SystemGauges};

/// The API's shared state: cheap to clone.
#[derive(Debug, Clone)]
pub struct ApiState {
    pub(crate) inner: Arc<Inner>,
    /// Fires when the server is asked to stop: long-lived answers (the event stream)
    /// end so the server can drain.
    pub(crate) stop: ShutdownSignal,
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
    pub(crate) gauges: SystemGauges,
    pub(crate) probes: HealthProbes,
    pub(crate) health: super::health_report::HealthMemo,
    /// The one reader of the order event log every event stream of this process follows.
    pub(crate) events: EventFollower,
    /// Open event streams per caller (see [`ApiConfig::max_streams_per_key`]).
    pub(crate) streams: super::stream_slots::OpenStreams,
    /// Placements in flight (see [`ApiConfig::max_orders_in_flight`]).
    pub(crate) admission: super::admission::Admission,
}

/// The services the API serves, built once by the process's composition root
/// (`order_aggregator::app::App`, so the API shares its cached catalog, group commit and
/// recent reads with the workers and the sync; `App::api_state` hands them over).
#[derive(Debug, Clone)]
pub struct ApiServices {
    /// Orders and holds.
    pub orders: OrderService,
    /// Availability through the cache.
    pub catalog: Arc<CachedCatalog>,
    /// Availability listings, straight from the store.
    pub listing: Catalog,
    /// The store, for health, metrics and the vendor list of operations.
    pub store: Arc<dyn StockStore>,
    /// Where sync requests are queued and dead letters inspected.
    pub queue: Arc<dyn OrderQueue>,
    /// Rate limits and idempotent answers.
    pub cache: Arc<dyn Cache>,
    /// Health checks of the queue and the cache.
    pub probes: HealthProbes,
    /// Where requests are counted and what `/metrics` reads (shared with the process's
    /// ops listener, if it has one).
    pub gauges: SystemGauges,
}

impl ApiState {
    /// The API over services built elsewhere.
    pub fn from_services(services: ApiServices, config: ApiConfig) -> Self {
        let ApiServices {
            orders,
            catalog,
            listing,
            store,
            queue,
            cache,
            probes,
            gauges,
        } = services;
        let log: Arc<dyn aggregator_core::traits::OrderEventLog> = store.clone();
        let events = EventFollower::with_defaults(log);
        Self {
            inner: Arc::new(Inner {
                orders,
                catalog,
                listing,
                store,
                queue,
                limiter: RateLimiter::new(cache.clone()),
                cache,
                admission: super::admission::Admission::new(
                    config.max_orders_in_flight,
                    config.admission_wait,
                ),
                config,
                gauges,
                probes,
                health: super::health_report::HealthMemo::default(),
                events,
                streams: super::stream_slots::OpenStreams::default(),
            }),
            stop: ShutdownSignal::never(),
        }
    }

    /// Ends the API's long-lived answers (the order event streams) when `stop` fires;
    /// pass the signal the server's graceful shutdown waits on, or it waits for every
    /// event stream's client to leave.
    pub fn with_shutdown(mut self, stop: ShutdownSignal) -> Self {
        self.stop = stop;
        self
    }

    /// The settings.
    pub fn config(&self) -> &ApiConfig {
        &self.inner.config
    }
}
