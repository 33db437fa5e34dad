//! Webhooks over the in-memory backends: the dispatcher turns order events into one
//! delivery per interested endpoint, exactly once per position; the deliverer posts
//! each, counts outcomes on the endpoint, retries, disables and dead-letters.

use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use aggregator_core::clock::SystemClock;
use aggregator_core::conformance::Fixture;
use aggregator_core::domain::{
    Message, OrderStatus, QueueName, StatusChange, Transition, WebhookEndpoint, WebhookId,
};
use aggregator_core::error::{Error, Result};
use aggregator_core::memory::{InMemoryOrderQueue, InMemoryStockStore};
use aggregator_core::prelude::*;
use aggregator_core::service::{
    DispatchRound, OutboxRelay, Settled, WebhookDeliverer, WebhookDelivery, WebhookDispatcher,
    WebhookOutcome, WebhookSender,
};
use aggregator_core::traits::{Delivery, RetryPolicy};
use async_trait::async_trait;
use time::OffsetDateTime;

fn endpoint(customer: Option<&str>, statuses: Vec<OrderStatus>) -> WebhookEndpoint {
    WebhookEndpoint::new(
        customer.map(|c| aggregator_core::domain::CustomerId::new(c).expect("id")),
        "https://hooks.example.com/orders",
        "whsec-0123456789abcdef",
        statuses,
        // Registered before the fixture's orders (whose clock is a whole second).
        OffsetDateTime::now_utc() - time::Duration::hours(1),
    )
}

fn queue() -> InMemoryOrderQueue {
    InMemoryOrderQueue::new(
        RetryPolicy::new(vec![
            StdDuration::from_millis(5),
            StdDuration::from_millis(5),
        ])
        .expect("policy"),
    )
}

async fn next(queue: &InMemoryOrderQueue) -> Delivery {
    let mut subscription = queue
        .subscribe(QueueName::Webhooks, 1)
        .await
        .expect("subscribe");
    tokio::time::timeout(StdDuration::from_secs(5), subscription.next())
        .await
        .expect("a delivery within 5 s")
        .expect("delivery")
}

#[tokio::test]
async fn each_event_goes_once_to_every_endpoint_that_wants_it() {
    let store = Arc::new(InMemoryStockStore::new());
    let fx = Fixture::new(store.as_ref(), 10, 0).await;
    let first_customer = fx.details(1).customer.to_string();
    let cancellations = endpoint(Some(&first_customer), vec![OrderStatus::Cancelled]);
    let everything = endpoint(None, Vec::new());
    let elsewhere = endpoint(Some("someone-else"), Vec::new());
    for registered in [&cancellations, &everything, &elsewhere] {
        store.create_webhook(registered).await.expect("registered");
    }
    let first = fx
        .place(store.as_ref(), &fx.vendor_a, 1, 1)
        .await
        .expect("placed")
        .order;
    store
        .transition(
            &Transition {
                order: first.id,
                expected_version: 1,
                change: StatusChange::Cancel,
                reason: "changed my mind".into(),
                at: fx.now,
            },
            &[],
        )
        .await
        .expect("cancelled");
    fx.place(store.as_ref(), &fx.vendor_a, 1, 2)
        .await
        .expect("placed");

    let queue = queue();
    let dispatcher =
        WebhookDispatcher::new(store.clone(), Arc::new(SystemClock), 100).expect("dispatcher");
    let relay = OutboxRelay::new(
        store.clone(),
        Arc::new(queue.clone()),
        Arc::new(SystemClock),
        100,
        time::Duration::seconds(30),
    )
    .expect("relay");
    assert_eq!(
        dispatcher.run_once().await.expect("round"),
        DispatchRound {
            events: 3,
            queued: 4
        },
        "three events to the global endpoint, the cancellation also to the first customer's"
    );
    // The relay publishes them from the outbox (with the cancellation's own message to
    // the vendor on order_queue).
    assert_eq!(relay.run_once().await.expect("published"), 5);
    let mut seen = Vec::new();
    for _ in 0..4 {
        let delivery = next(&queue).await;
        let message: WebhookDelivery = delivery.message.decode().expect("decodes");
        assert_eq!(
            message.delivery_id,
            format!("{}@{}", message.event.id, message.endpoint)
        );
        seen.push((message.endpoint, message.event.change.to));
        delivery.ack().await.expect("ack");
    }
    seen.sort();
    let mut expected = vec![
        (everything.id, OrderStatus::Reserved),
        (everything.id, OrderStatus::Cancelled),
        (everything.id, OrderStatus::Reserved),
        (cancellations.id, OrderStatus::Cancelled),
    ];
    expected.sort();
    assert_eq!(seen, expected);
    assert_eq!(
        dispatcher.run_once().await.expect("again"),
        DispatchRound::default(),
        "nothing is dispatched twice from the same position"
    );
    assert!(store.webhook_cursor().await.expect("cursor").is_some());
    assert!(WebhookDispatcher::new(store, Arc::new(SystemClock), 0).is_err());
}

