//! RabbitQueue against a real broker (`AMQP_URL`), each test with its own queue-name
//! prefix, deleted at the end. Without `AMQP_URL` the tests print one line and pass,
//! unless `AGGREGATOR_REQUIRE_SERVICES=1`.

use std::sync::Arc;
use std::time::Duration;

use aggregator_core::conformance::{self, service_url};
use aggregator_core::domain::{Message, OrderId, OrderMessage, QueueName};
use aggregator_core::traits::{OrderQueue, RetryPolicy};
use aggregator_rabbitmq::{RabbitConfig, RabbitQueue};

fn short_policy() -> RetryPolicy {
    RetryPolicy::new(vec![
        Duration::from_millis(100),
        Duration::from_millis(200),
        Duration::from_millis(400),
    ])
    .expect("policy")
}

async fn queue(url: String) -> RabbitQueue {
    let mut config = RabbitConfig::new(url);
    config.prefix = format!("test.{}.", uuid::Uuid::now_v7().simple());
    config.retry = short_policy();
    RabbitQueue::connect(config).await.expect("connect")
}

fn message() -> Message {
    Message::json(&OrderMessage::ProcessOrder {
        order: OrderId::new(),
    })
    .expect("message")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_suite_passes() {
    let Some(url) = service_url("AMQP_URL") else {
        return;
    };
    let queue = queue(url.clone()).await;
    assert!(queue.is_connected().await);
    conformance::order_queue_suite(&queue, &short_policy()).await;
    queue.delete_topology().await.expect("cleanup");
    // Through `Arc<dyn OrderQueue>` too, on fresh queues (a subscription dropped a
    // moment ago may still be closing and could take a message first).
    let fresh = self::queue(url).await;
    let shared: Arc<dyn OrderQueue> = Arc::new(fresh.clone());
    conformance::publish_consume_ack(&shared).await;
    fresh.delete_topology().await.expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_body_is_dead_lettered_at_once_and_the_consumer_goes_on() {
    let Some(url) = service_url("AMQP_URL") else {
        return;
    };
    let queue = queue(url).await;
    let bad = Message {
        id: aggregator_core::domain::MessageId::new(),
        body: b"{not json".to_vec(),
    };
    let good = message();
    queue
        .publish(QueueName::Orders, &bad)
        .await
        .expect("publish");
    queue
        .publish(QueueName::Orders, &good)
        .await
        .expect("publish");
    let mut subscription = queue
        .subscribe(QueueName::Orders, 4)
        .await
        .expect("subscribe");
    let mut handled = Vec::new();
    for _ in 0..2 {
        let delivery = tokio::time::timeout(Duration::from_secs(10), subscription.next())
            .await
            .expect("delivered in time")
            .expect("delivery");
        match delivery.message.decode::<OrderMessage>() {
            Ok(_) => {
                handled.push(delivery.message.id);
                delivery.ack().await.expect("ack");
            }
            Err(error) => delivery
                .dead_letter(&error.to_string())
                .await
                .expect("dead letter"),
        }
    }
    assert_eq!(handled, vec![good.id]);
    let dead = queue
        .dead_letters(QueueName::Orders, 10)
        .await
        .expect("list");
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].message.id, dead[0].attempts), (bad.id, 1));
    assert!(dead[0].reason.contains("malformed"), "{}", dead[0].reason);
    queue.delete_topology().await.expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_larger_than_a_frame_arrives_whole() {
    let Some(url) = service_url("AMQP_URL") else {
        return;
    };
    let queue = queue(url).await;
    // 3,000 order ids are about 117 KB of JSON: four frames of the 32 KiB the client
    // proposes.
    let sent = OrderMessage::ProcessOrders {
        orders: (0..3_000).map(|_| OrderId::new()).collect(),
    };
    let message = Message::json(&sent).expect("message");
    assert!(message.body.len() > 3 * 32 * 1024, "{}", message.body.len());
    queue
        .publish(QueueName::Orders, &message)
        .await
        .expect("publish");
    let mut subscription = queue
        .subscribe(QueueName::Orders, 1)
        .await
        .expect("subscribe");
    let delivery = tokio::time::timeout(Duration::from_secs(10), subscription.next())
        .await
        .expect("delivered in time")
        .expect("delivery");
    assert_eq!(delivery.message.id, message.id);
    assert_eq!(
        delivery.message.decode::<OrderMessage>().expect("decodes"),
        sent
    );
    delivery.ack().await.expect("ack");
    queue.delete_topology().await.expect("cleanup");
}

