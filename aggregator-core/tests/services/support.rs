//! A small world for the service tests: an in-memory store with two vendors carrying
//! the seed's products, a manual clock, an in-memory queue and mocked vendor clients.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration as StdDuration;

use aggregator_core::domain::{
    DeliveryOutcome, EventCursor, EventRead, MessageId, Order, OrderId, OutboxMessage, Transition,
    WebhookEndpoint, WebhookId,
};
use aggregator_core::error::Error;
use aggregator_core::prelude::*;
use aggregator_core::traits::{
    ExpiredBatch, OrderEventLog, OrderListing, OrderPlacement, OrderQuery, OutboxBacklog, Page,
    Placed, Reroute,
};
use async_trait::async_trait;

use aggregator_core::domain::{
    Currency, CustomerId, Money, OrderDetails, ProductId, SnapshotRow, Vendor, VendorId, VendorSku,
};
use aggregator_core::domain::{Message, QueueName};
use aggregator_core::memory::{InMemoryOrderQueue, InMemoryStockStore};
use aggregator_core::service::{ItemRequest, OrderConfig, OrderRequest, OrderService};
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

/// An in-memory store's order and outbox roles, failing on purpose: `mark_outbox_sent` while `broken_marks`
/// is set (a relay that "crashes" between publishing and marking), `transition` while
/// `broken_transitions` is set (a database that went away).
#[derive(Debug)]
pub(crate) struct FaultyStore {
    inner: Arc<InMemoryStockStore>,
    pub(crate) broken_marks: AtomicBool,
    pub(crate) broken_transitions: AtomicBool,
    /// Done once, just before the next read of the order event log: an endpoint is
    /// registered and then an order changes (a registration racing a dispatcher).
    pub(crate) before_event_read: std::sync::Mutex<Option<(WebhookEndpoint, Transition)>>,
}

impl FaultyStore {
    /// Over `inner`, with nothing broken yet.
    pub(crate) fn over(inner: &Arc<InMemoryStockStore>) -> Self {
        Self {
            inner: Arc::clone(inner),
            broken_marks: AtomicBool::new(false),
            broken_transitions: AtomicBool::new(false),
            before_event_read: std::sync::Mutex::new(None),
        }
    }
}

#[async_trait]
impl OrderListing for FaultyStore {
    async fn orders(&self, query: &OrderQuery) -> Result<Page<Order>> {
        self.inner.orders(query).await
    }
}

#[async_trait]
impl OrderStore for FaultyStore {
    async fn place_order(&self, placement: OrderPlacement) -> Result<Placed> {
        self.inner.place_order(placement).await
    }
    async fn order(&self, id: OrderId) -> Result<Order> {
        self.inner.order(id).await
    }
    async fn placed_under_key(
        &self,
        customer: &CustomerId,
        record: &aggregator_core::traits::IdempotencyRecord,
    ) -> Result<Option<Placed>> {
        self.inner.placed_under_key(customer, record).await
    }
    async fn transition(&self, transition: &Transition, outbox: &[OutboxMessage]) -> Result<Order> {
        if self.broken_transitions.load(Ordering::SeqCst) {
            return Err(Error::transient("postgres", "connection lost"));
        }
        self.inner.transition(transition, outbox).await
    }
    async fn reroute(&self, reroute: &Reroute) -> Result<Order> {
        self.inner.reroute(reroute).await
    }
    async fn vendor_cancellation_done(&self, vendor: &VendorId, key: &str) -> Result<()> {
        self.inner.vendor_cancellation_done(vendor, key).await
    }
    async fn expire_overdue(&self, now: OffsetDateTime, limit: u32) -> Result<ExpiredBatch> {
        self.inner.expire_overdue(now, limit).await
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
    async fn cancellation_backlog(&self) -> Result<aggregator_core::traits::CancellationBacklog> {
        self.inner.cancellation_backlog().await
    }
}

#[async_trait]
impl Outbox for FaultyStore {
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
        if self.broken_marks.load(Ordering::SeqCst) {
            return Err(Error::transient("postgres", "connection lost"));
        }
        self.inner.mark_outbox_sent(ids).await
    }
    async fn outbox_backlog(&self) -> Result<OutboxBacklog> {
        self.inner.outbox_backlog().await
    }
}

