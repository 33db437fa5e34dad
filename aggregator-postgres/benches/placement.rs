//! Placement throughput of PostgresStockStore next to pgbench running the same
//! statements (benches/pgbench/place_order.sql), in one run, as the ceiling; and the
//! time to apply a 100k-SKU snapshot.
//!
//! Run: `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench -p aggregator-postgres --bench placement`
//! Options after `--`: `--seconds N` per measurement (default 10), `--no-pgbench`.
//! It creates (and drops) its own database; pgbench must be on PATH for the ceiling.

use aggregator_core::prelude::*;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aggregator_core::domain::{
    Currency, CustomerId, Money, OrderDetails, OrderId, ProductId, Quantity, SnapshotRow, Vendor,
    VendorId, VendorSku,
};
use aggregator_core::traits::{OrderPlacement, PlannedAllocation, PlannedLine};
use aggregator_postgres::{PostgresConfig, PostgresStockStore};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use time::OffsetDateTime;

const SPREAD_SKUS: usize = 10_000;
const VENDOR: &str = "BenchVendor";

struct Options {
    seconds: u64,
    pgbench: bool,
}

fn options() -> Options {
    let mut options = Options {
        seconds: 10,
        pgbench: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                options.seconds = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(options.seconds);
            }
            "--no-pgbench" => options.pgbench = false,
            _ => {}
        }
    }
    options
}

fn price() -> Money {
    Money::new(1_000, Currency::USD).unwrap_or_else(|e| panic!("price: {e}"))
}

fn row(sku: String, product: String, quantity: i64, as_of: OffsetDateTime) -> SnapshotRow {
    SnapshotRow {
        sku: VendorSku::new(sku).unwrap_or_else(|e| panic!("sku: {e}")),
        product: ProductId::new(product).unwrap_or_else(|e| panic!("product: {e}")),
        quantity,
        price: price(),
        as_of,
    }
}

fn placement(sku: &str, product: &str) -> OrderPlacement {
    let now = OffsetDateTime::now_utc();
    let one = Quantity::try_from(1).unwrap_or_else(|e| panic!("{e}"));
    let vendor = VendorId::new(VENDOR).unwrap_or_else(|e| panic!("{e}"));
    let sku = VendorSku::new(sku).unwrap_or_else(|e| panic!("{e}"));
    OrderPlacement {
        id: OrderId::new(),
        details: OrderDetails {
            customer: CustomerId::new("bench-customer").unwrap_or_else(|e| panic!("{e}")),
            email: None,
            shipping_address: None,
            payment_method: None,
            notes: None,
        },
        lines: vec![PlannedLine {
            item: sku.to_string(),
            product: ProductId::new(product).unwrap_or_else(|e| panic!("{e}")),
            quantity: one,
            allocations: vec![PlannedAllocation {
                vendor,
                sku,
                quantity: one,
            }],
            quoted: None,
        }],
        at: now,
        reserved_until: now + time::Duration::minutes(15),
        fresh_since: now - time::Duration::minutes(5),
        idempotency: None,
        outbox: vec![aggregator_core::domain::OutboxMessage {
            queue: aggregator_core::domain::QueueName::Orders,
            message: aggregator_core::domain::Message::json(
                &serde_json::json!({"type": "processOrder"}),
            )
            .unwrap_or_else(|e| panic!("{e}")),
            created_at: now,
        }],
    }
}

struct Figures {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

async fn measure(
    store: Arc<PostgresStockStore>,
    clients: usize,
    spread: bool,
    seconds: u64,
) -> Figures {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = client;
                while Instant::now() < deadline {
                    let (sku, product) = if spread {
                        n = (n * 7_919 + 13) % SPREAD_SKUS;
                        (format!("SPREAD-{n:05}"), format!("SPREAD-P-{n:05}"))
                    } else {
                        ("HOT".to_owned(), "HOT-P".to_owned())
                    };
                    let order = placement(&sku, &product);
                    let begun = Instant::now();
                    if let Err(error) = store.place_order(order).await {
                        panic!("placement failed: {error}");
                    }
                    latencies.push(begun.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap_or_else(|e| panic!("{e}")));
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize];
    Figures {
        per_second: latencies.len() as f64 / elapsed,
        p50: at(0.5),
        p99: at(0.99),
    }
}

/// pgbench's tps and average latency for the same statements, or None if it cannot run.
fn pgbench(url: &str, clients: usize, spread: bool, seconds: u64) -> Option<(f64, f64)> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/pgbench/place_order.sql"
    );
    // The session settings PostgresStockStore uses, so both sides run the same plans.
    let output = Command::new("pgbench")
        .env("PGOPTIONS", "-c plan_cache_mode=force_generic_plan")
        .args([
            "-n",
            "-M",
            "prepared",
            "-j",
            "2",
            "-c",
            &clients.to_string(),
            "-T",
            &seconds.to_string(),
        ])
        .args([
            "-f",
            script,
            "-D",
            "sku=HOT",
            "-D",
            if spread { "spread=1" } else { "spread=0" },
        ])
        .arg(url)
        .output()
        .ok()?;
    if !output.status.success() {
        eprintln!(
            "pgbench failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let number_after = |label: &str| {
        text.lines()
            .find(|line| line.starts_with(label))
            .and_then(|line| {
                line.split_whitespace()
                    .find_map(|word| word.parse::<f64>().ok())
            })
    };
    Some((number_after("tps = ")?, number_after("latency average = ")?))
}

