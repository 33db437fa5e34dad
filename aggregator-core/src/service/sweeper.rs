//! The sweeper step: expire orders and holds whose reservation ran out, queue again the
//! cancellations at vendors that have waited too long, and forget order events past
//! their retention.

use std::sync::Arc;

use time::Duration;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::traits::{ExpiredBatch, OrderEventLog, OrderStore};

/// Order events pruned per store call.
const PRUNE_BATCH: u32 = 10_000;

/// Expires overdue reservations in batches.
#[derive(Debug, Clone)]
pub struct Sweeper {
    store: Arc<dyn OrderStore>,
    clock: Arc<dyn Clock>,
    batch_size: u32,
    event_log: Option<(Arc<dyn OrderEventLog>, Duration)>,
    requeue_cancellations_after: Duration,
}

/// How long a pending cancellation waits after it was last queued before the sweeper
/// queues it again, unless set otherwise: longer than a message's whole retry policy
/// (about two and a half minutes by default), after which the worker queues it again
/// itself.
pub const DEFAULT_CANCELLATION_REQUEUE_AFTER: Duration = Duration::minutes(10);

impl Sweeper {
    /// A sweeper over `store` expiring at most `batch_size` items per store call.
    pub fn new(store: Arc<dyn OrderStore>, clock: Arc<dyn Clock>, batch_size: u32) -> Result<Self> {
        if batch_size == 0 {
            return Err(Error::invalid("batchSize", "must be at least 1"));
        }
        Ok(Self {
            store,
            clock,
            batch_size,
            event_log: None,
            requeue_cancellations_after: DEFAULT_CANCELLATION_REQUEUE_AFTER,
        })
    }

    /// Queues again, on every run, each cancellation at a vendor still pending `after`
    /// its last queueing (10 minutes by default), so one whose message died in a
    /// dead-letter queue is never abandoned. Refuses a duration that is not positive.
    pub fn with_cancellation_requeue_after(mut self, after: Duration) -> Result<Self> {
        if !after.is_positive() {
            return Err(Error::invalid(
                "cancellationRequeueAfter",
                "must be positive",
            ));
        }
        self.requeue_cancellations_after = after;
        Ok(self)
    }

    /// Queues again every cancellation pending past its requeue time; answers how many.
    pub async fn requeue_cancellations(&self) -> Result<u64> {
        let now = self.clock.now();
        let before = now - self.requeue_cancellations_after;
        let mut requeued = 0_u64;
        loop {
            let batch = self
                .store
                .requeue_cancellations(before, now, self.batch_size)
                .await?;
            requeued += u64::from(batch);
            if batch < self.batch_size {
                if requeued > 0 {
                    tracing::warn!(
                        requeued,
                        "cancellations at vendors pending too long; queued again"
                    );
                    super::telemetry::cancellations_requeued(requeued);
                }
                return Ok(requeued);
            }
        }
    }

    /// Also forgets, on every run, the order events of `log` older than `retention`
    /// (clients resuming from an older position are told to re-read state). Refuses a
    /// retention that is not positive.
    pub fn with_event_retention(
        mut self,
        log: Arc<dyn OrderEventLog>,
        retention: Duration,
    ) -> Result<Self> {
        if !retention.is_positive() {
            return Err(Error::invalid("eventRetention", "must be positive"));
        }
        self.event_log = Some((log, retention));
        Ok(self)
    }

    /// Forgets the order events past their retention; answers how many.
    pub async fn prune_events(&self) -> Result<u64> {
        let Some((log, retention)) = &self.event_log else {
            return Ok(0);
        };
        let before = self.clock.now() - *retention;
        let mut pruned = 0;
        loop {
            let batch = log.prune_order_events(before, PRUNE_BATCH).await?;
            pruned += batch;
            if batch < u64::from(PRUNE_BATCH) {
                return Ok(pruned);
            }
        }
    }

    /// Expires everything overdue now, batch after batch, and says what it expired;
    /// then queues again the cancellations pending too long (see
    /// [`Sweeper::with_cancellation_requeue_after`]) and prunes old order events (see [`Sweeper::with_event_retention`]). Safe to run
    /// in several processes at once: each item expires exactly once.
    pub async fn run_once(&self) -> Result<ExpiredBatch> {
        let expired = self.expire_overdue().await?;
        self.requeue_cancellations().await?;
        let pruned = self.prune_events().await?;
        if pruned > 0 {
            tracing::debug!(pruned, "order events past their retention forgotten");
        }
        Ok(expired)
    }

    async fn expire_overdue(&self) -> Result<ExpiredBatch> {
        let mut total = ExpiredBatch::default();
        loop {
            // Read the clock for every batch: an expiry's time is when its vendor keys
            // died, and a cancellation at a vendor that never saw a key waits from it
            // (a long sweep stamped with its first moment would start that wait early).
            let now = self.clock.now();
            let batch = self.store.expire_overdue(now, self.batch_size).await?;
            let full = batch.len() >= self.batch_size as usize;
            let (batch_orders, batch_holds) = (batch.orders.len(), batch.holds.len());
            total.orders.extend(batch.orders);
            total.holds.extend(batch.holds);
            super::telemetry::expired(batch_orders, batch_holds);
            if !full {
                return Ok(total);
            }
        }
    }
}
