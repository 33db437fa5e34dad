//! The running system: the API, order workers, outbox relay, sweeper, stock-sync
//! schedule and consumer, each a task watching one shutdown signal.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aggregator_core::error::{Error, Result};
use aggregator_core::service::{
    CachedCatalog, Catalog, OrderConfig, OrderProcessor, OutboxRelay, ShutdownSignal,
    ShutdownTrigger, StockSync, Sweeper, SyncConfig, SyncConsumer, WorkerConfig, run_order_worker,
    run_periodically, run_sync_schedule, shutdown_pair,
};
use aggregator_http::api::{ApiConfig, ApiState, check_bind, router};
use aggregator_http::register_vendors;
use tokio::task::JoinSet;

use crate::backends::Backends;
use crate::settings::Settings;

/// Which parts run in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    /// The HTTP API.
    pub api: bool,
    /// Order workers (as many as the settings say).
    pub worker: bool,
    /// The outbox relay (safe to run in several processes: claims are leased).
    pub relay: bool,
    /// The sweeper of overdue reservations and holds.
    pub sweeper: bool,
    /// The stock-sync schedule and the `stock_sync_queue` consumer.
    pub sync: bool,
}

impl Roles {
    /// Everything in one process.
    pub const ALL: Self = Self {
        api: true,
        worker: true,
        relay: true,
        sweeper: true,
        sync: true,
    };

    /// Nothing; switch on what is wanted.
    pub const NONE: Self = Self {
        api: false,
        worker: false,
        relay: false,
        sweeper: false,
        sync: false,
    };
}

/// How long cached availability may lag behind changes a process did not make.
const CACHE_TTL: Duration = Duration::from_secs(2);

/// A started system.
#[derive(Debug)]
pub struct RunningStack {
    /// Where the API listens, if it runs here.
    pub api_addr: Option<SocketAddr>,
    /// The backends it runs on.
    pub backends: Backends,
    trigger: ShutdownTrigger,
    tasks: JoinSet<(String, Result<()>)>,
    grace: Duration,
}

/// Starts `roles` on `backends` with `settings`; registers the configured vendors in
/// the store first. The API refuses to start beyond loopback without keys.
pub async fn start(settings: &Settings, backends: Backends, roles: Roles) -> Result<RunningStack> {
    let (trigger, signal) = shutdown_pair();
    let mut tasks = JoinSet::new();
    let directory = register_vendors(backends.store.as_ref(), &settings.vendors, |config| {
        config.request_timeout = settings.vendor_timeout;
        config.breaker.open_for = settings.vendor_breaker_open;
        config.breaker_wait = settings.vendor_breaker_wait;
    })
    .await?;
    let orders = order_config(settings)?;
    let catalog = Arc::new(CachedCatalog::new(
        Catalog::new(
            backends.store.clone(),
            backends.clock.clone(),
            orders.staleness,
        ),
        backends.store.clone(),
        backends.cache.clone(),
        CACHE_TTL,
    ));
    let mut api_addr = None;
    if roles.api {
        let banner = check_bind(settings.api_addr, &settings.api_keys)?;
        let state = ApiState::new(
            backends.clone(),
            orders.clone(),
            ApiConfig {
                keys: settings.api_keys.clone(),
                rate_limit: aggregator_core::traits::RateLimit {
                    max_requests: settings.rate_limit_per_sec,
                    window: Duration::from_secs(1),
                },
                ..ApiConfig::default()
            },
        )?;
        let listener = tokio::net::TcpListener::bind(settings.api_addr)
            .await
            .map_err(|e| {
                Error::invalid(
                    "apiAddr",
                    format!("cannot listen on {}: {e}", settings.api_addr),
                )
            })?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::invalid("apiAddr", e.to_string()))?;
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
        let processor = OrderProcessor::new(
            backends.store.clone(),
            backends.store.clone(),
            directory.clone(),
            backends.queue.clone(),
            backends.clock.clone(),
            orders.staleness,
        )
        .with_reroute_unavailable_after(span(settings.reroute_unavailable_after)?)?
        .with_cache(catalog.clone());
        let config = WorkerConfig {
            concurrency: settings.worker_concurrency,
            grace: settings.grace,
        };
        for n in 0..settings.workers {
            let processor = processor.clone();
            let queue = backends.queue.clone();
            let stop = signal.clone();
            tasks.spawn(async move {
                (
                    format!("worker {n}"),
                    run_order_worker(processor, queue, config, stop).await,
                )
            });
        }
    }
    if roles.relay {
        let relay = OutboxRelay::new(
            backends.store.clone(),
            backends.queue.clone(),
            backends.clock.clone(),
            200,
            // Short: rows a relay claimed and could not publish (the broker or the
            // database went away mid-batch) are claimed again this soon; a second relay
            // publishing the same row meanwhile only makes a duplicate, which consumers
            // take as such.
            time::Duration::seconds(5),
        )?;
        spawn_periodic(
            &mut tasks,
            "outbox relay",
            settings.relay_interval,
            signal.clone(),
            move || {
                let relay = relay.clone();
                async move { relay.run_once().await }
            },
        );
    }
    if roles.sweeper {
        let sweeper = Sweeper::new(backends.store.clone(), backends.clock.clone(), 500)?;
        spawn_periodic(
            &mut tasks,
            "sweeper",
            settings.sweep_interval,
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
        let sync = StockSync::new(
            backends.store.clone(),
            directory.clone(),
            backends.clock.clone(),
            SyncConfig {
                clock_tolerance: span(settings.clock_tolerance)?,
                confirmation_margin: span(settings.confirmation_margin)?,
                ..SyncConfig::default()
            },
        )?
        .with_cache(catalog.clone());
        let consumer = SyncConsumer::new(sync.clone());
        let queue = backends.queue.clone();
        let stop = signal.clone();
        tasks.spawn(async move {
            (
                "sync consumer".to_owned(),
                consumer.run(queue.as_ref(), 2, stop.wait()).await,
            )
        });
        let queue = backends.queue.clone();
        let stop = signal.clone();
        let interval = settings.sync_interval;
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
        backends,
        trigger,
        tasks,
        grace: settings.grace,
    })
}

