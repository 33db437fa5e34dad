//! The store of record: vendors, stock, orders, holds, outbox.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::domain::{
    CustomerId, HealthPolicy, Hold, HoldId, IdempotencyKey, MessageId, Order, OrderDetails,
    OrderId, OrderStatus, OutboxMessage, ProductId, Quantity, SnapshotOutcome, SnapshotRow,
    Transition, Vendor, VendorId, VendorSku, VendorStock,
};
use crate::error::{Error, Result};

/// Units of a line to take from one vendor SKU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedAllocation {
    /// The vendor.
    pub vendor: VendorId,
    /// The vendor's SKU.
    pub sku: VendorSku,
    /// Units to take.
    pub quantity: Quantity,
}

/// A line with the allocation the caller wants the store to try.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedLine {
    /// The SKU or product id as the client named it.
    pub item: String,
    /// The canonical product every allocation must belong to.
    pub product: ProductId,
    /// Units asked for; must equal the sum of the allocations.
    pub quantity: Quantity,
    /// Where to take them from.
    pub allocations: Vec<PlannedAllocation>,
}

impl PlannedLine {
    /// Refuses a line without allocations or whose allocations do not add up to its
    /// quantity.
    pub fn check(&self) -> Result<()> {
        if self.allocations.is_empty() {
            return Err(Error::invalid("allocations", "must not be empty"));
        }
        let total: i64 = self.allocations.iter().map(|a| a.quantity.as_i64()).sum();
        if total != self.quantity.as_i64() {
            return Err(Error::invalid(
                "allocations",
                format!("add up to {total}, not the line's {}", self.quantity),
            ));
        }
        Ok(())
    }
}

/// An idempotency key and the fingerprint of the request it came with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdempotencyRecord {
    /// The client's key; scoped to the customer.
    pub key: IdempotencyKey,
    /// A digest of the request; the same key with another digest is refused.
    pub fingerprint: String,
}

/// Everything the store needs to place an order in one atomic step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderPlacement {
    /// The new order's id.
    pub id: OrderId,
    /// Customer, contact, shipping and payment.
    pub details: OrderDetails,
    /// The lines and their planned allocations.
    pub lines: Vec<PlannedLine>,
    /// Now, in our clock.
    pub at: OffsetDateTime,
    /// When the reservation runs out.
    pub reserved_until: OffsetDateTime,
    /// Vendors whose last good sync is older than this do not count.
    pub fresh_since: OffsetDateTime,
    /// Makes a retried placement return the first answer.
    pub idempotency: Option<IdempotencyRecord>,
    /// Messages to write in the same transaction (e.g. "process this order").
    pub outbox: Vec<OutboxMessage>,
}

/// The answer to a placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// The order (as it is now, for a replay).
    pub order: Order,
    /// True when an earlier placement with the same idempotency key and request is
    /// being returned instead of a new one.
    pub replayed: bool,
}

/// How much one customer may hold at once, over all its active holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldLimits {
    /// Active holds at once.
    pub max_active: u32,
    /// Units held at once.
    pub max_units: u64,
}

impl Default for HoldLimits {
    /// 10 holds and 100 units per customer.
    fn default() -> Self {
        Self {
            max_active: 10,
            max_units: 100,
        }
    }
}

impl HoldLimits {
    /// Refuses (`Conflict`, naming the customer and the limit) one more hold of
    /// `adding` units for a customer who already has `active` holds of `units` units.
    pub fn check(&self, customer: &CustomerId, active: u64, units: u64, adding: u64) -> Result<()> {
        if active >= u64::from(self.max_active) {
            return Err(Error::conflict(format!(
                "customer {customer} already has {active} active holds; at most {} at once",
                self.max_active
            )));
        }
        if units.saturating_add(adding) > self.max_units {
            return Err(Error::conflict(format!(
                "customer {customer} already holds {units} units; {adding} more would pass the \
                 limit of {} units held at once",
                self.max_units
            )));
        }
        Ok(())
    }
}

/// Everything the store needs to hold stock for a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldPlacement {
    /// The new hold's id.
    pub id: HoldId,
    /// Whose hold.
    pub customer: CustomerId,
    /// What to hold and where from.
    pub lines: Vec<PlannedLine>,
    /// Now, in our clock.
    pub at: OffsetDateTime,
    /// When it runs out.
    pub expires_at: OffsetDateTime,
    /// Vendors whose last good sync is older than this do not count.
    pub fresh_since: OffsetDateTime,
    /// What the customer may hold at once, this hold included; checked atomically with
    /// the placement.
    pub limits: HoldLimits,
}