#[tokio::main]
async fn main() {
    let options = options();
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let admin: PgConnectOptions = url.parse().unwrap_or_else(|e| panic!("DATABASE_URL: {e}"));
    let name = format!("agg_bench_{}", std::process::id());
    let mut conn = PgConnection::connect_with(&admin)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut config = PostgresConfig::new(url.clone()).with_database(&name);
    config.max_connections = 40;
    let store = Arc::new(
        PostgresStockStore::connect(&config)
            .await
            .unwrap_or_else(|e| panic!("connect: {e}")),
    );
    store
        .migrate()
        .await
        .unwrap_or_else(|e| panic!("migrate: {e}"));

    let vendor_id = VendorId::new(VENDOR).unwrap_or_else(|e| panic!("{e}"));
    let vendor = Vendor::new(vendor_id.clone(), VENDOR, "http://127.0.0.1:3001", 1)
        .unwrap_or_else(|e| panic!("{e}"));
    store
        .upsert_vendor(&vendor)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let now = OffsetDateTime::now_utc();
    let mut rows = vec![row("HOT".into(), "HOT-P".into(), 1_000_000_000, now)];
    rows.extend((0..SPREAD_SKUS).map(|n| {
        row(
            format!("SPREAD-{n:05}"),
            format!("SPREAD-P-{n:05}"),
            100_000_000,
            now,
        )
    }));
    store
        .apply_snapshot(&vendor_id, &rows, time::Duration::ZERO)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // The 100k-SKU snapshot: once as one call, once in the sync's 1,000-row pages.
    let big: Vec<SnapshotRow> = (0..100_000)
        .map(|n| row(format!("BULK-{n:06}"), format!("BULK-P-{n:06}"), 5, now))
        .collect();
    let begun = Instant::now();
    store
        .apply_snapshot(&vendor_id, &big, time::Duration::ZERO)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let one_call = begun.elapsed();
    let later = now + time::Duration::seconds(1);
    let paged: Vec<SnapshotRow> = big
        .iter()
        .map(|r| SnapshotRow {
            as_of: later,
            quantity: 7,
            ..r.clone()
        })
        .collect();
    let begun = Instant::now();
    for page in paged.chunks(1_000) {
        store
            .apply_snapshot(&vendor_id, page, time::Duration::ZERO)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let in_pages = begun.elapsed();
    store
        .complete_snapshot(
            &vendor_id,
            &[],
            now,
            OffsetDateTime::now_utc(),
            time::Duration::ZERO,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    println!(
        "100k-SKU snapshot: {:.2} s as one page (new rows), {:.2} s in 1,000-row pages (updates); target <= 2 s",
        one_call.as_secs_f64(),
        in_pages.as_secs_f64()
    );

    // The same server, database and connection parameters (sslmode…) for pgbench.
    let bench_url = config.url.clone();
    println!(
        "{:<7} {:>7} {:>12} {:>9} {:>9} {:>14} {:>14} {:>7}",
        "case", "clients", "orders/s", "p50 ms", "p99 ms", "pgbench tps", "pgbench avg", "ratio"
    );
    for spread in [false, true] {
        for clients in [8, 32] {
            let ours = measure(store.clone(), clients, spread, options.seconds).await;
            let ceiling = if options.pgbench {
                pgbench(bench_url.expose(), clients, spread, options.seconds)
            } else {
                None
            };
            let (tps, avg) = ceiling.map_or(("-".to_owned(), "-".to_owned()), |(tps, avg)| {
                (format!("{tps:.0}"), format!("{avg:.2} ms"))
            });
            let ratio = ceiling.map_or("-".to_owned(), |(tps, _)| {
                format!("{:.2}", ours.per_second / tps)
            });
            println!(
                "{:<7} {:>7} {:>12.0} {:>9.2} {:>9.2} {:>14} {:>14} {:>7}",
                if spread { "spread" } else { "hot" },
                clients,
                ours.per_second,
                ours.p50.as_secs_f64() * 1e3,
                ours.p99.as_secs_f64() * 1e3,
                tps,
                avg,
                ratio
            );
        }
    }
    store.pool().close().await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}
