//! The one consumer runtime every queue consumer runs on: how many deliveries run at
//! once, and what happens to the ones in flight when shutdown is asked for.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aggregator_core::domain::{Message, QueueName, SyncRequest, VendorId};
use aggregator_core::error::Result;
use aggregator_core::memory::InMemoryOrderQueue;
use aggregator_core::service::{
    ConsumerConfig, DeliveryHandler, Settled, run_consumer, shutdown_pair,
};
use aggregator_core::traits::{Delivery, OrderQueue};
use async_trait::async_trait;

/// Takes `hold` over each delivery, then acknowledges it; counts what runs at once.
struct Slow {
    hold: Duration,
    running: AtomicUsize,
    most_at_once: AtomicUsize,
    acked: AtomicUsize,
}

impl Slow {
    fn new(hold: Duration) -> Arc<Self> {
        Arc::new(Self {
            hold,
            running: AtomicUsize::new(0),
            most_at_once: AtomicUsize::new(0),
            acked: AtomicUsize::new(0),
        })
    }
}

#[async_trait]
impl DeliveryHandler for Slow {
    type Done = ();

    fn queue(&self) -> QueueName {
        QueueName::StockSync
    }

    async fn settle(&self, delivery: Delivery) -> Result<Settled<()>> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_at_once.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.hold).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        delivery.ack().await?;
        self.acked.fetch_add(1, Ordering::SeqCst);
        Ok(Settled::Done(()))
    }

    fn report(&self, _: &Result<Settled<()>>) {}
}

async fn queue_with(messages: usize) -> Arc<InMemoryOrderQueue> {
    let queue = Arc::new(InMemoryOrderQueue::default());
    for n in 0..messages {
        let request = SyncRequest {
            vendor: VendorId::new(format!("Vendor{n}")).expect("vendor"),
        };
        queue
            .publish(
                QueueName::StockSync,
                &Message::json(&request).expect("message"),
            )
            .await
            .expect("published");
    }
    queue
}

/// Starts `handler` on `queue` with `concurrency` and `grace`; the trigger stops it.
fn start(
    handler: &Arc<Slow>,
    queue: &Arc<InMemoryOrderQueue>,
    concurrency: u16,
    grace: Duration,
) -> (
    aggregator_core::service::ShutdownTrigger,
    tokio::task::JoinHandle<Result<()>>,
) {
    let (trigger, signal) = shutdown_pair();
    let config = ConsumerConfig { concurrency, grace };
    let queue: Arc<dyn OrderQueue> = queue.clone();
    (
        trigger,
        tokio::spawn(run_consumer(handler.clone(), queue, config, signal)),
    )
}

async fn until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what} within 5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_runs_as_many_deliveries_at_once_as_its_concurrency() {
    let queue = queue_with(9).await;
    let handler = Slow::new(Duration::from_millis(150));
    let (trigger, running) = start(&handler, &queue, 3, Duration::from_secs(5));
    until("every delivery acknowledged", || {
        handler.acked.load(Ordering::SeqCst) == 9
    })
    .await;
    trigger.trigger();
    running.await.expect("joined").expect("ran");
    assert_eq!(handler.most_at_once.load(Ordering::SeqCst), 3);
    assert_eq!(queue.depth(QueueName::StockSync), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_in_flight_at_shutdown_finish_within_the_grace_period() {
    let queue = queue_with(2).await;
    let handler = Slow::new(Duration::from_millis(300));
    let (trigger, running) = start(&handler, &queue, 2, Duration::from_secs(5));
    until("both deliveries taken", || {
        handler.running.load(Ordering::SeqCst) == 2
    })
    .await;
    trigger.trigger();
    running.await.expect("joined").expect("ran");
    assert_eq!(handler.acked.load(Ordering::SeqCst), 2, "both finished");
    assert_eq!(queue.depth(QueueName::StockSync), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_still_running_after_the_grace_period_go_back_to_the_queue() {
    let queue = queue_with(2).await;
    let handler = Slow::new(Duration::from_secs(30));
    let (trigger, running) = start(&handler, &queue, 2, Duration::from_millis(200));
    until("both deliveries taken", || {
        handler.running.load(Ordering::SeqCst) == 2
    })
    .await;
    trigger.trigger();
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("stopped after the grace period")
        .expect("joined")
        .expect("ran");
    assert_eq!(handler.acked.load(Ordering::SeqCst), 0);
    until("both deliveries back in the queue", || {
        queue.depth(QueueName::StockSync) == 2
    })
    .await;
}

#[tokio::test]
async fn a_consumer_without_concurrency_is_refused() {
    let queue = queue_with(0).await;
    let (_trigger, signal) = shutdown_pair();
    let config = ConsumerConfig {
        concurrency: 0,
        grace: Duration::from_secs(1),
    };
    let refused = run_consumer(
        Slow::new(Duration::ZERO),
        queue as Arc<dyn OrderQueue>,
        config,
        signal,
    )
    .await;
    assert!(refused.is_err());
}
