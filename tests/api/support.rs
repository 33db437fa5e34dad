use std::sync::Arc;

use aggregator_core::clock::SystemClock;
use aggregator_core::domain::{
    Currency, Money, ProductId, SnapshotRow, Vendor, VendorId, VendorSku,
};
use aggregator_core::memory::{InMemoryCache, InMemoryOrderQueue, InMemoryStockStore};
use aggregator_core::traits::{RetryPolicy, StockStore};
use aggregator_http::api::{ApiConfig, ApiState, HealthProbes, router};
use order_aggregator::app::App;
use order_aggregator::backends::Backends;
use order_aggregator::settings::Settings;
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::Value;
use time::OffsetDateTime;

/// The catalog every API test starts with: LAPTOP-001 at both vendors (5 at A for
/// 999.99, 3 at B for 989.99), MOUSE-007 only at A (100 for 29.99).
pub(crate) const STOCK: [(&str, &str, &str, i64, i64); 3] = [
    ("VendorA", "LAPTOP-a-001", "LAPTOP-001", 5, 99_999),
    ("VendorB", "LAPTOP-b-001", "LAPTOP-001", 3, 98_999),
    ("VendorA", "MOUSE-a-007", "MOUSE-007", 100, 2_999),
];

pub(crate) async fn seed(store: &dyn StockStore) {
    let now = OffsetDateTime::now_utc();
    let now = now.replace_microsecond(now.microsecond()).unwrap_or(now);
    for (priority, id) in ["VendorA", "VendorB"].into_iter().enumerate() {
        let vendor = Vendor::new(
            VendorId::new(id).expect("id"),
            id,
            "http://127.0.0.1:9",
            u16::try_from(priority + 1).expect("priority"),
        )
        .expect("vendor");
        store.upsert_vendor(&vendor).await.expect("vendor");
        let rows: Vec<SnapshotRow> = STOCK
            .iter()
            .filter(|(v, ..)| *v == id)
            .map(|(_, sku, product, quantity, price)| SnapshotRow {
                sku: VendorSku::new(*sku).expect("sku"),
                product: ProductId::new(*product).expect("product"),
                quantity: *quantity,
                price: Money::new(*price, Currency::new("USD").expect("usd")).expect("price"),
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
}

/// An admin key, and client keys of the customers `alice` and `bob`.
pub(crate) const ADMIN: &str = "admin-key-0123456789";
pub(crate) const ALICE: &str = "alice-key-0123456789";
pub(crate) const BOB: &str = "bob-key-0123456789ab";

/// [`ADMIN`], [`ALICE`] and [`BOB`].
pub(crate) fn keys() -> aggregator_http::api::ApiKeys {
    use aggregator_core::domain::CustomerId;
    use aggregator_http::api::{ApiKeys, Role};
    ApiKeys::none()
        .with(ADMIN, Role::Admin)
        .with(ALICE, Role::Client(CustomerId::new("alice").expect("id")))
        .with(BOB, Role::Client(CustomerId::new("bob").expect("id")))
}

/// Settings as the binaries would parse them with nothing set, but naming the seeded
/// vendors (at an address nothing listens on: the API tests call no vendor).
pub(crate) fn settings() -> Settings {
    Settings::parse(
        [
            "--vendors".to_owned(),
            "VendorA=http://127.0.0.1:9,VendorB=http://127.0.0.1:9".to_owned(),
        ],
        |_| None,
    )
    .expect("settings")
}

/// The API's state as the binaries build it (through the composition root, with its
/// group commit, cached catalog and recent reads) over `backends`, with `config`.
pub(crate) async fn api_state(backends: Backends, config: ApiConfig) -> ApiState {
    App::on(settings(), backends)
        .await
        .expect("the system builds")
        .api_state_with(config)
}

/// A running API on a free port.
pub(crate) struct TestApp {
    pub(crate) base: String,
    pub(crate) http: Client,
    pub(crate) queue: InMemoryOrderQueue,
}

impl TestApp {
    /// The API over seeded in-memory backends with `config`.
    pub(crate) async fn start(config: ApiConfig) -> Self {
        let store: Arc<dyn StockStore> = Arc::new(InMemoryStockStore::new());
        seed(store.as_ref()).await;
        Self::over(store, config).await
    }

    /// The API with default settings.
    pub(crate) async fn open() -> Self {
        Self::start(ApiConfig::default()).await
    }

    /// The API over `store` (already seeded) with `config`.
    pub(crate) async fn over(store: Arc<dyn StockStore>, config: ApiConfig) -> Self {
        Self::over_with_cache(store, Arc::new(InMemoryCache::new()), config).await
    }

    /// The API over seeded in-memory backends, with `cache` as its cache.
    pub(crate) async fn with_cache(cache: Arc<dyn aggregator_core::Cache>) -> Self {
        let store: Arc<dyn StockStore> = Arc::new(InMemoryStockStore::new());
        seed(store.as_ref()).await;
        Self::over_with_cache(store, cache, ApiConfig::default()).await
    }

    /// The API over `store` (already seeded) with `cache` and `config`.
    pub(crate) async fn over_with_cache(
        store: Arc<dyn StockStore>,
        cache: Arc<dyn aggregator_core::Cache>,
        config: ApiConfig,
    ) -> Self {
        let queue = InMemoryOrderQueue::new(
            RetryPolicy::new(vec![std::time::Duration::from_millis(10)]).expect("policy"),
        );
        let state = api_state(
            Backends {
                store,
                queue: Arc::new(queue.clone()),
                cache,
                clock: Arc::new(SystemClock),
                probes: HealthProbes::default(),
                replica: None,
            },
            config,
        )
        .await;
        Self::serve(state, queue).await
    }

    pub(crate) async fn serve(state: ApiState, queue: InMemoryOrderQueue) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, router(state)).await;
        });
        Self {
            base: format!("http://{addr}"),
            http: Client::new(),
            queue,
        }
    }

    /// Sends `method path` with an optional JSON body and headers.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(serde_json::to_vec(body).expect("json"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("request sent")
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        read(self.send(method, path, body, headers).await).await
    }

    pub(crate) async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None, &[]).await
    }

    pub(crate) async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body), &[]).await
    }
}

/// The status and JSON body (`Null` when the body is not JSON).
pub(crate) async fn read(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

/// Asserts `body` is a problem of `kind` (the end of its type URI).
pub(crate) fn assert_problem(status: StatusCode, body: &Value, expected: StatusCode, kind: &str) {
    assert_eq!(status, expected, "{body}");
    let problem_type = body["type"].as_str().unwrap_or_default();
    assert!(
        problem_type.ends_with(&format!("/{kind}")),
        "type {problem_type} for {body}"
    );
    assert_eq!(body["status"], expected.as_u16(), "{body}");
    assert_eq!(body["success"], false, "{body}");
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
}

/// The field names a validation problem lists.
pub(crate) fn fields(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
