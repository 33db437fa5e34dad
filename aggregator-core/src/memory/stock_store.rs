//! [`InMemoryStockStore`]: the store of record kept in process memory.

use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

use super::stock_state::StockState;
use super::webhooks::WebhookState;
use crate::domain::{
    CustomerId, EventCursor, EventRead, HealthPolicy, Hold, HoldId, MessageId, Order, OrderId,
    OutboxMessage, ProductId, Reservation, SnapshotOutcome, SnapshotRow, Transition, Vendor,
    VendorId, VendorSku, VendorStock,
};
use crate::error::Result;
use crate::traits::{
    CancellationBacklog, CatalogReads, ExpiredBatch, HoldConversion, HoldPlacement, HoldStore,
    IdempotencyRecord, OrderCommits, OrderEventLog, OrderListing, OrderPlacement, OrderQuery,
    OrderStore, Outbox, OutboxBacklog, Page, Placed, Reroute, VendorLedger,
};

/// A [`StockStore`](crate::traits::StockStore) in process memory: every operation runs under one lock, so each is
/// atomic and the rules are exactly those of the trait. Nothing survives the process;
/// use it for tests, demos and single-process embedding.
#[derive(Debug, Default)]
pub struct InMemoryStockStore {
    state: Mutex<StockState>,
    webhooks: Mutex<WebhookState>,
}

impl InMemoryStockStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    pub(super) fn webhook_state(&self) -> MutexGuard<'_, WebhookState> {
        // Each operation checks before it writes: keep serving after a panic elsewhere.
        self.webhooks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn state(&self) -> MutexGuard<'_, StockState> {
        // Every operation checks before it writes, so a panic elsewhere cannot leave the
        // state half-changed; keep serving after one.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Units currently held by orders and holds that still hold stock, one entry per
    /// allocation; for tests and diagnostics. Their sum per (vendor, SKU) always equals
    /// that row's `reserved`.
    pub fn active_reservations(&self) -> Vec<Reservation> {
        self.state().active_reservations()
    }

    /// One (vendor, SKU) row, if it exists.
    pub fn stock(&self, vendor: &VendorId, sku: &VendorSku) -> Option<VendorStock> {
        self.state().stock_row(vendor, sku)
    }
}

#[async_trait]
impl VendorLedger for InMemoryStockStore {
    async fn upsert_vendor(&self, vendor: &Vendor) -> Result<()> {
        self.state().upsert_vendor(vendor);
        Ok(())
    }

    async fn apply_snapshot(
        &self,
        vendor: &VendorId,
        rows: &[SnapshotRow],
        margin: Duration,
    ) -> Result<SnapshotOutcome> {
        self.state().apply_snapshot(vendor, rows, margin)
    }

    async fn complete_snapshot(
        &self,
        vendor: &VendorId,
        listed: &[VendorSku],
        as_of: OffsetDateTime,
        at: OffsetDateTime,
        margin: Duration,
    ) -> Result<Vendor> {
        self.state()
            .complete_snapshot(vendor, listed, as_of, at, margin)
    }

    async fn record_sync_failure(
        &self,
        vendor: &VendorId,
        reason: &str,
        policy: HealthPolicy,
    ) -> Result<Vendor> {
        self.state().record_sync_failure(vendor, reason, policy)
    }
}

#[async_trait]
impl CatalogReads for InMemoryStockStore {
    async fn vendors(&self) -> Result<Vec<Vendor>> {
        Ok(self.state().vendors())
    }

    async fn stock_for_product(&self, product: &ProductId) -> Result<Vec<VendorStock>> {
        Ok(self.state().stock_for_product(product))
    }

    async fn stock_for_sku(&self, sku: &VendorSku) -> Result<Vec<VendorStock>> {
        Ok(self.state().stock_for_sku(sku))
    }

    async fn products(&self, offset: u64, limit: u32) -> Result<Page<ProductId>> {
        Ok(self.state().products(offset, limit))
    }
}

#[async_trait]
impl OrderListing for InMemoryStockStore {
    async fn orders(&self, query: &OrderQuery) -> Result<Page<Order>> {
        Ok(self.state().orders(query))
    }
}

#[async_trait]
impl OrderStore for InMemoryStockStore {
    async fn order(&self, id: OrderId) -> Result<Order> {
        self.state().order(id)
    }

    async fn placed_under_key(
        &self,
        customer: &CustomerId,
        record: &IdempotencyRecord,
    ) -> Result<Option<Placed>> {
        self.state().placed_under_key(customer, record)
    }

