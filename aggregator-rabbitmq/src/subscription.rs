//! Consuming: a subscription that re-opens its channel after a drop, and deliveries
//! settled by ack, retry through a delay queue, or dead-lettering.

use std::sync::Arc;
use std::time::Duration;

use aggregator_core::domain::{Message, QueueName};
use aggregator_core::traits::{Delivery, DeliverySettler, RetryOutcome, Subscription};
use aggregator_core::{Error, Result};
use async_trait::async_trait;
use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Acker, Channel, Connection, Consumer};
use time::OffsetDateTime;

use crate::headers::{
    ATTEMPT, DEAD_AT, DEAD_ATTEMPTS, DEAD_REASON, DELIVERY_COUNT, LAST_ERROR, message, number,
    properties, read_number, read_text, table, text,
};
use crate::link::{Link, transient};

/// A consumer of one queue with at most `prefetch` unsettled deliveries, on a
/// connection of its own: closing it (when the subscription is dropped) hands its
/// unsettled deliveries back, and no late acknowledgement of it can ever land on
/// another channel that happens to reuse its channel id.
pub(crate) struct RabbitSubscription {
    link: Arc<Link>,
    queue: QueueName,
    prefetch: u16,
    open: Option<(Connection, Channel, Consumer)>,
}

impl std::fmt::Debug for RabbitSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitSubscription")
            .field("queue", &self.queue)
            .field("prefetch", &self.prefetch)
            .field("open", &self.open.is_some())
            .finish()
    }
}

impl RabbitSubscription {
    pub(crate) async fn open(link: Arc<Link>, queue: QueueName, prefetch: u16) -> Result<Self> {
        let mut subscription = Self {
            link,
            queue,
            prefetch,
            open: None,
        };
        subscription.reopen().await?;
        Ok(subscription)
    }

    async fn reopen(&mut self) -> Result<()> {
        let (connection, node) = self.link.connect().await?;
        match self.consume(&connection).await {
            Ok((channel, consumer)) => {
                self.open = Some((connection, channel, consumer));
                Ok(())
            }
            Err(error) => {
                self.link.pass_over(node);
                Err(error)
            }
        }
    }

    /// A channel with this subscription's prefetch, consuming its queue.
    async fn consume(&self, connection: &Connection) -> Result<(Channel, Consumer)> {
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| transient("opening a channel", &e))?;
        channel
            .basic_qos(self.prefetch, BasicQosOptions::default())
            .await
            .map_err(|e| transient("setting prefetch", &e))?;
        let tag = format!("aggregator-{}", uuid::Uuid::now_v7().simple());
        let consumer = channel
            .basic_consume(
                self.link.config().queue(self.queue).into(),
                tag.into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| transient("consuming", &e))?;
        Ok((channel, consumer))
    }
}

impl Drop for RabbitSubscription {
    fn drop(&mut self) {
        // Closing the connection hands every unsettled delivery back to the queue.
        if let Some((connection, _, _)) = self.open.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let _ = connection.close(200, "subscription dropped".into()).await;
            });
        }
    }
}

