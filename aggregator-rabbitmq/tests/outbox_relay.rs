//! The outbox relay between PostgreSQL and RabbitMQ: what the store wrote with an order
//! reaches the queue with confirms; a relay that dies between publishing and marking
//! gives a duplicate, never a loss, and the consumer applies it once. Needs
//! `DATABASE_URL` and `AMQP_URL`.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use aggregator_core::conformance::{Fixture, service_url};
use aggregator_core::domain::{MessageId, OrderMessage, QueueName};
use aggregator_core::service::{ItemRequest, OrderConfig, OrderRequest, OrderService, OutboxRelay};
use aggregator_core::traits::{OrderQueue, RetryPolicy};
use aggregator_core::{Clock, ManualClock, StockStore};
use aggregator_postgres::testing::TestDatabase;
use aggregator_rabbitmq::{RabbitConfig, RabbitQueue};
use time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_publish_and_mark_duplicates_and_the_consumer_applies_once() {
    let Some(amqp_url) = service_url("AMQP_URL") else {
        return;
    };
    let Some(database) = TestDatabase::create(10).await else {
        return;
    };
    let pg = database.store.clone();
    let store: Arc<dyn StockStore> = Arc::new(pg.clone());

    let mut config = RabbitConfig::new(amqp_url);
    config.prefix = format!("test.{}.", uuid::Uuid::now_v7().simple());
    config.retry = RetryPolicy::new(vec![StdDuration::from_millis(100)]).expect("policy");
    let rabbit = RabbitQueue::connect(config).await.expect("connect");
    let queue: Arc<dyn OrderQueue> = Arc::new(rabbit.clone());

    let fx = Fixture::new(store.as_ref(), 10, 0).await;
    let clock = ManualClock::new(fx.now);
    let clock_arc = Arc::new(clock.clone());
    let orders = OrderService::new(
        store.clone(),
        store.clone(),
        store.clone(),
        clock_arc.clone(),
        OrderConfig::default(),
    )
    .expect("service");
    let mut details = fx.details(1);
    details.customer = aggregator_core::domain::CustomerId::new("relay-test").expect("customer");
    let placed = orders
        .place(
            &OrderRequest {
                details,
                items: vec![ItemRequest {
                    item: fx.product.to_string(),
                    quantity: 1,
                    unit_price: None,
                }],
            },
            None,
        )
        .await
        .expect("placed");

    // The relay "dies" after publishing: claim and publish by hand, never mark.
    let lease = Duration::seconds(30);
    let claimed = store
        .claim_outbox(clock.now(), lease, 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    queue
        .publish(claimed[0].queue, &claimed[0].message)
        .await
        .expect("published");
    // A new relay after the lease: publishes it again (the duplicate) and marks it.
    clock.advance(lease + Duration::seconds(1));
    let relay =
        OutboxRelay::new(store.clone(), Arc::clone(&queue), clock_arc, 10, lease).expect("relay");
    assert_eq!(relay.run_once().await.expect("relayed"), 1);
    assert_eq!(relay.run_once().await.expect("nothing left"), 0);

    // The consumer sees it twice, under one message id (a consumer takes the second as a
    // duplicate by the order's state: the processor's redelivery tests).
    let mut subscription = queue
        .subscribe(QueueName::Orders, 10)
        .await
        .expect("subscribe");
    let mut seen: Vec<MessageId> = Vec::new();
    for _ in 0..2 {
        let delivery = tokio::time::timeout(StdDuration::from_secs(10), subscription.next())
            .await
            .expect("delivered")
            .expect("delivery");
        assert_eq!(
            delivery.message.decode::<OrderMessage>().expect("decodes"),
            OrderMessage::ProcessOrder {
                order: placed.order.id
            }
        );
        seen.push(delivery.message.id);
        delivery.ack().await.expect("ack");
    }
    assert_eq!(
        seen,
        vec![claimed[0].message.id; 2],
        "a duplicate, never a loss"
    );

    drop(subscription);
    rabbit.delete_topology().await.expect("cleanup");
    database.finish().await;
}
