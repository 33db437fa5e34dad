//! [`GroupCommit`]: a store whose placements and status changes are gathered over a
//! short window and committed as one batch each, so that a busy system pays for one
//! commit per batch instead of one per order.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

use super::batcher::{BatchConfig, Batcher};
use super::commit_feed::CommitFeed;
use crate::domain::{
    CustomerId, DeliveryOutcome, EventCursor, EventRead, HealthPolicy, Hold, HoldId, MessageId,
    Order, OrderId, OutboxMessage, ProductId, SnapshotOutcome, SnapshotRow, Transition, Vendor,
    VendorId, VendorSku, VendorStock, WebhookEndpoint, WebhookId,
};
use crate::error::Result;
use crate::traits::{
    CancellationBacklog, CatalogReads, ExpiredBatch, HoldConversion, HoldPlacement, HoldStore,
    IdempotencyRecord, OrderEventLog, OrderListing, OrderPlacement, OrderQuery, OrderStore, Outbox,
    OutboxBacklog, Page, Placed, Reroute, StockStore, VendorLedger, WebhookStore,
};

type Change = (Transition, Vec<OutboxMessage>);

/// Wraps a store: [`OrderStore::place_order`] and [`OrderStore::transition`] calls that
/// arrive within the configured window go to the store together, as one
/// [`OrderStore::place_orders`] or [`OrderStore::transitions`] call; every other call
/// goes straight through. Each caller still gets its own answer, exactly the one the
/// store would have given it alone at that point in the batch, so the store's rules
/// (and its conformance suite) hold unchanged. A call waits at most the window, then
/// for one of the batch slots, then for its batch.
pub struct GroupCommit<S: ?Sized> {
    store: Arc<S>,
    config: BatchConfig,
    placements: Option<Batcher<OrderPlacement, Placed>>,
    changes: Option<Batcher<Change, Order>>,
    committed: Option<Arc<CommitFeed>>,
}

impl<S: ?Sized> fmt::Debug for GroupCommit<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupCommit")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<S: OrderStore + ?Sized> GroupCommit<S> {
    /// Gathers `store`'s placements and status changes per `config` (batching is off,
    /// every call going straight through, when `config.max_batch` is 1). Must be called
    /// within a Tokio runtime; the gathering stops when this is dropped.
    pub fn new(store: Arc<S>, config: BatchConfig) -> Result<Self> {
        config.validate()?;
        if config.is_off() {
            return Ok(Self {
                store,
                config,
                placements: None,
                changes: None,
                committed: None,
            });
        }
        let placing = store.clone();
        let placements = Batcher::start("placement batcher", config, move |batch| {
            let store = placing.clone();
            async move { store.place_orders(batch).await }
        });
        let changing = store.clone();
        let changes = Batcher::start("status change batcher", config, move |batch| {
            let store = changing.clone();
            async move { store.transitions(batch).await }
        });
        Ok(Self {
            store,
            config,
            placements: Some(placements),
            changes: Some(changes),
            committed: None,
        })
    }

    /// Hands the ids of the outbox messages of every placement and status change that
    /// committed to `committed`: the outbox relay of this process takes them from there,
    /// so it publishes at once, finding each message by its id, instead of scanning the
    /// outbox at its next tick.
    pub fn with_commit_feed(mut self, committed: Arc<CommitFeed>) -> Self {
        self.committed = Some(committed);
        self
    }

    fn hand_over(&self, written: bool, outbox: impl Iterator<Item = MessageId>) {
        if let (true, Some(committed)) = (written, &self.committed) {
            committed.committed(outbox);
        }
    }

    /// How calls are gathered.
    pub fn config(&self) -> BatchConfig {
        self.config
    }
}

/// A [`GroupCommit`] over a whole store, usable as one, handing what each commit wrote
/// to the outbox to `committed` (see [`GroupCommit::with_commit_feed`]).
pub fn group_commit(
    store: Arc<dyn StockStore>,
    config: BatchConfig,
    committed: Arc<CommitFeed>,
) -> Result<Arc<dyn StockStore>> {
    Ok(Arc::new(
        GroupCommit::new(store, config)?.with_commit_feed(committed),
    ))
}

