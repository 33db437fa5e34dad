//! How a sync reads a feed that names its last page: several pages at once, taken in
//! order, and back to page by page when the feed disagrees with what it announced; and
//! how it writes what it read: sorted by SKU, in writes of a set size.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use aggregator_core::domain::{
    HealthPolicy, SnapshotOutcome, SnapshotRow, Vendor, VendorId, VendorSku,
};
use aggregator_core::error::{Error, Result};
use aggregator_core::service::{StockSync, SyncConfig, SyncProgress, SyncStage, SyncStep};
use aggregator_core::traits::{
    StockPage, StockStore, VendorClient, VendorDirectory, VendorInfo, VendorLedger, VendorOrder,
    VendorOrderOutcome,
};
use async_trait::async_trait;
use time::Duration;

use super::support::{World, product, sku, usd, vendor};

/// One page of the fake feed: its rows (sku, product, units), where it points next, or
/// the error it answers.
#[derive(Debug, Clone)]
enum Page {
    Rows(Vec<(&'static str, &'static str, i64)>, Option<u32>),
    Fails,
}

/// A vendor whose every page takes a little while, announcing `last_page` on each page,
/// and counting how many pages are asked for at once.
#[derive(Debug)]
struct SlowFeed {
    id: VendorId,
    pages: BTreeMap<u32, Page>,
    last_page: Option<u32>,
    as_of: time::OffsetDateTime,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
    asked: Mutex<Vec<u32>>,
}

impl SlowFeed {
    fn new(world: &World, last_page: Option<u32>, pages: Vec<(u32, Page)>) -> Arc<Self> {
        Arc::new(Self {
            id: vendor("VendorA"),
            pages: pages.into_iter().collect(),
            last_page,
            as_of: world.later(10),
            in_flight: AtomicUsize::new(0),
            most_in_flight: AtomicUsize::new(0),
            asked: Mutex::new(Vec::new()),
        })
    }

    fn asked(&self) -> Vec<u32> {
        let mut asked = self.asked.lock().expect("lock").clone();
        asked.sort_unstable();
        asked
    }
}

#[async_trait]
impl VendorClient for SlowFeed {
    fn vendor(&self) -> &VendorId {
        &self.id
    }
    async fn health(&self) -> Result<()> {
        Ok(())
    }
    async fn info(&self) -> Result<VendorInfo> {
        Err(Error::transient(
            "vendor VendorA",
            "not asked in these tests",
        ))
    }
    async fn stock_page(&self, page: u32, _limit: u32) -> Result<StockPage> {
        self.asked.lock().expect("lock").push(page);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(StdDuration::from_millis(20)).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        match self.pages.get(&page) {
            Some(Page::Rows(rows, next_page)) => Ok(StockPage {
                rows: rows
                    .iter()
                    .map(|(s, p, quantity)| SnapshotRow {
                        sku: sku(s),
                        product: product(p),
                        quantity: *quantity,
                        price: usd(100),
                        as_of: self.as_of,
                    })
                    .collect(),
                as_of: self.as_of,
                next_page: *next_page,
                last_page: self.last_page,
            }),
            Some(Page::Fails) => Err(Error::transient("vendor VendorA", "connection reset")),
            None => Err(Error::permanent(
                "vendor VendorA",
                format!("page {page} does not exist"),
            )),
        }
    }
    async fn place_order(&self, _order: &VendorOrder) -> Result<VendorOrderOutcome> {
        Err(Error::transient(
            "vendor VendorA",
            "not asked in these tests",
        ))
    }
    async fn cancel_order(&self, _key: &str) -> Result<aggregator_core::traits::CancelOutcome> {
        Ok(aggregator_core::traits::CancelOutcome::Cancelled)
    }
}

fn directory(feed: &Arc<SlowFeed>) -> VendorDirectory {
    [feed.clone() as Arc<dyn VendorClient>]
        .into_iter()
        .collect()
}

/// One-row pages, at most `max_pages`, `at_once` asked for at once.
fn config(max_pages: u32, at_once: usize) -> SyncConfig {
    SyncConfig {
        page_size: 1,
        max_pages,
        fetches_in_flight: at_once,
        health: HealthPolicy {
            down_after_failures: 2,
        },
        ..SyncConfig::default()
    }
}

