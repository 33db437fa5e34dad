//! [`App`]: the one composition root. Every binary, the `full_stack` example and the
//! end-to-end tests build the system here, from [`Settings`], so a setting reaches the
//! part it is for in exactly one place.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aggregator_core::error::{Error, Result};
use aggregator_core::service::{
    CachedCatalog, Catalog, CommitFeed, GroupCommit, OrderProcessor, OrderService, OutboxRelay,
    StockSync, Sweeper, SyncConsumer, WebhookDeliverer, WebhookDispatcher, register_vendors,
    run_order_worker, run_sync_schedule, shutdown_pair,
};
use aggregator_core::traits::{CatalogReads, OrderListing, StoreRoles, VendorDirectory};
use aggregator_http::api::{ApiConfig, ApiServices, ApiState, check_bind, router};
use aggregator_http::ops::{OpsState, SystemGauges, Telemetry, ops_router};
use aggregator_http::vendor_clients_sharing;
use aggregator_http::webhooks::HttpWebhookSender;
use tokio::task::JoinSet;

use crate::backends::{self, Backends};
use crate::settings::Settings;
use crate::settings::span;
use crate::stack::{Roles, RunningStack, spawn_periodic};

/// The system built from settings: its backends, the vendors registered in the store,
/// and every service wired to them once (one cached catalog per process, shared by the
/// API, the workers and the sync).
#[derive(Debug, Clone)]
pub struct App {
    settings: Settings,
    backends: Backends,
    vendors: VendorDirectory,
    catalog: Arc<CachedCatalog>,
    listing: Catalog,
    orders: OrderService,
    sync: StockSync,
    committed: Arc<CommitFeed>,
    gauges: SystemGauges,
}

impl App {
    /// Connects the backends the settings name (in-memory ones for the rest), then
    /// builds the system on them.
    pub async fn build(settings: Settings) -> Result<Self> {
        let backends = backends::connect(&settings).await?;
        Self::on(settings, backends).await
    }

    /// Builds the system on backends the caller connected (tests, embedders):
    /// registers the configured vendors in the store and wires every service.
    pub async fn on(settings: Settings, mut backends: Backends) -> Result<Self> {
        // Every placement and status change of this process goes through one group
        // commit, which takes the store's place for that role alone; every other role
        // is the store's own.
        let committed = Arc::new(CommitFeed::default());
        let roles = StoreRoles::of(backends.store.clone());
        let batched = GroupCommit::new(roles.commits.clone(), settings.orders.group_commit())?
            .with_commit_feed(committed.clone());
        backends.store = Arc::new(StoreRoles {
            commits: Arc::new(batched),
            ..roles
        });
        // Each vendor's budget is shared by every process through the cache.
        let clients = vendor_clients_sharing(
            &settings.vendor.vendors,
            Some(backends.cache.clone()),
            |config| settings.vendor.tune(config),
        )?;
        let vendors = register_vendors(backends.store.as_ref(), clients).await?;
        let orders_config = settings.orders.config()?;
        // Reads that decide nothing may come from a read replica; planning and
        // placements read the store (the primary).
        let (catalog_reads, order_listing): (Arc<dyn CatalogReads>, Arc<dyn OrderListing>) =
            match &backends.replica {
                Some(replica) => (Arc::new(replica.clone()), Arc::new(replica.clone())),
                None => (backends.store.clone(), backends.store.clone()),
            };
        let listing = Catalog::new(
            catalog_reads.clone(),
            backends.clock.clone(),
            orders_config.staleness,
        );
        let catalog = Arc::new(CachedCatalog::new(
            listing.clone(),
            catalog_reads,
            backends.cache.clone(),
            settings.cache.cache_ttl,
        ));
        let orders = OrderService::new(
            backends.store.clone(),
            backends.store.clone(),
            backends.store.clone(),
            backends.clock.clone(),
            orders_config,
        )?
        .with_cache(catalog.clone())
        .with_listing(order_listing)
        .with_recent_reads(settings.orders.plan_reads_ttl);
        let sync = StockSync::new(
            backends.store.clone(),
            vendors.clone(),
            backends.clock.clone(),
            settings.sync.config()?,
        )?
        .with_cache(catalog.clone());
        let gauges = SystemGauges::new(
            Telemetry::new(),
            backends.store.clone(),
            backends.queue.clone(),
            vendors.clone(),
            backends.clock.clone(),
            Some(catalog.clone()),
        );
        Ok(Self {
            gauges,
            settings,
            backends,
            vendors,
            catalog,
            listing,
            orders,
            sync,
            committed,
        })
    }

