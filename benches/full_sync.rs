//! A full stock sync of one 100,000-SKU vendor: fetch (HTTP), parse and check, write
//! to PostgreSQL, timed part by part, next to a bare HTTP download of the same pages.
//!
//! Run: `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench full_sync`
//! Options after `--`: `--skus N` (default 100000), `--page-size N` (default 1000),
//! `--runs N` full syncs to time (default 3).
//! The mock vendor runs in this process, so its own work (building each page's JSON)
//! shares the machine with the client and PostgreSQL: the figures are conservative.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aggregator_core::clock::SystemClock;
use aggregator_core::domain::{SnapshotRow, VendorId};
use aggregator_core::service::{StockSync, SyncConfig};
use aggregator_core::traits::{StockStore, VendorClient, VendorDirectory};
use aggregator_http::{HttpVendorClient, parse_vendor_list};
use aggregator_postgres::testing::TestDatabase;
use mock_vendors::{MockVendor, MockVendorConfig};
use time::OffsetDateTime;

struct Options {
    skus: usize,
    page_size: u32,
    runs: u32,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        skus: 100_000,
        page_size: 1_000,
        runs: 3,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<u64, String> {
            let text = args.next().ok_or_else(|| format!("{name} needs a value"))?;
            text.parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{name} {text:?} is not a positive number"))
        };
        match arg.as_str() {
            "--skus" => options.skus = number("--skus")? as usize,
            "--page-size" => {
                options.page_size =
                    u32::try_from(number("--page-size")?).map_err(|e| e.to_string())?
            }
            "--runs" => {
                options.runs = u32::try_from(number("--runs")?).map_err(|e| e.to_string())?
            }
            "--bench" => {}
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    Ok(options)
}

fn seconds(duration: Duration) -> String {
    format!("{:.3} s", duration.as_secs_f64())
}

/// Every page downloaded as bytes, nothing parsed: the floor for the HTTP part.
async fn bare_download(base_url: &str, pages: u32, page_size: u32) -> Duration {
    let http = reqwest::Client::new();
    let started = Instant::now();
    for page in 1..=pages {
        let bytes = http
            .get(format!("{base_url}/stock?page={page}&limit={page_size}"))
            .send()
            .await
            .expect("page")
            .bytes()
            .await
            .expect("body");
        assert!(!bytes.is_empty());
    }
    started.elapsed()
}

/// Every page through the client (download, parse, check).
async fn client_fetch(
    client: &HttpVendorClient,
    page_size: u32,
) -> (Duration, Vec<(OffsetDateTime, Vec<SnapshotRow>)>) {
    let started = Instant::now();
    let mut pages = Vec::new();
    let mut page = 1;
    loop {
        let read = client.stock_page(page, page_size).await.expect("page");
        pages.push((read.as_of, read.rows));
        match read.next_page {
            Some(next) => page = next,
            None => break,
        }
    }
    (started.elapsed(), pages)
}

async fn write(
    store: &dyn StockStore,
    vendor: &VendorId,
    pages: &[(OffsetDateTime, Vec<SnapshotRow>)],
) -> Duration {
    let started = Instant::now();
    for (_, rows) in pages {
        store
            .apply_snapshot(vendor, rows, time::Duration::ZERO)
            .await
            .expect("applied");
    }
    let as_of = pages.iter().map(|(at, _)| *at).min().expect("pages");
    store
        .complete_snapshot(
            vendor,
            &[],
            as_of,
            OffsetDateTime::now_utc(),
            time::Duration::ZERO,
        )
        .await
        .expect("completed");
    started.elapsed()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let options = match options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("full_sync: {message}");
            std::process::exit(2);
        }
    };
    let Some(db) = TestDatabase::create(10).await else {
        eprintln!("full_sync: set DATABASE_URL to run this benchmark");
        return;
    };
    let mock =
        MockVendor::spawn_local(MockVendorConfig::new("VendorA").with_sku_count(options.skus))
            .await
            .expect("mock vendor");
    let endpoint = parse_vendor_list(&format!("VendorA={}", mock.base_url()))
        .expect("vendor list")
        .remove(0);
    let store: Arc<dyn StockStore> = Arc::new(db.store.clone());
    store
        .upsert_vendor(&endpoint.to_vendor().expect("vendor"))
        .await
        .expect("registered");
    let client =
        Arc::new(HttpVendorClient::new(endpoint.client_config().expect("config")).expect("client"));
    let pages = u32::try_from(options.skus.div_ceil(options.page_size as usize)).expect("pages");
    println!(
        "full sync of one vendor: {} SKUs in {pages} pages of {} (mock vendor in this process)",
        options.skus, options.page_size
    );

    // Warm up connections and the server once.
    bare_download(&mock.base_url(), 1, options.page_size).await;

    let raw = bare_download(&mock.base_url(), pages, options.page_size).await;
    let (fetched, snapshot) = client_fetch(&client, options.page_size).await;
    let rows: usize = snapshot.iter().map(|(_, rows)| rows.len()).sum();
    assert_eq!(rows, options.skus);
    let first_write = write(store.as_ref(), &endpoint.id, &snapshot).await;
    let (_, snapshot) = client_fetch(&client, options.page_size).await;
    let update_write = write(store.as_ref(), &endpoint.id, &snapshot).await;
    println!("  bare HTTP download of every page:       {}", seconds(raw));
    println!(
        "  fetch + parse + check (HttpVendorClient): {}  ({:.2}x the bare download)",
        seconds(fetched),
        fetched.as_secs_f64() / raw.as_secs_f64()
    );
    println!(
        "  write, first time (inserts):            {}",
        seconds(first_write)
    );
    println!(
        "  write, again (updates):                 {}",
        seconds(update_write)
    );

    let directory: VendorDirectory = [client.clone() as Arc<dyn VendorClient>]
        .into_iter()
        .collect();
    let sync = StockSync::new(
        store.clone(),
        directory,
        Arc::new(SystemClock),
        SyncConfig {
            page_size: options.page_size,
            ..SyncConfig::default()
        },
    )
    .expect("sync");
    let mut totals = Vec::new();
    for _ in 0..options.runs {
        let started = Instant::now();
        let report = sync.sync_vendor(&endpoint.id).await.expect("synced");
        totals.push(started.elapsed());
        assert_eq!(report.applied + report.ignored_older, options.skus);
    }
    totals.sort();
    println!(
        "  StockSync::sync_vendor end to end, {} runs: best {}, median {}, worst {} (target <= 3 s)",
        options.runs,
        seconds(totals[0]),
        seconds(totals[totals.len() / 2]),
        seconds(totals[totals.len() - 1])
    );
    drop(sync);
    db.finish().await;
}
