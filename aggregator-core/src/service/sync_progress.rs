//! How far a vendor's sync has come, page by page and write by write, for whoever wants to show it (a
//! progress bar, a log line, a metric).

use std::fmt::Debug;

use crate::domain::VendorId;

/// What a sync has just finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncStage {
    /// One more page of the feed was read and checked (nothing is written until every
    /// page has been).
    Fetched,
    /// One more write was applied to the store: once every page is read, the feed's
    /// rows are sorted by SKU and written [`super::SyncConfig::rows_per_write`] at a time.
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
    /// Pages read so far while fetching, writes applied so far while writing, and every
    /// page of the feed once `Completed`.
    pub pages: u32,
    /// While fetching, the pages the vendor announced, when it did (the feed can turn out
    /// longer); while writing, the writes this sync makes; once `Completed`, the pages
    /// read.
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
