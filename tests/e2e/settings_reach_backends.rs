//! Settings that must reach the backends built from them.

use std::time::Duration;

use aggregator_core::conformance::service_url;
use aggregator_core::domain::{Message, QueueName};
use aggregator_core::traits::RetryOutcome;
use aggregator_rabbitmq::{RabbitConfig, RabbitQueue};
use order_aggregator::settings::Settings;

/// Settings with one retry of 50 ms (two attempts in all), on RabbitMQ when `amqp` is
/// given (under a queue prefix of its own), in memory otherwise.
fn one_quick_retry(amqp: Option<(String, String)>) -> Settings {
    let env = move |name: &str| match name {
        "AGGREGATOR_RETRY_DELAYS_MS" => Some("50".to_owned()),
        "AGGREGATOR_LOG_DIR" => Some("none".into()),
        "AMQP_URL" => amqp.as_ref().map(|(url, _)| url.clone()),
        "AGGREGATOR_QUEUE_PREFIX" => amqp.as_ref().map(|(_, prefix)| prefix.clone()),
        _ => None,
    };
    Settings::parse(Vec::new(), env).expect("settings")
}

/// A message fails twice: with two attempts the second failure dead-letters it (with
/// the default five it would be scheduled again).
async fn second_failure_is_the_last(settings: &Settings) {
    let backends = order_aggregator::backends::connect(settings)
        .await
        .expect("backends");
    let queue = backends.queue;
    let message = Message::json(&"retry me").expect("message");
    queue
        .publish(QueueName::StockSync, &message)
        .await
        .expect("publish");
    let mut subscription = queue
        .subscribe(QueueName::StockSync, 1)
        .await
        .expect("subscribe");
    let first = tokio::time::timeout(Duration::from_secs(10), subscription.next())
        .await
        .expect("delivered")
        .expect("delivery");
    assert_eq!(
        first.max_attempts, 2,
        "the configured policy reached the queue"
    );
    assert!(matches!(
        first.retry("first").await,
        Ok(RetryOutcome::Scheduled { attempt: 2, delay }) if delay == Duration::from_millis(50)
    ));
    let second = tokio::time::timeout(Duration::from_secs(10), subscription.next())
        .await
        .expect("delivered again")
        .expect("delivery");
    assert_eq!(second.attempt, 2);
    assert_eq!(second.retry("second").await, Ok(RetryOutcome::DeadLettered));
}

#[tokio::test]
async fn the_retry_delay_setting_reaches_the_in_memory_queue() {
    second_failure_is_the_last(&one_quick_retry(None)).await;
}

#[tokio::test]
async fn the_retry_delay_setting_reaches_rabbitmq() {
    let Some(url) = service_url("AMQP_URL") else {
        return;
    };
    let prefix = format!("test.{}.", uuid::Uuid::now_v7().simple());
    second_failure_is_the_last(&one_quick_retry(Some((url.clone(), prefix.clone())))).await;
    let mut config = RabbitConfig::new(url);
    config.prefix = prefix;
    config.retry =
        aggregator_core::traits::RetryPolicy::new(vec![Duration::from_millis(50)]).expect("policy");
    RabbitQueue::connect(config)
        .await
        .expect("rabbitmq")
        .delete_topology()
        .await
        .expect("cleanup");
}
