//! A server-side close of every connection (`rabbitmqctl close_all_connections`) in the
//! middle of 1,000 published messages: publisher and consumer come back by themselves
//! and every confirmed message is consumed. Its own test binary, because closing every
//! connection on the broker would disturb any other test running at the same time.

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use aggregator_core::conformance::service_url;
use aggregator_core::domain::{Message, OrderId, OrderMessage, QueueName};
use aggregator_core::traits::{OrderQueue, RetryPolicy};
use aggregator_rabbitmq::{RabbitConfig, RabbitQueue};

async fn queue(url: String) -> RabbitQueue {
    let mut config = RabbitConfig::new(url);
    config.prefix = format!("test.{}.", uuid::Uuid::now_v7().simple());
    config.retry = RetryPolicy::new(vec![Duration::from_millis(100)]).expect("policy");
    RabbitQueue::connect(config).await.expect("connect")
}

fn message() -> Message {
    Message::json(&OrderMessage::ProcessOrder {
        order: OrderId::new(),
    })
    .expect("message")
}

/// Closes every client connection on the broker (as an operator or a broker restart
/// would).
fn close_all_connections() {
    let output = Command::new("rabbitmqctl")
        .args([
            "close_all_connections",
            "test: connections closed on purpose",
        ])
        .output()
        .expect("rabbitmqctl runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_confirmed_message_survives_a_server_side_close_of_all_connections() {
    let Some(url) = service_url("AMQP_URL") else {
        return;
    };
    let publisher = queue(url).await;
    let consumer_side = publisher.clone();
    let consumer = tokio::spawn(async move {
        let mut subscription = consumer_side
            .subscribe(QueueName::Orders, 50)
            .await
            .expect("subscribe");
        let mut seen: HashSet<aggregator_core::domain::MessageId> = HashSet::new();
        let mut deliveries = 0;
        while seen.len() < 1_000 {
            let delivery = tokio::time::timeout(Duration::from_secs(30), subscription.next())
                .await
                .expect("deliveries keep coming")
                .expect("delivery");
            deliveries += 1;
            seen.insert(delivery.message.id);
            // A failed ack (the channel just died) only means a redelivery.
            let _ = delivery.ack().await;
        }
        (seen, deliveries)
    });
    let mut confirmed = HashSet::new();
    for n in 0..1_000 {
        if n == 300 || n == 700 {
            close_all_connections();
        }
        let message = message();
        // A publish that failed may be retried; only confirmed ones must arrive.
        for _ in 0..50 {
            if publisher.publish(QueueName::Orders, &message).await.is_ok() {
                confirmed.insert(message.id);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert_eq!(
        confirmed.len(),
        1_000,
        "every publish went through in the end"
    );
    let (seen, deliveries) = tokio::time::timeout(Duration::from_secs(120), consumer)
        .await
        .expect("consumer finished")
        .expect("consumer task");
    assert!(
        confirmed.is_subset(&seen),
        "every confirmed message was consumed"
    );
    assert!(deliveries >= 1_000);
    assert!(publisher.is_connected().await, "the publisher came back");
    publisher.delete_topology().await.expect("cleanup");
}
