//! The long-running loops: the order worker, periodic jobs and the shutdown signal.

use aggregator_core::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aggregator_core::domain::{
    Message, MessageId, OrderMessage, OrderStatus, QueueName, StalenessLimit,
};
use aggregator_core::error::Error;
use aggregator_core::service::{
    OrderProcessor, ShutdownSignal, WorkerConfig, run_order_worker, run_periodically, shutdown_pair,
};
use aggregator_core::traits::{OrderQueue, VendorClient, VendorDirectory, VendorOrderOutcome};

use super::support::{World, mock_vendor, request};

#[tokio::test]
async fn the_worker_confirms_queued_orders_dead_letters_garbage_and_stops_when_told() {
    let world = World::new(5, 5, 0).await;
    let placed = world
        .orders()
        .place(&request("c1", &[("LAPTOP-001", 2)]), None)
        .await
        .expect("placed");
    let mut vendor = mock_vendor("VendorA");
    let confirmed_at = world.later(5);
    vendor
        .expect_place_order()
        .times(1)
        .returning(move |order| {
            Ok(VendorOrderOutcome::Accepted {
                vendor_order_id: format!("A-{}", order.idempotency_key),
                confirmed_at,
            })
        });
    let directory: VendorDirectory = [Arc::new(vendor) as Arc<dyn VendorClient>]
        .into_iter()
        .collect();
    let queue: Arc<dyn OrderQueue> = Arc::new(world.queue.clone());
    let processor = OrderProcessor::new(
        world.dyn_store(),
        world.dyn_store(),
        directory,
        queue.clone(),
        world.clock(),
        StalenessLimit::DEFAULT,
    );
    let process = Message::json(&OrderMessage::ProcessOrder {
        order: placed.order.id,
    })
    .expect("message");
    queue
        .publish(QueueName::Orders, &process)
        .await
        .expect("publish");
    let garbage = Message {
        id: MessageId::new(),
        body: b"not json".to_vec(),
    };
    queue
        .publish(QueueName::Orders, &garbage)
        .await
        .expect("publish");

    let (trigger, signal) = shutdown_pair();
    let config = WorkerConfig {
        concurrency: 4,
        grace: Duration::from_secs(1),
    };
    let worker = tokio::spawn(run_order_worker(processor, queue.clone(), config, signal));
    let store = world.dyn_store();
    for _ in 0..1_000 {
        let order = store.order(placed.order.id).await.expect("order");
        if order.status == OrderStatus::Confirmed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        store.order(placed.order.id).await.expect("order").status,
        OrderStatus::Confirmed
    );
    for _ in 0..1_000 {
        if !queue
            .dead_letters(QueueName::Orders, 10)
            .await
            .expect("dlq")
            .is_empty()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let dead = queue
        .dead_letters(QueueName::Orders, 10)
        .await
        .expect("dlq");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].message.id, garbage.id);
    trigger.trigger();
    let stopped = tokio::time::timeout(Duration::from_secs(5), worker).await;
    assert!(
        matches!(stopped, Ok(Ok(Ok(())))),
        "the worker stopped cleanly"
    );
}

#[tokio::test]
async fn a_worker_with_no_concurrency_is_refused() {
    let world = World::new(1, 1, 0).await;
    let queue: Arc<dyn OrderQueue> = Arc::new(world.queue.clone());
    let processor = OrderProcessor::new(
        world.dyn_store(),
        world.dyn_store(),
        VendorDirectory::new(),
        queue.clone(),
        world.clock(),
        StalenessLimit::DEFAULT,
    );
    let config = WorkerConfig {
        concurrency: 0,
        grace: Duration::ZERO,
    };
    let refused = run_order_worker(processor, queue, config, ShutdownSignal::never()).await;
    assert!(matches!(refused, Err(Error::Invalid { .. })));
}

#[tokio::test]
async fn periodic_jobs_run_at_once_and_again_survive_failures_and_stop() {
    let runs = Arc::new(AtomicU32::new(0));
    let (trigger, signal) = shutdown_pair();
    let counted = runs.clone();
    let job = tokio::spawn(async move {
        run_periodically("test job", Duration::from_millis(20), signal, move || {
            let counted = counted.clone();
            async move {
                let n = counted.fetch_add(1, Ordering::SeqCst);
                if n == 1 {
                    Err(Error::transient("test", "a failed round"))
                } else {
                    Ok(n)
                }
            }
        })
        .await
    });
    for _ in 0..500 {
        if runs.load(Ordering::SeqCst) >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        runs.load(Ordering::SeqCst) >= 4,
        "kept running after a failed round"
    );
    trigger.trigger();
    let stopped = tokio::time::timeout(Duration::from_secs(2), job).await;
    assert!(matches!(stopped, Ok(Ok(Ok(())))));
    let zero = run_periodically("zero", Duration::ZERO, ShutdownSignal::never(), || async {
        Ok(())
    })
    .await;
    assert!(matches!(zero, Err(Error::Invalid { .. })));
}