#[async_trait]
impl<S: OrderStore + ?Sized> OrderListing for GroupCommit<S> {
    async fn orders(&self, query: &OrderQuery) -> Result<Page<Order>> {
        self.store.orders(query).await
    }
}

#[async_trait]
impl<S: OrderStore + ?Sized> OrderStore for GroupCommit<S> {
    async fn place_order(&self, placement: OrderPlacement) -> Result<Placed> {
        let outbox: Vec<MessageId> = placement.outbox.iter().map(|m| m.message.id).collect();
        let outcome = match &self.placements {
            Some(batcher) => batcher.submit(placement).await,
            None => self.store.place_order(placement).await,
        };
        // A replay wrote nothing: its messages are the first placement's.
        let written = outcome.as_ref().is_ok_and(|placed| !placed.replayed);
        self.hand_over(written, outbox.into_iter());
        outcome
    }

    async fn place_orders(&self, placements: Vec<OrderPlacement>) -> Vec<Result<Placed>> {
        self.store.place_orders(placements).await
    }

    async fn order(&self, id: OrderId) -> Result<Order> {
        self.store.order(id).await
    }

    async fn placed_under_key(
        &self,
        customer: &CustomerId,
        record: &IdempotencyRecord,
    ) -> Result<Option<Placed>> {
        self.store.placed_under_key(customer, record).await
    }

    async fn transition(&self, transition: &Transition, outbox: &[OutboxMessage]) -> Result<Order> {
        let outcome = match &self.changes {
            Some(batcher) => batcher.submit((transition.clone(), outbox.to_vec())).await,
            None => self.store.transition(transition, outbox).await,
        };
        self.hand_over(outcome.is_ok(), outbox.iter().map(|m| m.message.id));
        outcome
    }

    async fn transitions(&self, changes: Vec<Change>) -> Vec<Result<Order>> {
        self.store.transitions(changes).await
    }

    async fn reroute(&self, reroute: &Reroute) -> Result<Order> {
        self.store.reroute(reroute).await
    }

    async fn vendor_cancellation_done(&self, vendor: &VendorId, key: &str) -> Result<()> {
        self.store.vendor_cancellation_done(vendor, key).await
    }

    async fn expire_overdue(&self, now: OffsetDateTime, limit: u32) -> Result<ExpiredBatch> {
        self.store.expire_overdue(now, limit).await
    }

    async fn requeue_cancellations(
        &self,
        queued_before: OffsetDateTime,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<u32> {
        // Its messages are not handed over: the relay's polling finds them.
        self.store
            .requeue_cancellations(queued_before, now, limit)
            .await
    }

    async fn cancellation_backlog(&self) -> Result<CancellationBacklog> {
        self.store.cancellation_backlog().await
    }
}

#[async_trait]
impl<S: VendorLedger + ?Sized> VendorLedger for GroupCommit<S> {
    async fn upsert_vendor(&self, vendor: &Vendor) -> Result<()> {
        self.store.upsert_vendor(vendor).await
    }

    async fn apply_snapshot(
        &self,
        vendor: &VendorId,
        rows: &[SnapshotRow],
        margin: Duration,
    ) -> Result<SnapshotOutcome> {
        self.store.apply_snapshot(vendor, rows, margin).await
    }

    async fn complete_snapshot(
        &self,
        vendor: &VendorId,
        listed: &[VendorSku],
        as_of: OffsetDateTime,
        at: OffsetDateTime,
        margin: Duration,
    ) -> Result<Vendor> {
        self.store
            .complete_snapshot(vendor, listed, as_of, at, margin)
            .await
    }

    async fn record_sync_failure(
        &self,
        vendor: &VendorId,
        reason: &str,
        policy: HealthPolicy,
    ) -> Result<Vendor> {
        self.store.record_sync_failure(vendor, reason, policy).await
    }
}

#[async_trait]
impl<S: CatalogReads + ?Sized> CatalogReads for GroupCommit<S> {
    async fn vendors(&self) -> Result<Vec<Vendor>> {
        self.store.vendors().await
    }

    async fn stock_for_product(&self, product: &ProductId) -> Result<Vec<VendorStock>> {
        self.store.stock_for_product(product).await
    }

