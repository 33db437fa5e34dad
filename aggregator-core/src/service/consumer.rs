//! One runtime for every queue consumer (order messages, stock sync requests, webhook
//! deliveries): many deliveries at once, one shutdown signal, one grace period.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::task::JoinSet;

use crate::domain::QueueName;
use crate::error::{Error, Result};
use crate::service::shutdown::ShutdownSignal;
use crate::traits::{Delivery, OrderQueue};

/// What became of one delivery, for every consumer; `D` is what a delivery that was
/// handled came to (the order worker's [`crate::service::ProcessOutcome`], a sync's
/// [`crate::service::SyncReport`], a webhook's [`crate::service::WebhookOutcome`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled<D> {
    /// Handled and acknowledged.
    Done(D),
    /// Failed for a reason that may pass; it comes back as attempt `attempt` after
    /// `delay`.
    Retrying {
        /// The coming attempt.
        attempt: u32,
        /// How long until then.
        delay: Duration,
        /// Why this attempt failed.
        reason: String,
    },
    /// Out of attempts, but work that must not stop (a cancellation at a vendor) was
    /// queued again as a fresh message; this delivery was acknowledged.
    Requeued {
        /// Why the last attempt failed.
        reason: String,
    },
    /// In the queue's dead-letter queue: malformed, failing for a reason that will not
    /// pass, or out of attempts.
    DeadLettered {
        /// Why.
        reason: String,
    },
}

/// What a consumer does with one delivery of its queue.
#[async_trait]
pub trait DeliveryHandler: Send + Sync + 'static {
    /// What a handled delivery came to.
    type Done: Send + 'static;

    /// The queue this handler consumes.
    fn queue(&self) -> QueueName;

    /// Handles `delivery` and settles it: acknowledged, retried through the queue's
    /// delays, or dead-lettered. An error means it could not be settled; the queue
    /// hands it back.
    async fn settle(&self, delivery: Delivery) -> Result<Settled<Self::Done>>;

    /// Writes the log line that says what became of one delivery.
    fn report(&self, settled: &Result<Settled<Self::Done>>);
}

/// How a consumer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// Deliveries handled at once (also the queue's prefetch); at least 1.
    pub concurrency: u16,
    /// How long in-flight deliveries may take to finish after shutdown is asked for;
    /// the ones still running then are handed back unsettled, for redelivery.
    pub grace: Duration,
}

impl Default for ConsumerConfig {
    /// 16 at once, 10 s of grace.
    fn default() -> Self {
        Self {
            concurrency: 16,
            grace: Duration::from_secs(10),
        }
    }
}

/// How long a consumer waits after its queue gave no delivery (the broker is away)
/// before it asks again.
const NO_DELIVERY_PAUSE: Duration = Duration::from_millis(500);

/// Consumes `handler`'s queue with `config.concurrency` deliveries at once until
/// `shutdown`, then lets the ones in flight finish within `config.grace`; those still
/// running after it are dropped unsettled (the queue hands them out again). A zero
/// concurrency is refused.
pub async fn run_consumer<H: DeliveryHandler>(
    handler: Arc<H>,
    queue: Arc<dyn OrderQueue>,
    config: ConsumerConfig,
    shutdown: ShutdownSignal,
) -> Result<()> {
    if config.concurrency == 0 {
        return Err(Error::invalid("concurrency", "must be at least 1"));
    }
    let name = handler.queue().as_str();
    let mut subscription = queue.subscribe(handler.queue(), config.concurrency).await?;
    let mut in_flight = JoinSet::new();
    let stop = shutdown.wait();
    tokio::pin!(stop);
    loop {
        // The subscription's prefetch bounds how many deliveries are out at once.
        while in_flight.try_join_next().is_some() {}
        let delivery = tokio::select! {
            () = &mut stop => break,
            next = subscription.next() => next,
        };
        match delivery {
            Ok(delivery) => {
                let handler = Arc::clone(&handler);
                in_flight.spawn(async move {
                    let settled = handler.settle(delivery).await;
                    handler.report(&settled);
                });
            }
            Err(error) => {
                tracing::warn!(queue = name, %error, "no delivery; trying again");
                tokio::time::sleep(NO_DELIVERY_PAUSE).await;
            }
        }
    }
    while in_flight.try_join_next().is_some() {}
    tracing::info!(
        queue = name,
        in_flight = in_flight.len(),
        "consumer stopping; finishing in-flight deliveries"
    );
    let finished = tokio::time::timeout(config.grace, async {
        while in_flight.join_next().await.is_some() {}
    })
    .await;
    if finished.is_err() {
        tracing::warn!(
            queue = name,
            left = in_flight.len(),
            "grace period over; unfinished deliveries go back to the queue"
        );
        in_flight.abort_all();
        while in_flight.join_next().await.is_some() {}
    }
    drop(subscription);
    Ok(())
}
