//! [`StoreRoles`]: a store handed out role by role, so that a decorator (group commit, a
//! test's broken role) or another source (a read replica) takes the place of the one
//! role it changes and the rest stay the store's own.

use std::sync::Arc;

use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

use crate::domain::{
    CustomerId, DeliveryOutcome, EventCursor, EventRead, HealthPolicy, Hold, HoldId, MessageId,
    Order, OrderId, OutboxMessage, ProductId, SnapshotOutcome, SnapshotRow, Transition, Vendor,
    VendorId, VendorSku, VendorStock, WebhookEndpoint, WebhookId,
};
use crate::error::Result;
use crate::traits::{
    CancellationBacklog, CatalogReads, ExpiredBatch, HoldConversion, HoldPlacement, HoldStore,
    IdempotencyRecord, OrderCommits, OrderEventLog, OrderListing, OrderPlacement, OrderQuery,
    OrderStore, Outbox, OutboxBacklog, Page, Placed, Reroute, StockStore, VendorLedger,
    WebhookStore,
};

/// One handle per role of the store of record. [`StoreRoles::of`] hands out every role of
/// one backend; replace a field to change that role alone, e.g.
/// `StoreRoles { commits: Arc::new(GroupCommit::new(roles.commits.clone(), config)?), ..roles }`.
///
/// It is a [`StockStore`] itself (each call goes to the handle of its role), so a
/// service, the conformance suite or an embedder that takes a whole store takes one
/// assembled from roles. Every role must be over the same store of record: a placement's
/// outbox messages, for instance, are written by `commits` and read by `outbox`.
#[derive(Debug, Clone)]
pub struct StoreRoles {
    /// Vendors and their stock reports (the sync).
    pub ledger: Arc<dyn VendorLedger>,
    /// Vendors and stock rows as planning reads them (the primary: placements decide
    /// on these).
    pub catalog: Arc<dyn CatalogReads>,
    /// Orders: reads, listing, re-routes, cancellations, expiry.
    pub orders: Arc<dyn OrderStore>,
    /// Placements and status changes (where group commit goes).
    pub commits: Arc<dyn OrderCommits>,
    /// Holds.
    pub holds: Arc<dyn HoldStore>,
    /// The outbox the relay drains.
    pub outbox: Arc<dyn Outbox>,
    /// The order event log (streams, webhooks, pruning).
    pub events: Arc<dyn OrderEventLog>,
    /// Webhook endpoints and their dispatch.
    pub webhooks: Arc<dyn WebhookStore>,
}

impl StoreRoles {
    /// Every role of `store`: one call for a whole backend.
    pub fn of(store: Arc<dyn StockStore>) -> Self {
        Self {
            ledger: store.clone(),
            catalog: store.clone(),
            orders: store.clone(),
            commits: store.clone(),
            holds: store.clone(),
            outbox: store.clone(),
            events: store.clone(),
            webhooks: store,
        }
    }
}

#[async_trait]
impl OrderCommits for StoreRoles {
    async fn place_order(&self, placement: OrderPlacement) -> Result<Placed> {
        self.commits.place_order(placement).await
    }

    async fn place_orders(&self, placements: Vec<OrderPlacement>) -> Vec<Result<Placed>> {
        self.commits.place_orders(placements).await
    }

    async fn transition(&self, transition: &Transition, outbox: &[OutboxMessage]) -> Result<Order> {
        self.commits.transition(transition, outbox).await
    }

    async fn transitions(
        &self,
        changes: Vec<(Transition, Vec<OutboxMessage>)>,
    ) -> Vec<Result<Order>> {
        self.commits.transitions(changes).await
    }
}

#[async_trait]
impl OrderListing for StoreRoles {
    async fn orders(&self, query: &OrderQuery) -> Result<Page<Order>> {
        self.orders.orders(query).await
    }
}

#[async_trait]
impl OrderStore for StoreRoles {
    async fn order(&self, id: OrderId) -> Result<Order> {
        self.orders.order(id).await
    }

    async fn orders_by_id(&self, ids: &[OrderId]) -> Result<Vec<Order>> {
        self.orders.orders_by_id(ids).await
    }

    async fn placed_under_key(
        &self,
        customer: &CustomerId,
        record: &IdempotencyRecord,
    ) -> Result<Option<Placed>> {
        self.orders.placed_under_key(customer, record).await
    }

    async fn reroute(&self, reroute: &Reroute) -> Result<Order> {
        self.orders.reroute(reroute).await
    }

    async fn vendor_cancellation_done(&self, vendor: &VendorId, key: &str) -> Result<()> {
        self.orders.vendor_cancellation_done(vendor, key).await
    }

    async fn expire_overdue(&self, now: OffsetDateTime, limit: u32) -> Result<ExpiredBatch> {
        self.orders.expire_overdue(now, limit).await
    }

    async fn requeue_cancellations(
        &self,
        queued_before: OffsetDateTime,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<u32> {
        self.orders
            .requeue_cancellations(queued_before, now, limit)
            .await
    }

    async fn cancellation_backlog(&self) -> Result<CancellationBacklog> {
        self.orders.cancellation_backlog().await
    }
}

#[async_trait]
impl VendorLedger for StoreRoles {
    async fn upsert_vendor(&self, vendor: &Vendor) -> Result<()> {
        self.ledger.upsert_vendor(vendor).await
    }

