use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use aggregator_core::OrderQueue;
use aggregator_core::domain::OrderMessage;
use aggregator_core::service::{
    BatchConfig, CommitFeed, GroupCommit, OrderConfig, OrderService, OutboxRelay,
};
use aggregator_core::traits::{StockStore, StoreRoles};
use time::Duration;

use super::support::{BrokenMarks, FlakyQueue, World, drain, orders_in, request};

#[tokio::test]
async fn the_relay_publishes_what_the_store_wrote_and_marks_it() {
    let world = World::new(10, 0, 0).await;
    let placed = world
        .orders()
        .place(&request("c1", &[("LAPTOP-001", 1)]), None)
        .await
        .expect("placed");
    let queue = Arc::new(FlakyQueue {
        inner: world.queue.clone(),
        down: AtomicBool::new(true),
    });
    let relay = OutboxRelay::new(
        world.dyn_store(),
        queue.clone(),
        world.clock(),
        10,
        Duration::seconds(30),
    )
    .expect("relay");
    assert!(
        relay
            .run_once()
            .await
            .expect_err("broker down")
            .is_retryable()
    );
    assert!(drain(queue.as_ref()).await.is_empty());
    queue.down.store(false, Ordering::SeqCst);
    assert_eq!(
        relay.run_once().await.expect("leased"),
        0,
        "still leased to the failed attempt"
    );
    world.clock.advance(Duration::seconds(31));
    assert_eq!(relay.run_once().await.expect("published"), 1);
    let messages = drain(queue.as_ref()).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0].decode::<OrderMessage>(),
        Ok(OrderMessage::ProcessOrder {
            order: placed.order.id
        })
    );
    world.clock.advance(Duration::minutes(5));
    assert_eq!(
        relay.run_once().await.expect("nothing left"),
        0,
        "marked as sent"
    );
    assert!(
        OutboxRelay::new(
            world.dyn_store(),
            queue.clone(),
            world.clock(),
            0,
            Duration::seconds(1)
        )
        .is_err()
    );
    assert!(OutboxRelay::new(world.dyn_store(), queue, world.clock(), 1, Duration::ZERO).is_err());
}

#[tokio::test]
async fn a_crash_between_publish_and_mark_duplicates_and_never_loses() {
    let world = World::new(10, 0, 0).await;
    let outbox = Arc::new(BrokenMarks::over(&world.store));
    outbox.broken.store(true, Ordering::SeqCst);
    let orders = aggregator_core::service::OrderService::new(
        world.dyn_store(),
        world.dyn_store(),
        world.dyn_store(),
        world.clock(),
        Default::default(),
    )
    .expect("service");
    orders
        .place(&request("c1", &[("LAPTOP-001", 1)]), None)
        .await
        .expect("placed");
    let queue: Arc<dyn OrderQueue> = Arc::new(world.queue.clone());
    let relay = OutboxRelay::new(
        outbox.clone(),
        Arc::clone(&queue),
        world.clock(),
        10,
        Duration::seconds(30),
    )
    .expect("relay");
    relay.run_once().await.expect_err("mark failed");
    outbox.broken.store(false, Ordering::SeqCst);
    world.clock.advance(Duration::seconds(31));
    assert_eq!(relay.run_once().await.expect("republished"), 1);
    let messages = drain(queue.as_ref()).await;
    assert_eq!(messages.len(), 2, "a duplicate, never a loss");
    assert_eq!(
        messages[0].id, messages[1].id,
        "the duplicate has the same id"
    );
    // Consumers take a duplicate as such by the order's state (see the processor's
    // redelivery tests), not by remembering message ids.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticks_drain_the_outbox_in_full_batches_and_commits_are_published_at_once() {
    let world = World::new(10, 0, 0).await;
    let orders = world.orders();
    for n in 0..5 {
        orders
            .place(&request(&format!("c{n}"), &[("LAPTOP-001", 1)]), None)
            .await
            .expect("placed");
    }
    let queue: Arc<dyn OrderQueue> = Arc::new(world.queue.clone());
    let relay = OutboxRelay::new(
        world.dyn_store(),
        Arc::clone(&queue),
        world.clock(),
        2,
        Duration::seconds(30),
    )
    .expect("relay");
    let feed = Arc::new(CommitFeed::default());
    let (trigger, signal) = aggregator_core::service::shutdown_pair();
    let running = {
        let feed = feed.clone();
        tokio::spawn(async move {
            relay
                .run(std::time::Duration::from_secs(3600), feed, signal)
                .await
        })
    };
    // The first tick fires at once and drains all five in rounds of two, one, ...
    // (each round's orders in one message).
    let mut published = Vec::new();
    for _ in 0..50 {
        published.extend(orders_in(&drain(queue.as_ref()).await));
        if published.len() >= 5 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        published.len(),
        5,
        "a full batch is followed by another at once"
    );
    // New commits through a group commit that feeds the relay: published long before
    // the hour-long interval, each found by its id.
    let roles = StoreRoles::of(world.dyn_store());
    let batched = GroupCommit::new(roles.commits.clone(), BatchConfig::default())
        .expect("group commit")
        .with_commit_feed(feed.clone());
    let committing: Arc<dyn StockStore> = Arc::new(StoreRoles {
        commits: Arc::new(batched),
        ..roles
    });
    let fed = OrderService::new(
        committing.clone(),
        committing.clone(),
        committing,
        world.clock(),
        OrderConfig::default(),
    )
    .expect("service");
    let mut placed = Vec::new();
    for n in 0..3 {
        let order = fed
            .place(&request(&format!("late{n}"), &[("LAPTOP-001", 1)]), None)
            .await
            .expect("placed");
        placed.push(order.order.id);
    }
    let mut published = Vec::new();
    for _ in 0..50 {
        published.extend(orders_in(&drain(queue.as_ref()).await));
        if published.len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    published.sort();
    placed.sort();
    assert_eq!(published, placed, "each commit was published once, by id");
    assert!(feed.take().is_empty(), "the relay took what it was handed");
    trigger.trigger();
    running.await.expect("task").expect("stopped cleanly");
}