impl HoldPlacement {
    /// Refuses (`Conflict`) this hold for a customer who already has `active` holds of
    /// `units` units, if it would take the customer past its limits.
    pub fn check_limits(&self, active: u64, units: u64) -> Result<()> {
        let adding = self
            .lines
            .iter()
            .map(|line| u64::from(line.quantity.get()))
            .sum();
        self.limits.check(&self.customer, active, units, adding)
    }
}

/// Turning an active hold into an order that takes over its units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldConversion {
    /// The hold.
    pub hold: HoldId,
    /// The new order's id.
    pub order: OrderId,
    /// Customer, contact, shipping and payment; the customer must own the hold.
    pub details: OrderDetails,
    /// Now, in our clock.
    pub at: OffsetDateTime,
    /// When the order's reservation runs out.
    pub reserved_until: OffsetDateTime,
    /// Messages to write in the same transaction.
    pub outbox: Vec<OutboxMessage>,
}

/// Moving the units of one vendor SKU of an order to other vendor SKUs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reroute {
    /// The order.
    pub order: OrderId,
    /// The version the caller last saw.
    pub expected_version: i64,
    /// The vendor that refused.
    pub vendor: VendorId,
    /// Its SKU whose units move.
    pub sku: VendorSku,
    /// Where they go; quantities must add up to what the SKU held for the order.
    pub replacement: Vec<PlannedAllocation>,
    /// Why, recorded on the order.
    pub reason: String,
    /// Now, in our clock.
    pub at: OffsetDateTime,
    /// Vendors whose last good sync is older than this do not count.
    pub fresh_since: OffsetDateTime,
}

/// Which orders to list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OrderQuery {
    /// Only this customer's orders.
    pub customer: Option<CustomerId>,
    /// Only orders in this status.
    pub status: Option<OrderStatus>,
    /// How many matching orders to skip (newest first).
    pub offset: u64,
    /// How many to return at most.
    pub limit: u32,
}

/// One page of results and the total count of matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    /// The page's items.
    pub items: Vec<T>,
    /// How many items match in all.
    pub total: u64,
}

/// What one sweeper batch expired.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExpiredBatch {
    /// Orders that went to `expired`, their units released.
    pub orders: Vec<OrderId>,
    /// Holds that went to `expired`, their units released.
    pub holds: Vec<HoldId>,
}

impl ExpiredBatch {
    /// Orders plus holds.
    pub fn len(&self) -> usize {
        self.orders.len() + self.holds.len()
    }

    /// True when nothing expired.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The store of record.
///
/// What every implementation guarantees:
/// * `sellable = reported − reserved − confirmed_not_yet_reported` per (vendor, SKU), and
///   a reservation commits only if `sellable ≥ quantity` at commit, decided by the store
///   itself (never by a value its caller read earlier).
/// * Placing an order (or hold) reserves every line and writes the order, its
///   reservations, its idempotency record and its outbox messages as one atomic step:
///   all of it or none of it.
/// * Only fresh vendors (last good sync at or after `fresh_since`) can be reserved from.
/// * Order changes are compare-and-set on the version; a stale version or an illegal
///   status change is `Conflict` and changes nothing. Releasing units happens exactly
///   once per order or hold, whatever races.
/// * A change that kills a reserved order's vendor keys (fail, cancel, expire,
///   re-route) writes a `CancelAtVendor` outbox message per key and keeps the units
///   allocated under each key counted in `confirmed_not_yet_reported` until
///   [`StockStore::vendor_cancellation_done`] is called for it: a vendor may hold them
///   until it cancels.
/// * A snapshot page is applied atomically, never touches `reserved`, ignores rows older
///   than the applied report, and drops the confirmations the new report includes (it
///   is later than them by more than the confirmation margin). A confirmation always
///   waits for a report applied after it.
/// * Outbox claims are leased: two claimers never hold the same message at once; an
///   unmarked message becomes claimable again after its lease.
#[async_trait]
pub trait StockStore: Send + Sync + Debug + 'static {
    /// Registers a vendor or updates its name, URL and priority (health and sync state
    /// are kept).
    async fn upsert_vendor(&self, vendor: &Vendor) -> Result<()>;

    /// Every registered vendor, by id.
    async fn vendors(&self) -> Result<Vec<Vendor>>;