/// Records what it was asked to send; answers per its mode.
#[derive(Debug, Default)]
struct FakeReceiver {
    sent: Mutex<Vec<(WebhookId, String, Vec<u8>)>>,
    failing: Mutex<Option<Error>>,
}

#[async_trait]
impl WebhookSender for FakeReceiver {
    async fn send(&self, endpoint: &WebhookEndpoint, delivery_id: &str, body: &[u8]) -> Result<()> {
        if let Some(error) = self.failing.lock().expect("lock").clone() {
            return Err(error);
        }
        self.sent
            .lock()
            .expect("lock")
            .push((endpoint.id, delivery_id.to_owned(), body.to_vec()));
        Ok(())
    }
}

async fn publish(queue: &InMemoryOrderQueue, endpoint: WebhookId, store: &InMemoryStockStore) {
    let fx = Fixture::new(store, 10, 0).await;
    fx.place(store, &fx.vendor_a, 1, 1).await.expect("placed");
    let event = match store
        .order_events_after(None, Some(&fx.details(1).customer), 1)
        .await
        .expect("read")
    {
        aggregator_core::domain::EventRead::Events(mut events) => events.remove(0),
        other => panic!("{other:?}"),
    };
    let message = Message::json(&WebhookDelivery::new(endpoint, event)).expect("message");
    queue
        .publish(QueueName::Webhooks, &message)
        .await
        .expect("published");
}

#[tokio::test]
async fn deliveries_are_posted_counted_retried_disabled_and_dead_lettered() {
    let store = Arc::new(InMemoryStockStore::new());
    let receiver = Arc::new(FakeReceiver::default());
    let deliverer = WebhookDeliverer::new(store.clone(), receiver.clone(), 2).expect("deliverer");
    let hook = endpoint(None, Vec::new());
    store.create_webhook(&hook).await.expect("registered");
    let queue = queue();

    publish(&queue, hook.id, &store).await;
    assert_eq!(
        deliverer.settle(next(&queue).await).await.expect("settled"),
        Settled::Done(WebhookOutcome::Delivered)
    );
    let (to, delivery_id, body) = receiver.sent.lock().expect("lock")[0].clone();
    assert_eq!(to, hook.id);
    assert!(
        delivery_id.ends_with(&format!("@{}", hook.id)),
        "{delivery_id}"
    );
    let body: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(body["type"], "order.reserved");
    assert_eq!(body["version"], 1);

    *receiver.failing.lock().expect("lock") = Some(Error::transient("receiver", "HTTP 500"));
    publish(&queue, hook.id, &store).await;
    let settled = deliverer.settle(next(&queue).await).await.expect("settled");
    assert!(
        matches!(settled, Settled::Retrying { attempt: 2, .. }),
        "{settled:?}"
    );
    assert_eq!(
        store
            .webhook(hook.id)
            .await
            .expect("hook")
            .consecutive_failures,
        1
    );
    let settled = deliverer.settle(next(&queue).await).await.expect("retried");
    assert!(
        matches!(settled, Settled::Retrying { attempt: 3, .. }),
        "{settled:?}"
    );
    let disabled = store.webhook(hook.id).await.expect("hook");
    assert!(!disabled.enabled, "two failures in a row disable it");
    let settled = deliverer.settle(next(&queue).await).await.expect("third");
    assert!(
        matches!(&settled, Settled::DeadLettered { reason } if reason.contains("disabled")),
        "{settled:?}"
    );
    let dead = queue
        .dead_letters(QueueName::Webhooks, 10)
        .await
        .expect("dead letters");
    assert_eq!(dead.len(), 1, "replayable from webhook_queue.dlq");

    *receiver.failing.lock().expect("lock") = Some(Error::invalid("url", "resolves to 10.0.0.1"));
    store.enable_webhook(hook.id).await.expect("enabled");
    publish(&queue, hook.id, &store).await;
    let settled = deliverer.settle(next(&queue).await).await.expect("refused");
    assert!(
        matches!(&settled, Settled::DeadLettered { reason } if reason.contains("10.0.0.1")),
        "a refused destination is not retried: {settled:?}"
    );

    store.delete_webhook(hook.id).await.expect("deleted");
    publish(&queue, hook.id, &store).await;
    assert_eq!(
        deliverer.settle(next(&queue).await).await.expect("dropped"),
        Settled::Done(WebhookOutcome::Dropped)
    );
    queue
        .publish(
            QueueName::Webhooks,
            &Message::json(&"not a delivery").expect("json"),
        )
        .await
        .expect("published");
    assert!(matches!(
        deliverer
            .settle(next(&queue).await)
            .await
            .expect("malformed"),
        Settled::DeadLettered { .. }
    ));
    assert!(WebhookDeliverer::new(store, receiver, 0).is_err());
}

