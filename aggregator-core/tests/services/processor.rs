use aggregator_core::prelude::*;
use std::sync::Arc;

use aggregator_core::domain::StalenessLimit;
use aggregator_core::domain::{OrderMessage, OrderStatus};
use aggregator_core::error::Error;
use aggregator_core::service::{OrderProcessor, ProcessOutcome, Scope, vendor_key};
use aggregator_core::traits::{
    OrderQueue, VendorClient, VendorDirectory, VendorOrderOutcome, VendorShortSku,
};
use mockall::predicate::eq;

use super::support::{MockVendor, World, drain, mock_vendor, request, sku};

fn processor(world: &World, vendors: Vec<MockVendor>) -> OrderProcessor {
    let directory: VendorDirectory = vendors
        .into_iter()
        .map(|mock| Arc::new(mock) as Arc<dyn VendorClient>)
        .collect();
    let queue: Arc<dyn OrderQueue> = Arc::new(world.queue.clone());
    OrderProcessor::new(
        world.dyn_store(),
        world.dyn_store(),
        directory,
        queue,
        world.clock(),
        StalenessLimit::DEFAULT,
    )
}

fn accepting(id: &str, world: &World, times: usize) -> MockVendor {
    let mut mock = mock_vendor(id);
    let confirmed_at = world.later(5);
    let name = id.to_owned();
    mock.expect_place_order()
        .times(times)
        .returning(move |order| {
            Ok(VendorOrderOutcome::Accepted {
                vendor_order_id: format!("{name}-{}", order.idempotency_key),
                confirmed_at,
            })
        });
    mock
}

/// Handles the order's ProcessOrder message and answers the order it confirmed.
async fn confirms(
    worker: &OrderProcessor,
    order: aggregator_core::domain::OrderId,
) -> aggregator_core::domain::Order {
    let outcome = worker
        .handle(&OrderMessage::ProcessOrder { order })
        .await
        .expect("processed, not an error");
    match outcome {
        ProcessOutcome::Confirmed(order) => order,
        other => panic!("expected Confirmed, got {other:?}"),
    }
}

/// VendorA, refusing one order for lack of LAPTOP-a-001.
fn short_of_laptops_at_a() -> MockVendor {
    let mut a = mock_vendor("VendorA");
    a.expect_place_order().times(1).returning(|_| {
        Ok(VendorOrderOutcome::Refused {
            short: vec![VendorShortSku {
                sku: sku("LAPTOP-a-001"),
                available: 0,
            }],
        })
    });
    a
}

/// The messages queued for the worker directly (not through the outbox), drained and
/// decoded.
async fn queued(world: &World) -> Vec<OrderMessage> {
    drain(&world.queue)
        .await
        .iter()
        .map(|message| message.decode::<OrderMessage>().expect("decodes"))
        .collect()
}

/// The (vendor, key) of every `CancelAtVendor` the store's outbox holds (claimed and
/// marked sent, as a relay would), sorted.
async fn outbox_cancellations(world: &World) -> Vec<(String, String)> {
    let claimed = world
        .store
        .claim_outbox(world.later(86_400), time::Duration::seconds(30), 10_000)
        .await
        .expect("claim");
    let ids: Vec<_> = claimed.iter().map(|m| m.message.id).collect();
    world.store.mark_outbox_sent(&ids).await.expect("mark");
    let mut found: Vec<_> = claimed
        .iter()
        .filter_map(|m| match m.message.decode::<OrderMessage>() {
            Ok(OrderMessage::CancelAtVendor {
                vendor,
                idempotency_key,
                ..
            }) => Some((vendor.to_string(), idempotency_key)),
            _ => None,
        })
        .collect();
    found.sort();
    found
}

fn key(order: &aggregator_core::domain::Order, vendor: &str) -> (String, String) {
    (
        vendor.to_owned(),
        vendor_key(order, &super::support::vendor(vendor)),
    )
}

