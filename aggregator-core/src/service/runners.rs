//! The order worker (a consumer of `order_queue`), periodic jobs, and the shutdown
//! signal every long-running loop watches.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::domain::{OrderMessage, QueueName};
use crate::error::{Error, Result};
use crate::service::consumer::{ConsumerConfig, DeliveryHandler, Settled, run_consumer};
use crate::service::processor::{OrderProcessor, ProcessOutcome};
use crate::service::shutdown::ShutdownSignal;
use crate::service::telemetry::{self, WorkerOutcome};
use crate::traits::{Delivery, OrderQueue, RetryOutcome};

/// How an order worker runs: messages handled at once (also the queue prefetch) and
/// the grace period in-flight messages get after shutdown is asked for.
pub type WorkerConfig = ConsumerConfig;

impl Settled<ProcessOutcome> {
    /// The outcome under which the order worker counts the delivery.
    pub fn outcome(&self) -> WorkerOutcome {
        match self {
            Self::Done(outcome) => kind(outcome),
            Self::Retrying { .. } => WorkerOutcome::Retrying,
            Self::Requeued { .. } => WorkerOutcome::Requeued,
            Self::DeadLettered { .. } => WorkerOutcome::DeadLettered,
        }
    }
}

/// How long a delivery whose give-up failed waits before it is handed back, so that a
/// store outage does not turn into a hot redelivery loop.
const GIVE_UP_FAILED_PAUSE: Duration = Duration::from_secs(1);

fn kind(outcome: &ProcessOutcome) -> WorkerOutcome {
    match outcome {
        ProcessOutcome::Confirmed(_) => WorkerOutcome::Confirmed,
        ProcessOutcome::Failed(_) => WorkerOutcome::Failed,
        ProcessOutcome::AlreadySettled(_) => WorkerOutcome::AlreadySettled,
        ProcessOutcome::CancelledAtVendor => WorkerOutcome::CancelledAtVendor,
        ProcessOutcome::Batch(_) => WorkerOutcome::Batch,
    }
}

fn describe(outcome: &ProcessOutcome) -> String {
    match outcome {
        ProcessOutcome::Confirmed(order) => format!("order {} confirmed", order.id),
        ProcessOutcome::Failed(order) => format!("order {} failed", order.id),
        ProcessOutcome::AlreadySettled(status) => format!("already {}", status.as_str()),
        ProcessOutcome::CancelledAtVendor => "cancelled at the vendor".to_owned(),
        ProcessOutcome::Batch(batch) => format!(
            "batch of {}: {} confirmed, {} failed, {} already settled, {} went on alone",
            batch.orders(),
            batch.confirmed.len(),
            batch.failed.len(),
            batch.already_settled.len(),
            batch.went_alone.len()
        ),
    }
}

/// Handles one `order_queue` delivery with `processor` and settles it: ack when done;
/// retry a retryable failure; on the last attempt, or for a failure that will not pass,
/// give the message up first (the order fails with its units released, a cancellation
/// is queued again) and only then dead-letter it. A `ProcessOrder` handed out for the
/// last time before the broker's delivery limit (every consumer before died holding
/// it) is given up at once, without handling it. An error means the delivery could not
/// be settled (the give-up failed, or the queue did) and will be redelivered. Every
/// delivery is counted under its outcome ([`telemetry::WORKER_MESSAGES`]).
pub async fn settle_order_delivery(
    processor: &OrderProcessor,
    delivery: Delivery,
) -> Result<Settled<ProcessOutcome>> {
    let settled = settle(processor, delivery).await;
    match &settled {
        Ok(Settled::Done(ProcessOutcome::Batch(batch))) => {
            telemetry::worker_settled(WorkerOutcome::Batch);
            telemetry::worker_settled_orders(WorkerOutcome::Confirmed, batch.confirmed.len());
            telemetry::worker_settled_orders(WorkerOutcome::Failed, batch.failed.len());
            telemetry::worker_settled_orders(
                WorkerOutcome::AlreadySettled,
                batch.already_settled.len(),
            );
            telemetry::worker_settled_orders(WorkerOutcome::WentAlone, batch.went_alone.len());
        }
        other => telemetry::worker_settled(
            other
                .as_ref()
                .map_or(WorkerOutcome::Unsettled, Settled::outcome),
        ),
    }
    settled
}

