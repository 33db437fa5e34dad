//! One broker message per batch of orders: the relay publishes a batch's `ProcessOrder`
//! messages as one `ProcessOrders`, and the worker handles each order of it as its own
//! message would be handled, sending any it cannot settle on alone.

use aggregator_core::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use aggregator_core::domain::{
    Message, OrderId, OrderMessage, OrderStatus, QueueName, StalenessLimit,
};
use aggregator_core::error::Error;
use aggregator_core::memory::InMemoryOrderQueue;
use aggregator_core::service::{
    BatchOutcome, OrderProcessor, OutboxRelay, ProcessOutcome, Scope, Settled,
    settle_order_delivery,
};
use aggregator_core::traits::{
    OrderQueue, StoreRoles, VendorClient, VendorDirectory, VendorOrderOutcome,
};
use time::Duration;

use super::support::{CountedReads, FlakyQueue, World, drain, mock_vendor, request};

/// VendorA accepting every order but `refused` (a 503 for it); counts its acceptances.
fn vendor_a(world: &World, refused: Option<OrderId>, accepted: Arc<AtomicU32>) -> VendorDirectory {
    let mut vendor = mock_vendor("VendorA");
    let confirmed_at = world.later(5);
    vendor.expect_place_order().returning(move |order| {
        if refused.is_some_and(|id| order.idempotency_key.starts_with(&id.to_string())) {
            return Err(Error::transient("vendor VendorA", "503"));
        }
        accepted.fetch_add(1, Ordering::SeqCst);
        Ok(VendorOrderOutcome::Accepted {
            vendor_order_id: format!("A-{}", order.idempotency_key),
            confirmed_at,
        })
    });
    [Arc::new(vendor) as Arc<dyn VendorClient>]
        .into_iter()
        .collect()
}

fn processor(
    world: &World,
    vendors: VendorDirectory,
    queue: Arc<dyn OrderQueue>,
) -> OrderProcessor {
    OrderProcessor::new(
        world.dyn_store(),
        world.dyn_store(),
        vendors,
        queue,
        world.clock(),
        StalenessLimit::DEFAULT,
    )
}

async fn place(world: &World, customer: &str, sku: &str) -> OrderId {
    world
        .orders()
        .place(&request(customer, &[(sku, 1)]), None)
        .await
        .expect("placed")
        .order
        .id
}

/// One laptop ordered by each of `customers`, in turn.
async fn place_laptops(world: &World, customers: &[&str]) -> Vec<OrderId> {
    let mut orders = Vec::new();
    for customer in customers {
        orders.push(place(world, customer, "LAPTOP-001").await);
    }
    orders
}

async fn status(world: &World, id: OrderId) -> OrderStatus {
    world.store.order(id).await.expect("order").status
}

fn sorted(mut ids: Vec<OrderId>) -> Vec<OrderId> {
    ids.sort();
    ids
}

