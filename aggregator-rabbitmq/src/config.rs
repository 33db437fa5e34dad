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
    /// An `amqp://user:password@host:port/vhost` URL, or several separated by commas (the
    /// nodes of one cluster, tried in turn). The `Debug` output hides the passwords.
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

    /// The nodes `url` names, in its order (one for a plain URL).
    pub fn nodes(&self) -> Vec<RedactedUrl> {
        self.url
            .expose()
            .split(',')
            .map(str::trim)
            .filter(|node| !node.is_empty())
            .map(RedactedUrl::new)
            .collect()
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
    fn a_list_of_urls_names_the_nodes_of_a_cluster() {
        let config = RabbitConfig::new(
            "amqp://guest:a@n1:5672/%2f, amqp://guest:b@n2:5673/%2f,,amqp://guest:c@n3:5674/%2f",
        );
        let nodes: Vec<String> = config
            .nodes()
            .iter()
            .map(|n| n.expose().to_owned())
            .collect();
        assert_eq!(
            nodes,
            [
                "amqp://guest:a@n1:5672/%2f",
                "amqp://guest:b@n2:5673/%2f",
                "amqp://guest:c@n3:5674/%2f"
            ]
        );
        let printed = format!("{config:?}");
        assert!(
            printed.contains("n1") && printed.contains("n2") && printed.contains("n3"),
            "{printed}"
        );
        assert!(
            !printed.contains("guest:a@")
                && !printed.contains("guest:b@")
                && !printed.contains("guest:c@"),
            "{printed}"
        );
    }

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
