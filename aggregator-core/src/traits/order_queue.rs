//! Durable queues with retries through growing delays and dead letters.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::{Message, MessageId, QueueName};
use crate::error::{Error, Result};

/// How often and after how long a failed message is tried again.
///
/// Delivery attempts are numbered from 1. After attempt `n` fails, the message comes back
/// after `delays[n - 1]` as attempt `n + 1`; after attempt `delays.len() + 1` fails it
/// goes to the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    delays: Vec<Duration>,
}

impl RetryPolicy {
    /// A policy with these delays, one per retry; refuses an empty list and delays that
    /// shrink (they must not decrease from one attempt to the next).
    pub fn new(delays: Vec<Duration>) -> Result<Self> {
        if delays.is_empty() {
            return Err(Error::invalid("retryDelays", "needs at least one delay"));
        }
        if delays.windows(2).any(|pair| pair[1] < pair[0]) {
            return Err(Error::invalid("retryDelays", "delays must not decrease"));
        }
        Ok(Self { delays })
    }

    /// The delay before attempt `failed_attempt + 1`, or `None` when `failed_attempt` was
    /// the last one.
    pub fn delay_after(&self, failed_attempt: u32) -> Option<Duration> {
        let index = usize::try_from(failed_attempt.checked_sub(1)?).ok()?;
        self.delays.get(index).copied()
    }

    /// The total number of attempts a message gets.
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.delays.len()).map_or(u32::MAX, |n| n.saturating_add(1))
    }

    /// The delays, in order.
    pub fn delays(&self) -> &[Duration] {
        &self.delays
    }
}

impl Default for RetryPolicy {
    /// 1 s, 5 s, 25 s, 2 min: five attempts over about two and a half minutes.
    fn default() -> Self {
        Self {
            delays: vec![
                Duration::from_secs(1),
                Duration::from_secs(5),
                Duration::from_secs(25),
                Duration::from_secs(120),
            ],
        }
    }
}

/// What became of a message handed back with [`Delivery::retry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryOutcome {
    /// It will come back as attempt `attempt` after `delay`.
    Scheduled {
        /// The number of the coming attempt.
        attempt: u32,
        /// How long until then.
        delay: Duration,
    },
    /// That was the last attempt; it is in the dead-letter queue now.
    DeadLettered,
}

/// A message in a dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    /// The queue it came from.
    pub queue: QueueName,
    /// The message.
    pub message: Message,
    /// How many attempts it had.
    pub attempts: u32,
    /// Why the last one failed.
    pub reason: String,
    /// When it was dead-lettered, in our clock.
    #[serde(with = "time::serde::rfc3339")]
    pub dead_at: OffsetDateTime,
}

/// A part of a queue where messages wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QueuePart {
    /// Ready for delivery.
    Ready,
    /// Waiting out the delay after failed attempt `failed_attempt` (one part per delay
    /// of the retry policy).
    Retry {
        /// The attempt that failed, from 1.
        failed_attempt: u32,
    },
    /// Dead-lettered.
    DeadLetters,
}

/// How many messages wait in one part of a queue, as [`OrderQueue::depths`] counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueDepth {
    /// The queue.
    pub queue: QueueName,
    /// The part of it.
    pub part: QueuePart,
    /// Messages waiting there; deliveries out with a consumer and not yet settled are
    /// not counted.
    pub messages: u64,
}

impl QueueDepth {
    /// The part's name as the seed names queues (no backend prefix): `order_queue`,
    /// `order_queue.retry.1`, `order_queue.dlq`.
    pub fn name(&self) -> String {
        match self.part {
            QueuePart::Ready => self.queue.as_str().to_owned(),
            QueuePart::Retry { failed_attempt } => {
                format!("{}.retry.{failed_attempt}", self.queue.as_str())
            }
            QueuePart::DeadLetters => self.queue.dead_letter_name().to_owned(),
        }
    }
}

/// Settles one delivery; backends implement it, consumers use [`Delivery`].
#[async_trait]
pub trait DeliverySettler: Send + Debug {
    /// Done with; remove it for good.
    async fn ack(self: Box<Self>) -> Result<()>;
    /// Failed attempt `attempt` for `reason`; schedule the next one or dead-letter it.
    async fn retry(self: Box<Self>, attempt: u32, reason: &str) -> Result<RetryOutcome>;
    /// Will never succeed; dead-letter it now with `reason`.
    async fn dead_letter(self: Box<Self>, attempt: u32, reason: &str) -> Result<()>;
}

/// One delivery of a message to a consumer. Dropping it without settling hands the
/// message back for redelivery.
#[derive(Debug)]
pub struct Delivery {
    /// The message.
    pub message: Message,
    /// Which attempt this is, from 1.
    pub attempt: u32,
    /// True when this message was delivered before and not settled (a consumer died).
    pub redelivered: bool,
    /// Why the previous attempt failed, if one did.
    pub last_error: Option<String>,
    /// How many attempts the queue's retry policy gives a message in all.
    pub max_attempts: u32,
    /// True when the broker will dead-letter the message by itself if this delivery is
    /// not settled either (it was handed out as often as the queue's delivery limit
    /// allows, every consumer before dying or dropping it).
    pub final_hand_out: bool,
    settler: Box<dyn DeliverySettler>,
}

