//! How far a vendor's sync has come, page by page, for whoever wants to show it (a
//! progress bar, a log line, a metric).

use std::fmt::Debug;

use crate::domain::VendorId;

/// What a sync has just finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncStage {
    /// One more page of the feed was read and checked (nothing is written until every
    /// page has been).
    Fetched,
    /// One more page was written to the store.
    Written,
    /// The snapshot is complete: SKUs the feed no longer lists are zeroed and the vendor
    /// is marked healthy.
    Completed,
}

/// One step of one vendor's sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncStep {
    /// The vendor being synced.
    pub vendor: VendorId,
    /// What was just finished.
    pub stage: SyncStage,
    /// Pages done in this stage so far (all of them once `Completed`).
    pub pages: u32,
    /// Pages in the feed, when known: while fetching, what the vendor announced (it can
    /// turn out longer); while writing and after, exact.
    pub pages_total: Option<u32>,
    /// Rows done in this stage so far: read while fetching, written (newer than what the
    /// store held) while writing and after.
    pub rows: usize,
}

/// Receives every step of every sync of a [`super::StockSync`] it is given to. Called
/// from the sync's task, between pages: it must return quickly.
pub trait SyncProgress: Send + Sync + Debug {
    /// One step is done.
    fn step(&self, step: &SyncStep);
}