/// The ordering rules the settings ask for.
pub fn order_config(settings: &Settings) -> Result<OrderConfig> {
    let config = OrderConfig {
        reservation_ttl: span(settings.reservation_ttl)?,
        max_hold_lifetime: span(settings.max_hold_lifetime)?,
        hold_limits: aggregator_core::traits::HoldLimits {
            max_active: settings.max_holds_per_customer,
            max_units: settings.max_held_units_per_customer,
        },
        ..OrderConfig::default()
    };
    config.validate()?;
    Ok(config)
}

/// A span of time as the core counts it.
fn span(duration: Duration) -> Result<time::Duration> {
    time::Duration::try_from(duration)
        .map_err(|e| Error::invalid("duration", format!("{duration:?}: {e}")))
}

fn spawn_periodic<F, Fut, T>(
    tasks: &mut JoinSet<(String, Result<()>)>,
    name: &'static str,
    interval: Duration,
    signal: ShutdownSignal,
    job: F,
) where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T>> + Send,
    T: std::fmt::Debug + Send,
{
    tasks.spawn(async move {
        (
            name.to_owned(),
            run_periodically(name, interval, signal, job).await,
        )
    });
}

impl RunningStack {
    /// Asks every part to stop, then waits for them: in-flight requests and messages
    /// finish within the grace period; whatever is left is abandoned (messages go back
    /// to the queue unacknowledged). Answers the first error a part ended with.
    pub async fn shutdown(mut self) -> Result<()> {
        self.trigger.trigger();
        let mut first_error = None;
        let all = async {
            while let Some(joined) = self.tasks.join_next().await {
                match joined {
                    Ok((name, Err(error))) => {
                        tracing::error!(part = %name, %error, "stopped with an error");
                        first_error.get_or_insert(error);
                    }
                    Ok((name, Ok(()))) => tracing::info!(part = %name, "stopped"),
                    Err(error) => tracing::error!(%error, "a part panicked"),
                }
            }
        };
        // The workers keep their own grace; this bound only guards against a part that
        // never returns.
        if tokio::time::timeout(self.grace + Duration::from_secs(5), all)
            .await
            .is_err()
        {
            tracing::warn!("some parts did not stop in time; abandoning them");
            self.tasks.abort_all();
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Waits until `stop` completes or a part stops by itself, then shuts everything
    /// down. A part that stopped by itself (with an error or not) makes this an error,
    /// so a supervisor sees the process fail.
    pub async fn run_until(mut self, stop: impl std::future::Future<Output = ()>) -> Result<()> {
        let early = tokio::select! {
            () = stop => None,
            Some(joined) = self.tasks.join_next() => Some(joined),
        };
        let stopped = self.shutdown().await;
        match early {
            None => stopped,
            Some(Ok((name, Err(error)))) => {
                tracing::error!(part = %name, %error, "a part failed; everything was stopped");
                Err(error)
            }
            Some(Ok((name, Ok(())))) => Err(Error::transient(name, "stopped by itself")),
            Some(Err(join)) => Err(Error::transient(
                "stack",
                format!("a part panicked: {join}"),
            )),
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn termination_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