#[tokio::test]
async fn a_disabled_endpoint_still_gets_its_deliveries_queued_and_a_new_one_no_older_events() {
    let store = Arc::new(InMemoryStockStore::new());
    let fx = Fixture::new(store.as_ref(), 10, 0).await;
    let disabled = endpoint(None, Vec::new());
    store.create_webhook(&disabled).await.expect("registered");
    let failed = aggregator_core::domain::DeliveryOutcome::Failed("HTTP 500".into());
    let after = store
        .record_delivery(disabled.id, &failed, 1)
        .await
        .expect("recorded");
    assert!(!after.enabled);
    fx.place(store.as_ref(), &fx.vendor_a, 1, 1)
        .await
        .expect("placed");
    // Registered after that order's change: it does not want it.
    let mut later = endpoint(None, Vec::new());
    later.created_at = OffsetDateTime::now_utc() + time::Duration::seconds(5);
    store.create_webhook(&later).await.expect("registered");
    let dispatcher =
        WebhookDispatcher::new(store.clone(), Arc::new(SystemClock), 100).expect("dispatcher");
    assert_eq!(
        dispatcher.run_once().await.expect("round"),
        DispatchRound {
            events: 1,
            queued: 1
        },
        "queued for the disabled endpoint (to be parked until it is enabled), not the new one"
    );
}

#[tokio::test]
async fn without_endpoints_the_dispatcher_reads_nothing() {
    let store = Arc::new(InMemoryStockStore::new());
    let fx = Fixture::new(store.as_ref(), 10, 0).await;
    fx.place(store.as_ref(), &fx.vendor_a, 1, 1)
        .await
        .expect("placed");
    let dispatcher =
        WebhookDispatcher::new(store.clone(), Arc::new(SystemClock), 100).expect("dispatcher");
    assert_eq!(
        dispatcher.run_once().await.expect("round"),
        DispatchRound::default()
    );
    assert_eq!(store.webhook_cursor().await.expect("cursor"), None);
}

/// An endpoint registered by a host whose clock runs an hour ahead of the one that
/// stamped the events still gets every event after its registration: log positions
/// decide, not two hosts' clocks.
#[tokio::test]
async fn an_endpoint_registered_on_a_host_whose_clock_runs_ahead_misses_nothing() {
    let store = Arc::new(InMemoryStockStore::new());
    let fx = Fixture::new(store.as_ref(), 10, 0).await;
    let mut ahead = endpoint(None, Vec::new());
    ahead.created_at = OffsetDateTime::now_utc() + time::Duration::hours(1);
    store.create_webhook(&ahead).await.expect("registered");
    fx.place(store.as_ref(), &fx.vendor_a, 1, 1)
        .await
        .expect("placed after the registration");
    let dispatcher =
        WebhookDispatcher::new(store.clone(), Arc::new(SystemClock), 100).expect("dispatcher");
    assert_eq!(
        dispatcher.run_once().await.expect("round"),
        DispatchRound {
            events: 1,
            queued: 1
        },
        "the placement after the registration is delivered"
    );
}

/// An endpoint registered while a dispatcher is between reading the endpoints and
/// reading the events gets the events after its registration from that very round (the
/// dispatcher's position moves past them, so a later round could not).
#[tokio::test]
async fn an_endpoint_registered_during_a_dispatch_round_gets_the_events_after_it() {
    let memory = Arc::new(InMemoryStockStore::new());
    let events = Arc::new(super::support::RacingEventLog::over(&memory));
    let store = Arc::new(aggregator_core::traits::StoreRoles {
        events: events.clone(),
        ..aggregator_core::traits::StoreRoles::of(memory.clone())
    });
    let fx = Fixture::new(memory.as_ref(), 10, 0).await;
    store
        .create_webhook(&endpoint(Some("someone-else"), Vec::new()))
        .await
        .expect("an endpoint, so the dispatcher reads");
    let placed = fx
        .place(memory.as_ref(), &fx.vendor_a, 1, 1)
        .await
        .expect("placed")
        .order;
    let newcomer = endpoint(None, Vec::new());
    let cancel = Transition {
        order: placed.id,
        expected_version: placed.version,
        change: StatusChange::Cancel,
        reason: "after the newcomer registered".into(),
        at: fx.now,
    };
    *events.before_read.lock().expect("lock") = Some((newcomer.clone(), cancel));
    let dispatcher =
        WebhookDispatcher::new(store.clone(), Arc::new(SystemClock), 100).expect("dispatcher");
    assert_eq!(
        dispatcher.run_once().await.expect("round"),
        DispatchRound {
            events: 2,
            queued: 1
        },
        "the cancel, logged after the newcomer registered, goes to it; the placement before does not"
    );
    let queued = memory
        .claim_outbox(
            OffsetDateTime::now_utc() + time::Duration::days(1),
            time::Duration::seconds(30),
            100,
        )
        .await
        .expect("claim");
    let deliveries: Vec<WebhookDelivery> = queued
        .iter()
        .filter(|m| m.queue == QueueName::Webhooks)
        .map(|m| m.message.decode().expect("delivery"))
        .collect();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].endpoint, newcomer.id);
    assert_eq!(deliveries[0].event.change.to, OrderStatus::Cancelled);
}
