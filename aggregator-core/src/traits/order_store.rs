//! [`OrderStore`]: the store's role of keeping orders and their reservations.

use std::fmt::Debug;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::domain::{CustomerId, Order, OrderId, OutboxMessage, Transition, VendorId};
use crate::error::Result;
use crate::traits::{
    CancellationBacklog, ExpiredBatch, IdempotencyRecord, OrderListing, OrderPlacement, Placed,
    Reroute,
};

/// Orders, the units they reserve, and their expiry; listing them is the
/// [`OrderListing`] role it includes.
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
pub trait OrderStore: OrderListing + Send + Sync + Debug + 'static {
    /// Places an order: reserves every planned allocation, prices it from the catalog
    /// and writes the order (status `reserved`), all at once. A short line makes the
    /// whole placement fail with `InsufficientStock` naming each short line.
    async fn place_order(&self, placement: OrderPlacement) -> Result<Placed>;

    /// Places several orders, deciding each as [`OrderStore::place_order`] would in the
    /// order given (an earlier one takes its units first) and answering each on its
    /// own: a short, invalid or replayed placement does not affect the others. A store
    /// may commit them together (one transaction for the batch); the default places
    /// them one after another.
    async fn place_orders(&self, placements: Vec<OrderPlacement>) -> Vec<Result<Placed>> {
        let mut answers = Vec::with_capacity(placements.len());
        for placement in placements {
            answers.push(self.place_order(placement).await);
        }
        answers
    }

    /// One order.
    async fn order(&self, id: OrderId) -> Result<Order>;

    /// What `customer`'s idempotency key already stands for: the order placed under it
    /// (as it is now, marked as a replay), `IdempotencyMismatch` when it was used with
    /// another request (another fingerprint), or `None` when nothing was placed under it.
    /// Reads what [`OrderStore::place_order`] recorded, so a keyed request can be
    /// answered from the store whatever the catalog says now.
    async fn placed_under_key(
        &self,
        customer: &CustomerId,
        record: &IdempotencyRecord,
    ) -> Result<Option<Placed>>;

    /// Changes an order's status (compare-and-set on its version), moving stock as the
    /// change requires, and writes `outbox` in the same atomic step.
    async fn transition(&self, transition: &Transition, outbox: &[OutboxMessage]) -> Result<Order>;

    /// Applies several status changes, each as [`OrderStore::transition`] would (its own
    /// compare-and-set, its own answer), in the order given. A store may commit them
    /// together; the default applies them one after another.
    async fn transitions(
        &self,
        changes: Vec<(Transition, Vec<OutboxMessage>)>,
    ) -> Vec<Result<Order>> {
        let mut answers = Vec::with_capacity(changes.len());
        for (transition, outbox) in changes {
            answers.push(self.transition(&transition, &outbox).await);
        }
        answers
    }

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