#[tokio::test]
async fn every_vendor_accepts_and_the_order_is_confirmed_once() {
    let world = World::new(2, 5, 0).await;
    let placed = world
        .orders()
        .place(&request("c1", &[("LAPTOP-001", 3)]), None)
        .await
        .expect("placed");
    let order_id = placed.order.id;
    let mut a = mock_vendor("VendorA");
    let expected_key = vendor_key(&placed.order, &super::support::vendor("VendorA"));
    let confirmed_at = world.later(5);
    a.expect_place_order()
        .withf(move |order| {
            order.idempotency_key == expected_key
                && order.lines.len() == 1
                && order.lines[0].sku == sku("LAPTOP-a-001")
                && order.lines[0].quantity.get() == 2
        })
        .times(1)
        .returning(move |_| {
            Ok(VendorOrderOutcome::Accepted {
                vendor_order_id: "A-1".into(),
                confirmed_at,
            })
        });
    let b = accepting("VendorB", &world, 1);
    let worker = processor(&world, vec![a, b]);
    let message = OrderMessage::ProcessOrder { order: order_id };
    match worker.handle(&message).await.expect("processed") {
        ProcessOutcome::Confirmed(order) => {
            assert_eq!(order.status, OrderStatus::Confirmed);
            assert_eq!(order.vendor_placements.len(), 2);
        }
        other => panic!("expected Confirmed, got {other:?}"),
    }
    let row = world.row("VendorA", "LAPTOP-a-001");
    assert_eq!(
        (row.reserved, row.confirmed_not_yet_reported),
        (0, 2),
        "units handed to the vendor"
    );
    // A redelivery changes nothing and calls no vendor (the mocks allow one call each).
    assert_eq!(
        worker.handle(&message).await.expect("redelivery"),
        ProcessOutcome::AlreadySettled(OrderStatus::Confirmed)
    );
}

#[tokio::test]
async fn a_short_vendor_line_is_rerouted_to_another_vendor() {
    let world = World::new(2, 5, 0).await;
    let placed = world
        .orders()
        .place(&request("c1", &[("LAPTOP-001", 2)]), None)
        .await
        .expect("placed");
    let worker = processor(
        &world,
        vec![short_of_laptops_at_a(), accepting("VendorB", &world, 1)],
    );
    let order = confirms(&worker, placed.order.id).await;
    assert!(
        order.lines[0]
            .allocations
            .iter()
            .all(|a| a.vendor.as_str() == "VendorB")
    );
    assert!(
        order
            .events
            .iter()
            .any(|e| e.reason.contains("cannot serve LAPTOP-a-001")),
        "re-route recorded"
    );
    assert_eq!(
        outbox_cancellations(&world).await,
        vec![key(&placed.order, "VendorA")],
        "the old version's key is cancelled with the re-route"
    );
    assert_eq!(world.reserved("VendorA", "LAPTOP-a-001"), 0);
    assert_eq!(
        world
            .row("VendorB", "LAPTOP-b-001")
            .confirmed_not_yet_reported,
        2
    );
}

#[tokio::test]
async fn no_alternative_fails_the_order_and_its_failure_cancels_accepted_vendors() {
    // PHONE-002 exists only at A; LAPTOP-b-001 pins a line to B.
    let world = World::new(0, 1, 1).await;
    let placed = world
        .orders()
        .place(
            &request("c1", &[("PHONE-002", 1), ("LAPTOP-b-001", 1)]),
            None,
        )
        .await
        .expect("placed");
    outbox_cancellations(&world).await;
    // A accepts; nobody cancels it directly (the mock has no cancel expectation).
    let a = accepting("VendorA", &world, 1);
    let mut b = mock_vendor("VendorB");
    b.expect_place_order()
        .times(1)
        .returning(|_| Ok(VendorOrderOutcome::Refused { short: vec![] }));
    let worker = processor(&world, vec![a, b]);
    let outcome = worker
        .handle(&OrderMessage::ProcessOrder {
            order: placed.order.id,
        })
        .await
        .expect("processed");
    let ProcessOutcome::Failed(order) = outcome else {
        panic!("expected Failed, got {outcome:?}");
    };
    assert_eq!(order.status, OrderStatus::Failed);
    assert!(
        order
            .failure_reason
            .as_deref()
            .is_some_and(|r| r.contains("VendorB")),
        "{:?}",
        order.failure_reason
    );
    assert_eq!(
        world.reserved("VendorA", "PHONE-a-002"),
        0,
        "units released"
    );
    assert_eq!(world.reserved("VendorB", "LAPTOP-b-001"), 0);
    assert_eq!(
        outbox_cancellations(&world).await,
        vec![key(&placed.order, "VendorA"), key(&placed.order, "VendorB")],
        "written with the failure, so no crash can lose them"
    );
    assert!(queued(&world).await.is_empty());
}