    async fn reroute(&self, reroute: &Reroute) -> Result<Order> {
        self.state().reroute(reroute)
    }

    async fn vendor_cancellation_done(&self, vendor: &VendorId, key: &str) -> Result<()> {
        self.state().vendor_cancellation_done(vendor, key);
        Ok(())
    }

    async fn expire_overdue(&self, now: OffsetDateTime, limit: u32) -> Result<ExpiredBatch> {
        Ok(self.state().expire_overdue(now, limit))
    }

    async fn requeue_cancellations(
        &self,
        queued_before: OffsetDateTime,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<u32> {
        self.state()
            .requeue_cancellations(queued_before, now, limit)
    }

    async fn cancellation_backlog(&self) -> Result<CancellationBacklog> {
        Ok(self.state().cancellation_backlog())
    }
}

#[async_trait]
impl OrderCommits for InMemoryStockStore {
    async fn place_order(&self, placement: OrderPlacement) -> Result<Placed> {
        self.state().place_order(placement)
    }
    async fn place_orders(&self, placements: Vec<OrderPlacement>) -> Vec<Result<Placed>> {
        let mut state = self.state();
        let mut work = Vec::new();
        let answers = placements
            .into_iter()
            .map(|mut placement| {
                // Its orders to process are written gathered with the batch's, below.
                let (to_process, rest) = std::mem::take(&mut placement.outbox)
                    .into_iter()
                    .partition::<Vec<_>, _>(|message| message.orders_to_process().is_some());
                placement.outbox = rest;
                let answer = state.place_order(placement);
                if answer.as_ref().is_ok_and(|placed| !placed.replayed) {
                    work.extend(to_process);
                }
                answer
            })
            .collect();
        let gathered = OutboxMessage::gather(work);
        state.write_outbox(gathered.into_iter().map(|g| g.message).collect());
        answers
    }
    async fn transition(&self, transition: &Transition, outbox: &[OutboxMessage]) -> Result<Order> {
        self.state().transition(transition, outbox)
    }
    async fn transitions(
        &self,
        changes: Vec<(Transition, Vec<OutboxMessage>)>,
    ) -> Vec<Result<Order>> {
        let mut state = self.state();
        changes
            .iter()
            .map(|(transition, outbox)| state.transition(transition, outbox))
            .collect()
    }
}

#[async_trait]
impl HoldStore for InMemoryStockStore {
    async fn place_hold(&self, placement: HoldPlacement) -> Result<Hold> {
        self.state().place_hold(placement)
    }

    async fn hold(&self, id: HoldId) -> Result<Hold> {
        self.state().hold(id)
    }

    async fn extend_hold(
        &self,
        id: HoldId,
        expires_at: OffsetDateTime,
        at: OffsetDateTime,
    ) -> Result<Hold> {
        self.state().extend_hold(id, expires_at, at)
    }

    async fn release_hold(&self, id: HoldId, at: OffsetDateTime) -> Result<Hold> {
        self.state().release_hold(id, at)
    }

    async fn convert_hold(&self, conversion: HoldConversion) -> Result<Placed> {
        self.state().convert_hold(conversion)
    }
}

#[async_trait]
impl Outbox for InMemoryStockStore {
    async fn claim_outbox(
        &self,
        now: OffsetDateTime,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>> {
        Ok(self.state().claim_outbox(now, lease, limit))
    }

    async fn claim_outbox_ids(
        &self,
        ids: &[MessageId],
        now: OffsetDateTime,
        lease: Duration,
    ) -> Result<Vec<OutboxMessage>> {
        Ok(self.state().claim_outbox_ids(ids, now, lease))
    }

    async fn mark_outbox_sent(&self, ids: &[MessageId]) -> Result<()> {
        self.state().mark_outbox_sent(ids);
        Ok(())
    }

    async fn outbox_backlog(&self) -> Result<OutboxBacklog> {
        Ok(self.state().outbox_backlog())
    }
}

#[async_trait]
impl OrderEventLog for InMemoryStockStore {
    async fn order_events_after(
        &self,
        after: Option<EventCursor>,
        customer: Option<&CustomerId>,
        limit: u32,
    ) -> Result<EventRead> {
        Ok(self.state().event_log.read(after, customer, limit))
    }

    async fn order_events_head(&self) -> Result<Option<EventCursor>> {
        Ok(self.state().event_log.head())
    }

    async fn prune_order_events(&self, before: OffsetDateTime, limit: u32) -> Result<u64> {
        Ok(self.state().event_log.prune(before, limit))
    }
}
