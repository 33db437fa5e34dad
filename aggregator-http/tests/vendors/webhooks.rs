//! Webhooks over HTTP to the mock receiver (which checks signatures with its own HMAC,
//! as docs/API.md tells integrators): the SSRF guard, signatures, failures; and the
//! whole path from order events to the receiver through the dispatcher, the queue and
//! the deliverer, through a receiver outage and a receiver that fails until replayed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aggregator_core::clock::SystemClock;
use aggregator_core::conformance::Fixture;
use aggregator_core::domain::{CustomerId, QueueName, StatusChange, Transition, WebhookEndpoint};
use aggregator_core::error::Error;
use aggregator_core::memory::{InMemoryOrderQueue, InMemoryStockStore};
use aggregator_core::service::{
    CommitFeed, ConsumerConfig, OutboxRelay, WebhookDeliverer, WebhookDispatcher, WebhookSender,
    shutdown_pair,
};
use aggregator_core::traits::RetryPolicy;
use aggregator_core::traits::{OrderQueue, StockStore};
use aggregator_http::webhooks::{HttpWebhookSender, WebhookSenderConfig};
use mock_vendors::{ReceiverMode, WebhookReceiver};
use time::OffsetDateTime;

const SECRET: &str = "whsec-test-0123456789abcdef";

fn endpoint(url: &str, secret: &str, customer: Option<&CustomerId>) -> WebhookEndpoint {
    WebhookEndpoint::new(
        customer.cloned(),
        url,
        secret,
        Vec::new(),
        // Registered before the fixture's orders (whose clock is a whole second).
        OffsetDateTime::now_utc() - time::Duration::hours(1),
    )
}

fn local() -> HttpWebhookSender {
    HttpWebhookSender::new(WebhookSenderConfig {
        timeout: Duration::from_secs(2),
        allow_private: true,
    })
}

#[tokio::test]
async fn deliveries_are_signed_refused_inside_the_network_and_fail_on_errors() {
    let receiver = WebhookReceiver::spawn_local(SECRET)
        .await
        .expect("receiver");
    let hook = endpoint(&receiver.url(), SECRET, None);
    let body = br#"{"type":"order.confirmed"}"#;

    let guarded = HttpWebhookSender::new(WebhookSenderConfig::default());
    let refused = guarded
        .send(&hook, "d-1", body)
        .await
        .expect_err("127.0.0.1 is refused by default");
    assert!(matches!(refused, Error::Invalid { .. }), "{refused}");
    assert!(
        refused.to_string().contains("--webhook-allow-private"),
        "{refused}"
    );
    assert_eq!(receiver.attempts(), 0, "nothing was sent");

    local().send(&hook, "d-1", body).await.expect("delivered");
    let accepted = receiver.accepted();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].id, "d-1");
    assert_eq!(accepted[0].body["type"], "order.confirmed");
    assert_eq!(receiver.forged(), 0, "the receiver's own check passed");

    let wrong_secret = endpoint(&receiver.url(), "whsec-not-the-shared-one", None);
    let error = local()
        .send(&wrong_secret, "d-2", body)
        .await
        .expect_err("forged");
    assert!(error.to_string().contains("401"), "{error}");
    assert_eq!(
        receiver.forged(),
        1,
        "the documented check rejects a bad signature"
    );

    receiver.set_mode(ReceiverMode::Fail(500));
    let error = local().send(&hook, "d-3", body).await.expect_err("500");
    assert!(
        matches!(
            &error,
            Error::Unavailable {
                retryable: true,
                ..
            }
        ) && error.to_string().contains("500"),
        "{error}"
    );
    let url = receiver.url();
    receiver.stop().await;
    let gone = endpoint(&url, SECRET, None);
    let error = local().send(&gone, "d-4", body).await.expect_err("closed");
    assert!(error.to_string().contains("could not connect"), "{error}");
}

/// The dispatcher and the deliverer running in the background until the trigger fires.
fn start(
    store: &Arc<dyn StockStore>,
    queue: &Arc<dyn OrderQueue>,
) -> aggregator_core::service::ShutdownTrigger {
    let dispatcher =
        WebhookDispatcher::new(store.clone(), Arc::new(SystemClock), 100).expect("dispatcher");
    let relay = OutboxRelay::new(
        store.clone(),
        queue.clone(),
        Arc::new(SystemClock),
        100,
        time::Duration::seconds(30),
    )
    .expect("relay");
    let deliverer = WebhookDeliverer::new(store.clone(), Arc::new(local()), 50).expect("deliverer");
    let (trigger, signal) = shutdown_pair();
    let stop = signal.clone();
    tokio::spawn(async move { dispatcher.run(Duration::from_millis(20), stop).await });
    let stop = signal.clone();
    tokio::spawn(async move {
        relay
            .run(
                Duration::from_millis(20),
                Arc::new(CommitFeed::default()),
                stop,
            )
            .await
    });
    let queue = queue.clone();
    let config = ConsumerConfig {
        concurrency: 8,
        grace: Duration::from_secs(5),
    };
    tokio::spawn(async move { deliverer.run(queue, config, signal).await });
    trigger
}