fn sync(world: &World, feed: &Arc<SlowFeed>, max_pages: u32, at_once: usize) -> StockSync {
    let config = config(max_pages, at_once);
    StockSync::new(world.dyn_store(), directory(feed), world.clock(), config).expect("sync")
}

/// The service tests' world, ten seconds after its first sync.
async fn ten_seconds_on() -> World {
    let world = World::new(5, 5, 7).await;
    world.clock.advance(Duration::seconds(10));
    world
}

/// Syncs VendorA from `feed`.
async fn sync_a(
    world: &World,
    feed: &Arc<SlowFeed>,
    max_pages: u32,
    at_once: usize,
) -> aggregator_core::error::Result<aggregator_core::service::SyncReport> {
    sync(world, feed, max_pages, at_once)
        .sync_vendor(&vendor("VendorA"))
        .await
}

/// True when the store has no row for VendorA's `sku_id`.
fn never_written(world: &World, sku_id: &str) -> bool {
    world
        .store
        .stock(&vendor("VendorA"), &sku(sku_id))
        .is_none()
}

/// Page `n` of a feed of `last` one-row pages, each SKU `SKU-a-00n` of `PRODUCT-00n`.
fn one_row_page(n: u32, last: u32) -> (u32, Page) {
    const SKUS: [(&str, &str); 6] = [
        ("SKU-a-001", "PRODUCT-001"),
        ("SKU-a-002", "PRODUCT-002"),
        ("SKU-a-003", "PRODUCT-003"),
        ("SKU-a-004", "PRODUCT-004"),
        ("SKU-a-005", "PRODUCT-005"),
        ("SKU-a-006", "PRODUCT-006"),
    ];
    let (s, p) = SKUS[(n - 1) as usize];
    let next = (n < last).then_some(n + 1);
    (n, Page::Rows(vec![(s, p, i64::from(n))], next))
}

#[tokio::test]
async fn a_feed_that_names_its_last_page_is_read_several_pages_at_once() {
    let world = ten_seconds_on().await;
    let feed = SlowFeed::new(
        &world,
        Some(6),
        (1..=6).map(|n| one_row_page(n, 6)).collect(),
    );
    let report = sync_a(&world, &feed, 10, 3).await.expect("synced");
    assert_eq!((report.pages, report.applied), (6, 6));
    for n in 1..=6_i64 {
        let row = world.row("VendorA", &format!("SKU-a-00{n}"));
        assert_eq!(row.reported, n, "page {n} applied");
    }
    assert_eq!(
        world.row("VendorA", "LAPTOP-a-001").reported,
        0,
        "not in the feed"
    );
    assert_eq!(feed.asked(), vec![1, 2, 3, 4, 5, 6], "each page asked once");
    assert_eq!(
        feed.most_in_flight.load(Ordering::SeqCst),
        3,
        "three pages at a time, never more"
    );
}