impl Delivery {
    /// A delivery that `settler` will settle, under a policy of `max_attempts`
    /// attempts; for backends.
    pub fn new(
        message: Message,
        attempt: u32,
        redelivered: bool,
        last_error: Option<String>,
        max_attempts: u32,
        settler: Box<dyn DeliverySettler>,
    ) -> Self {
        Self {
            message,
            attempt,
            redelivered,
            last_error,
            max_attempts,
            final_hand_out: false,
            settler,
        }
    }

    /// Marks this delivery as the last the broker makes before it dead-letters the
    /// message by itself; for backends whose queues have a delivery limit.
    pub fn with_final_hand_out(mut self, final_hand_out: bool) -> Self {
        self.final_hand_out = final_hand_out;
        self
    }

    /// True when this is the message's last attempt: a [`Delivery::retry`] would
    /// dead-letter it. Consumers that must do something before a message is given up
    /// (fail the order it is about) do it first, then dead-letter.
    pub fn is_last_attempt(&self) -> bool {
        self.attempt >= self.max_attempts
    }

    /// Acknowledges: the message is done and will not come back.
    pub async fn ack(self) -> Result<()> {
        self.settler.ack().await
    }

    /// This attempt failed for a reason that may pass; try again later or dead-letter
    /// after the last attempt.
    pub async fn retry(self, reason: &str) -> Result<RetryOutcome> {
        self.settler.retry(self.attempt, reason).await
    }

    /// This message can never succeed (e.g. malformed); dead-letter it at once.
    pub async fn dead_letter(self, reason: &str) -> Result<()> {
        self.settler.dead_letter(self.attempt, reason).await
    }
}

/// A consumer's stream of deliveries from one queue.
#[async_trait]
pub trait Subscription: Send + Debug {
    /// Waits for the next delivery. At most the subscription's prefetch of deliveries
    /// are out unsettled at once; this waits while that many are.
    async fn next(&mut self) -> Result<Delivery>;
}

/// Durable work queues: `order_queue` and `stock_sync_queue`, each with retries through
/// growing delays and a dead-letter queue.
///
/// What every implementation guarantees:
/// * `publish` returns only once the message is durably accepted.
/// * Every message is delivered until a consumer acks it, retries it past the last
///   attempt, or dead-letters it; an unsettled delivery whose consumer goes away is
///   delivered again, flagged `redelivered`.
/// * Retries carry the attempt count and the last reason, and come back no sooner than
///   the policy's delay.
/// * Dead letters can be listed without losing them and replayed to their queue.
#[async_trait]
pub trait OrderQueue: Send + Sync + Debug + 'static {
    /// Publishes `message` durably to `queue`.
    async fn publish(&self, queue: QueueName, message: &Message) -> Result<()>;

    /// Starts consuming `queue` with at most `prefetch` unsettled deliveries at a time.
    async fn subscribe(&self, queue: QueueName, prefetch: u16) -> Result<Box<dyn Subscription>>;

    /// Up to `limit` dead letters of `queue`, oldest first, left in place.
    async fn dead_letters(&self, queue: QueueName, limit: usize) -> Result<Vec<DeadLetter>>;

    /// Moves dead letters of `queue` (all, or only the one with id `only`) back to the
    /// queue as fresh first attempts; returns how many moved.
    async fn replay_dead_letters(&self, queue: QueueName, only: Option<MessageId>)
    -> Result<usize>;

    /// How many messages wait in each part of `queue`: ready, each retry delay of the
    /// policy (every one listed, empty or not), and dead letters. Reads counts only:
    /// no message is delivered, moved or marked redelivered.
    async fn depths(&self, queue: QueueName) -> Result<Vec<QueueDepth>>;
}

macro_rules! forward_order_queue {
    ($wrapper:ident) => {
        #[async_trait]
        impl<T: OrderQueue + ?Sized> OrderQueue for $wrapper<T> {
            async fn publish(&self, queue: QueueName, message: &Message) -> Result<()> {
                (**self).publish(queue, message).await
            }
            async fn subscribe(
                &self,
                queue: QueueName,
                prefetch: u16,
            ) -> Result<Box<dyn Subscription>> {
                (**self).subscribe(queue, prefetch).await
            }
            async fn dead_letters(
                &self,
                queue: QueueName,
                limit: usize,
            ) -> Result<Vec<DeadLetter>> {
                (**self).dead_letters(queue, limit).await
            }
            async fn replay_dead_letters(
                &self,
                queue: QueueName,
                only: Option<MessageId>,
            ) -> Result<usize> {
                (**self).replay_dead_letters(queue, only).await
            }
            async fn depths(&self, queue: QueueName) -> Result<Vec<QueueDepth>> {
                (**self).depths(queue).await
            }
        }
    };
}

forward_order_queue!(Arc);
forward_order_queue!(Box);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_policy_counts_attempts_from_one() {
        let policy =
            RetryPolicy::new(vec![Duration::from_secs(1), Duration::from_secs(5)]).expect("valid");
        assert_eq!(policy.max_attempts(), 3);
        assert_eq!(policy.delay_after(0), None);
        assert_eq!(policy.delay_after(1), Some(Duration::from_secs(1)));
        assert_eq!(policy.delay_after(2), Some(Duration::from_secs(5)));
        assert_eq!(policy.delay_after(3), None);
    }

    #[test]
    fn retry_policy_refuses_empty_or_shrinking_delays() {
        assert!(RetryPolicy::new(vec![]).is_err());
        assert!(RetryPolicy::new(vec![Duration::from_secs(5), Duration::from_secs(1)]).is_err());
        assert_eq!(RetryPolicy::default().max_attempts(), 5);
    }
}