    /// The settings it was built from.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The backends it runs on.
    pub fn backends(&self) -> &Backends {
        &self.backends
    }

    /// The registered vendors' clients.
    pub fn vendors(&self) -> &VendorDirectory {
        &self.vendors
    }

    /// Orders and holds.
    pub fn orders(&self) -> &OrderService {
        &self.orders
    }

    /// Availability through the cache.
    pub fn catalog(&self) -> &Arc<CachedCatalog> {
        &self.catalog
    }

    /// Availability straight from the store.
    pub fn listing(&self) -> &Catalog {
        &self.listing
    }

    /// The stock sync of the registered vendors.
    pub fn sync(&self) -> &StockSync {
        &self.sync
    }

    /// The worker's processing step.
    pub fn processor(&self) -> Result<OrderProcessor> {
        Ok(OrderProcessor::new(
            self.backends.store.clone(),
            self.backends.store.clone(),
            self.vendors.clone(),
            self.backends.queue.clone(),
            self.backends.clock.clone(),
            self.orders.config().staleness,
        )
        .with_reroute_unavailable_after(span(self.settings.vendor.reroute_unavailable_after)?)?
        .with_placement_timeout(span(self.settings.vendor.placement_timeout)?)?
        .with_clock_tolerance(span(self.settings.sync.clock_tolerance)?)?
        .with_cache(self.catalog.clone()))
    }

    /// The outbox relay.
    pub fn relay(&self) -> Result<OutboxRelay> {
        OutboxRelay::new(
            self.backends.store.clone(),
            self.backends.queue.clone(),
            self.backends.clock.clone(),
            self.settings.worker.relay_batch,
            span(self.settings.worker.relay_lease)?,
        )
    }

    /// The sweeper of overdue reservations and holds.
    pub fn sweeper(&self) -> Result<Sweeper> {
        Sweeper::new(
            self.backends.store.clone(),
            self.backends.clock.clone(),
            self.settings.worker.sweep_batch,
        )?
        .with_cancellation_requeue_after(span(self.settings.worker.cancellation_requeue_after)?)?
        .with_event_retention(
            self.backends.store.clone(),
            span(self.settings.worker.event_retention)?,
        )
    }

    /// This process's figures: what `/metrics` of the API and of the ops listener
    /// render.
    pub fn gauges(&self) -> &SystemGauges {
        &self.gauges
    }

    /// The HTTP API's state over this system's services, configured by the settings.
    pub fn api_state(&self) -> ApiState {
        self.api_state_with(
            self.settings
                .api
                .config(self.settings.webhooks.webhook_allow_private),
        )
    }

    /// The HTTP API's state over this system's services with `config`: for tests,
    /// benchmarks and embedders that want limits the settings do not name (body size,
    /// request timeout, page sizes).
    pub fn api_state_with(&self, config: ApiConfig) -> ApiState {
        ApiState::from_services(
            ApiServices {
                orders: self.orders.clone(),
                catalog: self.catalog.clone(),
                listing: self.listing.clone(),
                store: self.backends.store.clone(),
                queue: self.backends.queue.clone(),
                cache: self.backends.cache.clone(),
                probes: self.backends.probes.clone(),
                gauges: self.gauges.clone(),
            },
            config,
        )
    }

    /// Syncs every registered vendor once, now; answers each vendor's outcome.
    pub async fn sync_all_once(&self) -> Vec<(String, Result<usize>)> {
        let mut outcomes = Vec::new();
        for vendor in self.vendors.ids() {
            let outcome = self.sync.sync_vendor(vendor).await.map(|r| r.applied);
            outcomes.push((vendor.to_string(), outcome));
        }
        outcomes
    }