#[tokio::test]
async fn one_fetch_at_a_time_reads_page_by_page() {
    let world = ten_seconds_on().await;
    let feed = SlowFeed::new(
        &world,
        Some(4),
        (1..=4).map(|n| one_row_page(n, 4)).collect(),
    );
    let report = sync_a(&world, &feed, 10, 1).await.expect("synced");
    assert_eq!(report.pages, 4);
    assert_eq!(feed.most_in_flight.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_feed_that_shrinks_while_read_ends_where_its_pages_say() {
    let world = ten_seconds_on().await;
    // Page 1 announced four pages, but page 2 is now the last; pages 3 and 4 fail.
    let feed = SlowFeed::new(
        &world,
        Some(4),
        vec![
            one_row_page(1, 4),
            one_row_page(2, 2),
            (3, Page::Fails),
            (4, Page::Fails),
        ],
    );
    let report = sync_a(&world, &feed, 10, 4)
        .await
        .expect("the feed's own end counts, not what was announced");
    assert_eq!((report.pages, report.applied), (2, 2));
    assert_eq!(world.row("VendorA", "SKU-a-002").reported, 2);
    assert!(
        never_written(&world, "SKU-a-003"),
        "no page past the end is applied"
    );
}

#[tokio::test]
async fn a_feed_that_grows_while_read_is_followed_page_by_page() {
    let world = ten_seconds_on().await;
    // Page 1 announced two pages, but page 2 points on to 3, and 3 on to 5.
    let feed = SlowFeed::new(
        &world,
        Some(2),
        vec![
            one_row_page(1, 3),
            one_row_page(2, 3),
            (
                3,
                Page::Rows(vec![("SKU-a-003", "PRODUCT-003", 3)], Some(5)),
            ),
            one_row_page(5, 5),
        ],
    );
    let report = sync_a(&world, &feed, 10, 4).await.expect("synced");
    assert_eq!((report.pages, report.applied), (4, 4));
    assert_eq!(world.row("VendorA", "SKU-a-005").reported, 5);
    assert_eq!(feed.asked(), vec![1, 2, 3, 5], "page 4 was never named");
}

#[tokio::test]
async fn a_failing_page_among_those_read_at_once_applies_nothing() {
    let world = ten_seconds_on().await;
    let feed = SlowFeed::new(
        &world,
        Some(4),
        vec![
            one_row_page(1, 4),
            one_row_page(2, 4),
            (3, Page::Fails),
            one_row_page(4, 4),
        ],
    );
    let error = sync_a(&world, &feed, 10, 4)
        .await
        .expect_err("page 3 failed");
    assert!(error.is_retryable(), "{error}");
    assert!(error.to_string().contains("connection reset"), "{error}");
    assert_eq!(
        world.row("VendorA", "LAPTOP-a-001").reported,
        5,
        "the last good data stays"
    );
    assert!(never_written(&world, "SKU-a-001"), "page 1 was not applied");
}

#[tokio::test]
async fn a_feed_announcing_more_pages_than_allowed_is_refused_without_reading_past_the_bound() {
    let world = ten_seconds_on().await;
    let feed = SlowFeed::new(
        &world,
        Some(1_000),
        (1..=6).map(|n| one_row_page(n, 7)).collect(),
    );
    let error = sync_a(&world, &feed, 4, 8).await.expect_err("too long");
    assert!(error.to_string().contains("more than 4 pages"), "{error}");
    assert_eq!(feed.asked(), vec![1, 2, 3, 4], "nothing past the bound");
}

#[tokio::test]
async fn asking_for_no_pages_at_once_or_writing_no_rows_at_once_is_refused() {
    let world = World::new(5, 5, 7).await;
    let feed = SlowFeed::new(&world, None, vec![one_row_page(1, 1)]);
    let refusals = [
        (
            SyncConfig {
                fetches_in_flight: 0,
                ..SyncConfig::default()
            },
            "fetchesInFlight",
        ),
        (
            SyncConfig {
                rows_per_write: 0,
                ..SyncConfig::default()
            },
            "rowsPerWrite",
        ),
        (
            SyncConfig {
                writes_in_flight: 0,
                ..SyncConfig::default()
            },
            "writesInFlight",
        ),
    ];
    for (config, field) in refusals {
        let error = StockSync::new(world.dyn_store(), directory(&feed), world.clock(), config)
            .expect_err("refused");
        assert!(error.to_string().contains(field), "{error}");
    }
}

/// Passes everything to the world's store, noting the SKUs of every snapshot write.
#[derive(Debug)]
struct NotedWrites {
    store: Arc<dyn StockStore>,
    writes: Mutex<Vec<Vec<String>>>,
}

#[async_trait]
impl VendorLedger for NotedWrites {
    async fn upsert_vendor(&self, vendor: &Vendor) -> Result<()> {
        self.store.upsert_vendor(vendor).await
    }
    async fn apply_snapshot(
        &self,
        vendor: &VendorId,
        rows: &[SnapshotRow],
        margin: Duration,
    ) -> Result<SnapshotOutcome> {
        let skus = rows.iter().map(|row| row.sku.to_string()).collect();
        self.writes.lock().expect("lock").push(skus);
        self.store.apply_snapshot(vendor, rows, margin).await
    }
    async fn complete_snapshot(
        &self,
        vendor: &VendorId,
        listed: &[VendorSku],
        as_of: time::OffsetDateTime,
        at: time::OffsetDateTime,
        margin: Duration,
    ) -> Result<Vendor> {
        self.store
            .complete_snapshot(vendor, listed, as_of, at, margin)
            .await
    }
    async fn record_sync_failure(
        &self,
        vendor: &VendorId,
        reason: &str,
        policy: HealthPolicy,
    ) -> Result<Vendor> {
        self.store.record_sync_failure(vendor, reason, policy).await
    }
}

#[tokio::test]
async fn the_feed_is_written_sorted_by_sku_in_writes_of_the_configured_size() {
    let world = ten_seconds_on().await;
    let page =
        |n: u32, rows: Vec<(&'static str, &'static str, i64)>, next| (n, Page::Rows(rows, next));
    let feed = SlowFeed::new(
        &world,
        None,
        vec![
            page(
                1,
                vec![
                    ("SKU-a-005", "PRODUCT-005", 5),
                    ("SKU-a-002", "PRODUCT-002", 2),
                ],
                Some(2),
            ),
            page(
                2,
                vec![
                    ("SKU-a-006", "PRODUCT-006", 6),
                    ("SKU-a-001", "PRODUCT-001", 1),
                ],
                Some(3),
            ),
            page(3, vec![("SKU-a-004", "PRODUCT-004", 4)], None),
        ],
    );
    let noted = Arc::new(NotedWrites {
        store: world.dyn_store(),
        writes: Mutex::new(Vec::new()),
    });
    let config = SyncConfig {
        rows_per_write: 2,
        ..config(10, 1)
    };
    let report = StockSync::new(noted.clone(), directory(&feed), world.clock(), config)
        .expect("sync")
        .sync_vendor(&vendor("VendorA"))
        .await
        .expect("synced");
    assert_eq!((report.pages, report.applied), (3, 5));
    let mut writes = noted.writes.lock().expect("lock").clone();
    writes.sort();
    assert_eq!(
        writes,
        vec![
            vec!["SKU-a-001", "SKU-a-002"],
            vec!["SKU-a-004", "SKU-a-005"],
            vec!["SKU-a-006"],
        ],
        "sorted across pages, two rows a write, no SKU in two writes"
    );
    for n in [1, 2, 4, 5, 6_i64] {
        assert_eq!(world.row("VendorA", &format!("SKU-a-00{n}")).reported, n);
    }
    assert_eq!(
        world.row("VendorA", "LAPTOP-a-001").reported,
        0,
        "not listed, so zeroed"
    );
}

/// Every step a sync reports.
#[derive(Debug, Default)]
struct Steps(Mutex<Vec<SyncStep>>);

impl SyncProgress for Steps {
    fn step(&self, step: &SyncStep) {
        self.0.lock().expect("lock").push(step.clone());
    }
}

impl Steps {
    fn seen(&self) -> Vec<(SyncStage, u32, Option<u32>, usize)> {
        self.0
            .lock()
            .expect("lock")
            .iter()
            .map(|s| (s.stage, s.pages, s.pages_total, s.rows))
            .collect()
    }
}

#[tokio::test]
async fn progress_hears_of_every_page_fetched_and_written_then_of_the_completion() {
    let world = ten_seconds_on().await;
    let feed = SlowFeed::new(
        &world,
        Some(3),
        (1..=3).map(|n| one_row_page(n, 3)).collect(),
    );
    let steps = Arc::new(Steps::default());
    let config = SyncConfig {
        rows_per_write: 2,
        writes_in_flight: 1,
        ..config(10, 2)
    };
    StockSync::new(world.dyn_store(), directory(&feed), world.clock(), config)
        .expect("sync")
        .with_progress(steps.clone())
        .sync_vendor(&vendor("VendorA"))
        .await
        .expect("synced");
    use SyncStage::{Completed, Fetched, Written};
    assert_eq!(
        steps.seen(),
        vec![
            (Fetched, 1, Some(3), 1),
            (Fetched, 2, Some(3), 2),
            (Fetched, 3, Some(3), 3),
            (Written, 1, Some(2), 2),
            (Written, 2, Some(2), 3),
            (Completed, 3, Some(3), 3),
        ],
        "three rows written two at a time"
    );
    assert!(
        steps
            .0
            .lock()
            .expect("lock")
            .iter()
            .all(|s| s.vendor == vendor("VendorA"))
    );
}

#[tokio::test]
async fn a_failed_sync_reports_what_it_fetched_and_nothing_written() {
    let world = ten_seconds_on().await;
    let feed = SlowFeed::new(&world, None, vec![one_row_page(1, 2), (2, Page::Fails)]);
    let steps = Arc::new(Steps::default());
    sync(&world, &feed, 10, 2)
        .with_progress(steps.clone())
        .sync_vendor(&vendor("VendorA"))
        .await
        .expect_err("page 2 fails");
    assert_eq!(steps.seen(), vec![(SyncStage::Fetched, 1, None, 1)]);
}
