//! Connection and topology settings.

use std::time::Duration;

use aggregator_core::RedactedUrl;
use aggregator_core::domain::QueueName;
use aggregator_core::traits::RetryPolicy;

/// How many times a quorum queue hands a message out before dead-lettering it, unless
/// set otherwise.
pub const DEFAULT_DELIVERY_LIMIT: u32 = 20;

/// How to reach RabbitMQ and how the queues behave.
#[derive(Debug, Clone)]
pub struct RabbitConfig {
    /// An `amqp://user:password@host:port/vhost` URL. The `Debug` output hides the password.
    pub url: RedactedUrl,
    /// Prepended to every queue name (empty in production, a random one in tests).
    pub prefix: String,
    /// Delays between attempts; after the last attempt a message is dead-lettered.
    pub retry: RetryPolicy,
    /// How long a publish waits for the broker's confirm before failing (retryably).
    pub confirm_timeout: Duration,
    /// Declare quorum queues (replicated; the production default) instead of classic
    /// ones. A queue keeps the type it was first declared with.
    pub quorum: bool,
    /// On quorum queues: a message handed back this many times (its consumer died or
    /// dropped it unsettled each time) is dead-lettered by the broker instead of being
    /// delivered again, so one message that crashes every consumer cannot stall its
    /// queue forever. `None` sets no limit. Classic queues have no such limit.
    pub delivery_limit: Option<u32>,
}

impl RabbitConfig {
    /// Settings for `url`: no prefix, the default retry policy (1 s, 5 s, 25 s, 2 min),
    /// 5 s for confirms, quorum queues with a delivery limit of 20.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: RedactedUrl::new(url),
            prefix: String::new(),
            retry: RetryPolicy::default(),
            confirm_timeout: Duration::from_secs(5),
            quorum: true,
            delivery_limit: Some(DEFAULT_DELIVERY_LIMIT),
        }
    }

    /// The broker name of `queue`.
    pub fn queue(&self, queue: QueueName) -> String {
        format!("{}{}", self.prefix, queue.as_str())
    }

    /// The broker name of `queue`'s dead-letter queue.
    pub fn dead_letter_queue(&self, queue: QueueName) -> String {
        format!("{}{}", self.prefix, queue.dead_letter_name())
    }

    /// The broker name of the queue where messages wait before attempt `attempt + 1`.
    pub fn delay_queue(&self, queue: QueueName, failed_attempt: u32) -> String {
        format!("{}{}.retry.{failed_attempt}", self.prefix, queue.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_password() {
        let printed = format!(
            "{:?}",
            RabbitConfig::new("amqp://guest:s3cret@127.0.0.1:5672/%2f")
        );
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(
            printed.contains("amqp://guest:***@127.0.0.1:5672/%2f"),
            "{printed}"
        );
    }

    #[test]
    fn names_follow_the_seed() {
        let mut config = RabbitConfig::new("amqp://x");
        assert_eq!(config.queue(QueueName::Orders), "order_queue");
        assert_eq!(
            config.dead_letter_queue(QueueName::StockSync),
            "stock_sync_queue.dlq"
        );
        config.prefix = "t1.".into();
        assert_eq!(
            config.delay_queue(QueueName::Orders, 2),
            "t1.order_queue.retry.2"
        );
    }
}
