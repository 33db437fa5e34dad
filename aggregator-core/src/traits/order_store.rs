//! [`OrderStore`]: the store's role of keeping orders and their reservations.

use std::fmt::Debug;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::domain::{CustomerId, Order, OrderId, VendorId};
use crate::error::Result;
use crate::traits::{
    CancellationBacklog, ExpiredBatch, IdempotencyRecord, OrderCommits, OrderListing, Placed,
    Reroute,
};

/// Orders, the units they reserve, and their expiry; placing and changing them is the
/// [`OrderCommits`] role it includes, listing them the [`OrderListing`] role.
///
/// What every implementation guarantees:
/// * A reservation commits only if `sellable ≥ quantity` at commit, decided by the
///   store itself (never by a value its caller read earlier).
/// * Placing an order reserves every line and writes the order, its reservations, its
///   idempotency record and its outbox messages as one atomic step: all of it or none.
/// * Only fresh vendors (last good sync at or after `fresh_since`) can be reserved from.
/// * Order changes are compare-and-set on the version; a stale version or an illegal
///   status change is `Conflict` and changes nothing. Releasing units happens exactly
///   once per order, whatever races.
/// * A change that kills a reserved order's vendor keys (fail, cancel, expire,
///   re-route) writes a `CancelAtVendor` outbox message per key and keeps the units
///   allocated under each key counted in `confirmed_not_yet_reported` until
///   [`OrderStore::vendor_cancellation_done`] is called for it: a vendor may hold them
///   until it cancels.
/// * Every key a change kills (a confirmed order's too) stays a pending cancellation,
///   written with the change, until [`OrderStore::vendor_cancellation_done`]; pending
///   cancellations not queued for a while are queued again by
///   [`OrderStore::requeue_cancellations`], so none is ever abandoned.
#[async_trait]
pub trait OrderStore: OrderListing + OrderCommits + Send + Sync + Debug + 'static {
    /// One order.
    async fn order(&self, id: OrderId) -> Result<Order>;

    /// The orders of `ids` that exist, each once, in no particular order (an id with no
    /// order is left out): what [`OrderStore::order`] answers for each, read in one
    /// round trip where the store can.
    async fn orders_by_id(&self, ids: &[OrderId]) -> Result<Vec<Order>> {
        let mut seen = std::collections::HashSet::with_capacity(ids.len());
        let mut orders = Vec::with_capacity(ids.len());
        for id in ids.iter().filter(|id| seen.insert(**id)) {
            match self.order(*id).await {
                Ok(order) => orders.push(order),
                Err(crate::Error::NotFound { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(orders)
    }

    /// What `customer`'s idempotency key already stands for: the order placed under it
    /// (as it is now, marked as a replay), `IdempotencyMismatch` when it was used with
    /// another request (another fingerprint), or `None` when nothing was placed under it.
    /// Reads what [`OrderCommits::place_order`] recorded, so a keyed request can be
    /// answered from the store whatever the catalog says now.
    async fn placed_under_key(
        &self,
        customer: &CustomerId,
        record: &IdempotencyRecord,
    ) -> Result<Option<Placed>>;

    /// Moves an order's units from one vendor SKU to others, reserving the new ones
    /// conditionally and releasing the old ones in one step.
    async fn reroute(&self, reroute: &Reroute) -> Result<Order>;

    /// The vendor confirmed that the order under `key` is cancelled (or that it never
    /// had one): the units held for that key since the change that killed it are free
    /// again, and the cancellation is no longer pending. A key held for nothing changes
    /// nothing.
    async fn vendor_cancellation_done(&self, vendor: &VendorId, key: &str) -> Result<()>;

    /// Queues again, oldest first, up to `limit` pending cancellations last queued at
    /// or before `queued_before`: writes a `CancelAtVendor` outbox message for each (with
    /// the time its key was killed) and marks it queued at `now`, in one atomic step.
    /// Answers how many. Several sweepers at once never queue one twice in one round.
    async fn requeue_cancellations(
        &self,
        queued_before: OffsetDateTime,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<u32>;

    /// How many cancellations are pending, and since when.
    async fn cancellation_backlog(&self) -> Result<CancellationBacklog>;

    /// Expires up to `limit` orders and holds whose deadline is at or before `now`,
    /// releasing their units exactly once (and writing the cancellations an order's
    /// expiry calls for).
    async fn expire_overdue(&self, now: OffsetDateTime, limit: u32) -> Result<ExpiredBatch>;
}