    async fn stock_for_sku(&self, sku: &VendorSku) -> Result<Vec<VendorStock>> {
        self.store.stock_for_sku(sku).await
    }

    async fn products(&self, offset: u64, limit: u32) -> Result<Page<ProductId>> {
        self.store.products(offset, limit).await
    }
}

#[async_trait]
impl<S: HoldStore + ?Sized> HoldStore for GroupCommit<S> {
    async fn place_hold(&self, placement: HoldPlacement) -> Result<Hold> {
        self.store.place_hold(placement).await
    }

    async fn hold(&self, id: HoldId) -> Result<Hold> {
        self.store.hold(id).await
    }

    async fn extend_hold(
        &self,
        id: HoldId,
        expires_at: OffsetDateTime,
        at: OffsetDateTime,
    ) -> Result<Hold> {
        self.store.extend_hold(id, expires_at, at).await
    }

    async fn release_hold(&self, id: HoldId, at: OffsetDateTime) -> Result<Hold> {
        self.store.release_hold(id, at).await
    }

    async fn convert_hold(&self, conversion: HoldConversion) -> Result<Placed> {
        self.store.convert_hold(conversion).await
    }
}

#[async_trait]
impl<S: Outbox + ?Sized> Outbox for GroupCommit<S> {
    async fn claim_outbox(
        &self,
        now: OffsetDateTime,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>> {
        self.store.claim_outbox(now, lease, limit).await
    }

    async fn claim_outbox_ids(
        &self,
        ids: &[MessageId],
        now: OffsetDateTime,
        lease: Duration,
    ) -> Result<Vec<OutboxMessage>> {
        self.store.claim_outbox_ids(ids, now, lease).await
    }

    async fn mark_outbox_sent(&self, ids: &[MessageId]) -> Result<()> {
        self.store.mark_outbox_sent(ids).await
    }

    async fn outbox_backlog(&self) -> Result<OutboxBacklog> {
        self.store.outbox_backlog().await
    }
}

#[async_trait]
impl<S: OrderEventLog + ?Sized> OrderEventLog for GroupCommit<S> {
    async fn order_events_after(
        &self,
        after: Option<EventCursor>,
        customer: Option<&CustomerId>,
        limit: u32,
    ) -> Result<EventRead> {
        self.store.order_events_after(after, customer, limit).await
    }

    async fn order_events_head(&self) -> Result<Option<EventCursor>> {
        self.store.order_events_head().await
    }

    async fn prune_order_events(&self, before: OffsetDateTime, limit: u32) -> Result<u64> {
        self.store.prune_order_events(before, limit).await
    }
}

#[async_trait]
impl<S: WebhookStore + ?Sized> WebhookStore for GroupCommit<S> {
    async fn create_webhook(&self, endpoint: &WebhookEndpoint) -> Result<()> {
        self.store.create_webhook(endpoint).await
    }
    async fn webhook(&self, id: WebhookId) -> Result<WebhookEndpoint> {
        self.store.webhook(id).await
    }
    async fn webhooks(&self, customer: Option<&CustomerId>) -> Result<Vec<WebhookEndpoint>> {
        self.store.webhooks(customer).await
    }
    async fn delete_webhook(&self, id: WebhookId) -> Result<()> {
        self.store.delete_webhook(id).await
    }
    async fn record_delivery(
        &self,
        id: WebhookId,
        outcome: &DeliveryOutcome,
        disable_after: u32,
    ) -> Result<WebhookEndpoint> {
        self.store.record_delivery(id, outcome, disable_after).await
    }
    async fn enable_webhook(&self, id: WebhookId) -> Result<WebhookEndpoint> {
        self.store.enable_webhook(id).await
    }
    async fn webhook_cursor(&self) -> Result<Option<EventCursor>> {
        self.store.webhook_cursor().await
    }
    async fn dispatch_webhooks(
        &self,
        from: Option<EventCursor>,
        to: EventCursor,
        deliveries: &[OutboxMessage],
    ) -> Result<()> {
        self.store.dispatch_webhooks(from, to, deliveries).await
    }
}
