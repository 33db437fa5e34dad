use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use aggregator_core::domain::{
    HealthPolicy, Hold, HoldId, Message, MessageId, Order, OrderId, OrderMessage, OutboxMessage,
    ProductId, QueueName, SnapshotOutcome, SnapshotRow, Transition, Vendor, VendorId, VendorSku,
    VendorStock,
};
use aggregator_core::error::{Error, Result};
use aggregator_core::memory::InMemoryStockStore;
use aggregator_core::service::OutboxRelay;
use aggregator_core::traits::{
    DeadLetter, ExpiredBatch, HoldConversion, HoldPlacement, OrderPlacement, OrderQuery, Page,
    Placed, Reroute, Subscription,
};
use aggregator_core::{OrderQueue, StockStore};
use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

use super::support::{World, drain, request};

/// A queue whose publishes fail while `down` is set.
#[derive(Debug)]
struct FlakyQueue {
    inner: aggregator_core::memory::InMemoryOrderQueue,
    down: AtomicBool,
}

#[async_trait]
impl OrderQueue for FlakyQueue {
    async fn publish(&self, queue: QueueName, message: &Message) -> Result<()> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::transient("broker", "connection refused"));
        }
        self.inner.publish(queue, message).await
    }
    async fn subscribe(&self, queue: QueueName, prefetch: u16) -> Result<Box<dyn Subscription>> {
        self.inner.subscribe(queue, prefetch).await
    }
    async fn dead_letters(&self, queue: QueueName, limit: usize) -> Result<Vec<DeadLetter>> {
        self.inner.dead_letters(queue, limit).await
    }
    async fn replay_dead_letters(
        &self,
        queue: QueueName,
        only: Option<MessageId>,
    ) -> Result<usize> {
        self.inner.replay_dead_letters(queue, only).await
    }
}

/// A store whose `mark_outbox_sent` fails while `broken` is set: a relay that "crashes"
/// between publishing and marking.
#[derive(Debug)]
struct ForgetfulStore {
    inner: Arc<InMemoryStockStore>,
    broken: AtomicBool,
}

#[async_trait]
impl StockStore for ForgetfulStore {
    async fn upsert_vendor(&self, vendor: &Vendor) -> Result<()> {
        self.inner.upsert_vendor(vendor).await
    }
    async fn vendors(&self) -> Result<Vec<Vendor>> {
        self.inner.vendors().await
    }
    async fn apply_snapshot(
        &self,
        vendor: &VendorId,
        rows: &[SnapshotRow],
    ) -> Result<SnapshotOutcome> {
        self.inner.apply_snapshot(vendor, rows).await
    }
    async fn complete_snapshot(
        &self,
        vendor: &VendorId,
        as_of: OffsetDateTime,
        at: OffsetDateTime,
    ) -> Result<Vendor> {
        self.inner.complete_snapshot(vendor, as_of, at).await
    }
    async fn record_sync_failure(
        &self,
        vendor: &VendorId,
        reason: &str,
        policy: HealthPolicy,
    ) -> Result<Vendor> {
        self.inner.record_sync_failure(vendor, reason, policy).await
    }
    async fn stock_for_product(&self, product: &ProductId) -> Result<Vec<VendorStock>> {
        self.inner.stock_for_product(product).await
    }
    async fn stock_for_sku(&self, sku: &VendorSku) -> Result<Vec<VendorStock>> {
        self.inner.stock_for_sku(sku).await
    }
    async fn products(&self, offset: u64, limit: u32) -> Result<Page<ProductId>> {
        self.inner.products(offset, limit).await
    }
    async fn place_order(&self, placement: OrderPlacement) -> Result<Placed> {
        self.inner.place_order(placement).await
    }
    async fn order(&self, id: OrderId) -> Result<Order> {
        self.inner.order(id).await
    }
    async fn orders(&self, query: &OrderQuery) -> Result<Page<Order>> {
        self.inner.orders(query).await
    }
    async fn transition(&self, transition: &Transition, outbox: &[OutboxMessage]) -> Result<Order> {
        self.inner.transition(transition, outbox).await
    }
    async fn reroute(&self, reroute: &Reroute) -> Result<Order> {
        self.inner.reroute(reroute).await
    }
    async fn place_hold(&self, placement: HoldPlacement) -> Result<Hold> {
        self.inner.place_hold(placement).await
    }
    async fn hold(&self, id: HoldId) -> Result<Hold> {
        self.inner.hold(id).await
    }
    async fn extend_hold(
        &self,
        id: HoldId,
        expires_at: OffsetDateTime,
        at: OffsetDateTime,
    ) -> Result<Hold> {
        self.inner.extend_hold(id, expires_at, at).await
    }
    async fn release_hold(&self, id: HoldId, at: OffsetDateTime) -> Result<Hold> {
        self.inner.release_hold(id, at).await
    }
    async fn convert_hold(&self, conversion: HoldConversion) -> Result<Placed> {
        self.inner.convert_hold(conversion).await
    }
    async fn expire_overdue(&self, now: OffsetDateTime, limit: u32) -> Result<ExpiredBatch> {
        self.inner.expire_overdue(now, limit).await
    }
    async fn claim_outbox(
        &self,
        now: OffsetDateTime,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>> {
        self.inner.claim_outbox(now, lease, limit).await
    }
    async fn mark_outbox_sent(&self, ids: &[MessageId]) -> Result<()> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(Error::transient("postgres", "connection lost"));
        }
        self.inner.mark_outbox_sent(ids).await
    }
    async fn record_processed(&self, consumer: &str, id: MessageId) -> Result<bool> {
        self.inner.record_processed(consumer, id).await
    }
}

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
async fn a_crash_between_publish_and_mark_duplicates_and_consumers_deduplicate() {
    let world = World::new(10, 0, 0).await;
    let store = Arc::new(ForgetfulStore {
        inner: Arc::clone(&world.store),
        broken: AtomicBool::new(true),
    });
    let orders = aggregator_core::service::OrderService::new(
        store.clone(),
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
        store.clone(),
        Arc::clone(&queue),
        world.clock(),
        10,
        Duration::seconds(30),
    )
    .expect("relay");
    relay.run_once().await.expect_err("mark failed");
    store.broken.store(false, Ordering::SeqCst);
    world.clock.advance(Duration::seconds(31));
    assert_eq!(relay.run_once().await.expect("republished"), 1);
    let messages = drain(queue.as_ref()).await;
    assert_eq!(messages.len(), 2, "a duplicate, never a loss");
    assert_eq!(
        messages[0].id, messages[1].id,
        "the duplicate has the same id"
    );
    let mut applied = 0;
    for message in &messages {
        if store
            .record_processed("worker", message.id)
            .await
            .expect("record")
        {
            applied += 1;
        }
    }
    assert_eq!(applied, 1, "processed once");
}
