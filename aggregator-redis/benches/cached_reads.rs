//! Cached availability reads per second through RedisCache (a GET plus JSON decoding of
//! a product's availability), next to `redis-benchmark` GET with the same payload size
//! and client count in the same run as the ceiling.
//!
//! Run: `REDIS_URL=redis://127.0.0.1:6379 cargo bench -p aggregator-redis --bench cached_reads`
//! Options after `--`: `--seconds N` (default 10).

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aggregator_core::domain::{Currency, Money, ProductId, VendorHealth, VendorId, VendorSku};
use aggregator_core::service::{ProductAvailability, VendorAvailability};
use aggregator_core::traits::{Cache, CacheExt};
use aggregator_redis::{RedisCache, RedisConfig};
use time::OffsetDateTime;

fn availability() -> ProductAvailability {
    let vendor = |id: &str, sku: &str| VendorAvailability {
        vendor: VendorId::new(id).unwrap_or_else(|e| panic!("{e}")),
        sku: VendorSku::new(sku).unwrap_or_else(|e| panic!("{e}")),
        sellable: 12,
        reported: 20,
        reserved: 6,
        confirmed_not_yet_reported: 2,
        price: Money::new(99_999, Currency::USD).unwrap_or_else(|e| panic!("{e}")),
        as_of: OffsetDateTime::now_utc(),
        fresh: true,
        health: VendorHealth::Healthy,
    };
    ProductAvailability {
        product: ProductId::new("LAPTOP-001").unwrap_or_else(|e| panic!("{e}")),
        available: 24,
        vendors: vec![
            vendor("VendorA", "LAPTOP-a-001"),
            vendor("VendorB", "LAPTOP-b-001"),
        ],
    }
}

async fn measure(
    cache: Arc<RedisCache>,
    clients: usize,
    seconds: u64,
) -> (f64, Duration, Duration) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let cache = Arc::clone(&cache);
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let begun = Instant::now();
                    let found: Option<ProductAvailability> = cache
                        .get_json("availability:product:LAPTOP-001")
                        .await
                        .unwrap_or_else(|e| panic!("read failed: {e}"));
                    assert!(found.is_some(), "the entry is cached");
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
    (latencies.len() as f64 / elapsed, at(0.5), at(0.99))
}

fn redis_benchmark(clients: usize, size: usize) -> Option<f64> {
    let output = Command::new("redis-benchmark")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            "6379",
            "-t",
            "get",
            "-n",
            "300000",
            "-q",
        ])
        .args(["-c", &clients.to_string(), "-d", &size.to_string()])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.split(['\r', '\n'])
        .rfind(|part| part.contains("GET:"))
        .and_then(|line| {
            line.split_whitespace()
                .find_map(|word| word.parse::<f64>().ok())
        })
}

#[tokio::main]
async fn main() {
    let mut seconds = 10;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--seconds" {
            seconds = args.next().and_then(|s| s.parse().ok()).unwrap_or(seconds);
        }
    }
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let mut config = RedisConfig::new(url);
    config.key_prefix = format!("bench:{}:", std::process::id());
    let cache = Arc::new(RedisCache::new(config).unwrap_or_else(|e| panic!("{e}")));
    let value = availability();
    let size = serde_json_size(&value);
    cache
        .set_json(
            "availability:product:LAPTOP-001",
            &value,
            Duration::from_secs(600),
        )
        .await
        .unwrap_or_else(|e| panic!("redis: {e}"));
    println!("payload: {size} bytes of JSON");
    println!(
        "{:>7} {:>14} {:>9} {:>9} {:>22} {:>7}",
        "clients", "cached reads/s", "p50 ms", "p99 ms", "redis-benchmark GET/s", "ratio"
    );
    for clients in [8, 50] {
        let (per_second, p50, p99) = measure(Arc::clone(&cache), clients, seconds).await;
        let ceiling = redis_benchmark(clients, size);
        println!(
            "{:>7} {:>14.0} {:>9.3} {:>9.3} {:>22} {:>7}",
            clients,
            per_second,
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            ceiling.map_or("-".into(), |c| format!("{c:.0}")),
            ceiling.map_or("-".into(), |c| format!("{:.2}", per_second / c)),
        );
    }
    cache
        .delete("availability:product:LAPTOP-001")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

fn serde_json_size(value: &ProductAvailability) -> usize {
    serde_json::to_vec(value)
        .map(|bytes| bytes.len())
        .unwrap_or(0)
}
