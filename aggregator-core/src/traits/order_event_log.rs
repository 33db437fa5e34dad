//! [`OrderEventLog`]: the store's role of keeping every order's status changes for
//! readers that follow them (the event stream, webhook deliveries).

use std::fmt::Debug;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::domain::{CustomerId, EventCursor, EventRead};
use crate::error::Result;

/// Every status change of every order, recorded in the same transaction as the change
/// itself (so no change is ever missing from the log, and no event exists for a change
/// that did not commit), kept until pruned.
///
/// What every implementation guarantees:
/// * Each change is logged once, with the order's customer and version after it.
/// * Reads are in log order, and an event becomes readable only when no event before it
///   can still appear: a reader that moves its position along never skips an event.
/// * One order's events usually come in version order, but not always (in PostgreSQL a
///   transaction that waited for another's lock on the order can be earlier in the log
///   with a later version): readers go by each event's `version`.
/// * A position before the newest forgotten one, or never given, reads as
///   [`EventRead::Gone`], never as an empty page or as events after a gap.
#[async_trait]
pub trait OrderEventLog: Send + Sync + Debug + 'static {
    /// Up to `limit` events after `after` (from the log's oldest retained event when
    /// `None`), oldest first; only `customer`'s when given.
    async fn order_events_after(
        &self,
        after: Option<EventCursor>,
        customer: Option<&CustomerId>,
        limit: u32,
    ) -> Result<EventRead>;

    /// The position of the newest event a reader can read now (`None` while there is
    /// none): every event that becomes readable later lies after it, so a reader that
    /// starts there misses nothing from now on without reading the past.
    async fn order_events_head(&self) -> Result<Option<EventCursor>>;

    /// Forgets up to `limit` of the oldest events recorded before `before` (our clock);
    /// answers how many. A reader positioned before the newest forgotten event then
    /// reads [`EventRead::Gone`].
    async fn prune_order_events(&self, before: OffsetDateTime, limit: u32) -> Result<u64>;
}
