//! [`RabbitQueue`]: the `OrderQueue` on RabbitMQ.

use std::sync::Arc;

use aggregator_core::domain::{Message, MessageId, QueueName};
use aggregator_core::traits::{DeadLetter, OrderQueue, QueueDepth, QueuePart, Subscription};
use aggregator_core::{Error, Result};
use async_trait::async_trait;
use lapin::options::{BasicAckOptions, BasicGetOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use time::OffsetDateTime;

use crate::config::RabbitConfig;
use crate::headers::{
    ATTEMPT, DEAD_AT, DEAD_ATTEMPTS, DEAD_REASON, LAST_ERROR, broker_death, message, number,
    properties, read_number, read_text, table, text,
};
use crate::link::{Link, transient};
use crate::subscription::RabbitSubscription;

/// An [`OrderQueue`] on RabbitMQ.
///
/// Topology (declared idempotently on every (re)connect): durable `order_queue` and
/// `stock_sync_queue`; for each, one delay queue per retry (`<queue>.retry.<n>`, a
/// message TTL of the n-th delay, dead-lettering back to the queue) and `<queue>.dlq`.
/// Messages are persistent and every publish waits for the broker's confirm. The
/// attempt count and the last failure travel in headers. A dropped connection or
/// channel is re-opened on the next use; a subscription re-subscribes by itself.
#[derive(Debug, Clone)]
pub struct RabbitQueue {
    link: Arc<Link>,
}

impl RabbitQueue {
    /// Connects and declares the topology.
    pub async fn connect(config: RabbitConfig) -> Result<Self> {
        let nodes = config.nodes();
        if nodes.is_empty()
            || !nodes.iter().all(|node| {
                node.expose().starts_with("amqp://") || node.expose().starts_with("amqps://")
            })
        {
            return Err(Error::invalid(
                "amqpUrl",
                "must start with amqp:// or amqps:// (each one, for a list of nodes; a comma \
                 inside a password is written %2C)",
            ));
        }
        let queue = Self {
            link: Arc::new(Link::new(config)),
        };
        queue.link.channel().await?;
        Ok(queue)
    }

    /// Whether the connection is up right now, for `/health`.
    pub async fn is_connected(&self) -> bool {
        self.link.is_connected().await
    }

    /// The settings in force.
    pub fn config(&self) -> &RabbitConfig {
        self.link.config()
    }

    /// Deletes every queue this configuration declares, messages included (for tests
    /// and for tearing down a prefix).
    pub async fn delete_topology(&self) -> Result<()> {
        let config = self.link.config();
        let mut names = Vec::new();
        for queue in QueueName::ALL {
            names.push(config.queue(queue));
            names.push(config.dead_letter_queue(queue));
            for attempt in 1..=config.retry.delays().len() {
                names.push(config.delay_queue(queue, u32::try_from(attempt).unwrap_or(u32::MAX)));
            }
        }
        let mut channel = self.link.channel().await?;
        for name in names {
            // A channel can be closing under us (a subscription dropped a moment ago
            // closes its own in the background); try again on a fresh one.
            let mut tries = 0;
            loop {
                match channel
                    .queue_delete(
                        name.as_str().into(),
                        lapin::options::QueueDeleteOptions::default(),
                    )
                    .await
                {
                    Ok(_) => break,
                    Err(error) if tries < 3 => {
                        tracing::debug!(%error, name, "deleting a queue failed; retrying");
                        tries += 1;
                        channel = self.link.channel().await?;
                    }
                    Err(error) => return Err(transient("deleting a queue", &error)),
                }
            }
        }
        let _ = channel.close(200, "deleted".into()).await;
        Ok(())
    }
}

#[async_trait]
impl OrderQueue for RabbitQueue {
    async fn publish(&self, queue: QueueName, message: &Message) -> Result<()> {
        let headers = table(vec![(ATTEMPT, number(1))]);
        self.link
            .publish(
                &self.link.config().queue(queue),
                &message.body,
                properties(message, headers),
            )
            .await
    }

    async fn subscribe(&self, queue: QueueName, prefetch: u16) -> Result<Box<dyn Subscription>> {
        if prefetch == 0 {
            return Err(Error::invalid("prefetch", "must be at least 1"));
        }
        Ok(Box::new(
            RabbitSubscription::open(Arc::clone(&self.link), queue, prefetch).await?,
        ))
    }

    async fn dead_letters(&self, queue: QueueName, limit: usize) -> Result<Vec<DeadLetter>> {
        // Read without acknowledging, then close the channel: everything read goes back
        // to the queue in its place.
        let channel = self.link.channel().await?;
        let name = self.link.config().dead_letter_queue(queue);
        let mut letters = Vec::new();
        while letters.len() < limit {
            let got = channel
                .basic_get(name.as_str().into(), BasicGetOptions { no_ack: false })
                .await
                .map_err(|e| transient("reading dead letters", &e))?;
            let Some(got) = got else {
                break;
            };
            letters.push(dead_letter(
                queue,
                &got.delivery.properties,
                got.delivery.data.clone(),
            ));
        }
        let _ = channel.close(200, "listed".into()).await;
        Ok(letters)
    }

    async fn depths(&self, queue: QueueName) -> Result<Vec<QueueDepth>> {
        // A passive declare answers the queue's count of ready messages and touches
        // none of them (basic_get would mark every message it read redelivered).
        let config = self.link.config();
        let delays = config.retry.delays().len();
        let mut parts = vec![(QueuePart::Ready, config.queue(queue))];
        for failed_attempt in (1_u32..).take(delays) {
            parts.push((
                QueuePart::Retry { failed_attempt },
                config.delay_queue(queue, failed_attempt),
            ));
        }
        parts.push((QueuePart::DeadLetters, config.dead_letter_queue(queue)));
        let channel = self.link.channel().await?;
        let mut depths = Vec::with_capacity(parts.len());
        for (part, name) in parts {
            let declared = channel
                .queue_declare(
                    name.as_str().into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..QueueDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await
                .map_err(|e| transient("counting a queue", &e))?;
            depths.push(QueueDepth {
                queue,
                part,
                messages: u64::from(declared.message_count()),
            });
        }
        let _ = channel.close(200, "counted".into()).await;
        Ok(depths)
    }

    async fn replay_dead_letters(
        &self,
        queue: QueueName,
        only: Option<MessageId>,
    ) -> Result<usize> {
        let channel = self.link.channel().await?;
        let name = self.link.config().dead_letter_queue(queue);
        let main = self.link.config().queue(queue);
        let mut moved = 0;
        let mut remaining: Option<u32> = None;
        loop {
            if remaining == Some(0) {
                break;
            }
            let got = channel
                .basic_get(name.as_str().into(), BasicGetOptions { no_ack: false })
                .await
                .map_err(|e| transient("reading dead letters", &e))?;
            let Some(got) = got else {
                break;
            };
            // The count of messages behind this one bounds the loop: skipped ones stay
            // unacknowledged (and out of the queue) until the channel closes.
            remaining = Some(remaining.map_or(got.message_count, |n| n.saturating_sub(1)));
            let delivery = got.delivery;
            let letter = message(&delivery.properties, delivery.data.clone());
            if only.is_some_and(|id| id != letter.id) {
                continue;
            }
            let reason = read_text(&delivery.properties, DEAD_REASON).unwrap_or_default();
            let headers = table(vec![(ATTEMPT, number(1)), (LAST_ERROR, text(&reason))]);
            self.link
                .publish(&main, &letter.body, properties(&letter, headers))
                .await?;
            let acked = delivery
                .acker
                .ack(BasicAckOptions::default())
                .await
                .map_err(|e| transient("acknowledging a replayed dead letter", &e))?;
            if !acked {
                // The copy stays in the dead-letter queue; replaying it again would only
                // make a duplicate, which consumers take as such.
                return Err(Error::transient(
                    "rabbitmq",
                    format!(
                        "acknowledging replayed dead letter {}: the channel is gone",
                        letter.id
                    ),
                ));
            }
            moved += 1;
        }
        let _ = channel.close(200, "replayed".into()).await;
        Ok(moved)
    }
}

fn dead_letter(queue: QueueName, properties: &lapin::BasicProperties, body: Vec<u8>) -> DeadLetter {
    let ours = read_text(properties, DEAD_REASON);
    // No reason of ours: the broker moved it here (the quorum queue's delivery limit).
    let broker = ours.is_none().then(|| broker_death(properties)).flatten();
    let dead_at_ms = read_number(properties, DEAD_AT).or_else(|| {
        broker
            .as_ref()
            .and_then(|(_, seconds)| seconds.map(|s| s.saturating_mul(1000)))
    });
    let dead_at = dead_at_ms
        .and_then(|ms| i128::from(ms).checked_mul(1_000_000))
        .and_then(|nanos| OffsetDateTime::from_unix_timestamp_nanos(nanos).ok())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let reason = match (ours, broker) {
        (Some(reason), _) => reason,
        (None, Some((why, _))) if why == "delivery_limit" => {
            "handed out more times than the delivery limit allows: each consumer died or \
             dropped it unsettled"
                .to_owned()
        }
        (None, Some((why, _))) => format!("dead-lettered by the broker: {why}"),
        (None, None) => String::new(),
    };
    DeadLetter {
        queue,
        message: message(properties, body),
        attempts: read_number(properties, DEAD_ATTEMPTS)
            .or_else(|| read_number(properties, ATTEMPT))
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(1),
        reason,
        dead_at,
    }
}
