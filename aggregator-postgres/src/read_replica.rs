//! [`ReplicaReads`]: catalog and order-list reads from a streaming replica while it
//! keeps up, from the primary otherwise.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use aggregator_core::domain::{Order, ProductId, Vendor, VendorSku, VendorStock};
use aggregator_core::traits::{CatalogReads, OrderListing, OrderQuery, Page};
use aggregator_core::{Error, Result};
use async_trait::async_trait;
use sqlx::PgPool;
use tokio::time::Instant;

use crate::catalog::reads;
use crate::config::PostgresConfig;
use crate::error::map;
use crate::orders::list_orders;
use crate::store::{connect_options, pool_options};

/// The most primary positions remembered (one per check).
const SAMPLES_KEPT: usize = 4096;

/// Where the read replica is and how stale its answers may be.
#[derive(Debug, Clone)]
pub struct ReadReplicaConfig {
    /// The replica's connection settings (its pool is as large as `max_connections`).
    pub connection: PostgresConfig,
    /// The most the replica may lag behind the primary and still answer reads.
    pub max_lag: Duration,
    /// How often the lag is measured.
    pub check_every: Duration,
}

impl ReadReplicaConfig {
    /// A replica at `url` answering while it lags at most 5 s, measured every 500 ms.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            connection: PostgresConfig::new(url),
            max_lag: Duration::from_secs(5),
            check_every: Duration::from_millis(500),
        }
    }
}

/// Whether reads go to the replica now, and why not.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplicaState {
    /// Not measured yet: reads go to the primary.
    Unchecked,
    /// Reads go to the replica; it was at most `lag` behind at the last check.
    Serving {
        /// How far behind it was, at most.
        lag: Duration,
    },
    /// Reads go to the primary: the replica is further behind than allowed, by at
    /// least `lag`.
    Lagging {
        /// How far behind it is, at least.
        lag: Duration,
    },
    /// Reads go to the primary: the replica (or the primary, to compare with) did not
    /// answer, or it is not a replica of ours.
    Down {
        /// Why.
        reason: String,
    },
}

impl ReplicaState {
    /// True when reads go to the replica.
    pub fn is_serving(&self) -> bool {
        matches!(self, Self::Serving { .. })
    }
}

impl fmt::Display for ReplicaState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unchecked => f.write_str("not measured yet; reads go to the primary"),
            Self::Serving { lag } => write!(f, "serving reads, lag at most {} ms", lag.as_millis()),
            Self::Lagging { lag } => write!(
                f,
                "lagging at least {} ms behind the primary; reads go to the primary",
                lag.as_millis()
            ),
            Self::Down { reason } => write!(f, "{reason}; reads go to the primary"),
        }
    }
}

/// Catalog reads (vendors, stock rows, products) and order lists from a PostgreSQL
/// streaming replica, as long as it lags at most `max_lag` behind the primary; from the
/// primary while it lags more, is down, or has not been measured yet. A read that fails
/// on the replica with a retryable error is answered by the primary, and the replica is
/// set aside until the next check finds it well.
///
/// Only reads that decide nothing belong here: placements, planning and status
/// changes read the primary (the store's own [`CatalogReads`]). A list answered here may
/// miss changes younger than the lag, never show one that did not commit.
///
/// The lag is measured as the age of the newest primary WAL position (sampled every
/// `check_every`) that the replica has replayed: an idle primary reads as no lag, and a
/// replica cut off from its primary reads as a growing one.
#[derive(Clone)]
pub struct ReplicaReads {
    primary: PgPool,
    replica: PgPool,
    watch: Arc<LagWatch>,
}

impl fmt::Debug for ReplicaReads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplicaReads")
            .field("state", &self.state())
            .finish()
    }
}

impl ReplicaReads {
    /// Reads from the replica `config` names, falling back on `primary` (the store's
    /// pool). Does not wait for the replica: it may be down at start. Measures the lag
    /// in the background for as long as this value (or a clone) lives.
    pub fn start(primary: PgPool, config: &ReadReplicaConfig) -> Result<Self> {
        if config.max_lag.is_zero() || config.check_every.is_zero() {
            return Err(Error::invalid(
                "readReplica",
                "the lag limit and the check interval must be above zero",
            ));
        }
        let replica = pool_options(&config.connection)
            .connect_lazy_with(connect_options(&config.connection)?);
        let watch = Arc::new(LagWatch {
            max_lag: config.max_lag,
            kept_for: config.max_lag + config.check_every * 4,
            state: Mutex::new(Measured {
                samples: VecDeque::new(),
                state: ReplicaState::Unchecked,
                checked_at: None,
            }),
            stale_after: config.check_every * 4,
        });
        let weak = Arc::downgrade(&watch);
        let (primary_pool, replica_pool) = (primary.clone(), replica.clone());
        let every = config.check_every;
        tokio::spawn(measure_forever(weak, primary_pool, replica_pool, every));
        Ok(Self {
            primary,
            replica,
            watch,
        })
    }