async fn settle(processor: &OrderProcessor, delivery: Delivery) -> Result<Settled<ProcessOutcome>> {
    let message: OrderMessage = match delivery.message.decode() {
        Ok(message) => message,
        Err(error) => {
            let reason = error.to_string();
            delivery.dead_letter(&reason).await?;
            return Ok(Settled::DeadLettered { reason });
        }
    };
    if let (true, OrderMessage::ProcessOrders { orders }) = (delivery.final_hand_out, &message) {
        // Every consumer before this one died holding the batch: let each order go on
        // alone (with its own delivery limit) rather than give them all up for what may
        // be one of them.
        let reason = "batch handed out as often as the queue's delivery limit allows; its \
                      orders go on alone"
            .to_owned();
        if let Err(error) = processor.send_alone(orders).await {
            tokio::time::sleep(GIVE_UP_FAILED_PAUSE).await;
            return Err(error);
        }
        delivery.ack().await?;
        return Ok(Settled::Requeued { reason });
    }
    if delivery.final_hand_out && matches!(message, OrderMessage::ProcessOrder { .. }) {
        // Every consumer before this one died holding the message, and the broker
        // dead-letters it by itself if this one does too: fail the order now (its
        // cancellations written with the change) rather than leave it reserved until
        // the sweeper expires it.
        let reason = "handed out as often as the queue's delivery limit allows; every \
                      consumer died holding it"
            .to_owned();
        let error = Error::permanent("order_queue", reason.clone());
        match processor.give_up(&message, &error).await {
            Ok(_) => {
                delivery.dead_letter(&reason).await?;
                return Ok(Settled::DeadLettered { reason });
            }
            Err(give_up) => {
                tokio::time::sleep(GIVE_UP_FAILED_PAUSE).await;
                return Err(give_up);
            }
        }
    }
    let error = match processor.handle(&message).await {
        Ok(outcome) => {
            delivery.ack().await?;
            return Ok(Settled::Done(outcome));
        }
        Err(error) => error,
    };
    let reason = error.to_string();
    if error.is_retryable() && !delivery.is_last_attempt() {
        return match delivery.retry(&reason).await? {
            RetryOutcome::Scheduled { attempt, delay } => Ok(Settled::Retrying {
                attempt,
                delay,
                reason,
            }),
            // The queue's policy is shorter than the delivery said; nothing was given
            // up yet, so do it now (the message is in the dead-letter queue already).
            RetryOutcome::DeadLettered => {
                processor.give_up(&message, &error).await?;
                Ok(Settled::DeadLettered { reason })
            }
        };
    }
    match processor.give_up(&message, &error).await {
        Ok(true) => {
            delivery.ack().await?;
            Ok(Settled::Requeued { reason })
        }
        Ok(false) => {
            delivery.dead_letter(&reason).await?;
            Ok(Settled::DeadLettered { reason })
        }
        Err(give_up) => {
            tokio::time::sleep(GIVE_UP_FAILED_PAUSE).await;
            Err(give_up)
        }
    }
}

#[async_trait]
impl DeliveryHandler for OrderProcessor {
    type Done = ProcessOutcome;

    fn queue(&self) -> QueueName {
        QueueName::Orders
    }

    async fn settle(&self, delivery: Delivery) -> Result<Settled<ProcessOutcome>> {
        settle_order_delivery(self, delivery).await
    }

    fn report(&self, settled: &Result<Settled<ProcessOutcome>>) {
        match settled {
            Ok(Settled::Done(outcome)) => {
                tracing::debug!(what = %describe(outcome), "order message done");
            }
            Ok(Settled::Retrying { reason, .. }) => {
                tracing::warn!(%reason, "order message will be retried");
            }
            Ok(Settled::Requeued { reason }) => {
                tracing::warn!(%reason, "order message out of attempts; queued again");
            }
            Ok(Settled::DeadLettered { reason }) => {
                tracing::error!(%reason, "order message dead-lettered");
            }
            Err(error) => {
                tracing::warn!(%error, "order message left unsettled; it will be redelivered");
            }
        }
    }
}

/// Consumes `order_queue` with `config.concurrency` handlers until `shutdown`, then
/// lets in-flight messages finish within the grace period; those still running after
/// it are dropped unacknowledged (the queue redelivers them). See [`run_consumer`].
pub async fn run_order_worker(
    processor: OrderProcessor,
    queue: Arc<dyn OrderQueue>,
    config: WorkerConfig,
    shutdown: ShutdownSignal,
) -> Result<()> {
    run_consumer(Arc::new(processor), queue, config, shutdown).await
}

/// Runs `job` at once and then every `interval` until `shutdown`; a failed round is
/// logged under `name` and the next one comes at its time. A round in progress when
/// shutdown comes is finished.
pub async fn run_periodically<F, Fut, T>(
    name: &str,
    interval: Duration,
    shutdown: ShutdownSignal,
    mut job: F,
) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
    T: std::fmt::Debug,
{
    if interval.is_zero() {
        return Err(Error::invalid(
            "interval",
            format!("{name}: must be above zero"),
        ));
    }
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stop = shutdown.wait();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return Ok(()),
            _ = ticks.tick() => match job().await {
                Ok(done) => tracing::trace!(name, ?done, "round done"),
                Err(error) => tracing::warn!(name, %error, "round failed"),
            },
        }
    }
}
