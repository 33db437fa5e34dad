//! [`Outbox`]: the store's role of handing written messages to the relay.

use std::fmt::Debug;

use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

use crate::domain::{MessageId, OutboxMessage};
use crate::error::Result;

/// Messages written beside the changes that caused them, waiting to be published.
///
/// Claims are leased: two claimers never hold the same message at once; an unmarked
/// message becomes claimable again after its lease, so a relay that dies between
/// publishing and marking publishes again (at least once, never lost).
#[async_trait]
pub trait Outbox: Send + Sync + Debug + 'static {
    /// Leases up to `limit` unsent outbox messages, oldest first, for `lease`.
    async fn claim_outbox(
        &self,
        now: OffsetDateTime,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>>;

    /// Leases, for `lease`, those of `ids` that are unsent and claimable at `now` (never
    /// leased, or their lease ran out), oldest first, under the same rules as
    /// [`Outbox::claim_outbox`]; unknown, sent and leased ids are skipped. The relay uses
    /// it for messages it knows were just committed, so that finding them costs a
    /// lookup by id rather than a scan of the outbox.
    async fn claim_outbox_ids(
        &self,
        ids: &[MessageId],
        now: OffsetDateTime,
        lease: Duration,
    ) -> Result<Vec<OutboxMessage>>;

    /// Marks outbox messages as published; unknown ids are ignored.
    async fn mark_outbox_sent(&self, ids: &[MessageId]) -> Result<()>;

    /// How many messages are written but not yet marked sent (leased or not), and when
    /// the oldest of them was written. Changes nothing.
    async fn outbox_backlog(&self) -> Result<OutboxBacklog>;
}

/// The outbox's unsent messages, as [`Outbox::outbox_backlog`] counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxBacklog {
    /// Messages not yet marked sent.
    pub messages: u64,
    /// When the oldest of them was written, in our clock; `None` when there are none.
    pub oldest: Option<OffsetDateTime>,
}

impl OutboxBacklog {
    /// How long the oldest unsent message has waited at `now` (zero when there is none,
    /// or when it was written after `now`).
    pub fn oldest_age(&self, now: OffsetDateTime) -> Duration {
        self.oldest
            .map_or(Duration::ZERO, |oldest| (now - oldest).max(Duration::ZERO))
    }
}