    /// Where reads go now, and why.
    pub fn state(&self) -> ReplicaState {
        self.watch.current()
    }

    /// Runs `read` on the replica while it serves (on the primary if it fails there
    /// retryably), on the primary otherwise.
    async fn read<T, F, Fut>(&self, read: F) -> Result<T>
    where
        F: Fn(PgPool) -> Fut + Send + Sync,
        Fut: Future<Output = Result<T>> + Send,
        T: Send,
    {
        if self.watch.current().is_serving() {
            match read(self.replica.clone()).await {
                Ok(answer) => {
                    metrics::counter!("aggregator_replica_reads_total", "answered_by" => "replica")
                        .increment(1);
                    return Ok(answer);
                }
                Err(error) if error.is_retryable() => {
                    tracing::warn!(%error, "read replica failed a read; the primary answers");
                    self.watch.set_aside(format!("a read failed: {error}"));
                }
                Err(error) => return Err(error),
            }
        }
        metrics::counter!("aggregator_replica_reads_total", "answered_by" => "primary")
            .increment(1);
        read(self.primary.clone()).await
    }
}

#[async_trait]
impl CatalogReads for ReplicaReads {
    async fn vendors(&self) -> Result<Vec<Vendor>> {
        self.read(|pool| async move { reads::vendors(&pool).await })
            .await
    }

    async fn stock_for_product(&self, product: &ProductId) -> Result<Vec<VendorStock>> {
        self.read(|pool| async move { reads::stock_for_product(&pool, product).await })
            .await
    }

    async fn stock_for_sku(&self, sku: &VendorSku) -> Result<Vec<VendorStock>> {
        self.read(|pool| async move { reads::stock_for_sku(&pool, sku).await })
            .await
    }

    async fn products(&self, offset: u64, limit: u32) -> Result<Page<ProductId>> {
        self.read(|pool| async move { reads::products(&pool, offset, limit).await })
            .await
    }
}

#[async_trait]
impl OrderListing for ReplicaReads {
    async fn orders(&self, query: &OrderQuery) -> Result<Page<Order>> {
        self.read(|pool| async move { list_orders(&pool, query).await })
            .await
    }
}

/// The last measurement, shared by the readers and the measuring task.
struct LagWatch {
    max_lag: Duration,
    /// How long primary positions are remembered.
    kept_for: Duration,
    /// A measurement older than this no longer counts (the measuring task is stuck).
    stale_after: Duration,
    state: Mutex<Measured>,
}

struct Measured {
    /// The primary's WAL position (bytes) at each check, oldest first.
    samples: VecDeque<(Instant, u64)>,
    state: ReplicaState,
    checked_at: Option<Instant>,
}

impl LagWatch {
    fn lock(&self) -> std::sync::MutexGuard<'_, Measured> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn current(&self) -> ReplicaState {
        let measured = self.lock();
        match measured.checked_at {
            Some(at) if at.elapsed() > self.stale_after && measured.state.is_serving() => {
                ReplicaState::Down {
                    reason: "the lag has not been measured for a while".into(),
                }
            }
            _ => measured.state.clone(),
        }
    }

    fn set_aside(&self, reason: String) {
        self.lock().state = ReplicaState::Down { reason };
    }

    /// Records the primary at `primary_lsn` and the replica replayed up to `replayed`.
    fn record(&self, now: Instant, primary_lsn: u64, replayed: u64) -> ReplicaState {
        let mut measured = self.lock();
        measured.samples.push_back((now, primary_lsn));
        while measured.samples.len() > SAMPLES_KEPT
            || measured
                .samples
                .front()
                .is_some_and(|(at, _)| now.duration_since(*at) > self.kept_for)
        {
            measured.samples.pop_front();
        }
        // The newest primary position the replica has replayed: it was current then.
        let caught_up_with = measured
            .samples
            .iter()
            .rev()
            .find(|(_, lsn)| *lsn <= replayed)
            .map(|(at, _)| *at);
        let state = match caught_up_with {
            Some(at) if now.duration_since(at) <= self.max_lag => ReplicaState::Serving {
                lag: now.duration_since(at),
            },
            Some(at) => ReplicaState::Lagging {
                lag: now.duration_since(at),
            },
            None => ReplicaState::Lagging {
                lag: measured
                    .samples
                    .front()
                    .map_or(Duration::ZERO, |(at, _)| now.duration_since(*at)),
            },
        };
        measured.state = state.clone();
        measured.checked_at = Some(now);
        state
    }

    fn record_failure(&self, now: Instant, reason: String) {
        let mut measured = self.lock();
        measured.state = ReplicaState::Down { reason };
        measured.checked_at = Some(now);
    }
}

