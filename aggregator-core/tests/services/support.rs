//! A small world for the service tests: an in-memory store with two vendors carrying
//! the seed's products, a manual clock, an in-memory queue and mocked vendor clients.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration as StdDuration;

use aggregator_core::domain::{
    EventCursor, EventRead, MessageId, Order, OutboxMessage, Transition, WebhookEndpoint,
};
use aggregator_core::error::Error;
use aggregator_core::prelude::*;
use aggregator_core::traits::{
    CancellationBacklog, ExpiredBatch, IdempotencyRecord, OrderEventLog, OrderPlacement,
    OrderQuery, OutboxBacklog, Page, Placed, Reroute,
};
use async_trait::async_trait;

use aggregator_core::domain::{
    Currency, CustomerId, Money, OrderDetails, ProductId, SnapshotRow, Vendor, VendorId, VendorSku,
};
use aggregator_core::domain::{Message, QueueName};
use aggregator_core::memory::{InMemoryOrderQueue, InMemoryStockStore};
use aggregator_core::service::{ItemRequest, OrderConfig, OrderRequest, OrderService};
use aggregator_core::traits::{DeadLetter, QueueDepth, Subscription};
use aggregator_core::traits::{
    RetryPolicy, StockPage, VendorClient, VendorInfo, VendorOrder, VendorOrderOutcome,
};
use aggregator_core::{ManualClock, Result};
use time::{Duration, OffsetDateTime};

mockall::mock! {
    pub Vendor {}

    #[async_trait::async_trait]
    impl VendorClient for Vendor {
        fn vendor(&self) -> &VendorId;
        async fn health(&self) -> Result<()>;
        async fn info(&self) -> Result<VendorInfo>;
        async fn stock_page(&self, page: u32, limit: u32) -> Result<StockPage>;
        async fn place_order(&self, order: &VendorOrder) -> Result<VendorOrderOutcome>;
        async fn cancel_order(&self, idempotency_key: &str) -> Result<aggregator_core::traits::CancelOutcome>;
    }
}

impl std::fmt::Debug for MockVendor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MockVendor")
    }
}

/// A mock vendor answering `vendor()` with `id`.
pub(crate) fn mock_vendor(id: &str) -> MockVendor {
    let mut mock = MockVendor::new();
    mock.expect_vendor().return_const(vendor(id));
    mock
}

pub(crate) fn vendor(id: &str) -> VendorId {
    VendorId::new(id).expect("vendor id")
}

pub(crate) fn sku(id: &str) -> VendorSku {
    VendorSku::new(id).expect("sku")
}

pub(crate) fn product(id: &str) -> ProductId {
    ProductId::new(id).expect("product")
}

pub(crate) fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::USD).expect("price")
}

/// The store, clock and queue every service test shares.
pub(crate) struct World {
    pub(crate) store: Arc<InMemoryStockStore>,
    pub(crate) clock: ManualClock,
    pub(crate) queue: InMemoryOrderQueue,
    pub(crate) start: OffsetDateTime,
}

impl World {
    /// VendorA (priority 1) and VendorB (priority 2), synced now, with
    /// LAPTOP-001 as LAPTOP-a-001 / LAPTOP-b-001 and PHONE-002 only at A.
    pub(crate) async fn new(laptops_a: i64, laptops_b: i64, phones_a: i64) -> Self {
        let start = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time");
        let world = Self {
            store: Arc::new(InMemoryStockStore::new()),
            clock: ManualClock::new(start),
            queue: InMemoryOrderQueue::new(
                RetryPolicy::new(vec![StdDuration::from_millis(20)]).expect("policy"),
            ),
            start,
        };
        for (id, priority) in [("VendorA", 1), ("VendorB", 2)] {
            let record =
                Vendor::new(vendor(id), id, "http://127.0.0.1:9", priority).expect("vendor");
            world.store.upsert_vendor(&record).await.expect("upsert");
        }
        world
            .report(
                "VendorA",
                &[
                    ("LAPTOP-a-001", "LAPTOP-001", laptops_a, 99_999),
                    ("PHONE-a-002", "PHONE-002", phones_a, 59_999),
                ],
                start,
            )
            .await;
        world
            .report(
                "VendorB",
                &[("LAPTOP-b-001", "LAPTOP-001", laptops_b, 98_999)],
                start,
            )
            .await;
        for id in ["VendorA", "VendorB"] {
            world
                .store
                .complete_snapshot(&vendor(id), &[], start, start, time::Duration::ZERO)
                .await
                .expect("complete");
        }
        world
    }

