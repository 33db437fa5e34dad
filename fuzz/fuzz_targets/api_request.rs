//! The API's request handling, end to end through the router on in-memory backends:
//! any body to any write endpoint is answered (a 2xx, or a 4xx problem), never a panic
//! and never a 5xx.

#![no_main]

use std::sync::{Arc, LazyLock};

use aggregator_core::clock::SystemClock;
use aggregator_core::domain::{
    Currency, Money, ProductId, SnapshotRow, Vendor, VendorId, VendorSku,
};
use aggregator_core::memory::{InMemoryCache, InMemoryOrderQueue, InMemoryStockStore};
use aggregator_core::traits::{RateLimit, StockStore};
use aggregator_http::api::{ApiConfig, HealthProbes, router};
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, header};
use libfuzzer_sys::fuzz_target;
use order_aggregator::app::App;
use order_aggregator::backends::Backends;
use order_aggregator::settings::Settings;
use tokio::runtime::Runtime;
use tower::ServiceExt as _;

/// The endpoints that read a body (and one that reads only the path), by the first
/// byte of the input.
const ROUTES: [(Method, &str); 8] = [
    (Method::POST, "/api/orders"),
    (Method::POST, "/order"),
    (Method::POST, "/api/holds"),
    (Method::POST, "/api/ops/stock-sync"),
    (
        Method::POST,
        "/api/holds/00000000-0000-7000-8000-000000000000/extend",
    ),
    (
        Method::POST,
        "/api/holds/00000000-0000-7000-8000-000000000000/order",
    ),
    (
        Method::POST,
        "/api/orders/00000000-0000-7000-8000-000000000000/cancel",
    ),
    (Method::GET, "/api/products"),
];

struct Api {
    runtime: Runtime,
    router: Router,
}

/// One vendor selling the seed's laptop and mouse, fresh now.
async fn seed(store: &dyn StockStore) {
    let vendor = Vendor::new(
        VendorId::new("VendorA").expect("id"),
        "VendorA",
        "http://127.0.0.1:9",
        1,
    )
    .expect("vendor");
    store.upsert_vendor(&vendor).await.expect("vendor");
    let now = time::OffsetDateTime::now_utc();
    let usd = Currency::new("USD").expect("usd");
    let rows: Vec<SnapshotRow> = [("LAPTOP-a-001", "LAPTOP-001"), ("MOUSE-a-007", "MOUSE-007")]
        .into_iter()
        .map(|(sku, product)| SnapshotRow {
            sku: VendorSku::new(sku).expect("sku"),
            product: ProductId::new(product).expect("product"),
            quantity: 1_000_000,
            price: Money::new(1_999, usd.clone()).expect("price"),
            as_of: now,
        })
        .collect();
    store
        .apply_snapshot(&vendor.id, &rows, time::Duration::ZERO)
        .await
        .expect("rows");
    store
        .complete_snapshot(&vendor.id, &[], now, now, time::Duration::ZERO)
        .await
        .expect("complete");
}

static API: LazyLock<Api> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let store: Arc<dyn StockStore> = Arc::new(InMemoryStockStore::new());
    runtime.block_on(seed(store.as_ref()));
    let backends = Backends {
        store,
        queue: Arc::new(InMemoryOrderQueue::default()),
        cache: Arc::new(InMemoryCache::new()),
        clock: Arc::new(SystemClock),
        probes: HealthProbes::default(),
        replica: None,
    };
    let settings = Settings::parse(
        ["--vendors".to_owned(), "VendorA=http://127.0.0.1:9".to_owned()],
        |_| None,
    )
    .expect("settings");
    let config = ApiConfig {
        // Every input must reach the handlers, not the rate limit.
        rate_limit: RateLimit {
            max_requests: u32::MAX,
            window: std::time::Duration::from_secs(1),
        },
        ..ApiConfig::default()
    };
    // Built as the binaries build it: group commit, cached catalog, recent reads.
    let state = runtime
        .block_on(App::on(settings, backends))
        .expect("the system builds")
        .api_state_with(config);
    Api {
        runtime,
        router: router(state),
    }
});

fuzz_target!(|data: &[u8]| {
    let Some((&choice, body)) = data.split_first() else {
        return;
    };
    let (method, path) = &ROUTES[usize::from(choice) % ROUTES.len()];
    let request = Request::builder()
        .method(method.clone())
        .uri(*path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_vec()))
        .expect("request");
    let api = &*API;
    let response = api
        .runtime
        .block_on(api.router.clone().oneshot(request))
        .expect("the router always answers");
    let status = response.status();
    assert!(
        !status.is_server_error(),
        "{method} {path} answered {status} to {:?}",
        String::from_utf8_lossy(body)
    );
});