#[tokio::test]
async fn a_transient_vendor_failure_is_retryable_and_changes_nothing() {
    let world = World::new(2, 0, 0).await;
    let placed = world
        .orders()
        .place(&request("c1", &[("LAPTOP-001", 1)]), None)
        .await
        .expect("placed");
    let mut a = mock_vendor("VendorA");
    a.expect_place_order()
        .times(1)
        .returning(|_| Err(Error::transient("vendor VendorA", "503")));
    let worker = processor(&world, vec![a]);
    let error = worker
        .handle(&OrderMessage::ProcessOrder {
            order: placed.order.id,
        })
        .await
        .expect_err("retry later");
    assert!(error.is_retryable());
    let order = world.store.order(placed.order.id).await.expect("order");
    assert_eq!((order.status, order.version), (OrderStatus::Reserved, 1));
    assert_eq!(world.reserved("VendorA", "LAPTOP-a-001"), 1);
}

#[tokio::test]
async fn a_cancel_that_wins_the_race_cancels_the_vendor_order_through_its_outbox() {
    let world = World::new(2, 0, 0).await;
    let service = world.orders();
    let placed = service
        .place(&request("c1", &[("LAPTOP-001", 1)]), None)
        .await
        .expect("placed");
    outbox_cancellations(&world).await;
    let order_id = placed.order.id;
    let store = Arc::clone(&world.store);
    let confirmed_at = world.later(5);
    let mut a = mock_vendor("VendorA");
    // While the vendor accepts, the client cancels.
    let canceller = service.clone();
    a.expect_place_order().times(1).returning(move |_| {
        let canceller = canceller.clone();
        block_on_other_thread(async move {
            canceller
                .cancel(order_id, "client cancelled", &Scope::All)
                .await
                .expect("cancel");
        });
        Ok(VendorOrderOutcome::Accepted {
            vendor_order_id: "A-9".into(),
            confirmed_at,
        })
    });
    let worker = processor(&world, vec![a]);
    let outcome = worker
        .handle(&OrderMessage::ProcessOrder { order: order_id })
        .await
        .expect("processed");
    assert_eq!(
        outcome,
        ProcessOutcome::AlreadySettled(OrderStatus::Cancelled)
    );
    let order = store.order(order_id).await.expect("order");
    assert_eq!(order.status, OrderStatus::Cancelled);
    assert_eq!(world.reserved("VendorA", "LAPTOP-a-001"), 0);
    assert_eq!(
        world
            .row("VendorA", "LAPTOP-a-001")
            .confirmed_not_yet_reported,
        1,
        "the vendor has the unit until it cancels"
    );
    let queued = outbox_cancellations(&world).await;
    assert_eq!(
        queued,
        vec![key(&placed.order, "VendorA")],
        "the cancel queued the vendor cancellation with itself"
    );
    // The worker delivers the cancellation; the unit is free again.
    let mut a = mock_vendor("VendorA");
    a.expect_cancel_order()
        .with(eq(queued[0].1.clone()))
        .times(1)
        .returning(|_| Ok(aggregator_core::traits::CancelOutcome::Cancelled));
    let worker = processor(&world, vec![a]);
    worker
        .handle(&OrderMessage::CancelAtVendor {
            order: order_id,
            vendor: super::support::vendor("VendorA"),
            idempotency_key: queued[0].1.clone(),
            killed_at: None,
        })
        .await
        .expect("cancelled at the vendor");
    assert_eq!(
        world
            .row("VendorA", "LAPTOP-a-001")
            .confirmed_not_yet_reported,
        0
    );
}

/// Runs `work` to completion on a runtime of its own in another thread (a mock's
/// answer runs inside the caller's runtime and cannot await).
fn block_on_other_thread<F: std::future::Future<Output = ()> + Send>(work: F) {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .expect("runtime");
                runtime.block_on(work);
            })
            .join()
            .expect("other thread");
    });
}

