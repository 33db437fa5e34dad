//! The core services running on PostgreSQL: the same flows the in-memory tests cover,
//! end to end through the real store.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration as StdDuration;

use aggregator_core::conformance::Fixture;
use aggregator_core::domain::{
    IdempotencyKey, OrderId, OrderMessage, OrderStatus, QueueName, SnapshotRow, StalenessLimit,
    VendorId,
};
use aggregator_core::error::{Error, Result};
use aggregator_core::memory::InMemoryOrderQueue;
use aggregator_core::service::{
    ItemRequest, OrderConfig, OrderProcessor, OrderRequest, OrderService, OutboxRelay,
    ProcessOutcome, Scope, StockSync, Sweeper, SyncConfig,
};
use aggregator_core::traits::{
    OrderQueue, RetryPolicy, StockPage, VendorClient, VendorDirectory, VendorInfo, VendorOrder,
    VendorOrderOutcome,
};
use aggregator_core::{Clock, ManualClock, StockStore};
use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

use aggregator_postgres::testing::TestDatabase;

/// A vendor that accepts every order and reports a fixed feed.
#[derive(Debug)]
struct AcceptingVendor {
    id: VendorId,
    feed: Vec<SnapshotRow>,
    as_of: OffsetDateTime,
    placed: AtomicU32,
}

#[async_trait]
impl VendorClient for AcceptingVendor {
    fn vendor(&self) -> &VendorId {
        &self.id
    }
    async fn health(&self) -> Result<()> {
        Ok(())
    }
    async fn info(&self) -> Result<VendorInfo> {
        Ok(VendorInfo {
            name: self.id.to_string(),
            sku_count: self.feed.len() as u64,
        })
    }
    async fn stock_page(&self, _page: u32, _limit: u32) -> Result<StockPage> {
        Ok(StockPage {
            rows: self.feed.clone(),
            as_of: self.as_of,
            next_page: None,
            last_page: None,
        })
    }
    async fn place_order(&self, order: &VendorOrder) -> Result<VendorOrderOutcome> {
        self.placed.fetch_add(1, Ordering::SeqCst);
        Ok(VendorOrderOutcome::Accepted {
            vendor_order_id: format!("{}-{}", self.id, order.idempotency_key),
            confirmed_at: self.as_of,
        })
    }
    async fn cancel_order(&self, _key: &str) -> Result<aggregator_core::traits::CancelOutcome> {
        Ok(aggregator_core::traits::CancelOutcome::Cancelled)
    }
}