#[async_trait]
impl OrderEventLog for FaultyStore {
    async fn order_events_after(
        &self,
        after: Option<EventCursor>,
        customer: Option<&CustomerId>,
        limit: u32,
    ) -> Result<EventRead> {
        let race = self
            .before_event_read
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

#[async_trait]
impl WebhookStore for FaultyStore {
    async fn create_webhook(&self, endpoint: &WebhookEndpoint) -> Result<()> {
        self.inner.create_webhook(endpoint).await
    }
    async fn webhook(&self, id: WebhookId) -> Result<WebhookEndpoint> {
        self.inner.webhook(id).await
    }
    async fn webhooks(&self, customer: Option<&CustomerId>) -> Result<Vec<WebhookEndpoint>> {
        self.inner.webhooks(customer).await
    }
    async fn delete_webhook(&self, id: WebhookId) -> Result<()> {
        self.inner.delete_webhook(id).await
    }
    async fn record_delivery(
        &self,
        id: WebhookId,
        outcome: &DeliveryOutcome,
        disable_after: u32,
    ) -> Result<WebhookEndpoint> {
        self.inner.record_delivery(id, outcome, disable_after).await
    }
    async fn enable_webhook(&self, id: WebhookId) -> Result<WebhookEndpoint> {
        self.inner.enable_webhook(id).await
    }
    async fn webhook_cursor(&self) -> Result<Option<EventCursor>> {
        self.inner.webhook_cursor().await
    }
    async fn dispatch_webhooks(
        &self,
        from: Option<EventCursor>,
        to: EventCursor,
        deliveries: &[OutboxMessage],
    ) -> Result<()> {
        self.inner.dispatch_webhooks(from, to, deliveries).await
    }
}

#[async_trait]
impl aggregator_core::traits::VendorLedger for FaultyStore {
    async fn upsert_vendor(&self, vendor: &Vendor) -> Result<()> {
        self.inner.upsert_vendor(vendor).await
    }
    async fn apply_snapshot(
        &self,
        vendor: &VendorId,
        rows: &[SnapshotRow],
        margin: Duration,
    ) -> Result<aggregator_core::domain::SnapshotOutcome> {
        self.inner.apply_snapshot(vendor, rows, margin).await
    }
    async fn complete_snapshot(
        &self,
        vendor: &VendorId,
        listed: &[VendorSku],
        as_of: OffsetDateTime,
        at: OffsetDateTime,
        margin: Duration,
    ) -> Result<Vendor> {
        self.inner
            .complete_snapshot(vendor, listed, as_of, at, margin)
            .await
    }
    async fn record_sync_failure(
        &self,
        vendor: &VendorId,
        reason: &str,
        policy: aggregator_core::domain::HealthPolicy,
    ) -> Result<Vendor> {
        self.inner.record_sync_failure(vendor, reason, policy).await
    }
}

#[async_trait]
impl aggregator_core::traits::CatalogReads for FaultyStore {
    async fn vendors(&self) -> Result<Vec<Vendor>> {
        self.inner.vendors().await
    }
    async fn stock_for_product(
        &self,
        product: &ProductId,
    ) -> Result<Vec<aggregator_core::domain::VendorStock>> {
        self.inner.stock_for_product(product).await
    }
    async fn stock_for_sku(
        &self,
        sku: &VendorSku,
    ) -> Result<Vec<aggregator_core::domain::VendorStock>> {
        self.inner.stock_for_sku(sku).await
    }
    async fn products(&self, offset: u64, limit: u32) -> Result<Page<ProductId>> {
        self.inner.products(offset, limit).await
    }
}

#[async_trait]
impl aggregator_core::traits::HoldStore for FaultyStore {
    async fn place_hold(
        &self,
        placement: aggregator_core::traits::HoldPlacement,
    ) -> Result<aggregator_core::domain::Hold> {
        self.inner.place_hold(placement).await
    }
    async fn hold(
        &self,
        id: aggregator_core::domain::HoldId,
    ) -> Result<aggregator_core::domain::Hold> {
        self.inner.hold(id).await
    }
    async fn extend_hold(
        &self,
        id: aggregator_core::domain::HoldId,
        expires_at: OffsetDateTime,
        at: OffsetDateTime,
    ) -> Result<aggregator_core::domain::Hold> {
        self.inner.extend_hold(id, expires_at, at).await
    }
    async fn release_hold(
        &self,
        id: aggregator_core::domain::HoldId,
        at: OffsetDateTime,
    ) -> Result<aggregator_core::domain::Hold> {
        self.inner.release_hold(id, at).await
    }
    async fn convert_hold(
        &self,
        conversion: aggregator_core::traits::HoldConversion,
    ) -> Result<Placed> {
        self.inner.convert_hold(conversion).await
    }
}