#[tokio::test]
async fn a_bad_url_is_refused_and_an_unreachable_broker_is_retryable() {
    assert!(matches!(
        RabbitQueue::connect(RabbitConfig::new("http://x")).await,
        Err(aggregator_core::Error::Invalid { .. })
    ));
    let error = RabbitQueue::connect(RabbitConfig::new("amqp://guest:pw@127.0.0.1:1/%2f"))
        .await
        .expect_err("nothing listens on port 1");
    assert!(error.is_retryable(), "{error:?}");
    assert!(!error.to_string().contains(":pw@"), "{error}");
    // A list of nodes: every one must be an AMQP URL, and when none answers the error
    // names each without its password.
    assert!(matches!(
        RabbitQueue::connect(RabbitConfig::new("amqp://127.0.0.1:1/%2f,http://x")).await,
        Err(aggregator_core::Error::Invalid { .. })
    ));
    let error = RabbitQueue::connect(RabbitConfig::new(
        "amqp://guest:pw@127.0.0.1:1/%2f,amqp://guest:pw@127.0.0.1:2/%2f",
    ))
    .await
    .expect_err("nothing listens on ports 1 and 2");
    let text = error.to_string();
    assert!(error.is_retryable(), "{error:?}");
    assert!(
        text.contains("127.0.0.1:1") && text.contains("127.0.0.1:2"),
        "{text}"
    );
    assert!(!text.contains(":pw@"), "{text}");
}

