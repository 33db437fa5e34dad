use std::sync::Arc;
use std::time::{Duration, Instant};

use aggregator_core::clock::SystemClock;
use aggregator_core::memory::{InMemoryCache, InMemoryOrderQueue, InMemoryStockStore};
use aggregator_core::traits::{Cache, OrderQueue, StockStore};
use aggregator_http::api::HealthProbes;
use mock_vendors::{MockVendor, MockVendorConfig};
use order_aggregator::backends::Backends;
use order_aggregator::settings::Settings;
use serde_json::Value;

/// Two seed mock vendors on free ports.
pub(crate) async fn vendors() -> (MockVendor, MockVendor) {
    let a = MockVendor::spawn_local(MockVendorConfig::new("VendorA"))
        .await
        .expect("VendorA");
    let b = MockVendor::spawn_local(MockVendorConfig::new("VendorB"))
        .await
        .expect("VendorB");
    (a, b)
}

/// Settings for a test stack: the given vendors, the API on a free port, no log files,
/// quick relay and sync.
pub(crate) fn settings(vendors: &[&MockVendor]) -> Settings {
    let list = vendors
        .iter()
        .map(|v| format!("{}={}", v.id(), v.base_url()))
        .collect::<Vec<_>>()
        .join(",");
    let env = move |name: &str| match name {
        "AGGREGATOR_VENDORS" => Some(list.clone()),
        "AGGREGATOR_API_ADDR" => Some("127.0.0.1:0".into()),
        "AGGREGATOR_LOG_DIR" => Some("none".into()),
        "AGGREGATOR_RELAY_INTERVAL_MS" => Some("20".into()),
        "AGGREGATOR_SYNC_INTERVAL_SECS" => Some("1".into()),
        "AGGREGATOR_SWEEP_INTERVAL_SECS" => Some("1".into()),
        "AGGREGATOR_SHUTDOWN_GRACE_SECS" => Some("2".into()),
        // The mock vendors stamp their feeds and their orders from one clock, so no
        // margin between the two is needed (with one, a sync each second would keep
        // counting a just-confirmed unit twice for a few seconds).
        "AGGREGATOR_CONFIRMATION_MARGIN_MS" => Some("0".into()),
        // ...and the margin must cover the tolerance, which one clock needs none of.
        "AGGREGATOR_CLOCK_TOLERANCE_MS" => Some("0".into()),
        _ => None,
    };
    Settings::parse(Vec::new(), env).expect("settings")
}

/// In-memory backends (one process).
pub(crate) fn memory_backends() -> Backends {
    let store: Arc<dyn StockStore> = Arc::new(InMemoryStockStore::new());
    let queue: Arc<dyn OrderQueue> = Arc::new(InMemoryOrderQueue::default());
    let cache: Arc<dyn Cache> = Arc::new(InMemoryCache::new());
    Backends {
        store,
        queue,
        cache,
        clock: Arc::new(SystemClock),
        probes: HealthProbes::default(),
        replica: None,
    }
}

/// Polls `check` every 50 ms until it answers `Some`, or panics after `within`.
pub(crate) async fn eventually<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// GET `url` as JSON.
pub(crate) async fn get_json(http: &reqwest::Client, url: &str) -> Value {
    http.get(url)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json")
}

/// Every order the API lists (all pages), by status.
pub(crate) async fn all_orders(http: &reqwest::Client, base: &str) -> Vec<Value> {
    let mut orders = Vec::new();
    let mut page = 1;
    loop {
        let body = get_json(http, &format!("{base}/api/orders?limit=100&page={page}")).await;
        let batch = body["data"]["orders"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        orders.extend(batch);
        let pages = body["data"]["pagination"]["pages"].as_u64().unwrap_or(0);
        if page >= pages {
            return orders;
        }
        page += 1;
    }
}

/// Units of each confirmed order's allocations at `vendor`.
pub(crate) fn confirmed_units(orders: &[Value], vendor: &str) -> i64 {
    orders
        .iter()
        .filter(|o| o["status"] == "confirmed")
        .flat_map(|o| o["items"].as_array().cloned().unwrap_or_default())
        .flat_map(|line| line["allocations"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["vendor"] == vendor)
        .map(|a| a["quantity"].as_i64().unwrap_or(0))
        .sum()
}

/// `vendor`'s row in a product answer of the API, if it has one.
pub(crate) fn vendor_row(product: &Value, vendor: &str) -> Option<Value> {
    product["data"]["product"]["vendors"]
        .as_array()?
        .iter()
        .find(|row| row["vendor"] == vendor)
        .cloned()
}
