use aggregator_core::Clock;
use aggregator_core::domain::OrderStatus;
use aggregator_core::prelude::*;
use aggregator_core::service::Sweeper;
use time::Duration;

use super::support::{World, request};

#[tokio::test]
async fn the_sweeper_expires_overdue_orders_in_batches_once() {
    let world = World::new(10, 0, 0).await;
    let service = world.orders();
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(
            service
                .place(&request(&format!("c{n}"), &[("LAPTOP-001", 1)]), None)
                .await
                .expect("placed")
                .order
                .id,
        );
    }
    let sweeper = Sweeper::new(world.dyn_store(), world.clock(), 2).expect("sweeper");
    assert!(sweeper.run_once().await.expect("early").is_empty());
    world
        .clock
        .advance(service.config().reservation_ttl + Duration::seconds(1));
    let expired = sweeper.run_once().await.expect("sweep");
    assert_eq!(expired.orders.len(), 5, "all batches are swept");
    assert_eq!(world.reserved("VendorA", "LAPTOP-a-001"), 0);
    for id in ids {
        assert_eq!(
            world.store.order(id).await.expect("order").status,
            OrderStatus::Expired
        );
    }
    assert!(sweeper.run_once().await.expect("again").is_empty());
    assert!(Sweeper::new(world.dyn_store(), world.clock(), 0).is_err());
}

#[tokio::test]
async fn the_sweeper_forgets_order_events_past_their_retention_and_no_more() {
    use aggregator_core::domain::{CustomerId, EventRead};
    let world = World::new(10, 0, 0).await;
    let service = world.orders();
    service
        .place(&request("kept-a-day", &[("LAPTOP-001", 1)]), None)
        .await
        .expect("placed");
    let sweeper = Sweeper::new(world.dyn_store(), world.clock(), 10)
        .expect("sweeper")
        .with_event_retention(world.dyn_store(), Duration::hours(24))
        .expect("retention");
    let customer = CustomerId::new("kept-a-day").expect("id");
    let events = || async {
        match world
            .store
            .order_events_after(None, Some(&customer), 10)
            .await
            .expect("read")
        {
            EventRead::Events(events) => events.len(),
            EventRead::Gone { .. } => panic!("reading from the start is never gone"),
        }
    };
    world.clock.advance(Duration::hours(23));
    assert_eq!(sweeper.prune_events().await.expect("prune"), 0, "not yet");
    assert_eq!(events().await, 1);
    world.clock.advance(Duration::hours(2));
    assert!(sweeper.prune_events().await.expect("prune") >= 1);
    assert_eq!(events().await, 0, "forgotten after a day");
    let zero = Sweeper::new(world.dyn_store(), world.clock(), 10)
        .expect("sweeper")
        .with_event_retention(world.dyn_store(), Duration::ZERO);
    assert!(zero.is_err(), "a retention must be positive");
}

/// A cancellation whose message died (say, dead-lettered after every worker holding it
/// died) is queued again by the sweeper once it has waited past the requeue time since
/// it was last queued; one the vendor confirmed never is.
#[tokio::test]
async fn the_sweeper_queues_again_cancellations_pending_too_long() {
    use aggregator_core::domain::OrderMessage;
    let world = World::new(10, 0, 0).await;
    let service = world.orders();
    let placed = service
        .place(&request("c1", &[("LAPTOP-001", 1)]), None)
        .await
        .expect("placed");
    service
        .cancel(placed.order.id, "", &aggregator_core::service::Scope::All)
        .await
        .expect("cancelled");
    let killed_at = world.clock.now();
    // The relay publishes the cancellation; then it is lost.
    let drain = || async {
        let claimed = world
            .store
            .claim_outbox(world.later(86_400), Duration::seconds(30), 100)
            .await
            .expect("claim");
        let ids: Vec<_> = claimed.iter().map(|m| m.message.id).collect();
        world.store.mark_outbox_sent(&ids).await.expect("mark");
        claimed
            .iter()
            .filter_map(|m| m.message.decode::<OrderMessage>().ok())
            .filter(|m| matches!(m, OrderMessage::CancelAtVendor { .. }))
            .collect::<Vec<_>>()
    };
    assert_eq!(drain().await.len(), 1);
    let sweeper = Sweeper::new(world.dyn_store(), world.clock(), 10)
        .expect("sweeper")
        .with_cancellation_requeue_after(Duration::minutes(10))
        .expect("requeue after");
    assert_eq!(sweeper.requeue_cancellations().await.expect("early"), 0);
    world.clock.advance(Duration::minutes(10));
    sweeper.run_once().await.expect("sweep");
    let again = drain().await;
    assert!(
        matches!(
            again.as_slice(),
            [OrderMessage::CancelAtVendor { order, killed_at: Some(at), .. }]
                if *order == placed.order.id && *at == killed_at
        ),
        "queued again with the time its key died: {again:?}"
    );
    assert_eq!(
        sweeper.requeue_cancellations().await.expect("same round"),
        0,
        "not again until another requeue time passes"
    );
    let OrderMessage::CancelAtVendor {
        vendor,
        idempotency_key,
        ..
    } = &again[0]
    else {
        panic!("a cancellation");
    };
    world
        .store
        .vendor_cancellation_done(vendor, idempotency_key)
        .await
        .expect("done");
    world.clock.advance(Duration::hours(1));
    assert_eq!(sweeper.requeue_cancellations().await.expect("done"), 0);
    assert!(
        Sweeper::new(world.dyn_store(), world.clock(), 10)
            .expect("sweeper")
            .with_cancellation_requeue_after(Duration::ZERO)
            .is_err()
    );
}
