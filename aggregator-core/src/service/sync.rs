//! The stock-sync step: read a vendor's whole feed, apply it, record its health.

use std::collections::HashSet;
use std::sync::Arc;

use futures_util::StreamExt;
use time::{Duration, OffsetDateTime};

use crate::clock::Clock;
use crate::domain::{HealthPolicy, ProductId, SnapshotRow, Vendor, VendorId, VendorSku};
use crate::error::{Error, Result};
use crate::service::cached_catalog::CachedCatalog;
use crate::service::sync_progress::{SyncProgress, SyncStage, SyncStep};
use crate::traits::{OrderQueue, VendorDirectory, VendorLedger};

/// Settings of a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncConfig {
    /// Rows asked for per page.
    pub page_size: u32,
    /// A feed with more pages than this is refused (protects against endless paging).
    pub max_pages: u32,
    /// Pages of one vendor's feed asked for at once, when the vendor tells how many
    /// pages its feed has (see [`crate::traits::StockPage::last_page`]).
    pub fetches_in_flight: usize,
    /// Rows the store is given per write once the whole feed is read: the feed's rows
    /// sorted by SKU and cut into writes of this many (each one applied atomically).
    pub rows_per_write: usize,
    /// Writes of one sync sent to the store at once (their SKUs never overlap).
    pub writes_in_flight: usize,
    /// When failures make a vendor degraded or down.
    pub health: HealthPolicy,
    /// How far ahead of our clock a vendor's `as_of` may lie; a feed further ahead is
    /// refused whole (see the clock notes in [`crate::domain::StockLedger`]'s module).
    pub clock_tolerance: Duration,
    /// How much later than a confirmation (both in the vendor's clocks) a report must be
    /// to count as including it.
    pub confirmation_margin: Duration,
}

impl Default for SyncConfig {
    /// 1,000 rows a page, at most 10,000 pages, 4 pages asked for at once, written 10,000
    /// rows at a time with 2 writes at once, down after 3 failures in a row, feeds at
    /// most 5 s ahead of our clock, confirmations pruned by reports 5 s later.
    fn default() -> Self {
        Self {
            page_size: 1_000,
            max_pages: 10_000,
            fetches_in_flight: 4,
            rows_per_write: 10_000,
            writes_in_flight: 2,
            health: HealthPolicy::default(),
            clock_tolerance: Duration::seconds(5),
            confirmation_margin: Duration::seconds(5),
        }
    }
}

/// What a successful sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// The vendor after the sync.
    pub vendor: Vendor,
    /// Pages read.
    pub pages: u32,
    /// Rows written.
    pub applied: usize,
    /// Rows skipped because the store had a later report.
    pub ignored_older: usize,
}

/// Syncs vendors' stock into the store.
#[derive(Debug, Clone)]
pub struct StockSync {
    store: Arc<dyn VendorLedger>,
    vendors: VendorDirectory,
    clock: Arc<dyn Clock>,
    config: SyncConfig,
    cached: Option<Arc<CachedCatalog>>,
    progress: Option<Arc<dyn SyncProgress>>,
}

impl StockSync {
    /// A sync of `vendors` into `store`; refuses a zero page size or page bound.
    pub fn new(
        store: Arc<dyn VendorLedger>,
        vendors: VendorDirectory,
        clock: Arc<dyn Clock>,
        config: SyncConfig,
    ) -> Result<Self> {
        if config.page_size == 0 {
            return Err(Error::invalid("pageSize", "must be at least 1"));
        }
        if config.max_pages == 0 {
            return Err(Error::invalid("maxPages", "must be at least 1"));
        }
        if config.fetches_in_flight == 0 {
            return Err(Error::invalid("fetchesInFlight", "must be at least 1"));
        }
        if config.rows_per_write == 0 {
            return Err(Error::invalid("rowsPerWrite", "must be at least 1"));
        }
        if config.writes_in_flight == 0 {
            return Err(Error::invalid("writesInFlight", "must be at least 1"));
        }
        if config.clock_tolerance.is_negative() {
            return Err(Error::invalid("clockTolerance", "must not be negative"));
        }
        if config.confirmation_margin.is_negative() {
            return Err(Error::invalid("confirmationMargin", "must not be negative"));
        }
        Ok(Self {
            store,
            vendors,
            clock,
            config,
            cached: None,
            progress: None,
        })
    }

    /// Also forgets the cached availability of every product and SKU a sync reports,
    /// and the cached vendor list whenever a vendor's health changes.
    pub fn with_cache(mut self, cached: Arc<CachedCatalog>) -> Self {
        self.cached = Some(cached);
        self
    }