    /// Applies one page of rows (sku, product, quantity, price) for `vendor_id`.
    pub(crate) async fn report(
        &self,
        vendor_id: &str,
        rows: &[(&str, &str, i64, i64)],
        as_of: OffsetDateTime,
    ) {
        let rows: Vec<SnapshotRow> = rows
            .iter()
            .map(|(s, p, quantity, price)| SnapshotRow {
                sku: sku(s),
                product: product(p),
                quantity: *quantity,
                price: usd(*price),
                as_of,
            })
            .collect();
        self.store
            .apply_snapshot(&vendor(vendor_id), &rows, time::Duration::ZERO)
            .await
            .expect("snapshot");
    }

    pub(crate) fn dyn_store(&self) -> Arc<dyn StockStore> {
        self.store.clone()
    }

    pub(crate) fn clock(&self) -> Arc<ManualClock> {
        Arc::new(self.clock.clone())
    }

    pub(crate) fn orders(&self) -> OrderService {
        OrderService::new(
            self.dyn_store(),
            self.dyn_store(),
            self.dyn_store(),
            self.clock(),
            OrderConfig::default(),
        )
        .expect("service")
    }

    /// Reserved units on a (vendor, sku).
    pub(crate) fn reserved(&self, vendor_id: &str, sku_id: &str) -> i64 {
        self.store
            .stock(&vendor(vendor_id), &sku(sku_id))
            .expect("row")
            .reserved
    }

    pub(crate) fn row(
        &self,
        vendor_id: &str,
        sku_id: &str,
    ) -> aggregator_core::domain::VendorStock {
        self.store
            .stock(&vendor(vendor_id), &sku(sku_id))
            .expect("row")
    }

    pub(crate) fn later(&self, seconds: i64) -> OffsetDateTime {
        self.start + Duration::seconds(seconds)
    }
}

pub(crate) fn details(customer: &str) -> OrderDetails {
    OrderDetails {
        customer: CustomerId::new(customer).expect("customer"),
        email: None,
        shipping_address: None,
        payment_method: Some("credit_card".into()),
        notes: None,
    }
}

pub(crate) fn request(customer: &str, items: &[(&str, i64)]) -> OrderRequest {
    OrderRequest {
        details: details(customer),
        items: items
            .iter()
            .map(|(item, quantity)| ItemRequest {
                item: (*item).to_owned(),
                quantity: *quantity,
                unit_price: None,
            })
            .collect(),
    }
}

/// Every message waiting in `order_queue`, acked; stops after 50 ms without one.
pub(crate) async fn drain(queue: &dyn OrderQueue) -> Vec<Message> {
    let mut subscription = queue
        .subscribe(QueueName::Orders, 100)
        .await
        .expect("subscribe");
    let mut messages = Vec::new();
    while let Ok(Ok(delivery)) =
        tokio::time::timeout(StdDuration::from_millis(50), subscription.next()).await
    {
        messages.push(delivery.message.clone());
        delivery.ack().await.expect("ack");
    }
    messages
}

