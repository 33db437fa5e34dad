//! The ceiling: pgbench running the store's own statements against a database seeded
//! like the store's, one order per transaction and a batch per transaction.

use std::time::Duration;

use aggregator_core::domain::{
    Currency, Money, ProductId, SnapshotRow, Vendor, VendorId, VendorSku,
};
use aggregator_core::prelude::*;
use aggregator_postgres::{PostgresConfig, PostgresStockStore};
use time::OffsetDateTime;
use tokio::process::Command;

use crate::system::{Failure, Services, admin};

/// One order per transaction, the statements of a single placement.
const ONE_PER_TRANSACTION: &str =
    include_str!("../../aggregator-postgres/benches/pgbench/place_order.sql");
/// A batch per transaction, the statements of a group commit.
const BATCHED: &str = include_str!("../pgbench/place_batch.sql");

/// What pgbench reached for one case.
#[derive(Debug, Clone)]
pub(crate) struct Ceiling {
    pub(crate) case: String,
    pub(crate) clients: u32,
    pub(crate) orders_per_second: f64,
}

/// Runs pgbench for `hot` and `spread`, one order per transaction and batches of
/// `batch`, for `seconds` each, at a few client counts; the best of each.
pub(crate) async fn ceilings(
    services: &Services,
    seconds: u64,
    batch: u32,
) -> Result<Vec<Ceiling>, Failure> {
    let database = format!("aggregator_load_pgbench_{}", std::process::id());
    admin(
        services,
        &format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"),
    )
    .await?;
    admin(services, &format!("CREATE DATABASE {database}")).await?;
    let url = format!("{}/{database}", services.postgres);
    let outcome = async {
        seed(&url).await?;
        let dir = std::env::temp_dir().join(format!("aggregator-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("temp dir: {e}"))?;
        let single = dir.join("place_order.sql");
        let batched = dir.join("place_batch.sql");
        std::fs::write(&single, ONE_PER_TRANSACTION).map_err(|e| format!("script: {e}"))?;
        std::fs::write(&batched, BATCHED).map_err(|e| format!("script: {e}"))?;
        let mut found = Vec::new();
        for spread in [false, true] {
            let kind = if spread { "spread" } else { "hot" };
            let mut best = best_of(&url, &single, spread, 1, &[8, 32], seconds).await?;
            best.case = format!("{kind}, 1 order/tx");
            found.push(best);
            let mut best = best_of(&url, &batched, spread, batch, &[4, 16], seconds).await?;
            best.case = format!("{kind}, {batch} orders/tx");
            found.push(best);
        }
        let _ = std::fs::remove_dir_all(&dir);
        Ok(found)
    }
    .await;
    let _ = admin(
        services,
        &format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"),
    )
    .await;
    outcome
}

async fn best_of(
    url: &str,
    script: &std::path::Path,
    spread: bool,
    batch: u32,
    clients: &[u32],
    seconds: u64,
) -> Result<Ceiling, Failure> {
    let mut best = Ceiling {
        case: String::new(),
        clients: 0,
        orders_per_second: 0.0,
    };
    for &count in clients {
        let tps = pgbench(url, script, spread, batch, count, seconds).await?;
        let orders = tps * f64::from(batch);
        if orders > best.orders_per_second {
            best = Ceiling {
                case: String::new(),
                clients: count,
                orders_per_second: orders,
            };
        }
    }
    Ok(best)
}

async fn pgbench(
    url: &str,
    script: &std::path::Path,
    spread: bool,
    batch: u32,
    clients: u32,
    seconds: u64,
) -> Result<f64, Failure> {
    let output = Command::new("pgbench")
        // The session settings of the store's connections, so both run the same plans.
        .env("PGOPTIONS", "-c plan_cache_mode=force_generic_plan")
        .args(["-n", "-M", "prepared", "-j", "2"])
        .args(["-c", &clients.to_string(), "-T", &seconds.to_string()])
        .arg("-f")
        .arg(script)
        .args([
            "-D",
            "sku=HOT",
            "-D",
            if spread { "spread=1" } else { "spread=0" },
        ])
        .args(["-D", &format!("batch={batch}")])
        .arg(url)
        .output()
        .await
        .map_err(|e| {
            format!("cannot run pgbench ({e}); install postgresql-contrib or the client")
        })?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "pgbench failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    text.lines()
        .find_map(|line| line.strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("no tps in pgbench's output: {text}"))
}

/// The bench vendor with one hot SKU and 10,000 spread SKUs, all with plenty of stock.
async fn seed(url: &str) -> Result<(), Failure> {
    let store = PostgresStockStore::connect(&PostgresConfig::new(url.to_owned()))
        .await
        .map_err(|e| e.to_string())?;
    store.migrate().await.map_err(|e| e.to_string())?;
    let vendor = Vendor::new(
        VendorId::new("BenchVendor").map_err(|e| e.to_string())?,
        "Bench vendor",
        "http://127.0.0.1:1",
        1,
    )
    .map_err(|e| e.to_string())?;
    store
        .upsert_vendor(&vendor)
        .await
        .map_err(|e| e.to_string())?;
    let now = OffsetDateTime::now_utc();
    let price = Money::new(1000, Currency::USD).map_err(|e| e.to_string())?;
    let row = |sku: String, product: String| -> Result<SnapshotRow, Failure> {
        Ok(SnapshotRow {
            sku: VendorSku::new(sku).map_err(|e| e.to_string())?,
            product: ProductId::new(product).map_err(|e| e.to_string())?,
            quantity: 1_000_000_000,
            price,
            as_of: now,
        })
    };
    let mut rows = vec![row("HOT".into(), "HOT-P".into())?];
    for n in 0..10_000 {
        rows.push(row(format!("SPREAD-{n:05}"), format!("SPREAD-P-{n:05}"))?);
    }
    store
        .apply_snapshot(&vendor.id, &rows, time::Duration::ZERO)
        .await
        .map_err(|e| e.to_string())?;
    let listed: Vec<VendorSku> = rows.iter().map(|r| r.sku.clone()).collect();
    store
        .complete_snapshot(&vendor.id, &listed, now, now, time::Duration::ZERO)
        .await
        .map_err(|e| e.to_string())?;
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(())
}
