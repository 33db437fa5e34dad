//! [`HoldStore`]: the store's role of keeping holds.

use std::fmt::Debug;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::domain::{Hold, HoldId};
use crate::error::Result;
use crate::traits::{HoldConversion, HoldPlacement, Placed};

/// Holds: stock kept for a customer for a while, all lines or none, under the same
/// reservation rule as orders (`sellable ≥ quantity` at commit, fresh vendors only).
/// Releasing units happens exactly once per hold, whatever races.
#[async_trait]
pub trait HoldStore: Send + Sync + Debug + 'static {
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

    /// Turns an active, unexpired hold into an order that takes over its units, writing
    /// the order, its outbox messages and the hold's end as one atomic step.
    async fn convert_hold(&self, conversion: HoldConversion) -> Result<Placed>;
}