/// The orders that `messages` ask the worker to process (`ProcessOrder` and
/// `ProcessOrders`); panics on any other message.
pub(crate) fn orders_in(messages: &[Message]) -> Vec<aggregator_core::domain::OrderId> {
    use aggregator_core::domain::OrderMessage;
    messages
        .iter()
        .flat_map(|message| match message.decode::<OrderMessage>() {
            Ok(OrderMessage::ProcessOrder { order }) => vec![order],
            Ok(OrderMessage::ProcessOrders { orders }) => orders,
            other => panic!("not a process message: {other:?}"),
        })
        .collect()
}

/// The order-commits role of an in-memory store, with status changes failing while
/// `broken` is set (a database that went away).
#[derive(Debug)]
pub(crate) struct BrokenTransitions {
    inner: Arc<InMemoryStockStore>,
    pub(crate) broken: AtomicBool,
}

impl BrokenTransitions {
    /// Over `inner`, not broken yet.
    pub(crate) fn over(inner: &Arc<InMemoryStockStore>) -> Self {
        Self {
            inner: Arc::clone(inner),
            broken: AtomicBool::new(false),
        }
    }
}

#[async_trait]
impl OrderCommits for BrokenTransitions {
    async fn place_order(&self, placement: OrderPlacement) -> Result<Placed> {
        self.inner.place_order(placement).await
    }
    async fn transition(&self, transition: &Transition, outbox: &[OutboxMessage]) -> Result<Order> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(Error::transient("postgres", "connection lost"));
        }
        self.inner.transition(transition, outbox).await
    }
}

/// The outbox role of an in-memory store, with `mark_outbox_sent` failing while
/// `broken` is set (a relay that "crashes" between publishing and marking).
#[derive(Debug)]
pub(crate) struct BrokenMarks {
    inner: Arc<InMemoryStockStore>,
    pub(crate) broken: AtomicBool,
}

impl BrokenMarks {
    /// Over `inner`, not broken yet.
    pub(crate) fn over(inner: &Arc<InMemoryStockStore>) -> Self {
        Self {
            inner: Arc::clone(inner),
            broken: AtomicBool::new(false),
        }
    }
}

#[async_trait]
impl Outbox for BrokenMarks {
    async fn claim_outbox(
        &self,
        now: OffsetDateTime,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>> {
        self.inner.claim_outbox(now, lease, limit).await
    }
    async fn claim_outbox_ids(
        &self,
        ids: &[MessageId],
        now: OffsetDateTime,
        lease: Duration,
    ) -> Result<Vec<OutboxMessage>> {
        self.inner.claim_outbox_ids(ids, now, lease).await
    }
    async fn mark_outbox_sent(&self, ids: &[MessageId]) -> Result<()> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(Error::transient("postgres", "connection lost"));
        }
        self.inner.mark_outbox_sent(ids).await
    }
    async fn outbox_backlog(&self) -> Result<OutboxBacklog> {
        self.inner.outbox_backlog().await
    }
}

/// The order event log of an in-memory store that does `before_read` once, just before
/// the next read: an endpoint is registered and then an order changes (a registration
/// racing a dispatcher).
#[derive(Debug)]
pub(crate) struct RacingEventLog {
    inner: Arc<InMemoryStockStore>,
    pub(crate) before_read: std::sync::Mutex<Option<(WebhookEndpoint, Transition)>>,
}

impl RacingEventLog {
    /// Over `inner`, with nothing to do yet.
    pub(crate) fn over(inner: &Arc<InMemoryStockStore>) -> Self {
        Self {
            inner: Arc::clone(inner),
            before_read: std::sync::Mutex::new(None),
        }
    }
}