#[tokio::test]
async fn the_relay_publishes_the_orders_of_a_round_as_one_message_and_the_rest_alone() {
    let world = World::new(10, 0, 0).await;
    let mut placed = Vec::new();
    for n in 0..3 {
        placed.push(place(&world, &format!("c{n}"), "LAPTOP-001").await);
    }
    // A cancel writes a cancellation per live vendor key: a different message, sent as
    // it is.
    let cancelled = place(&world, "c9", "LAPTOP-001").await;
    world
        .orders()
        .cancel(cancelled, "client cancelled", &Scope::All)
        .await
        .expect("cancelled");
    let queue: Arc<dyn OrderQueue> = Arc::new(world.queue.clone());
    let relay = OutboxRelay::new(
        world.dyn_store(),
        queue.clone(),
        world.clock(),
        100,
        Duration::seconds(30),
    )
    .expect("relay");
    assert_eq!(
        relay.run_once().await.expect("published"),
        5,
        "every outbox message counts as published"
    );
    let messages = drain(queue.as_ref()).await;
    assert_eq!(messages.len(), 2, "{messages:?}");
    let mut batches = Vec::new();
    let mut cancellations = 0;
    for message in &messages {
        match message.decode::<OrderMessage>().expect("decodes") {
            OrderMessage::ProcessOrders { orders } => batches.push(orders),
            OrderMessage::CancelAtVendor { order, .. } => {
                assert_eq!(order, cancelled);
                cancellations += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(cancellations, 1);
    let mut every_placed = placed.clone();
    every_placed.push(cancelled);
    assert_eq!(
        batches.into_iter().map(sorted).collect::<Vec<_>>(),
        vec![sorted(every_placed)],
        "one message for the round's four placements"
    );
    assert_eq!(relay.run_once().await.expect("nothing left"), 0);
}

#[tokio::test]
async fn a_batch_confirms_its_orders_and_sends_the_one_a_vendor_refused_on_alone() {
    let world = World::new(10, 0, 5).await;
    let first = place(&world, "c1", "LAPTOP-001").await;
    let second = place(&world, "c2", "LAPTOP-001").await;
    let refused = place(&world, "c3", "PHONE-002").await;
    let accepted = Arc::new(AtomicU32::new(0));
    let queue: Arc<dyn OrderQueue> = Arc::new(world.queue.clone());
    let processor = processor(
        &world,
        vendor_a(&world, Some(refused), accepted.clone()),
        queue.clone(),
    );
    let batch = OrderMessage::ProcessOrders {
        orders: vec![first, second, refused, first],
    };
    let Ok(ProcessOutcome::Batch(outcome)) = processor.handle(&batch).await else {
        panic!("a batch outcome");
    };
    assert_eq!(
        sorted(outcome.confirmed.clone()),
        sorted(vec![first, second])
    );
    assert!(outcome.failed.is_empty() && outcome.already_settled.is_empty());
    assert_eq!(outcome.went_alone.len(), 1);
    assert_eq!(outcome.went_alone[0].0, refused);
    assert!(outcome.went_alone[0].1.contains("503"), "{outcome:?}");
    assert_eq!(outcome.orders(), 3, "the duplicate id handled once");
    assert_eq!(status(&world, first).await, OrderStatus::Confirmed);
    assert_eq!(status(&world, second).await, OrderStatus::Confirmed);
    assert_eq!(status(&world, refused).await, OrderStatus::Reserved);
    let alone = drain(queue.as_ref()).await;
    assert_eq!(alone.len(), 1);
    assert_eq!(
        alone[0].decode::<OrderMessage>(),
        Ok(OrderMessage::ProcessOrder { order: refused })
    );

    // The batch again (a redelivery): nothing is placed twice.
    let Ok(ProcessOutcome::Batch(again)) = processor.handle(&batch).await else {
        panic!("a batch outcome");
    };
    assert_eq!(
        again,
        BatchOutcome {
            confirmed: Vec::new(),
            failed: Vec::new(),
            already_settled: again.already_settled.clone(),
            went_alone: again.went_alone.clone(),
        }
    );
    assert_eq!(sorted(again.already_settled), sorted(vec![first, second]));
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        2,
        "each order accepted once"
    );
}

/// A processor whose order reads go through a [`CountedReads`] over the world's store.
fn counting_processor(world: &World, reads: &Arc<CountedReads>) -> OrderProcessor {
    let store = Arc::new(StoreRoles {
        orders: reads.clone(),
        ..StoreRoles::of(world.dyn_store())
    });
    OrderProcessor::new(
        store.clone(),
        store,
        vendor_a(world, None, Arc::new(AtomicU32::new(0))),
        Arc::new(world.queue.clone()),
        world.clock(),
        StalenessLimit::DEFAULT,
    )
}

#[tokio::test]
async fn a_batch_reads_its_orders_together_once() {
    let world = World::new(10, 0, 0).await;
    let orders = place_laptops(&world, &["c1", "c2", "c3"]).await;
    let unknown = OrderId::new();
    let reads = Arc::new(CountedReads::over(&world.store));
    let processor = counting_processor(&world, &reads);
    let mut asked = orders.clone();
    asked.push(unknown);
    let Ok(ProcessOutcome::Batch(outcome)) = processor
        .handle(&OrderMessage::ProcessOrders { orders: asked })
        .await
    else {
        panic!("a batch outcome");
    };
    assert_eq!(sorted(outcome.confirmed), sorted(orders));
    assert_eq!(
        reads.together.load(Ordering::SeqCst),
        1,
        "one read together"
    );
    // Only the order the read together did not bring is read alone (and goes on alone).
    assert_eq!(reads.alone.load(Ordering::SeqCst), 1);
    assert_eq!(outcome.went_alone.len(), 1);
    assert_eq!(outcome.went_alone[0].0, unknown);
}

#[tokio::test]
async fn a_batch_whose_read_together_fails_reads_each_order_alone() {
    let world = World::new(10, 0, 0).await;
    let orders = place_laptops(&world, &["c1", "c2", "c3"]).await;
    let reads = Arc::new(CountedReads::over(&world.store));
    reads.broken.store(true, Ordering::SeqCst);
    let processor = counting_processor(&world, &reads);
    let Ok(ProcessOutcome::Batch(outcome)) = processor
        .handle(&OrderMessage::ProcessOrders {
            orders: orders.clone(),
        })
        .await
    else {
        panic!("a batch outcome");
    };
    assert_eq!(sorted(outcome.confirmed), sorted(orders));
    assert!(outcome.went_alone.is_empty(), "{:?}", outcome.went_alone);
    assert_eq!(reads.alone.load(Ordering::SeqCst), 3, "each read alone");
    assert!(
        drain(&world.queue).await.is_empty(),
        "nothing sent on alone"
    );
}

#[tokio::test]
async fn a_batch_whose_lone_order_cannot_be_published_fails_to_be_retried_whole() {
    let world = World::new(10, 0, 5).await;
    let first = place(&world, "c1", "LAPTOP-001").await;
    let refused = place(&world, "c2", "PHONE-002").await;
    let queue = Arc::new(FlakyQueue {
        inner: world.queue.clone(),
        down: AtomicBool::new(true),
    });
    let processor = processor(
        &world,
        vendor_a(&world, Some(refused), Arc::new(AtomicU32::new(0))),
        queue.clone(),
    );
    let batch = OrderMessage::ProcessOrders {
        orders: vec![first, refused],
    };
    let error = processor
        .handle(&batch)
        .await
        .expect_err("the lone order could not be published");
    assert!(error.is_retryable(), "{error}");
    assert_eq!(status(&world, first).await, OrderStatus::Confirmed);
    assert_eq!(status(&world, refused).await, OrderStatus::Reserved);

    queue.down.store(false, Ordering::SeqCst);
    let Ok(ProcessOutcome::Batch(outcome)) = processor.handle(&batch).await else {
        panic!("a batch outcome");
    };
    assert_eq!(outcome.already_settled, vec![first]);
    assert_eq!(outcome.went_alone.len(), 1);
    let alone = drain(queue.as_ref()).await;
    assert_eq!(
        alone
            .iter()
            .map(|m| m.decode::<OrderMessage>().expect("decodes"))
            .collect::<Vec<_>>(),
        vec![OrderMessage::ProcessOrder { order: refused }]
    );
}

/// Every consumer before this one died holding the batch: its orders go on alone, each
/// with its own delivery limit, instead of all failing for what may be one of them.
#[tokio::test]
async fn a_batch_handed_out_for_the_last_time_sends_each_order_on_alone() {
    let world = World::new(10, 0, 0).await;
    let first = place(&world, "c1", "LAPTOP-001").await;
    let second = place(&world, "c2", "LAPTOP-001").await;
    let mut vendor = mock_vendor("VendorA");
    vendor.expect_place_order().never();
    let vendors: VendorDirectory = [Arc::new(vendor) as Arc<dyn VendorClient>]
        .into_iter()
        .collect();
    let queue: Arc<dyn OrderQueue> = Arc::new(world.queue.clone());
    let processor = processor(&world, vendors, queue.clone());
    let batch = Message::json(&OrderMessage::ProcessOrders {
        orders: vec![first, second],
    })
    .expect("message");
    // A queue of its own for the batch, so that what goes alone is all the shared one holds.
    let batches = InMemoryOrderQueue::default();
    batches
        .publish(QueueName::Orders, &batch)
        .await
        .expect("publish");
    let mut subscription = batches.subscribe(QueueName::Orders, 1).await.expect("sub");
    let delivery = subscription
        .next()
        .await
        .expect("delivery")
        .with_final_hand_out(true);
    assert!(matches!(
        settle_order_delivery(&processor, delivery).await,
        Ok(Settled::Requeued { reason }) if reason.contains("go on alone")
    ));
    assert_eq!(status(&world, first).await, OrderStatus::Reserved);
    assert_eq!(status(&world, second).await, OrderStatus::Reserved);
    let alone: Vec<OrderId> = drain(queue.as_ref())
        .await
        .iter()
        .map(|m| match m.decode::<OrderMessage>() {
            Ok(OrderMessage::ProcessOrder { order }) => order,
            other => panic!("not one order: {other:?}"),
        })
        .collect();
    assert_eq!(sorted(alone), sorted(vec![first, second]));
    assert!(
        drain(&batches).await.is_empty(),
        "the batch was acknowledged"
    );
}

#[tokio::test]
async fn giving_up_a_batch_fails_each_of_its_orders_still_reserved() {
    let world = World::new(10, 0, 0).await;
    let confirmed = place(&world, "c1", "LAPTOP-001").await;
    let reserved = place(&world, "c2", "LAPTOP-001").await;
    let queue: Arc<dyn OrderQueue> = Arc::new(world.queue.clone());
    let processor = processor(
        &world,
        vendor_a(&world, None, Arc::new(AtomicU32::new(0))),
        queue,
    );
    processor
        .handle(&OrderMessage::ProcessOrder { order: confirmed })
        .await
        .expect("confirmed");
    let batch = OrderMessage::ProcessOrders {
        orders: vec![confirmed, reserved, OrderId::new()],
    };
    let held = world.reserved("VendorA", "LAPTOP-a-001");
    let error = Error::transient("broker", "gone");
    assert_eq!(processor.give_up(&batch, &error).await, Ok(false));
    assert_eq!(status(&world, confirmed).await, OrderStatus::Confirmed);
    assert_eq!(status(&world, reserved).await, OrderStatus::Failed);
    assert_eq!(
        world.reserved("VendorA", "LAPTOP-a-001"),
        held - 1,
        "the failed order's unit released, the confirmed one's kept"
    );
}

/// VendorA holding each placement 20 ms and recording the most it held at once.
#[derive(Debug)]
struct HoldingVendor {
    id: aggregator_core::domain::VendorId,
    confirmed_at: time::OffsetDateTime,
    holding: AtomicU32,
    most: AtomicU32,
}

#[async_trait::async_trait]
impl VendorClient for HoldingVendor {
    fn vendor(&self) -> &aggregator_core::domain::VendorId {
        &self.id
    }
    async fn health(&self) -> aggregator_core::error::Result<()> {
        Ok(())
    }
    async fn info(&self) -> aggregator_core::error::Result<aggregator_core::traits::VendorInfo> {
        Err(Error::transient("vendor VendorA", "not asked in this test"))
    }
    async fn stock_page(
        &self,
        _page: u32,
        _limit: u32,
    ) -> aggregator_core::error::Result<aggregator_core::traits::StockPage> {
        Err(Error::transient("vendor VendorA", "not asked in this test"))
    }
    async fn place_order(
        &self,
        order: &aggregator_core::traits::VendorOrder,
    ) -> aggregator_core::error::Result<VendorOrderOutcome> {
        let now = self.holding.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        self.holding.fetch_sub(1, Ordering::SeqCst);
        Ok(VendorOrderOutcome::Accepted {
            vendor_order_id: format!("A-{}", order.idempotency_key),
            confirmed_at: self.confirmed_at,
        })
    }
    async fn cancel_order(
        &self,
        _idempotency_key: &str,
    ) -> aggregator_core::error::Result<aggregator_core::traits::CancelOutcome> {
        Err(Error::transient("vendor VendorA", "not asked in this test"))
    }
}

#[tokio::test]
async fn batches_handled_at_once_hold_no_more_orders_than_the_bound() {
    let world = World::new(40, 0, 0).await;
    let customers: Vec<String> = (0..30).map(|n| format!("c{n}")).collect();
    let names: Vec<&str> = customers.iter().map(String::as_str).collect();
    let orders = place_laptops(&world, &names).await;
    let vendor = Arc::new(HoldingVendor {
        id: super::support::vendor("VendorA"),
        confirmed_at: world.later(5),
        holding: AtomicU32::new(0),
        most: AtomicU32::new(0),
    });
    let vendors: VendorDirectory = [vendor.clone() as Arc<dyn VendorClient>]
        .into_iter()
        .collect();
    let queue: Arc<dyn OrderQueue> = Arc::new(world.queue.clone());
    let processor = processor(&world, vendors, queue)
        .with_batch_orders_in_flight(4)
        .expect("a bound");
    // Three messages of ten orders each, handled at once by clones of one processor (as
    // a process's workers are): never more than four orders at their vendor together.
    let handled = futures_util::future::join_all(orders.chunks(10).map(|chunk| {
        let processor = processor.clone();
        let message = OrderMessage::ProcessOrders {
            orders: chunk.to_vec(),
        };
        async move { processor.handle(&message).await }
    }))
    .await;
    let mut confirmed = Vec::new();
    for outcome in handled {
        let Ok(ProcessOutcome::Batch(outcome)) = outcome else {
            panic!("a batch outcome");
        };
        assert!(outcome.went_alone.is_empty(), "{outcome:?}");
        confirmed.extend(outcome.confirmed);
    }
    assert_eq!(sorted(confirmed), sorted(orders));
    let most = vendor.most.load(Ordering::SeqCst);
    assert!(most <= 4, "{most} orders at the vendor at once");
    assert!(most >= 2, "orders of a chunk still go together ({most})");
    assert!(
        processor.clone().with_batch_orders_in_flight(0).is_err(),
        "a bound of 0 is refused"
    );
}