    /// Starts `roles`, each a task watching one shutdown signal. The API refuses to
    /// start beyond loopback without keys.
    pub async fn start(self, roles: Roles) -> Result<RunningStack> {
        let settings = &self.settings;
        let (trigger, signal) = shutdown_pair();
        let mut tasks = JoinSet::new();
        let mut api_addr: Option<SocketAddr> = None;
        let mut ops_addr: Option<SocketAddr> = None;
        if let Some(addr) = settings.ops.ops_addr {
            let listener = listen("opsAddr", addr).await?;
            let addr = local_addr("opsAddr", &listener)?;
            tracing::info!(%addr, "ops listener (/metrics, /health/live, /health/ready)");
            ops_addr = Some(addr);
            let router = ops_router(OpsState {
                gauges: self.gauges.clone(),
                probes: self.backends.probes.clone(),
            });
            let stop = signal.clone();
            tasks.spawn(async move {
                let served = axum::serve(listener, router)
                    .with_graceful_shutdown(stop.wait())
                    .await
                    .map_err(|e| Error::transient("ops listener", e.to_string()));
                ("ops listener".to_owned(), served)
            });
        }
        if roles.api {
            let banner = check_bind(settings.api.api_addr, &settings.api.api_keys)?;
            let state = self.api_state().with_shutdown(signal.clone());
            let listener = listen("apiAddr", settings.api.api_addr).await?;
            let addr = local_addr("apiAddr", &listener)?;
            tracing::info!(%addr, "{banner}");
            api_addr = Some(addr);
            let stop = signal.clone();
            tasks.spawn(async move {
                let served = axum::serve(
                    listener,
                    router(state).into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(stop.wait())
                .await
                .map_err(|e| Error::transient("api", e.to_string()));
                ("api".to_owned(), served)
            });
        }
        if roles.worker {
            let processor = self.processor()?;
            let config = settings.worker.consumer();
            for n in 0..settings.worker.workers {
                let processor = processor.clone();
                let queue = self.backends.queue.clone();
                let stop = signal.clone();
                tasks.spawn(async move {
                    (
                        format!("worker {n}"),
                        run_order_worker(processor, queue, config, stop).await,
                    )
                });
            }
            let deliverer = WebhookDeliverer::new(
                self.backends.store.clone(),
                Arc::new(HttpWebhookSender::new(settings.webhooks.sender())),
                settings.webhooks.webhook_disable_after,
            )?;
            let queue = self.backends.queue.clone();
            let stop = signal.clone();
            let config = settings.webhooks.consumer(settings.worker.grace);
            tasks.spawn(async move {
                (
                    "webhook deliverer".to_owned(),
                    deliverer.run(queue, config, stop).await,
                )
            });
        }
        if roles.relay {
            let relay = self.relay()?;
            let interval = settings.worker.relay_interval;
            let feed = self.committed.clone();
            let stop = signal.clone();
            tasks.spawn(async move {
                (
                    "outbox relay".to_owned(),
                    relay.run(interval, feed, stop).await,
                )
            });
            let dispatcher = WebhookDispatcher::new(
                self.backends.store.clone(),
                self.backends.clock.clone(),
                WEBHOOK_DISPATCH_BATCH,
            )?;
            let stop = signal.clone();
            tasks.spawn(async move {
                (
                    "webhook dispatcher".to_owned(),
                    dispatcher
                        .run(interval.min(Duration::from_millis(250)), stop)
                        .await,
                )
            });
        }
        if roles.sweeper {
            let sweeper = self.sweeper()?;
            spawn_periodic(
                &mut tasks,
                "sweeper",
                settings.worker.sweep_interval,
                signal.clone(),
                move || {
                    let sweeper = sweeper.clone();
                    async move {
                        sweeper
                            .run_once()
                            .await
                            .map(|batch| batch.orders.len() + batch.holds.len())
                    }
                },
            );
        }
        if roles.sync {
            let consumer = SyncConsumer::new(self.sync.clone());
            let queue = self.backends.queue.clone();
            let stop = signal.clone();
            let config = settings.sync.consumer(settings.worker.grace);
            tasks.spawn(async move {
                (
                    "sync consumer".to_owned(),
                    consumer.run(queue, config, stop).await,
                )
            });
            let sync = self.sync.clone();
            let queue = self.backends.queue.clone();
            let stop = signal.clone();
            let interval = settings.sync.sync_interval;
            tasks.spawn(async move {
                (
                    "sync schedule".to_owned(),
                    run_sync_schedule(&sync, queue.as_ref(), interval, stop.wait()).await,
                )
            });
        }
        tracing::info!(?roles, "started");
        Ok(RunningStack {
            api_addr,
            ops_addr,
            grace: settings.worker.grace,
            backends: self.backends,
            trigger,
            tasks,
        })
    }
}

/// Order events the webhook dispatcher reads per round.
const WEBHOOK_DISPATCH_BATCH: u32 = 1_000;

/// Listens on `addr` for the setting `field`.
async fn listen(field: &str, addr: SocketAddr) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::invalid(field, format!("cannot listen on {addr}: {e}")))
}

/// Where `listener` (for the setting `field`) listens.
fn local_addr(field: &str, listener: &tokio::net::TcpListener) -> Result<SocketAddr> {
    listener
        .local_addr()
        .map_err(|e| Error::invalid(field, e.to_string()))
}