#[tokio::test]
async fn a_stale_handler_whose_key_was_cancelled_by_a_reroute_reads_again_and_never_gives_up() {
    // Two handlers of one order: the other one re-routed it from A to B (version 2) and
    // cancelled A's version-1 key; this one reaches A with that key afterwards.
    let world = World::new(1, 1, 0).await;
    let placed = world
        .orders()
        .place(&request("c1", &[("LAPTOP-001", 1)]), None)
        .await
        .expect("placed");
    outbox_cancellations(&world).await;
    let order_id = placed.order.id;
    let store = Arc::clone(&world.store);
    let fresh_since = world.start - time::Duration::minutes(1);
    let at = world.later(1);
    let mut a = mock_vendor("VendorA");
    a.expect_place_order().times(1).returning(move |_| {
        let store = store.clone();
        block_on_other_thread(async move {
            store
                .reroute(&aggregator_core::traits::Reroute {
                    order: order_id,
                    expected_version: 1,
                    vendor: super::support::vendor("VendorA"),
                    sku: sku("LAPTOP-a-001"),
                    replacement: vec![aggregator_core::traits::PlannedAllocation {
                        vendor: super::support::vendor("VendorB"),
                        sku: sku("LAPTOP-b-001"),
                        quantity: aggregator_core::domain::Quantity::try_from(1_u32).expect("qty"),
                    }],
                    reason: "the other handler re-routed".into(),
                    at,
                    fresh_since,
                })
                .await
                .expect("rerouted");
        });
        Ok(VendorOrderOutcome::KeyCancelled)
    });
    let b = accepting("VendorB", &world, 1);
    let worker = processor(&world, vec![a, b]);
    let outcome = worker
        .handle(&OrderMessage::ProcessOrder { order: order_id })
        .await
        .expect("a cancelled key of an older version is not an error");
    let ProcessOutcome::Confirmed(order) = outcome else {
        panic!("expected Confirmed, got {outcome:?}");
    };
    assert_eq!(order.version, 3);
    assert_eq!(order.vendor_placements.len(), 1);
    assert_eq!(
        order.vendor_placements[0].idempotency_key,
        format!("{order_id}:VendorB:v2")
    );
    assert_eq!(
        outbox_cancellations(&world).await,
        vec![key(&placed.order, "VendorA")],
        "only the dead version-1 key is cancelled; B's live placement stays"
    );
}

