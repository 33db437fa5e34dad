//! API throughput with wrk: `GET /api/products/{id}` and `POST /api/orders` on
//! in-memory backends, built as the binaries build it (group commit, cached catalog,
//! recent reads), next to a trivial axum handler (the ceiling) in the same run.
//!
//! Run: `cargo bench -p order-aggregator --bench api` (needs `wrk` on PATH: Debian
//! package `wrk`). Options after `--`: `--seconds N` per measurement (default 10),
//! `--connections N` (default 50).

use aggregator_core::prelude::*;
use std::process::Command;
use std::sync::Arc;

use aggregator_core::clock::SystemClock;
use aggregator_core::domain::{
    Currency, Money, ProductId, SnapshotRow, Vendor, VendorId, VendorSku,
};
use aggregator_core::memory::{InMemoryCache, InMemoryOrderQueue, InMemoryStockStore};
use aggregator_core::traits::RateLimit;
use aggregator_http::api::{ApiConfig, HealthProbes, router};
use axum::Json;
use axum::routing::get;
use order_aggregator::app::App;
use order_aggregator::backends::Backends;
use order_aggregator::settings::Settings;
use time::OffsetDateTime;

struct Options {
    seconds: u64,
    connections: u32,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        seconds: 10,
        connections: 50,
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
            "--seconds" => options.seconds = number("--seconds")?,
            "--connections" => {
                options.connections =
                    u32::try_from(number("--connections")?).map_err(|e| e.to_string())?
            }
            "--bench" => {}
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    Ok(options)
}

async fn seeded_store() -> Arc<InMemoryStockStore> {
    let store = Arc::new(InMemoryStockStore::new());
    let now = OffsetDateTime::now_utc();
    let now = now.replace_microsecond(now.microsecond()).unwrap_or(now);
    for (priority, (id, sku)) in [("VendorA", "LAPTOP-a-001"), ("VendorB", "LAPTOP-b-001")]
        .into_iter()
        .enumerate()
    {
        let vendor = Vendor::new(
            VendorId::new(id).expect("id"),
            id,
            "http://127.0.0.1:9",
            priority as u16 + 1,
        )
        .expect("vendor");
        store.upsert_vendor(&vendor).await.expect("vendor");
        let row = SnapshotRow {
            sku: VendorSku::new(sku).expect("sku"),
            product: ProductId::new("LAPTOP-001").expect("product"),
            quantity: 500_000_000,
            price: Money::new(99_999, Currency::new("USD").expect("usd")).expect("price"),
            as_of: now,
        };
        store
            .apply_snapshot(&vendor.id, &[row], time::Duration::ZERO)
            .await
            .expect("row");
        store
            .complete_snapshot(&vendor.id, &[], now, now, time::Duration::ZERO)
            .await
            .expect("complete");
    }
    store
}

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// Requests per second and the latency line of one wrk run.
fn wrk(url: &str, script: Option<&std::path::Path>, options: &Options) -> Option<(f64, String)> {
    let mut command = Command::new("wrk");
    command.args([
        "-t2",
        &format!("-c{}", options.connections),
        &format!("-d{}s", options.seconds),
        "--latency",
    ]);
    if let Some(script) = script {
        command.arg("-s").arg(script);
    }
    let output = command.arg(url).output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let rate = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok())?;
    let pick = |label: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(label))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("?")
            .to_owned()
    };
    let non_2xx = text
        .lines()
        .find(|l| l.contains("Non-2xx"))
        .map(|l| format!(", {}", l.trim()))
        .unwrap_or_default();
    Some((
        rate,
        format!("p50 {} p99 {}{non_2xx}", pick("50%"), pick("99%")),
    ))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let options = match options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("api bench: {message}");
            std::process::exit(2);
        }
    };
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("api bench: wrk is not installed (Debian package `wrk`)");
        return;
    }
    let store = seeded_store().await;
    let backends = Backends {
        store,
        queue: Arc::new(InMemoryOrderQueue::default()),
        cache: Arc::new(InMemoryCache::new()),
        clock: Arc::new(SystemClock),
        probes: HealthProbes::default(),
        replica: None,
    };
    let settings = Settings::parse(
        [
            "--vendors".to_owned(),
            "VendorA=http://127.0.0.1:9,VendorB=http://127.0.0.1:9".to_owned(),
        ],
        |_| None,
    )
    .expect("settings");
    let config = ApiConfig {
        rate_limit: RateLimit {
            max_requests: u32::MAX,
            window: std::time::Duration::from_secs(1),
        },
        ..ApiConfig::default()
    };
    let state = App::on(settings, backends)
        .await
        .expect("the system builds")
        .api_state_with(config);
    let api = serve(router(state)).await;
    let ceiling =
        serve(axum::Router::new().route(
            "/ceiling",
            get(|| async { Json(serde_json::json!({"ok": true})) }).post(
                |body: axum::body::Bytes| async move {
                    Json(serde_json::json!({"received": body.len()}))
                },
            ),
        ))
        .await;
    let script = std::env::temp_dir().join(format!("api-bench-{}.lua", std::process::id()));
    let order = r#"{"customerId": "bench", "items": [{"sku": "LAPTOP-001", "quantity": 1}]}"#;
    std::fs::write(
        &script,
        format!(
            "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.body = '{order}'\n"
        ),
    )
    .expect("script");
    println!(
        "API throughput, wrk -t2 -c{} -d{}s, in-memory backends, server and wrk on the same 2 cores",
        options.connections, options.seconds
    );
    let runs = [
        (
            "GET  trivial axum handler (ceiling)",
            format!("{ceiling}/ceiling"),
            None,
        ),
        (
            "GET  /api/products/LAPTOP-001",
            format!("{api}/api/products/LAPTOP-001"),
            None,
        ),
        (
            "POST trivial axum handler (ceiling)",
            format!("{ceiling}/ceiling"),
            Some(script.as_path()),
        ),
        (
            "POST /api/orders",
            format!("{api}/api/orders"),
            Some(script.as_path()),
        ),
    ];
    let mut rates = Vec::new();
    for (name, url, script) in runs {
        tokio::task::block_in_place(|| match wrk(&url, script, &options) {
            Some((rate, latency)) => {
                println!("  {name:<40} {rate:>10.0} req/s  {latency}");
                rates.push(rate);
            }
            None => println!("  {name:<40} wrk failed"),
        });
    }
    if let [get_ceiling, get_api, post_ceiling, post_api] = rates[..] {
        println!(
            "  ratios to the ceiling: GET {:.2}, POST {:.2}",
            get_api / get_ceiling,
            post_api / post_ceiling
        );
    }
    let _ = std::fs::remove_file(&script);
}