    /// Applies one page of a vendor's snapshot atomically: each row whose own `as_of`
    /// is not older than the row held replaces it, and drops the confirmations it
    /// includes (those it is later than by more than `margin`, see
    /// [`crate::domain::covers`]). Refuses the whole page (`Invalid`, nothing written) if
    /// any row is bad or the vendor is unknown.
    async fn apply_snapshot(
        &self,
        vendor: &VendorId,
        rows: &[SnapshotRow],
        margin: Duration,
    ) -> Result<SnapshotOutcome>;

    /// Ends a full snapshot taken at `as_of` (the vendor's clock) that listed `listed`:
    /// the vendor's other SKUs holding an older report drop to zero reported (pruning
    /// confirmations as [`StockStore::apply_snapshot`] does), and the vendor becomes
    /// healthy with `last_good_sync = at` (our clock). A listed row is never zeroed,
    /// whatever its own `as_of`.
    async fn complete_snapshot(
        &self,
        vendor: &VendorId,
        listed: &[VendorSku],
        as_of: OffsetDateTime,
        at: OffsetDateTime,
        margin: Duration,
    ) -> Result<Vendor>;

    /// Counts a failed sync: one more consecutive failure, health per `policy`, the
    /// reason kept; the vendor's stock is left as it was.
    async fn record_sync_failure(
        &self,
        vendor: &VendorId,
        reason: &str,
        policy: HealthPolicy,
    ) -> Result<Vendor>;

    /// Every vendor's row for `product`.
    async fn stock_for_product(&self, product: &ProductId) -> Result<Vec<VendorStock>>;

    /// Every vendor's row carrying `sku`.
    async fn stock_for_sku(&self, sku: &VendorSku) -> Result<Vec<VendorStock>>;

    /// Canonical products that have any stock row, by id.
    async fn products(&self, offset: u64, limit: u32) -> Result<Page<ProductId>>;

    /// Places an order: reserves every planned allocation, prices it from the catalog
    /// and writes the order (status `reserved`), all at once. A short line makes the
    /// whole placement fail with `InsufficientStock` naming each short line.
    async fn place_order(&self, placement: OrderPlacement) -> Result<Placed>;

    /// One order.
    async fn order(&self, id: OrderId) -> Result<Order>;

    /// Orders matching `query`, newest first.
    async fn orders(&self, query: &OrderQuery) -> Result<Page<Order>>;

    /// Changes an order's status (compare-and-set on its version), moving stock as the
    /// change requires, and writes `outbox` in the same atomic step.
    async fn transition(&self, transition: &Transition, outbox: &[OutboxMessage]) -> Result<Order>;

    /// Moves an order's units from one vendor SKU to others, reserving the new ones
    /// conditionally and releasing the old ones in one step.
    async fn reroute(&self, reroute: &Reroute) -> Result<Order>;

    /// The vendor confirmed that the order under `key` is cancelled (or that it never
    /// had one): the units held for that key since the change that killed it are free
    /// again. A key held for nothing changes nothing.
    async fn vendor_cancellation_done(&self, vendor: &VendorId, key: &str) -> Result<()>;

    /// Holds stock for a customer; all lines or none. Refuses (`Conflict`) a hold that
    /// would take the customer past its limits, counting its active holds at commit.
    async fn place_hold(&self, placement: HoldPlacement) -> Result<Hold>;

    /// One hold.
    async fn hold(&self, id: HoldId) -> Result<Hold>;

    /// Moves an active, unexpired hold's deadline to `expires_at`.
    async fn extend_hold(
        &self,
        id: HoldId,
        expires_at: OffsetDateTime,
        at: OffsetDateTime,
    ) -> Result<Hold>;

    /// Gives a hold's units back; releasing a released or expired hold changes nothing.
    async fn release_hold(&self, id: HoldId, at: OffsetDateTime) -> Result<Hold>;

    /// Turns an active, unexpired hold into an order that takes over its units.
    async fn convert_hold(&self, conversion: HoldConversion) -> Result<Placed>;

    /// Expires up to `limit` orders and holds whose deadline is at or before `now`,
    /// releasing their units exactly once.
    async fn expire_overdue(&self, now: OffsetDateTime, limit: u32) -> Result<ExpiredBatch>;