#[tokio::test]
async fn shutdown_signals_fire_on_trigger_or_when_the_trigger_is_dropped() {
    let (trigger, signal) = shutdown_pair();
    let second = trigger.signal();
    assert!(!signal.is_triggered());
    trigger.trigger();
    assert!(signal.is_triggered() && second.is_triggered());
    tokio::time::timeout(Duration::from_secs(1), signal.wait())
        .await
        .expect("fires");
    let (dropped, orphan) = shutdown_pair();
    drop(dropped);
    tokio::time::timeout(Duration::from_secs(1), orphan.wait())
        .await
        .expect("fires when dropped");
    let never = ShutdownSignal::never();
    assert!(
        tokio::time::timeout(Duration::from_millis(50), never.wait())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn the_last_attempt_gives_up_before_dead_lettering_and_a_failed_give_up_comes_back() {
    use aggregator_core::service::{Settled, settle_order_delivery};
    use aggregator_core::traits::RetryPolicy;

    let world = World::new(5, 0, 0).await;
    let placed = world
        .orders()
        .place(&request("c1", &[("LAPTOP-001", 1)]), None)
        .await
        .expect("placed");
    let commits = Arc::new(super::support::BrokenTransitions::over(&world.store));
    let store = Arc::new(aggregator_core::traits::StoreRoles {
        commits: commits.clone(),
        ..aggregator_core::traits::StoreRoles::of(world.dyn_store())
    });
    // One attempt only: the first failure is the last.
    let queue = aggregator_core::memory::InMemoryOrderQueue::new(
        RetryPolicy::new(vec![Duration::from_millis(10)]).expect("policy"),
    );
    let queue: Arc<dyn OrderQueue> = Arc::new(queue);
    let mut vendor = mock_vendor("VendorA");
    vendor
        .expect_place_order()
        .returning(|_| Err(Error::transient("vendor VendorA", "503")));
    let directory: VendorDirectory = [Arc::new(vendor) as Arc<dyn VendorClient>]
        .into_iter()
        .collect();
    let processor = OrderProcessor::new(
        store.clone(),
        world.dyn_store(),
        directory,
        queue.clone(),
        world.clock(),
        StalenessLimit::DEFAULT,
    );
    let message = Message::json(&OrderMessage::ProcessOrder {
        order: placed.order.id,
    })
    .expect("message");
    queue
        .publish(QueueName::Orders, &message)
        .await
        .expect("publish");
    let mut subscription = queue.subscribe(QueueName::Orders, 1).await.expect("sub");

    // Attempt 1 fails; the next retry is through the policy's single delay.
    let first = subscription.next().await.expect("delivery");
    assert!(!first.is_last_attempt());
    assert!(matches!(
        settle_order_delivery(&processor, first).await,
        Ok(Settled::Retrying { .. })
    ));
    // Attempt 2 is the last; the database is gone, so the give-up cannot be done.
    commits.broken.store(true, Ordering::SeqCst);
    let last = subscription.next().await.expect("delivery");
    assert!(last.is_last_attempt());
    assert!(
        settle_order_delivery(&processor, last).await.is_err(),
        "left unsettled"
    );
    assert!(
        queue
            .dead_letters(QueueName::Orders, 10)
            .await
            .expect("dlq")
            .is_empty(),
        "not dead-lettered while the order is still reserved"
    );
    assert_eq!(
        world
            .store
            .order(placed.order.id)
            .await
            .expect("order")
            .status,
        OrderStatus::Reserved
    );
    // It comes back; with the database back the order fails, then it is dead-lettered.
    commits.broken.store(false, Ordering::SeqCst);
    let again = subscription.next().await.expect("redelivered");
    assert!(again.redelivered && again.is_last_attempt());
    assert!(matches!(
        settle_order_delivery(&processor, again).await,
        Ok(Settled::DeadLettered { .. })
    ));
    assert_eq!(
        world
            .store
            .order(placed.order.id)
            .await
            .expect("order")
            .status,
        OrderStatus::Failed
    );
    assert_eq!(
        queue
            .dead_letters(QueueName::Orders, 10)
            .await
            .expect("dlq")
            .len(),
        1
    );
}

/// A `ProcessOrder` handed out for the last time before the broker's delivery limit
/// (every consumer before died holding it) fails its order at once, with its units
/// released and its cancellations written, and is dead-lettered: the order does not
/// wait for the sweeper.
#[tokio::test]
async fn a_final_hand_out_fails_its_order_at_once() {
    use aggregator_core::service::{Settled, settle_order_delivery};

    let world = World::new(5, 0, 0).await;
    let placed = world
        .orders()
        .place(&request("c1", &[("LAPTOP-001", 1)]), None)
        .await
        .expect("placed");
    let queue: Arc<dyn OrderQueue> = Arc::new(world.queue.clone());
    let mut vendor = mock_vendor("VendorA");
    vendor.expect_place_order().never();
    let directory: VendorDirectory = [Arc::new(vendor) as Arc<dyn VendorClient>]
        .into_iter()
        .collect();
    let processor = OrderProcessor::new(
        world.dyn_store(),
        world.dyn_store(),
        directory,
        queue.clone(),
        world.clock(),
        StalenessLimit::DEFAULT,
    );
    let message = Message::json(&OrderMessage::ProcessOrder {
        order: placed.order.id,
    })
    .expect("message");
    queue
        .publish(QueueName::Orders, &message)
        .await
        .expect("publish");
    let mut subscription = queue.subscribe(QueueName::Orders, 1).await.expect("sub");
    let delivery = subscription
        .next()
        .await
        .expect("delivery")
        .with_final_hand_out(true);
    assert!(matches!(
        settle_order_delivery(&processor, delivery).await,
        Ok(Settled::DeadLettered { reason }) if reason.contains("delivery limit")
    ));
    let order = world.store.order(placed.order.id).await.expect("order");
    assert_eq!(order.status, OrderStatus::Failed);
    assert_eq!(world.reserved("VendorA", "LAPTOP-a-001"), 0);
    assert_eq!(
        world
            .store
            .cancellation_backlog()
            .await
            .expect("backlog")
            .pending,
        1,
        "its vendor key's cancellation is pending"
    );
}