fn request(fx: &Fixture, customer: &str, quantity: i64) -> OrderRequest {
    let mut details = fx.details(0);
    details.customer = aggregator_core::domain::CustomerId::new(customer).expect("customer");
    OrderRequest {
        details,
        items: vec![ItemRequest::new(fx.product.to_string(), quantity)],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn place_relay_process_sync_and_sweep_on_postgres() {
    let Some(db) = TestDatabase::create(8).await else {
        return;
    };
    let store: Arc<dyn StockStore> = Arc::new(db.store.clone());
    let fx = Fixture::new(store.as_ref(), 3, 4).await;
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

    // A product line split over both vendors, with an idempotency key replayed.
    let key = IdempotencyKey::new("pg-flow-1").expect("key");
    let placed = orders
        .place(&request(&fx, "alice", 5), Some(key.clone()))
        .await
        .expect("placed");
    assert_eq!(
        placed.order.lines[0].allocations.len(),
        2,
        "split over A (3) and B (2)"
    );
    let again = orders
        .place(&request(&fx, "alice", 5), Some(key.clone()))
        .await
        .expect("replay");
    assert!(again.replayed);
    assert!(matches!(
        orders.place(&request(&fx, "alice", 1), Some(key)).await,
        Err(Error::IdempotencyMismatch { .. })
    ));
    assert!(matches!(
        orders.place(&request(&fx, "bob", 3), None).await,
        Err(Error::InsufficientStock { short }) if short[0].available == 2
    ));

    // The outbox reaches the queue; the worker confirms with both vendors.
    let queue = InMemoryOrderQueue::new(
        RetryPolicy::new(vec![StdDuration::from_millis(10)]).expect("policy"),
    );
    let queue_arc: Arc<dyn OrderQueue> = Arc::new(queue.clone());
    let relay = OutboxRelay::new(
        store.clone(),
        Arc::clone(&queue_arc),
        clock_arc.clone(),
        10,
        Duration::seconds(30),
    )
    .expect("relay");
    assert_eq!(relay.run_once().await.expect("relayed"), 1);
    let mut subscription = queue
        .subscribe(QueueName::Orders, 1)
        .await
        .expect("subscribe");
    let delivery = subscription.next().await.expect("delivery");
    let message: OrderMessage = delivery.message.decode().expect("decodes");
    let vendor = |id: &VendorId, feed: Vec<SnapshotRow>| {
        Arc::new(AcceptingVendor {
            id: id.clone(),
            feed,
            as_of: fx.now + Duration::seconds(10),
            placed: AtomicU32::new(0),
        })
    };
    let a = vendor(
        &fx.vendor_a,
        vec![fx.row(&fx.vendor_a, 3, fx.now + Duration::seconds(20))],
    );
    let b = vendor(
        &fx.vendor_b,
        vec![fx.row(&fx.vendor_b, 2, fx.now + Duration::seconds(20))],
    );
    let directory: VendorDirectory = [
        a.clone() as Arc<dyn VendorClient>,
        b.clone() as Arc<dyn VendorClient>,
    ]
    .into_iter()
    .collect();
    let worker = OrderProcessor::new(
        store.clone(),
        store.clone(),
        directory.clone(),
        queue_arc,
        clock_arc.clone(),
        StalenessLimit::DEFAULT,
    );
    let ProcessOutcome::Confirmed(confirmed) = worker.handle(&message).await.expect("processed")
    else {
        panic!("not confirmed");
    };
    delivery.ack().await.expect("ack");
    assert_eq!(confirmed.status, OrderStatus::Confirmed);
    assert_eq!(
        worker.handle(&message).await.expect("redelivery"),
        ProcessOutcome::AlreadySettled(OrderStatus::Confirmed)
    );
    assert_eq!(
        a.placed.load(Ordering::SeqCst) + b.placed.load(Ordering::SeqCst),
        2,
        "each vendor once"
    );
    let row = fx.stock(store.as_ref(), &fx.vendor_a).await;
    assert_eq!(
        (row.reserved, row.confirmed_not_yet_reported, row.sellable()),
        (0, 3, 0)
    );

    // A sync after the confirmation includes the units: nothing pending any more.
    let sync = StockSync::new(
        store.clone(),
        directory,
        clock_arc.clone(),
        SyncConfig::default(),
    )
    .expect("sync");
    clock.advance(Duration::seconds(30));
    sync.sync_vendor(&fx.vendor_a).await.expect("synced");
    let row = fx.stock(store.as_ref(), &fx.vendor_a).await;
    assert_eq!((row.reported, row.confirmed_not_yet_reported), (3, 0));

    // An unconfirmed order expires with the sweeper; cancel of the confirmed one queues
    // the vendor cancellations.
    let later = orders
        .place(&request(&fx, "carol", 1), None)
        .await
        .expect("placed");
    let sweeper = Sweeper::new(store.clone(), clock_arc.clone(), 10).expect("sweeper");
    clock.advance(Duration::minutes(16));
    let swept = sweeper.run_once().await.expect("swept");
    assert_eq!(swept.orders, vec![later.order.id]);
    let cancelled = orders
        .cancel(confirmed.id, "changed my mind", &Scope::All)
        .await
        .expect("cancel");
    assert_eq!(cancelled.status, OrderStatus::Cancelled);
    let queued = store
        .claim_outbox(clock.now(), Duration::seconds(30), 100)
        .await
        .expect("claim");
    let cancels = |of: OrderId| {
        queued
            .iter()
            .filter(|m| {
                matches!(
                    m.message.decode::<OrderMessage>(),
                    Ok(OrderMessage::CancelAtVendor { order, .. }) if order == of
                )
            })
            .count()
    };
    assert_eq!(cancels(confirmed.id), 2, "one cancellation per vendor");
    assert_eq!(
        cancels(later.order.id),
        1,
        "the expiry cancels the key a worker may have used"
    );
    db.finish().await;
}