/// Measures every `every` until the readers are gone.
async fn measure_forever(watch: Weak<LagWatch>, primary: PgPool, replica: PgPool, every: Duration) {
    let mut last: Option<ReplicaState> = None;
    loop {
        let Some(watch) = watch.upgrade() else {
            return;
        };
        let state = match tokio::time::timeout(
            every.max(Duration::from_secs(2)),
            positions(&primary, &replica),
        )
        .await
        {
            Ok(Ok((primary_lsn, replayed))) => watch.record(Instant::now(), primary_lsn, replayed),
            Ok(Err(reason)) => {
                watch.record_failure(Instant::now(), reason);
                watch.current()
            }
            Err(_) => {
                watch.record_failure(Instant::now(), "the lag check timed out".into());
                watch.current()
            }
        };
        if last.as_ref().map(ReplicaState::is_serving) != Some(state.is_serving()) {
            if state.is_serving() {
                tracing::info!(%state, "read replica serves reads");
            } else {
                tracing::warn!(%state, "read replica set aside");
            }
        }
        last = Some(state);
        drop(watch);
        tokio::time::sleep(every).await;
    }
}

/// The primary's current WAL position, then how far the replica has replayed.
async fn positions(primary: &PgPool, replica: &PgPool) -> std::result::Result<(u64, u64), String> {
    let primary_lsn: i64 =
        sqlx::query_scalar("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint")
            .fetch_one(primary)
            .await
            .map_err(|e| format!("the primary did not answer the lag check: {}", map(e)))?;
    let (in_recovery, replayed): (bool, Option<i64>) = sqlx::query_as(
        "SELECT pg_is_in_recovery(), (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint",
    )
    .fetch_one(replica)
    .await
    .map_err(|e| format!("the replica did not answer: {}", map(e)))?;
    if !in_recovery {
        return Err("the read replica is not a standby (promoted, or not a replica)".into());
    }
    let replayed = replayed.ok_or_else(|| "the replica has replayed nothing yet".to_owned())?;
    Ok((
        u64::try_from(primary_lsn).unwrap_or(0),
        u64::try_from(replayed).unwrap_or(0),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch() -> LagWatch {
        LagWatch {
            max_lag: Duration::from_secs(5),
            kept_for: Duration::from_secs(7),
            stale_after: Duration::from_secs(2),
            state: Mutex::new(Measured {
                samples: VecDeque::new(),
                state: ReplicaState::Unchecked,
                checked_at: None,
            }),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn lag_is_the_age_of_the_newest_primary_position_replayed() {
        let watch = watch();
        assert_eq!(watch.current(), ReplicaState::Unchecked);
        let start = Instant::now();
        // Caught up at once.
        assert!(watch.record(start, 100, 100).is_serving());
        // The primary moves on; the replica replays what it had a second ago.
        let later = start + Duration::from_secs(1);
        assert_eq!(
            watch.record(later, 200, 150),
            ReplicaState::Serving {
                lag: Duration::from_secs(1)
            }
        );
        // An idle primary: the same position, replayed, is no lag at all.
        let idle = later + Duration::from_secs(1);
        assert!(watch.record(idle, 200, 200).is_serving());
        assert_eq!(
            watch.record(idle + Duration::from_millis(500), 200, 200),
            ReplicaState::Serving {
                lag: Duration::ZERO
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_replica_stuck_behind_is_set_aside_once_past_the_limit() {
        let watch = watch();
        let start = Instant::now();
        assert!(watch.record(start, 100, 100).is_serving());
        for second in 1..=5 {
            let state = watch.record(start + Duration::from_secs(second), 100 + second, 100);
            assert!(state.is_serving(), "{second} s behind: {state}");
        }
        let state = watch.record(start + Duration::from_secs(6), 106, 100);
        assert_eq!(
            state,
            ReplicaState::Lagging {
                lag: Duration::from_secs(6)
            }
        );
        assert!(!watch.current().is_serving());
        // Past what is remembered the lag is at least the oldest position's age.
        let far = watch.record(start + Duration::from_secs(20), 120, 100);
        assert!(matches!(far, ReplicaState::Lagging { .. }), "{far}");
        // Caught up again: serving again.
        assert!(
            watch
                .record(start + Duration::from_secs(21), 121, 121)
                .is_serving()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_read_or_a_stale_measurement_sends_reads_to_the_primary() {
        let watch = watch();
        let start = Instant::now();
        assert!(watch.record(start, 1, 1).is_serving());
        watch.set_aside("a read failed".into());
        assert!(!watch.current().is_serving());
        assert!(watch.record(Instant::now(), 1, 1).is_serving());
        tokio::time::advance(Duration::from_secs(3)).await;
        assert!(
            !watch.current().is_serving(),
            "a measurement older than stale_after no longer counts"
        );
        watch.record_failure(Instant::now(), "the replica did not answer".into());
        assert_eq!(
            watch.current().to_string(),
            "the replica did not answer; reads go to the primary"
        );
    }
}
