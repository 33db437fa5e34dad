//! The consumer of `stock_sync_queue` and the timer that fills it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::domain::{QueueName, SyncRequest};
use crate::error::{Error, Result};
use crate::service::consumer::{ConsumerConfig, DeliveryHandler, Settled, run_consumer};
use crate::service::shutdown::ShutdownSignal;
use crate::service::sync::{StockSync, SyncReport};
use crate::traits::{Delivery, OrderQueue, RetryOutcome};

/// Takes sync requests off `stock_sync_queue` and runs them.
///
/// A failed sync (vendor unreachable, malformed feed, store unavailable) goes back
/// through the queue's growing delays and lands in the dead-letter queue after the last
/// attempt; the vendor's health records each failure, and its last good data keeps
/// serving until the staleness limit.
#[derive(Debug, Clone)]
pub struct SyncConsumer {
    sync: StockSync,
}

impl SyncConsumer {
    /// A consumer running syncs with `sync`.
    pub fn new(sync: StockSync) -> Self {
        Self { sync }
    }

    /// Runs one delivery and settles it (ack, retry or dead letter). An error means the
    /// delivery could not be settled; it is then handed back by the queue.
    pub async fn settle(&self, delivery: Delivery) -> Result<Settled<SyncReport>> {
        let request: SyncRequest = match delivery.message.decode() {
            Ok(request) => request,
            Err(error) => {
                let reason = error.to_string();
                delivery.dead_letter(&reason).await?;
                return Ok(Settled::DeadLettered { reason });
            }
        };
        match self.sync.sync_vendor(&request.vendor).await {
            Ok(report) => {
                delivery.ack().await?;
                Ok(Settled::Done(report))
            }
            Err(error @ Error::NotFound { .. }) => {
                let reason = error.to_string();
                delivery.dead_letter(&reason).await?;
                Ok(Settled::DeadLettered { reason })
            }
            Err(error) => {
                let reason = error.to_string();
                match delivery.retry(&reason).await? {
                    RetryOutcome::Scheduled { attempt, delay } => Ok(Settled::Retrying {
                        attempt,
                        delay,
                        reason,
                    }),
                    RetryOutcome::DeadLettered => {
                        tracing::error!(vendor = %request.vendor, %reason, "stock sync dead-lettered after its last attempt");
                        Ok(Settled::DeadLettered { reason })
                    }
                }
            }
        }
    }
    /// Consumes `stock_sync_queue`, `config.concurrency` syncs at once, until
    /// `shutdown`; syncs in flight then get `config.grace` to finish (see
    /// [`run_consumer`]).
    pub async fn run(
        self,
        queue: Arc<dyn OrderQueue>,
        config: ConsumerConfig,
        shutdown: ShutdownSignal,
    ) -> Result<()> {
        run_consumer(Arc::new(self), queue, config, shutdown).await
    }
}

#[async_trait]
impl DeliveryHandler for SyncConsumer {
    type Done = SyncReport;

    fn queue(&self) -> QueueName {
        QueueName::StockSync
    }

    async fn settle(&self, delivery: Delivery) -> Result<Settled<SyncReport>> {
        SyncConsumer::settle(self, delivery).await
    }

    fn report(&self, settled: &Result<Settled<SyncReport>>) {
        match settled {
            Ok(Settled::Done(report)) => tracing::info!(
                vendor = %report.vendor.id, pages = report.pages, applied = report.applied,
                "stock sync done"
            ),
            Ok(other) => tracing::warn!(?other, "stock sync did not complete"),
            Err(error) => tracing::warn!(%error, "stock sync delivery left unsettled"),
        }
    }
}

/// Every `interval` (first at once) queues one sync request per vendor, until `stop`
/// completes. A failed round is logged and the next one comes at its time.
pub async fn run_sync_schedule(
    sync: &StockSync,
    queue: &dyn OrderQueue,
    interval: Duration,
    stop: impl Future<Output = ()>,
) -> Result<()> {
    if interval.is_zero() {
        return Err(Error::invalid("syncInterval", "must be above zero"));
    }
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return Ok(()),
            _ = ticks.tick() => match sync.request_all(queue).await {
                Ok(count) => tracing::debug!(count, "stock sync requested"),
                Err(error) => tracing::warn!(%error, "could not queue stock sync requests"),
            },
        }
    }
}