    async fn apply_snapshot(
        &self,
        vendor: &VendorId,
        rows: &[SnapshotRow],
        margin: Duration,
    ) -> Result<SnapshotOutcome> {
        self.ledger.apply_snapshot(vendor, rows, margin).await
    }

    async fn complete_snapshot(
        &self,
        vendor: &VendorId,
        listed: &[VendorSku],
        as_of: OffsetDateTime,
        at: OffsetDateTime,
        margin: Duration,
    ) -> Result<Vendor> {
        self.ledger
            .complete_snapshot(vendor, listed, as_of, at, margin)
            .await
    }

    async fn record_sync_failure(
        &self,
        vendor: &VendorId,
        reason: &str,
        policy: HealthPolicy,
    ) -> Result<Vendor> {
        self.ledger
            .record_sync_failure(vendor, reason, policy)
            .await
    }
}

#[async_trait]
impl CatalogReads for StoreRoles {
    async fn vendors(&self) -> Result<Vec<Vendor>> {
        self.catalog.vendors().await
    }

    async fn stock_for_product(&self, product: &ProductId) -> Result<Vec<VendorStock>> {
        self.catalog.stock_for_product(product).await
    }

    async fn stock_for_sku(&self, sku: &VendorSku) -> Result<Vec<VendorStock>> {
        self.catalog.stock_for_sku(sku).await
    }

    async fn products(&self, offset: u64, limit: u32) -> Result<Page<ProductId>> {
        self.catalog.products(offset, limit).await
    }
}

#[async_trait]
impl HoldStore for StoreRoles {
    async fn place_hold(&self, placement: HoldPlacement) -> Result<Hold> {
        self.holds.place_hold(placement).await
    }

    async fn hold(&self, id: HoldId) -> Result<Hold> {
        self.holds.hold(id).await
    }

    async fn extend_hold(
        &self,
        id: HoldId,
        expires_at: OffsetDateTime,
        at: OffsetDateTime,
    ) -> Result<Hold> {
        self.holds.extend_hold(id, expires_at, at).await
    }

    async fn release_hold(&self, id: HoldId, at: OffsetDateTime) -> Result<Hold> {
        self.holds.release_hold(id, at).await
    }

    async fn convert_hold(&self, conversion: HoldConversion) -> Result<Placed> {
        self.holds.convert_hold(conversion).await
    }
}

#[async_trait]
impl Outbox for StoreRoles {
    async fn claim_outbox(
        &self,
        now: OffsetDateTime,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>> {
        self.outbox.claim_outbox(now, lease, limit).await
    }

    async fn claim_outbox_ids(
        &self,
        ids: &[MessageId],
        now: OffsetDateTime,
        lease: Duration,
    ) -> Result<Vec<OutboxMessage>> {
        self.outbox.claim_outbox_ids(ids, now, lease).await
    }

    async fn mark_outbox_sent(&self, ids: &[MessageId]) -> Result<()> {
        self.outbox.mark_outbox_sent(ids).await
    }

    async fn outbox_backlog(&self) -> Result<OutboxBacklog> {
        self.outbox.outbox_backlog().await
    }
}

#[async_trait]
impl OrderEventLog for StoreRoles {
    async fn order_events_after(
        &self,
        after: Option<EventCursor>,
        customer: Option<&CustomerId>,
        limit: u32,
    ) -> Result<EventRead> {
        self.events.order_events_after(after, customer, limit).await
    }

    async fn order_events_head(&self) -> Result<Option<EventCursor>> {
        self.events.order_events_head().await
    }

    async fn prune_order_events(&self, before: OffsetDateTime, limit: u32) -> Result<u64> {
        self.events.prune_order_events(before, limit).await
    }
}

#[async_trait]
impl WebhookStore for StoreRoles {
    async fn create_webhook(&self, endpoint: &WebhookEndpoint) -> Result<()> {
        self.webhooks.create_webhook(endpoint).await
    }
    async fn webhook(&self, id: WebhookId) -> Result<WebhookEndpoint> {
        self.webhooks.webhook(id).await
    }
    async fn webhooks(&self, customer: Option<&CustomerId>) -> Result<Vec<WebhookEndpoint>> {
        self.webhooks.webhooks(customer).await
    }
    async fn delete_webhook(&self, id: WebhookId) -> Result<()> {
        self.webhooks.delete_webhook(id).await
    }
    async fn record_delivery(
        &self,
        id: WebhookId,
        outcome: &DeliveryOutcome,
        disable_after: u32,
    ) -> Result<WebhookEndpoint> {
        self.webhooks
            .record_delivery(id, outcome, disable_after)
            .await
    }
    async fn enable_webhook(&self, id: WebhookId) -> Result<WebhookEndpoint> {
        self.webhooks.enable_webhook(id).await
    }
    async fn webhook_cursor(&self) -> Result<Option<EventCursor>> {
        self.webhooks.webhook_cursor().await
    }
    async fn dispatch_webhooks(
        &self,
        from: Option<EventCursor>,
        to: EventCursor,
        deliveries: &[OutboxMessage],
    ) -> Result<()> {
        self.webhooks.dispatch_webhooks(from, to, deliveries).await
    }
}