    /// Leases up to `limit` unsent outbox messages, oldest first, for `lease`.
    async fn claim_outbox(
        &self,
        now: OffsetDateTime,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>>;

    /// Marks outbox messages as published; unknown ids are ignored.
    async fn mark_outbox_sent(&self, ids: &[MessageId]) -> Result<()>;

    /// Records that `consumer` processed message `id`; false if it already had.
    async fn record_processed(&self, consumer: &str, id: MessageId) -> Result<bool>;
}

macro_rules! forward_stock_store {
    ($wrapper:ident) => {
        #[async_trait]
        impl<T: StockStore + ?Sized> StockStore for $wrapper<T> {
            async fn upsert_vendor(&self, vendor: &Vendor) -> Result<()> {
                (**self).upsert_vendor(vendor).await
            }
            async fn vendors(&self) -> Result<Vec<Vendor>> {
                (**self).vendors().await
            }
            async fn apply_snapshot(
                &self,
                vendor: &VendorId,
                rows: &[SnapshotRow],
                margin: Duration,
            ) -> Result<SnapshotOutcome> {
                (**self).apply_snapshot(vendor, rows, margin).await
            }
            async fn complete_snapshot(
                &self,
                vendor: &VendorId,
                listed: &[VendorSku],
                as_of: OffsetDateTime,
                at: OffsetDateTime,
                margin: Duration,
            ) -> Result<Vendor> {
                (**self)
                    .complete_snapshot(vendor, listed, as_of, at, margin)
                    .await
            }
            async fn record_sync_failure(
                &self,
                vendor: &VendorId,
                reason: &str,
                policy: HealthPolicy,
            ) -> Result<Vendor> {
                (**self).record_sync_failure(vendor, reason, policy).await
            }
            async fn stock_for_product(&self, product: &ProductId) -> Result<Vec<VendorStock>> {
                (**self).stock_for_product(product).await
            }
            async fn stock_for_sku(&self, sku: &VendorSku) -> Result<Vec<VendorStock>> {
                (**self).stock_for_sku(sku).await
            }
            async fn products(&self, offset: u64, limit: u32) -> Result<Page<ProductId>> {
                (**self).products(offset, limit).await
            }
            async fn place_order(&self, placement: OrderPlacement) -> Result<Placed> {
                (**self).place_order(placement).await
            }
            async fn order(&self, id: OrderId) -> Result<Order> {
                (**self).order(id).await
            }
            async fn orders(&self, query: &OrderQuery) -> Result<Page<Order>> {
                (**self).orders(query).await
            }
            async fn transition(
                &self,
                transition: &Transition,
                outbox: &[OutboxMessage],
            ) -> Result<Order> {
                (**self).transition(transition, outbox).await
            }
            async fn reroute(&self, reroute: &Reroute) -> Result<Order> {
                (**self).reroute(reroute).await
            }
            async fn vendor_cancellation_done(&self, vendor: &VendorId, key: &str) -> Result<()> {
                (**self).vendor_cancellation_done(vendor, key).await
            }
            async fn place_hold(&self, placement: HoldPlacement) -> Result<Hold> {
                (**self).place_hold(placement).await
            }
            async fn hold(&self, id: HoldId) -> Result<Hold> {
                (**self).hold(id).await
            }
            async fn extend_hold(
                &self,
                id: HoldId,
                expires_at: OffsetDateTime,
                at: OffsetDateTime,
            ) -> Result<Hold> {
                (**self).extend_hold(id, expires_at, at).await
            }
            async fn release_hold(&self, id: HoldId, at: OffsetDateTime) -> Result<Hold> {
                (**self).release_hold(id, at).await
            }
            async fn convert_hold(&self, conversion: HoldConversion) -> Result<Placed> {
                (**self).convert_hold(conversion).await
            }
            async fn expire_overdue(
                &self,
                now: OffsetDateTime,
                limit: u32,
            ) -> Result<ExpiredBatch> {
                (**self).expire_overdue(now, limit).await
            }
            async fn claim_outbox(
                &self,
                now: OffsetDateTime,
                lease: Duration,
                limit: u32,
            ) -> Result<Vec<OutboxMessage>> {
                (**self).claim_outbox(now, lease, limit).await
            }
            async fn mark_outbox_sent(&self, ids: &[MessageId]) -> Result<()> {
                (**self).mark_outbox_sent(ids).await
            }
            async fn record_processed(&self, consumer: &str, id: MessageId) -> Result<bool> {
                (**self).record_processed(consumer, id).await
            }
        }
    };
}

forward_stock_store!(Arc);
forward_stock_store!(Box);
