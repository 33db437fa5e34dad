//! The store of record ([`StockStore`], the sum of its roles) and the types its roles
//! speak.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::{
    CustomerId, HoldId, IdempotencyKey, Order, OrderDetails, OrderId, OrderStatus, OutboxMessage,
};
pub use crate::domain::{PlannedAllocation, PlannedLine, Reroute};
use crate::error::{Error, Result};
use crate::traits::{
    CatalogReads, HoldStore, OrderEventLog, OrderStore, Outbox, VendorLedger, WebhookStore,
};

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

/// The cancellations at vendors that no vendor has confirmed yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CancellationBacklog {
    /// Vendor keys whose cancellation is pending.
    pub pending: u64,
    /// When the change that killed the oldest of them committed (our clock).
    pub oldest_killed_at: Option<OffsetDateTime>,
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

/// The store of record: every role at once, implemented by one type so that a change
/// and the messages it causes commit together (a placement writes its outbox row in its
/// own transaction).
///
/// Services take only the role they use ([`VendorLedger`] for the sync, [`Outbox`] for
/// the relay, ...); a binary builds one `Arc<dyn StockStore>` and hands it to each as
/// the role it needs. Any type implementing every role is a `StockStore`, and
/// [`crate::traits::StoreRoles`] hands one out role by role, so that a decorator (group
/// commit on [`crate::traits::OrderCommits`]) replaces the one role it changes.
pub trait StockStore:
    VendorLedger + CatalogReads + OrderStore + HoldStore + Outbox + OrderEventLog + WebhookStore
{
}

impl<T> StockStore for T where
    T: VendorLedger
        + CatalogReads
        + OrderStore
        + HoldStore
        + Outbox
        + OrderEventLog
        + WebhookStore
        + ?Sized
{
}
