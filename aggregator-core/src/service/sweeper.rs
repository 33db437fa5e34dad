//! The sweeper step: expire orders and holds whose reservation ran out, and forget
//! order events past their retention.

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
}

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
        })
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
    /// then prunes old order events (see [`Sweeper::with_event_retention`]). Safe to run
    /// in several processes at once: each item expires exactly once.
    pub async fn run_once(&self) -> Result<ExpiredBatch> {
        let expired = self.expire_overdue().await?;
        let pruned = self.prune_events().await?;
        if pruned > 0 {
            tracing::debug!(pruned, "order events past their retention forgotten");
        }
        Ok(expired)
    }

    async fn expire_overdue(&self) -> Result<ExpiredBatch> {
        let now = self.clock.now();
        let mut total = ExpiredBatch::default();
        loop {
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