#[async_trait]
impl OrderEventLog for RacingEventLog {
    async fn order_events_after(
        &self,
        after: Option<EventCursor>,
        customer: Option<&CustomerId>,
        limit: u32,
    ) -> Result<EventRead> {
        let race = self
            .before_read
            .lock()
            .map(|mut pending| pending.take())
            .unwrap_or_default();
        if let Some((endpoint, change)) = race {
            self.inner.create_webhook(&endpoint).await?;
            self.inner.transition(&change, &[]).await?;
        }
        self.inner.order_events_after(after, customer, limit).await
    }
    async fn order_events_head(&self) -> Result<Option<EventCursor>> {
        self.inner.order_events_head().await
    }
    async fn prune_order_events(&self, before: OffsetDateTime, limit: u32) -> Result<u64> {
        self.inner.prune_order_events(before, limit).await
    }
}

/// A queue whose publishes fail while `down` is set.
#[derive(Debug)]
pub(crate) struct FlakyQueue {
    pub(crate) inner: aggregator_core::memory::InMemoryOrderQueue,
    pub(crate) down: AtomicBool,
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
    async fn depths(&self, queue: QueueName) -> Result<Vec<QueueDepth>> {
        self.inner.depths(queue).await
    }
}

/// The order role of an in-memory store that counts its reads, one by one and
/// together, with reads together failing while `broken` is set (a query the database
/// refused).
#[derive(Debug)]
pub(crate) struct CountedReads {
    inner: Arc<InMemoryStockStore>,
    pub(crate) broken: AtomicBool,
    pub(crate) alone: std::sync::atomic::AtomicU32,
    pub(crate) together: std::sync::atomic::AtomicU32,
}

impl CountedReads {
    /// Over `inner`, not broken yet, nothing read.
    pub(crate) fn over(inner: &Arc<InMemoryStockStore>) -> Self {
        Self {
            inner: Arc::clone(inner),
            broken: AtomicBool::new(false),
            alone: std::sync::atomic::AtomicU32::new(0),
            together: std::sync::atomic::AtomicU32::new(0),
        }
    }
}

#[async_trait]
impl OrderListing for CountedReads {
    async fn orders(&self, query: &OrderQuery) -> Result<Page<Order>> {
        self.inner.orders(query).await
    }
}

#[async_trait]
impl OrderCommits for CountedReads {
    async fn place_order(&self, placement: OrderPlacement) -> Result<Placed> {
        self.inner.place_order(placement).await
    }
    async fn transition(&self, transition: &Transition, outbox: &[OutboxMessage]) -> Result<Order> {
        self.inner.transition(transition, outbox).await
    }
}

#[async_trait]
impl OrderStore for CountedReads {
    async fn order(&self, id: aggregator_core::domain::OrderId) -> Result<Order> {
        self.alone.fetch_add(1, Ordering::SeqCst);
        self.inner.order(id).await
    }
    async fn orders_by_id(&self, ids: &[aggregator_core::domain::OrderId]) -> Result<Vec<Order>> {
        self.together.fetch_add(1, Ordering::SeqCst);
        if self.broken.load(Ordering::SeqCst) {
            return Err(Error::transient("postgres", "statement timeout"));
        }
        self.inner.orders_by_id(ids).await
    }
    async fn placed_under_key(
        &self,
        customer: &CustomerId,
        record: &IdempotencyRecord,
    ) -> Result<Option<Placed>> {
        self.inner.placed_under_key(customer, record).await
    }
    async fn reroute(&self, reroute: &Reroute) -> Result<Order> {
        self.inner.reroute(reroute).await
    }
    async fn vendor_cancellation_done(&self, vendor: &VendorId, key: &str) -> Result<()> {
        self.inner.vendor_cancellation_done(vendor, key).await
    }
    async fn requeue_cancellations(
        &self,
        queued_before: OffsetDateTime,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<u32> {
        self.inner
            .requeue_cancellations(queued_before, now, limit)
            .await
    }
    async fn cancellation_backlog(&self) -> Result<CancellationBacklog> {
        self.inner.cancellation_backlog().await
    }
    async fn expire_overdue(&self, now: OffsetDateTime, limit: u32) -> Result<ExpiredBatch> {
        self.inner.expire_overdue(now, limit).await
    }
}
