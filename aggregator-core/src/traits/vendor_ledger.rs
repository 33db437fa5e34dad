//! [`VendorLedger`]: the store's role of keeping vendors and what they report.

use std::fmt::Debug;

use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

use crate::domain::{HealthPolicy, SnapshotOutcome, SnapshotRow, Vendor, VendorId, VendorSku};
use crate::error::Result;

/// Vendors, their health and the stock they report: what registration and the sync
/// write (reads are [`CatalogReads`](crate::traits::CatalogReads)).
///
/// What every implementation guarantees:
/// * A snapshot page is applied atomically, never touches `reserved`, ignores rows older
///   than the applied report, and drops the confirmations the new report includes (it
///   is later than them by more than the confirmation margin). A confirmation always
///   waits for a report applied after it.
/// * A vendor's health and sync state change only through its own sync's outcome.
#[async_trait]
pub trait VendorLedger: Send + Sync + Debug + 'static {
    /// Registers a vendor or updates its name, URL and priority (health and sync state
    /// are kept).
    async fn upsert_vendor(&self, vendor: &Vendor) -> Result<()>;

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
    /// confirmations as [`VendorLedger::apply_snapshot`] does), and the vendor becomes
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
}