/// Waits (at most 15 s) until `done` holds.
async fn wait_until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done().await {
        assert!(Instant::now() < deadline, "{what} within 15 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn distinct_ids(receiver: &WebhookReceiver) -> BTreeMap<String, u32> {
    let mut by_id = BTreeMap::new();
    for delivery in receiver.accepted() {
        *by_id.entry(delivery.id).or_default() += 1;
    }
    by_id
}

/// Six attempts over about 1.5 s: enough that the outage below ends before any
/// delivery runs out of attempts, short enough to wait for the dead letter.
fn quick_retries() -> RetryPolicy {
    RetryPolicy::new(
        [50, 100, 200, 400, 800]
            .into_iter()
            .map(Duration::from_millis)
            .collect(),
    )
    .expect("policy")
}

#[tokio::test]
async fn order_events_reach_the_receiver_once_each_through_outages_in_memory() {
    let store: Arc<dyn StockStore> = Arc::new(InMemoryStockStore::new());
    let queue: Arc<dyn OrderQueue> = Arc::new(InMemoryOrderQueue::new(quick_retries()));
    deliveries_through_outages(store, queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_events_reach_the_receiver_once_each_through_outages_on_postgres_and_rabbitmq() {
    let Some(amqp) = aggregator_core::conformance::service_url("AMQP_URL") else {
        return;
    };
    let Some(db) = aggregator_postgres::testing::TestDatabase::create(8).await else {
        return;
    };
    let mut config = aggregator_rabbitmq::RabbitConfig::new(amqp);
    config.prefix = format!("test.{}.", uuid::Uuid::now_v7().simple());
    config.retry = quick_retries();
    let rabbit = aggregator_rabbitmq::RabbitQueue::connect(config)
        .await
        .expect("rabbitmq");
    let store: Arc<dyn StockStore> = Arc::new(db.store.clone());
    deliveries_through_outages(store, Arc::new(rabbit.clone())).await;
    rabbit.delete_topology().await.expect("cleanup");
    db.finish().await;
}

/// Five orders changed while the receiver answers 503: retried, then each change
/// delivered once; then a delivery to a receiver that answers 500 for good:
/// dead-lettered, and delivered once replayed.
async fn deliveries_through_outages(store: Arc<dyn StockStore>, queue: Arc<dyn OrderQueue>) {
    let receiver = WebhookReceiver::spawn_local(SECRET)
        .await
        .expect("receiver");
    let hook = endpoint(&receiver.url(), SECRET, None);
    store.create_webhook(&hook).await.expect("registered");
    let fx = Fixture::new(store.as_ref(), 50, 0).await;

    // Orders placed and changed while the receiver is down.
    receiver.set_mode(ReceiverMode::Fail(503));
    let mut orders = Vec::new();
    for n in 0..5 {
        let order = fx
            .place(store.as_ref(), &fx.vendor_a, 1, n)
            .await
            .expect("placed")
            .order;
        let change = if n % 2 == 0 {
            StatusChange::Cancel
        } else {
            StatusChange::Fail
        };
        let transition = Transition {
            order: order.id,
            expected_version: 1,
            change,
            reason: "test".into(),
            at: fx.now,
        };
        store.transition(&transition, &[]).await.expect("changed");
        orders.push(order.id);
    }
    let trigger = start(&store, &queue);
    wait_until("failed attempts", async || receiver.attempts() >= 10).await;
    assert!(receiver.accepted().is_empty(), "nothing taken while down");
    assert!(
        queue
            .dead_letters(QueueName::Webhooks, 10)
            .await
            .unwrap_or_default()
            .is_empty(),
        "still retrying, not dead-lettered"
    );
    receiver.set_mode(ReceiverMode::Accept);
    wait_until("every change delivered", async || {
        distinct_ids(&receiver).len() >= 10
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let by_id = distinct_ids(&receiver);
    assert_eq!(
        by_id.len(),
        10,
        "the five orders' two changes each: {by_id:?}"
    );
    assert!(
        by_id.values().all(|&n| n == 1),
        "each delivery id arrived once: {by_id:?}"
    );
    let accepted = receiver.accepted();
    for order in &orders {
        let mut versions: Vec<i64> = accepted
            .iter()
            .filter(|d| d.body["orderId"] == order.to_string())
            .map(|d| d.body["version"].as_i64().unwrap_or_default())
            .collect();
        versions.sort_unstable();
        assert_eq!(versions, vec![1, 2], "{order}");
    }
    assert_eq!(receiver.forged(), 0);
    let hook_now = store.webhook(hook.id).await.expect("hook");
    assert_eq!(
        hook_now.consecutive_failures, 0,
        "the last delivery succeeded"
    );

    // A receiver that fails for good: dead-lettered after the last attempt, then
    // replayed from webhook_queue.dlq once it is fixed.
    receiver.set_mode(ReceiverMode::Fail(500));
    let late = fx
        .place(store.as_ref(), &fx.vendor_a, 1, 9)
        .await
        .expect("placed")
        .order;
    wait_until("the dead letter", async || {
        !queue
            .dead_letters(QueueName::Webhooks, 10)
            .await
            .unwrap_or_default()
            .is_empty()
    })
    .await;
    receiver.set_mode(ReceiverMode::Accept);
    queue
        .replay_dead_letters(QueueName::Webhooks, None)
        .await
        .expect("replayed");
    let late_id = late.id.to_string();
    wait_until("the replayed delivery", async || {
        receiver
            .accepted()
            .iter()
            .any(|d| d.body["orderId"] == late_id.as_str() && d.body["to"] == "reserved")
    })
    .await;
    trigger.trigger();
}