#[tokio::test]
async fn a_live_key_cancelled_at_a_vendor_moves_that_vendors_part() {
    let world = World::new(1, 1, 0).await;
    let placed = world
        .orders()
        .place(&request("c1", &[("LAPTOP-001", 1)]), None)
        .await
        .expect("placed");
    let mut a = mock_vendor("VendorA");
    a.expect_place_order()
        .times(1)
        .returning(|_| Ok(VendorOrderOutcome::KeyCancelled));
    let b = accepting("VendorB", &world, 1);
    let worker = processor(&world, vec![a, b]);
    let outcome = worker
        .handle(&OrderMessage::ProcessOrder {
            order: placed.order.id,
        })
        .await
        .expect("processed");
    assert!(
        matches!(outcome, ProcessOutcome::Confirmed(ref order) if order.vendor_placements[0].vendor.as_str() == "VendorB"),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn giving_up_fails_the_order_and_its_failure_queues_every_vendor_cancellation() {
    let world = World::new(1, 1, 0).await;
    let placed = world
        .orders()
        .place(&request("c1", &[("LAPTOP-001", 2)]), None)
        .await
        .expect("placed");
    outbox_cancellations(&world).await;
    // No vendor is called: cancellations go out only with the failure that kills the
    // keys (a direct cancel could take back what a concurrent handler confirms).
    let worker = processor(&world, vec![mock_vendor("VendorA"), mock_vendor("VendorB")]);
    let message = OrderMessage::ProcessOrder {
        order: placed.order.id,
    };
    assert_eq!(
        worker
            .give_up(&message, &Error::transient("vendor", "kept timing out"))
            .await,
        Ok(false),
        "dead-letter it"
    );
    let order = world.store.order(placed.order.id).await.expect("order");
    assert_eq!(order.status, OrderStatus::Failed);
    assert_eq!(
        order.failure_reason.as_deref(),
        Some("gave up: vendor unavailable: kept timing out")
    );
    assert_eq!(world.reserved("VendorA", "LAPTOP-a-001"), 0);
    assert_eq!(
        outbox_cancellations(&world).await,
        vec![key(&placed.order, "VendorA"), key(&placed.order, "VendorB")]
    );
    // Giving up twice changes nothing more.
    assert_eq!(
        worker
            .give_up(&message, &Error::transient("vendor", "again"))
            .await,
        Ok(false)
    );
    assert!(outbox_cancellations(&world).await.is_empty());
    assert!(queued(&world).await.is_empty());
    // An order that is gone has nothing to give up.
    let unknown = OrderMessage::ProcessOrder {
        order: aggregator_core::domain::OrderId::new(),
    };
    assert_eq!(
        worker
            .give_up(&unknown, &Error::transient("vendor", "gone"))
            .await,
        Ok(false)
    );
}

#[tokio::test]
async fn giving_up_leaves_a_confirmed_order_and_its_vendor_orders_alone() {
    let world = World::new(1, 0, 0).await;
    let placed = world
        .orders()
        .place(&request("c1", &[("LAPTOP-001", 1)]), None)
        .await
        .expect("placed");
    let worker = processor(&world, vec![accepting("VendorA", &world, 1)]);
    let message = OrderMessage::ProcessOrder {
        order: placed.order.id,
    };
    worker.handle(&message).await.expect("confirmed");
    outbox_cancellations(&world).await;
    assert_eq!(
        worker
            .give_up(&message, &Error::transient("vendor", "a duplicate ran out"))
            .await,
        Ok(false)
    );
    let order = world.store.order(placed.order.id).await.expect("order");
    assert_eq!(order.status, OrderStatus::Confirmed);
    assert!(outbox_cancellations(&world).await.is_empty());
}

#[tokio::test]
async fn a_cancellation_out_of_attempts_is_queued_again_while_its_vendor_is_configured() {
    let world = World::new(1, 0, 0).await;
    let worker = processor(&world, vec![mock_vendor("VendorA")]);
    let message = OrderMessage::CancelAtVendor {
        order: aggregator_core::domain::OrderId::new(),
        vendor: super::support::vendor("VendorA"),
        idempotency_key: "key-1".into(),
        killed_at: None,
    };
    assert_eq!(
        worker
            .give_up(&message, &Error::transient("vendor VendorA", "down"))
            .await,
        Ok(true)
    );
    assert_eq!(
        worker
            .give_up(
                &message,
                &Error::permanent("vendor VendorA", "400: bad key")
            )
            .await,
        Ok(false),
        "refused for good: dead-lettered, not queued again in a loop"
    );
    assert_eq!(queued(&world).await, vec![message]);
    let orphan = OrderMessage::CancelAtVendor {
        order: aggregator_core::domain::OrderId::new(),
        vendor: super::support::vendor("Nobody"),
        idempotency_key: "key-2".into(),
        killed_at: None,
    };
    assert_eq!(
        worker
            .give_up(&orphan, &Error::transient("vendor Nobody", "no client"))
            .await,
        Ok(false),
        "dead-lettered for an operator"
    );
    assert!(queued(&world).await.is_empty());
}

#[tokio::test]
async fn cancel_at_vendor_messages_call_the_vendor_by_key() {
    let world = World::new(1, 0, 0).await;
    let mut a = mock_vendor("VendorA");
    a.expect_cancel_order()
        .with(eq("key-1"))
        .times(1)
        .returning(|_| Ok(aggregator_core::traits::CancelOutcome::Cancelled));
    let worker = processor(&world, vec![a]);
    let message = OrderMessage::CancelAtVendor {
        order: aggregator_core::domain::OrderId::new(),
        vendor: super::support::vendor("VendorA"),
        idempotency_key: "key-1".into(),
        killed_at: None,
    };
    assert_eq!(
        worker.handle(&message).await.expect("cancelled"),
        ProcessOutcome::CancelledAtVendor
    );
    let unknown = OrderMessage::CancelAtVendor {
        order: aggregator_core::domain::OrderId::new(),
        vendor: super::support::vendor("Nobody"),
        idempotency_key: "key-2".into(),
        killed_at: None,
    };
    assert!(matches!(
        worker.handle(&unknown).await,
        Err(ref error) if !error.is_retryable()
    ));
}

#[tokio::test]
async fn an_unknown_order_is_not_found() {
    let world = World::new(1, 0, 0).await;
    let worker = processor(&world, vec![]);
    let message = OrderMessage::ProcessOrder {
        order: aggregator_core::domain::OrderId::new(),
    };
    assert!(matches!(
        worker.handle(&message).await,
        Err(Error::NotFound { .. })
    ));
    let _ = world.store.vendors().await;
}

#[tokio::test]
async fn a_refused_sku_shared_by_two_lines_moves_both_lines_units() {
    let world = World::new(5, 5, 0).await;
    let placed = world
        .orders()
        .place(
            &request("c1", &[("LAPTOP-001", 1), ("LAPTOP-001", 2)]),
            None,
        )
        .await
        .expect("placed");
    assert!(
        placed
            .order
            .lines
            .iter()
            .all(|line| line.allocations[0].sku == sku("LAPTOP-a-001")),
        "both lines on A's SKU"
    );
    let worker = processor(
        &world,
        vec![short_of_laptops_at_a(), accepting("VendorB", &world, 1)],
    );
    let order = confirms(&worker, placed.order.id).await;
    let at_b: u32 = order
        .lines
        .iter()
        .flat_map(|line| &line.allocations)
        .filter(|a| a.vendor.as_str() == "VendorB")
        .map(|a| a.quantity.get())
        .sum();
    assert_eq!(at_b, 3, "all three units moved");
    assert_eq!(world.reserved("VendorA", "LAPTOP-a-001"), 0);
}

/// A vendor that cannot be reached at all.
fn unreachable(id: &str) -> MockVendor {
    let mut mock = mock_vendor(id);
    let component = format!("vendor {id}");
    mock.expect_place_order()
        .returning(move |_| Err(Error::transient(component.clone(), "connection refused")));
    mock
}

#[tokio::test]
async fn an_unreachable_vendor_is_waited_for_then_its_part_moves_to_a_vendor_with_stock() {
    let world = World::new(5, 5, 0).await;
    let placed = world
        .orders()
        .place(&request("c1", &[("LAPTOP-001", 2)]), None)
        .await
        .expect("placed");
    let message = OrderMessage::ProcessOrder {
        order: placed.order.id,
    };
    let worker = processor(
        &world,
        vec![unreachable("VendorA"), accepting("VendorB", &world, 1)],
    )
    .with_reroute_unavailable_after(time::Duration::seconds(20))
    .expect("bound");
    // Within the bound: retried later, nothing moves.
    world.clock.advance(time::Duration::seconds(5));
    let error = worker.handle(&message).await.expect_err("retry later");
    assert!(error.is_retryable());
    assert_eq!(world.reserved("VendorA", "LAPTOP-a-001"), 2);
    // Past it: moved to B and confirmed there.
    world.clock.advance(time::Duration::seconds(20));
    let outcome = worker.handle(&message).await.expect("moved");
    let ProcessOutcome::Confirmed(order) = outcome else {
        panic!("expected Confirmed, got {outcome:?}");
    };
    assert!(
        order
            .vendor_placements
            .iter()
            .all(|p| p.vendor.as_str() == "VendorB")
    );
    assert_eq!(world.reserved("VendorA", "LAPTOP-a-001"), 0);
    assert_eq!(
        outbox_cancellations(&world)
            .await
            .into_iter()
            .filter(|(vendor, _)| vendor == "VendorA")
            .count(),
        1,
        "A's key is cancelled in case it did take the order"
    );
}

#[tokio::test]
async fn an_unreachable_vendor_with_no_alternative_is_waited_for_not_failed() {
    let world = World::new(5, 0, 0).await;
    let placed = world
        .orders()
        .place(&request("c1", &[("LAPTOP-001", 2)]), None)
        .await
        .expect("placed");
    let worker = processor(&world, vec![unreachable("VendorA"), mock_vendor("VendorB")]);
    world.clock.advance(time::Duration::minutes(5));
    let error = worker
        .handle(&OrderMessage::ProcessOrder {
            order: placed.order.id,
        })
        .await
        .expect_err("still waiting");
    assert!(error.is_retryable());
    let order = world.store.order(placed.order.id).await.expect("order");
    assert_eq!((order.status, order.version), (OrderStatus::Reserved, 1));
}

/// Cancels a freshly placed order for one laptop and answers the `CancelAtVendor` message
/// its cancel wrote (for VendorA).
async fn cancelled_order_message(world: &World) -> OrderMessage {
    let placed = world
        .orders()
        .place(&request("c1", &[("LAPTOP-001", 1)]), None)
        .await
        .expect("placed");
    world
        .orders()
        .cancel(placed.order.id, "", &Scope::All)
        .await
        .expect("cancelled");
    let claimed = world
        .store
        .claim_outbox(world.later(86_400), time::Duration::seconds(30), 10_000)
        .await
        .expect("claim");
    claimed
        .iter()
        .filter_map(|m| m.message.decode::<OrderMessage>().ok())
        .find(|m| matches!(m, OrderMessage::CancelAtVendor { .. }))
        .expect("a cancellation was written with the cancel")
}

/// A vendor that says it never saw a key is believed only once no placement under the
/// key can still land (twice the placement timeout after the key died); before that
/// the cancellation is asked again, and it stays pending.
#[tokio::test]
async fn an_unknown_key_is_believed_only_once_no_placement_under_it_can_land() {
    let world = World::new(1, 0, 0).await;
    let message = cancelled_order_message(&world).await;
    let mut a = mock_vendor("VendorA");
    a.expect_cancel_order()
        .times(2)
        .returning(|_| Ok(aggregator_core::traits::CancelOutcome::UnknownKey));
    let worker = processor(&world, vec![a])
        .with_placement_timeout(time::Duration::seconds(60))
        .expect("timeout");
    let early = worker.handle(&message).await;
    assert!(
        matches!(early, Err(ref error) if error.is_retryable()),
        "asked again while a placement may still land: {early:?}"
    );
    let backlog = world.store.cancellation_backlog().await.expect("backlog");
    assert_eq!(backlog.pending, 1, "still pending");
    world.clock.advance(time::Duration::seconds(121));
    assert_eq!(
        worker.handle(&message).await.expect("believed now"),
        ProcessOutcome::CancelledAtVendor
    );
    let backlog = world.store.cancellation_backlog().await.expect("backlog");
    assert_eq!(backlog.pending, 0, "done");
    assert!(
        processor(&world, vec![])
            .with_placement_timeout(time::Duration::ZERO)
            .is_err()
    );
}

/// Any refusal of a cancellation is retryable, so it goes through the queue's delays
/// and then is queued again: never dead-lettered while its vendor is configured.
#[tokio::test]
async fn a_refused_cancellation_is_asked_again_and_never_given_up() {
    let world = World::new(1, 0, 0).await;
    let message = cancelled_order_message(&world).await;
    let mut a = mock_vendor("VendorA");
    a.expect_cancel_order().times(1).returning(|_| {
        Err(Error::transient(
            "vendor VendorA",
            "cancellation refused: HTTP 422",
        ))
    });
    let worker = processor(&world, vec![a]);
    let error = worker
        .handle(&message)
        .await
        .expect_err("refused this time");
    assert!(error.is_retryable());
    assert_eq!(
        worker.give_up(&message, &error).await,
        Ok(true),
        "queued again"
    );
    assert_eq!(queued(&world).await, vec![message]);
    let backlog = world.store.cancellation_backlog().await.expect("backlog");
    assert_eq!(backlog.pending, 1, "pending until the vendor confirms");
}

/// A handler sends nothing past the placement timeout from its read of the order: a
/// vendor call still running then is dropped, and the message comes back to start
/// from a fresh read.
#[tokio::test(start_paused = true)]
async fn a_placement_past_the_placement_timeout_is_dropped_and_retried() {
    let world = World::new(1, 0, 0).await;
    let placed = world
        .orders()
        .place(&request("c1", &[("LAPTOP-001", 1)]), None)
        .await
        .expect("placed");
    let mut a = mock_vendor("VendorA");
    // The vendor answers only after two minutes: the call is dropped before.
    a.expect_place_order().never();
    let slow = SlowVendor {
        inner: Arc::new(a),
        delay: std::time::Duration::from_secs(120),
    };
    let directory: VendorDirectory = [Arc::new(slow) as Arc<dyn VendorClient>]
        .into_iter()
        .collect();
    let worker = OrderProcessor::new(
        world.dyn_store(),
        world.dyn_store(),
        directory,
        Arc::new(world.queue.clone()),
        world.clock(),
        StalenessLimit::DEFAULT,
    )
    .with_placement_timeout(time::Duration::seconds(60))
    .expect("timeout");
    let started = tokio::time::Instant::now();
    let error = worker
        .handle(&OrderMessage::ProcessOrder {
            order: placed.order.id,
        })
        .await
        .expect_err("dropped at the timeout");
    assert!(error.is_retryable(), "{error}");
    assert!(error.to_string().contains("fresh read"), "{error}");
    assert_eq!(
        started.elapsed(),
        std::time::Duration::from_secs(60),
        "nothing is sent past the timeout"
    );
    let order = world.store.order(placed.order.id).await.expect("order");
    assert_eq!(order.status, OrderStatus::Reserved, "left for the retry");
}

/// A vendor client that waits `delay` before each placement.
#[derive(Debug)]
struct SlowVendor {
    inner: Arc<MockVendor>,
    delay: std::time::Duration,
}

#[async_trait::async_trait]
impl VendorClient for SlowVendor {
    fn vendor(&self) -> &aggregator_core::domain::VendorId {
        self.inner.vendor()
    }
    async fn health(&self) -> aggregator_core::Result<()> {
        self.inner.health().await
    }
    async fn info(&self) -> aggregator_core::Result<aggregator_core::traits::VendorInfo> {
        self.inner.info().await
    }
    async fn stock_page(
        &self,
        page: u32,
        limit: u32,
    ) -> aggregator_core::Result<aggregator_core::traits::StockPage> {
        self.inner.stock_page(page, limit).await
    }
    async fn place_order(
        &self,
        order: &aggregator_core::traits::VendorOrder,
    ) -> aggregator_core::Result<VendorOrderOutcome> {
        tokio::time::sleep(self.delay).await;
        self.inner.place_order(order).await
    }
    async fn cancel_order(
        &self,
        key: &str,
    ) -> aggregator_core::Result<aggregator_core::traits::CancelOutcome> {
        self.inner.cancel_order(key).await
    }
}

/// A vendor whose order endpoint runs a minute behind its feed (and us): its
/// confirmation counts from our receive time, so a report the feed took before the sale
/// cannot prune it and sell the unit again.
#[tokio::test]
async fn a_confirmation_counts_from_the_later_of_the_vendors_clock_and_our_receive_time() {
    let world = World::new(1, 0, 0).await;
    let placed = world
        .orders()
        .place(&request("c1", &[("LAPTOP-001", 1)]), None)
        .await
        .expect("placed");
    world.clock.advance(time::Duration::seconds(100));
    let mut a = mock_vendor("VendorA");
    let behind = world.later(40);
    a.expect_place_order().times(1).returning(move |order| {
        Ok(VendorOrderOutcome::Accepted {
            vendor_order_id: format!("A-{}", order.idempotency_key),
            confirmed_at: behind,
        })
    });
    let confirmed = confirms(&processor(&world, vec![a]), placed.order.id).await;
    assert_eq!(
        confirmed.vendor_placements[0].confirmed_at,
        world.later(100),
        "our receive time, the later of the two"
    );
    // The feed's page taken at +90, before the sale: it still shows the unit.
    world
        .report(
            "VendorA",
            &[("LAPTOP-a-001", "LAPTOP-001", 1, 99_999)],
            world.later(90),
        )
        .await;
    let row = world.row("VendorA", "LAPTOP-a-001");
    assert_eq!(
        (row.reported, row.confirmed_not_yet_reported, row.sellable()),
        (1, 1, 0),
        "the sale is still counted: the unit is not sold twice"
    );
    // A report taken after our receive time does include it.
    world
        .report(
            "VendorA",
            &[("LAPTOP-a-001", "LAPTOP-001", 0, 99_999)],
            world.later(101),
        )
        .await;
    let row = world.row("VendorA", "LAPTOP-a-001");
    assert_eq!((row.confirmed_not_yet_reported, row.sellable()), (0, 0));
}