    /// Also tells `progress` of every page fetched and written, and of every completed
    /// snapshot.
    pub fn with_progress(mut self, progress: Arc<dyn SyncProgress>) -> Self {
        self.progress = Some(progress);
        self
    }

    fn report(
        &self,
        vendor: &VendorId,
        stage: SyncStage,
        pages: usize,
        pages_total: Option<u32>,
        rows: usize,
    ) {
        if let Some(progress) = &self.progress {
            progress.step(&SyncStep {
                vendor: vendor.clone(),
                stage,
                pages: u32::try_from(pages).unwrap_or(u32::MAX),
                pages_total,
                rows,
            });
        }
    }

    /// Reads every page of `vendor`'s feed, then applies them and completes the
    /// snapshot. If any page fails, is malformed or reports a time too far ahead of our
    /// clock, nothing is applied, the vendor's failure is recorded (health degraded or
    /// down) and its last good data stays. A snapshot whose every row is older than what
    /// the store holds was not applied: it is a failure too, and the vendor's last good
    /// sync does not move.
    pub async fn sync_vendor(&self, vendor: &VendorId) -> Result<SyncReport> {
        let started = std::time::Instant::now();
        let synced = self.fetch_and_apply(vendor, started).await;
        super::telemetry::stock_synced(vendor, synced.is_ok(), started.elapsed());
        synced
    }

    async fn fetch_and_apply(
        &self,
        vendor: &VendorId,
        started: std::time::Instant,
    ) -> Result<SyncReport> {
        let pages = match self.fetch_all(vendor).await {
            Ok(pages) => pages,
            Err(error) => return Err(self.failed(vendor, error).await),
        };
        let fetch_took = started.elapsed();
        let page_count = pages.len();
        let total_pages = u32::try_from(page_count).ok();
        let snapshot_as_of = pages.iter().map(|(as_of, _)| *as_of).min();
        let mut rows: Vec<SnapshotRow> = pages.into_iter().flat_map(|(_, rows)| rows).collect();
        // Sorted, the writes cover disjoint SKU ranges: the store walks its index once
        // per write, and writes side by side never wait for each other's rows.
        rows.sort_unstable_by(|a, b| a.sku.as_str().cmp(b.sku.as_str()));
        let margin = self.config.confirmation_margin;
        let mut writes = Vec::new();
        for chunk in rows.chunks(self.config.rows_per_write) {
            writes.push(self.store.apply_snapshot(vendor, chunk, margin));
        }
        let total_writes = u32::try_from(writes.len()).ok();
        let mut applied = 0;
        let mut ignored_older = 0;
        let mut writes =
            futures_util::stream::iter(writes).buffer_unordered(self.config.writes_in_flight);
        let mut writes_done = 0;
        while let Some(outcome) = writes.next().await {
            let outcome = outcome?;
            applied += outcome.applied;
            ignored_older += outcome.ignored_older;
            writes_done += 1;
            self.report(
                vendor,
                SyncStage::Written,
                writes_done,
                total_writes,
                applied,
            );
        }
        drop(writes);
        if applied == 0 && ignored_older > 0 {
            let error = Error::permanent(
                format!("vendor {vendor}"),
                format!(
                    "every one of the {ignored_older} rows is older than what we hold \
                     (did the vendor's clock go back?); nothing applied"
                ),
            );
            return Err(self.failed(vendor, error).await);
        }
        let written_by = started.elapsed();
        let listed: Vec<VendorSku> = rows.iter().map(|row| row.sku.clone()).collect();
        let now = self.clock.now();
        let vendor = self
            .store
            .complete_snapshot(vendor, &listed, snapshot_as_of.unwrap_or(now), now, margin)
            .await?;
        if let Some(cached) = &self.cached {
            let mut products: Vec<ProductId> = rows.iter().map(|row| row.product.clone()).collect();
            products.sort();
            products.dedup();
            cached.invalidate(&products, &listed).await;
            cached.invalidate_vendors().await;
        }
        self.report(
            &vendor.id,
            SyncStage::Completed,
            page_count,
            total_pages,
            applied,
        );
        tracing::info!(
            vendor = %vendor.id,
            pages = page_count,
            rows = rows.len(),
            applied,
            fetch_ms = fetch_took.as_millis(),
            write_ms = (written_by - fetch_took).as_millis(),
            complete_ms = (started.elapsed() - written_by).as_millis(),
            "stock sync applied"
        );
        Ok(SyncReport {
            vendor,
            pages: total_pages.unwrap_or(u32::MAX),
            applied,
            ignored_older,
        })
    }