#[async_trait]
impl Subscription for RabbitSubscription {
    async fn next(&mut self) -> Result<Delivery> {
        let mut backoff = Duration::from_millis(100);
        loop {
            if self.open.is_none()
                && let Err(error) = self.reopen().await
            {
                tracing::warn!(%error, "consumer cannot reconnect yet");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
            let Some((_, _, consumer)) = self.open.as_mut() else {
                continue;
            };
            match consumer.next().await {
                Some(Ok(delivery)) => {
                    let message = message(&delivery.properties, delivery.data);
                    let attempt = read_number(&delivery.properties, ATTEMPT)
                        .and_then(|n| u32::try_from(n).ok())
                        .unwrap_or(1)
                        .max(1);
                    let last_error = read_text(&delivery.properties, LAST_ERROR);
                    let settler = RabbitSettler {
                        link: Arc::clone(&self.link),
                        queue: self.queue,
                        message: message.clone(),
                        acker: Some(delivery.acker),
                    };
                    // Quorum queues count the hand-outs that came back unsettled; at the
                    // limit, one more and the broker dead-letters the message itself. The
                    // flag is never early; it can be missed when a consumer hands a
                    // delivery back and closes at once (the broker may hand it to that
                    // consumer again unseen and count that return too); the sweeper
                    // covers an order whose message is dead-lettered unflagged.
                    let returned = read_number(&delivery.properties, DELIVERY_COUNT);
                    let config = self.link.config();
                    let final_hand_out = match (config.quorum, config.delivery_limit, returned) {
                        (true, Some(limit), Some(returned)) => returned >= u64::from(limit),
                        _ => false,
                    };
                    return Ok(Delivery::new(
                        message,
                        attempt,
                        delivery.redelivered,
                        last_error,
                        config.retry.max_attempts(),
                        Box::new(settler),
                    )
                    .with_final_hand_out(final_hand_out));
                }
                Some(Err(error)) => {
                    tracing::warn!(%error, "consumer lost its channel; reconnecting");
                    self.open = None;
                }
                None => {
                    tracing::warn!("consumer was cancelled; reconnecting");
                    self.open = None;
                }
            }
        }
    }
}

/// Settles one delivery.
struct RabbitSettler {
    link: Arc<Link>,
    queue: QueueName,
    message: Message,
    acker: Option<Acker>,
}

impl std::fmt::Debug for RabbitSettler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitSettler")
            .field("queue", &self.queue)
            .field("message", &self.message.id)
            .finish()
    }
}

impl RabbitSettler {
    async fn ack(&mut self) -> Result<()> {
        let acker = self
            .acker
            .take()
            .ok_or_else(|| Error::conflict("delivery already settled"))?;
        let acked = acker
            .ack(BasicAckOptions::default())
            .await
            .map_err(|e| transient("acknowledging", &e))?;
        if acked {
            Ok(())
        } else {
            Err(Error::transient(
                "rabbitmq",
                "acknowledging: the channel is gone; the broker redelivers",
            ))
        }
    }

    /// Puts the message in the dead-letter queue (confirmed) with why and how often.
    async fn bury(&mut self, attempts: u32, reason: &str) -> Result<()> {
        let dead_at = u64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
            .unwrap_or(0);
        let headers = table(vec![
            (DEAD_ATTEMPTS, number(u64::from(attempts))),
            (DEAD_REASON, text(reason)),
            (DEAD_AT, number(dead_at)),
            (LAST_ERROR, text(reason)),
        ]);
        let queue = self.link.config().dead_letter_queue(self.queue);
        self.link
            .publish(
                &queue,
                &self.message.body,
                properties(&self.message, headers),
            )
            .await?;
        self.ack().await
    }
}

#[async_trait]
impl DeliverySettler for RabbitSettler {
    async fn ack(mut self: Box<Self>) -> Result<()> {
        RabbitSettler::ack(&mut self).await
    }

    async fn retry(mut self: Box<Self>, attempt: u32, reason: &str) -> Result<RetryOutcome> {
        match self.link.config().retry.delay_after(attempt) {
            Some(delay) => {
                let headers = table(vec![
                    (ATTEMPT, number(u64::from(attempt + 1))),
                    (LAST_ERROR, text(reason)),
                ]);
                let queue = self.link.config().delay_queue(self.queue, attempt);
                self.link
                    .publish(
                        &queue,
                        &self.message.body,
                        properties(&self.message, headers),
                    )
                    .await?;
                RabbitSettler::ack(&mut self).await?;
                Ok(RetryOutcome::Scheduled {
                    attempt: attempt + 1,
                    delay,
                })
            }
            None => {
                self.bury(attempt, reason).await?;
                Ok(RetryOutcome::DeadLettered)
            }
        }
    }

    async fn dead_letter(mut self: Box<Self>, attempt: u32, reason: &str) -> Result<()> {
        self.bury(attempt, reason).await
    }
}

impl Drop for RabbitSettler {
    fn drop(&mut self) {
        // Not settled: hand it back now rather than when the channel closes.
        if let Some(acker) = self.acker.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let _ = acker
                    .nack(BasicNackOptions {
                        requeue: true,
                        ..BasicNackOptions::default()
                    })
                    .await;
            });
        }
    }
}