#[tokio::test]
async fn a_list_of_nodes_connects_to_the_first_that_answers() {
    let Some(url) = service_url("AMQP_URL") else {
        return;
    };
    let queue = queue(format!("amqp://guest:guest@127.0.0.1:1/%2f,{url}")).await;
    assert!(queue.is_connected().await);
    conformance::publish_consume_ack(&(Arc::new(queue.clone()) as Arc<dyn OrderQueue>)).await;
    queue.delete_topology().await.expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_come_back_in_order_within_bounds_then_dead_letter_with_headers() {
    let Some(url) = service_url("AMQP_URL") else {
        return;
    };
    let mut config = RabbitConfig::new(url);
    config.prefix = format!("test.{}.", uuid::Uuid::now_v7().simple());
    config.retry = RetryPolicy::new(vec![Duration::from_millis(150), Duration::from_millis(400)])
        .expect("policy");
    let queue = RabbitQueue::connect(config).await.expect("connect");
    let sent = message();
    queue
        .publish(QueueName::StockSync, &sent)
        .await
        .expect("publish");
    let mut subscription = queue
        .subscribe(QueueName::StockSync, 1)
        .await
        .expect("subscribe");
    let bounds = [
        (Duration::from_millis(150), "first"),
        (Duration::from_millis(400), "second"),
    ];
    let mut delivery = subscription.next().await.expect("attempt 1");
    assert_eq!((delivery.attempt, delivery.last_error.clone()), (1, None));
    for (index, (delay, reason)) in bounds.iter().enumerate() {
        let started = std::time::Instant::now();
        delivery.retry(reason).await.expect("retry");
        delivery = tokio::time::timeout(Duration::from_secs(10), subscription.next())
            .await
            .expect("came back")
            .expect("delivery");
        let waited = started.elapsed();
        assert_eq!(delivery.message.id, sent.id);
        assert_eq!(
            delivery.attempt,
            u32::try_from(index).expect("small") + 2,
            "attempts in order"
        );
        assert_eq!(
            delivery.last_error.as_deref(),
            Some(*reason),
            "the reason travels along"
        );
        assert!(waited >= *delay, "back after {waited:?}, before {delay:?}");
        assert!(
            waited < *delay + Duration::from_secs(2),
            "back only after {waited:?}"
        );
    }
    let outcome = delivery.retry("third").await.expect("last retry");
    assert_eq!(outcome, aggregator_core::traits::RetryOutcome::DeadLettered);
    let dead = queue
        .dead_letters(QueueName::StockSync, 10)
        .await
        .expect("list");
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (
            dead[0].message.id,
            dead[0].attempts,
            dead[0].reason.as_str()
        ),
        (sent.id, 3, "third")
    );
    assert_eq!(dead[0].message.body, sent.body, "body intact");
    assert_eq!(
        queue
            .replay_dead_letters(QueueName::StockSync, None)
            .await
            .expect("replay"),
        1
    );
    let again = tokio::time::timeout(Duration::from_secs(10), subscription.next())
        .await
        .expect("replayed")
        .expect("delivery");
    assert_eq!((again.message.id, again.attempt), (sent.id, 1));
    again.ack().await.expect("ack");
    assert!(
        queue
            .dead_letters(QueueName::StockSync, 10)
            .await
            .expect("list")
            .is_empty()
    );
    drop(subscription);
    queue.delete_topology().await.expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_suite_passes_on_classic_queues() {
    let Some(url) = service_url("AMQP_URL") else {
        return;
    };
    let mut config = RabbitConfig::new(url);
    config.prefix = format!("test.{}.", uuid::Uuid::now_v7().simple());
    config.retry = short_policy();
    config.quorum = false;
    let queue = RabbitQueue::connect(config).await.expect("connect");
    conformance::order_queue_suite(&queue, &short_policy()).await;
    queue.delete_topology().await.expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_no_queue_takes_fails_its_publish_instead_of_vanishing() {
    let Some(url) = service_url("AMQP_URL") else {
        return;
    };
    let queue = queue(url).await;
    queue
        .publish(QueueName::Orders, &message())
        .await
        .expect("routable");
    // The queues disappear under the open publishing channel (an operator deleted them).
    queue.delete_topology().await.expect("deleted");
    let lost = queue.publish(QueueName::Orders, &message()).await;
    assert!(
        matches!(lost, Err(ref error) if error.is_retryable()),
        "an unroutable message must not be confirmed: {lost:?}"
    );
    // The next publish starts over, declaring the queues again.
    queue
        .publish(QueueName::Orders, &message())
        .await
        .expect("declared again");
    queue.delete_topology().await.expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_whose_every_consumer_crashes_is_dead_lettered_at_the_delivery_limit() {
    let Some(url) = service_url("AMQP_URL") else {
        return;
    };
    let mut config = RabbitConfig::new(url);
    config.prefix = format!("test.{}.", uuid::Uuid::now_v7().simple());
    config.retry = short_policy();
    config.delivery_limit = Some(2);
    assert!(config.quorum, "quorum queues are the default");
    let queue = RabbitQueue::connect(config).await.expect("connect");
    let poison = message();
    queue
        .publish(QueueName::Orders, &poison)
        .await
        .expect("publish");
    // Each consumer takes the message and crashes with it: its connection closes with
    // the delivery unsettled and nothing handed back (a killed worker runs no destructor,
    // so `forget` stands in for the crash). The broker counts one return per consumer.
    // (A consumer that hands a delivery back and closes at once may be handed it again
    // unseen, which the broker counts too; the flag can then be missed, never early.)
    let mut finals = Vec::new();
    while finals.len() < 6 {
        let mut subscription = queue
            .subscribe(QueueName::Orders, 1)
            .await
            .expect("subscribe");
        let Ok(delivery) = tokio::time::timeout(Duration::from_secs(10), subscription.next()).await
        else {
            break;
        };
        let delivery = delivery.expect("delivery");
        assert_eq!(delivery.message.id, poison.id);
        finals.push(delivery.final_hand_out);
        std::mem::forget(delivery);
        drop(subscription);
        if finals.last() == Some(&true) {
            break;
        }
    }
    // A limit of 2 lets the message come back twice: three hand-outs, the last one, and
    // only it, flagged (if that consumer dies too, the broker dead-letters the message,
    // so workers fail its order at once).
    assert_eq!(
        finals,
        vec![false, false, true],
        "which hand-outs were flagged final, with a limit of 2"
    );
    // The crash of the flagged hand-out's consumer dead-letters it: it is never handed
    // out again, it is in the dead-letter queue.
    let mut dead = Vec::new();
    for _ in 0..50 {
        dead = queue
            .dead_letters(QueueName::Orders, 10)
            .await
            .expect("list");
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut subscription = queue
        .subscribe(QueueName::Orders, 1)
        .await
        .expect("subscribe");
    assert!(
        tokio::time::timeout(Duration::from_secs(2), subscription.next())
            .await
            .is_err(),
        "a dead-lettered message was handed out again"
    );
    drop(subscription);
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].message.id, poison.id);
    assert!(
        dead[0].reason.contains("delivery limit"),
        "the reason says why: {:?}",
        dead[0].reason
    );
    assert!(
        dead[0].dead_at > time::OffsetDateTime::UNIX_EPOCH,
        "{dead:?}"
    );
    // Listing hands the letters back; the dead-letter queue has no limit, so listing it
    // often loses nothing, and a replay brings the message back as a first attempt.
    for _ in 0..4 {
        let listed = queue
            .dead_letters(QueueName::Orders, 10)
            .await
            .expect("list");
        assert_eq!(listed.len(), 1, "listing must not lose dead letters");
    }
    assert_eq!(
        queue
            .replay_dead_letters(QueueName::Orders, None)
            .await
            .expect("replay"),
        1
    );
    let mut subscription = queue
        .subscribe(QueueName::Orders, 1)
        .await
        .expect("subscribe");
    let delivery = tokio::time::timeout(Duration::from_secs(5), subscription.next())
        .await
        .expect("replayed in time")
        .expect("delivery");
    assert_eq!(delivery.message.id, poison.id);
    delivery.ack().await.expect("ack");
    drop(subscription);
    queue.delete_topology().await.expect("cleanup");
}
