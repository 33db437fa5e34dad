use std::sync::Arc;

use aggregator_core::StockStore;
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

/// The messages queued for the worker (compensations), drained and decoded.
async fn queued(world: &World) -> Vec<OrderMessage> {
    drain(&world.queue)
        .await
        .iter()
        .map(|message| message.decode::<OrderMessage>().expect("decodes"))
        .collect()
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
    let mut a = mock_vendor("VendorA");
    a.expect_place_order().times(1).returning(|_| {
        Ok(VendorOrderOutcome::Refused {
            short: vec![VendorShortSku {
                sku: sku("LAPTOP-a-001"),
                available: 0,
            }],
        })
    });
    let b = accepting("VendorB", &world, 1);
    let worker = processor(&world, vec![a, b]);
    let outcome = worker
        .handle(&OrderMessage::ProcessOrder {
            order: placed.order.id,
        })
        .await
        .expect("processed");
    let ProcessOutcome::Confirmed(order) = outcome else {
        panic!("expected Confirmed, got {outcome:?}");
    };
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
            .any(|e| e.reason.contains("short on LAPTOP-a-001")),
        "re-route recorded"
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
async fn no_alternative_fails_the_order_and_compensates_accepted_vendors() {
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
    let mut a = accepting("VendorA", &world, 1);
    // The direct cancel fails, so the compensation goes through the queue.
    a.expect_cancel_order()
        .times(1)
        .returning(|_| Err(Error::transient("vendor VendorA", "503")));
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
    let compensations = queued(&world).await;
    assert_eq!(
        compensations,
        vec![OrderMessage::CancelAtVendor {
            order: placed.order.id,
            vendor: super::support::vendor("VendorA"),
            idempotency_key: vendor_key(&placed.order, &super::support::vendor("VendorA")),
        }]
    );
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
async fn a_cancel_that_wins_the_race_makes_the_worker_compensate() {
    let world = World::new(2, 0, 0).await;
    let service = world.orders();
    let placed = service
        .place(&request("c1", &[("LAPTOP-001", 1)]), None)
        .await
        .expect("placed");
    let order_id = placed.order.id;
    let store = Arc::clone(&world.store);
    let confirmed_at = world.later(5);
    let mut a = mock_vendor("VendorA");
    // While the vendor accepts, the client cancels.
    let canceller = service.clone();
    a.expect_place_order().times(1).returning(move |_| {
        let canceller = canceller.clone();
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .expect("runtime");
                    runtime
                        .block_on(canceller.cancel(order_id, "client cancelled", &Scope::All))
                        .expect("cancel");
                })
                .join()
                .expect("cancel thread");
        });
        Ok(VendorOrderOutcome::Accepted {
            vendor_order_id: "A-9".into(),
            confirmed_at,
        })
    });
    // The worker then cancels the vendor's order directly.
    a.expect_cancel_order()
        .with(eq(vendor_key(
            &placed.order,
            &super::support::vendor("VendorA"),
        )))
        .times(1)
        .returning(|_| Ok(()));
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
    assert_eq!(
        world
            .row("VendorA", "LAPTOP-a-001")
            .confirmed_not_yet_reported,
        0
    );
    assert_eq!(world.reserved("VendorA", "LAPTOP-a-001"), 0);
    assert!(
        queued(&world).await.is_empty(),
        "cancelled directly, nothing left to retry"
    );
}

#[tokio::test]
async fn giving_up_fails_the_order_and_cancels_at_every_vendor() {
    let world = World::new(1, 1, 0).await;
    let placed = world
        .orders()
        .place(&request("c1", &[("LAPTOP-001", 2)]), None)
        .await
        .expect("placed");
    let mut a = mock_vendor("VendorA");
    a.expect_cancel_order().times(1).returning(|_| Ok(()));
    let mut b = mock_vendor("VendorB");
    b.expect_cancel_order()
        .times(1)
        .returning(|_| Err(Error::transient("vendor VendorB", "timeout")));
    let worker = processor(&world, vec![a, b]);
    let message = OrderMessage::ProcessOrder {
        order: placed.order.id,
    };
    worker
        .give_up(&message, "vendor kept timing out")
        .await
        .expect("gave up");
    let order = world.store.order(placed.order.id).await.expect("order");
    assert_eq!(order.status, OrderStatus::Failed);
    assert_eq!(
        order.failure_reason.as_deref(),
        Some("gave up: vendor kept timing out")
    );
    assert_eq!(world.reserved("VendorA", "LAPTOP-a-001"), 0);
    let cancellations = queued(&world).await;
    assert_eq!(
        cancellations.len(),
        1,
        "only the vendor that could not be reached is retried"
    );
    // Giving up twice changes nothing more.
    worker.give_up(&message, "again").await.expect("idempotent");
    assert!(queued(&world).await.is_empty());
}

#[tokio::test]
async fn cancel_at_vendor_messages_call_the_vendor_by_key() {
    let world = World::new(1, 0, 0).await;
    let mut a = mock_vendor("VendorA");
    a.expect_cancel_order()
        .with(eq("key-1"))
        .times(1)
        .returning(|_| Ok(()));
    let worker = processor(&world, vec![a]);
    let message = OrderMessage::CancelAtVendor {
        order: aggregator_core::domain::OrderId::new(),
        vendor: super::support::vendor("VendorA"),
        idempotency_key: "key-1".into(),
    };
    assert_eq!(
        worker.handle(&message).await.expect("cancelled"),
        ProcessOutcome::CancelledAtVendor
    );
    let unknown = OrderMessage::CancelAtVendor {
        order: aggregator_core::domain::OrderId::new(),
        vendor: super::support::vendor("Nobody"),
        idempotency_key: "key-2".into(),
    };
    assert!(matches!(
        worker.handle(&unknown).await,
        Err(Error::NotFound { .. })
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