    /// Records a failed sync of `vendor` and answers `error` (or the store's error if the
    /// failure could not even be recorded).
    async fn failed(&self, vendor: &VendorId, error: Error) -> Error {
        let reason = error.to_string();
        if let Err(store) = self
            .store
            .record_sync_failure(vendor, &reason, self.config.health)
            .await
        {
            return store;
        }
        if let Some(cached) = &self.cached {
            cached.invalidate_vendors().await;
        }
        tracing::warn!(%vendor, %reason, "stock sync failed");
        error
    }

    /// Refuses a time of the vendor's further ahead of our clock than the tolerance.
    fn check_not_ahead(
        &self,
        vendor: &VendorId,
        what: &str,
        as_of: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<()> {
        let ahead = as_of - now;
        if ahead > self.config.clock_tolerance {
            return Err(Error::permanent(
                format!("vendor {vendor}"),
                format!(
                    "{what} has asOf {as_of}, {:.3} s ahead of our clock ({now}); more than \
                     the {:.3} s tolerated, so the whole snapshot is refused",
                    ahead.as_seconds_f64(),
                    self.config.clock_tolerance.as_seconds_f64()
                ),
            ));
        }
        Ok(())
    }

    /// Reads the whole feed of `vendor`, following each page's `next_page`. When the
    /// first page names the last one, the pages after it are asked for
    /// `fetches_in_flight` at a time and taken in order; from a page whose `next_page`
    /// disagrees with that plan on, pages are asked for one by one.
    async fn fetch_all(
        &self,
        vendor: &VendorId,
    ) -> Result<Vec<(OffsetDateTime, Vec<SnapshotRow>)>> {
        let client = self.vendors.get(vendor)?;
        let size = self.config.page_size;
        let mut pages = Vec::new();
        let mut seen = HashSet::new();
        let mut rows = 0;
        let mut page = 1;
        let mut fetched = client.stock_page(page, size).await?;
        let planned_last = fetched.last_page.unwrap_or(1).min(self.config.max_pages);
        let mut planned = Some(
            futures_util::stream::iter(2..=planned_last)
                .map(|n| async move { (n, client.stock_page(n, size).await) })
                .buffered(self.config.fetches_in_flight),
        );
        loop {
            self.check_page(vendor, page, &fetched.rows, fetched.as_of, &mut seen)?;
            let next = fetched.next_page;
            rows += fetched.rows.len();
            let announced = fetched.last_page.map(|last| last.max(page));
            pages.push((fetched.as_of, fetched.rows));
            self.report(vendor, SyncStage::Fetched, pages.len(), announced, rows);
            let Some(next) = next else {
                return Ok(pages);
            };
            if next <= page {
                return Err(Error::permanent(
                    format!("vendor {vendor}"),
                    format!("page {page} points back to page {next}"),
                ));
            }
            if next > self.config.max_pages {
                return Err(Error::permanent(
                    format!("vendor {vendor}"),
                    format!("stock feed has more than {} pages", self.config.max_pages),
                ));
            }
            let ahead = match planned.as_mut() {
                Some(stream) => stream.next().await,
                None => None,
            };
            fetched = match ahead {
                Some((number, answer)) if number == next => answer?,
                _ => {
                    // The feed left the plan (or the plan ran out): ask page by page.
                    planned = None;
                    client.stock_page(next, size).await?
                }
            };
            page = next;
        }
    }

    /// Refuses a page whose time or rows' times lie too far ahead, whose rows are
    /// malformed, or which lists a SKU an earlier page listed.
    fn check_page(
        &self,
        vendor: &VendorId,
        page: u32,
        rows: &[SnapshotRow],
        as_of: OffsetDateTime,
        seen: &mut HashSet<VendorSku>,
    ) -> Result<()> {
        let now = self.clock.now();
        self.check_not_ahead(vendor, &format!("page {page}"), as_of, now)?;
        for row in rows {
            self.check_not_ahead(vendor, &format!("SKU {}", row.sku), row.as_of, now)?;
            row.validate()
                .map_err(|e| Error::permanent(format!("vendor {vendor}"), e.to_string()))?;
            if !seen.insert(row.sku.clone()) {
                return Err(Error::permanent(
                    format!("vendor {vendor}"),
                    format!("stock feed lists {} twice (again on page {page})", row.sku),
                ));
            }
        }
        Ok(())
    }

    /// Queues one sync request per configured vendor on `stock_sync_queue`.
    pub async fn request_all(&self, queue: &dyn OrderQueue) -> Result<usize> {
        let queued = super::request_syncs(queue, self.vendors.ids().cloned()).await?;
        Ok(queued.len())
    }
}
