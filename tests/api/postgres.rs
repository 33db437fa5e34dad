//! The order endpoints over PostgreSQL, and `/health` when the store goes away.

use std::sync::Arc;

use aggregator_core::traits::StockStore;
use aggregator_http::api::ApiConfig;
use aggregator_postgres::testing::TestDatabase;
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::support::{TestApp, assert_problem, seed};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_order_endpoints_work_the_same_on_postgres() {
    let Some(db) = TestDatabase::create(8).await else {
        return;
    };
    let store: Arc<dyn StockStore> = Arc::new(db.store.clone());
    seed(store.as_ref()).await;
    let app = TestApp::over(store.clone(), ApiConfig::default()).await;

    let body = json!({"productId": "LAPTOP-001", "quantity": 2, "customerId": "pg"});
    let key = [("idempotency-key", "pg-key-1")];
    let (status, placed) = app.call(Method::POST, "/order", Some(&body), &key).await;
    assert_eq!(status, StatusCode::CREATED, "{placed}");
    let (status, replay) = app.call(Method::POST, "/order", Some(&body), &key).await;
    assert_eq!(
        (status, replay["orderId"].clone()),
        (StatusCode::OK, placed["orderId"].clone())
    );
    let other = json!({"productId": "LAPTOP-001", "quantity": 1, "customerId": "pg"});
    let (status, problem) = app.call(Method::POST, "/order", Some(&other), &key).await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency-key-reused",
    );

    let full = json!({
        "customerId": "pg", "customerEmail": "pg@example.com",
        "items": [{"sku": "MOUSE-a-007", "quantity": 3, "unitPrice": 29.99}],
        "shippingAddress": {"street": "1 Main St", "city": "X", "zipCode": "1", "country": "US"},
        "paymentMethod": "credit_card", "notes": "n"
    });
    let (status, second) = app.post("/api/orders", &full).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let id = second["orderId"].as_str().expect("id").to_owned();
    let (status, fetched) = app.get(&format!("/api/orders/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        fetched["data"]["order"]["shippingAddress"]["street"],
        "1 Main St"
    );
    let (_, list) = app.get("/api/orders?status=reserved&limit=10").await;
    assert_eq!(list["data"]["pagination"]["total"], 2);

    let (status, problem) = app
        .post(
            "/api/orders",
            &json!({"customerId": "pg", "items": [{"sku": "LAPTOP-001", "quantity": 7}]}),
        )
        .await;
    assert_problem(status, &problem, StatusCode::CONFLICT, "insufficient-stock");
    assert_eq!(problem["short"][0]["available"], 6);
    let (status, problem) = app
        .post(
            "/api/orders",
            &json!({"customerId": "pg", "items": [{"sku": "LAPTOP-001", "quantity": 0}]}),
        )
        .await;
    assert_problem(status, &problem, StatusCode::BAD_REQUEST, "validation");
    let (status, problem) = app
        .get("/api/orders/01a211db-cf0d-71ed-bf5a-7f2a6038e505")
        .await;
    assert_problem(status, &problem, StatusCode::NOT_FOUND, "not-found");

    let (status, cancelled) = app
        .post(
            &format!("/api/orders/{id}/cancel"),
            &json!({"reason": "test"}),
        )
        .await;
    assert_eq!(
        (status, cancelled["data"]["order"]["status"].as_str()),
        (StatusCode::OK, Some("cancelled"))
    );
    let (_, mouse) = app.get("/api/products/MOUSE-007").await;
    let mouse = mouse["data"]["product"].clone();
    assert_eq!(
        mouse["available"], 97,
        "held while the vendor may have them (no worker runs here)"
    );
    let order = store
        .order(id.parse().expect("order id"))
        .await
        .expect("order");
    for (vendor, _) in order.allocations_by_vendor() {
        let key = format!("{}:{vendor}:v{}", order.id, order.version - 1);
        store
            .vendor_cancellation_done(&vendor, &key)
            .await
            .expect("the vendor cancelled");
    }
    // (Cached availability may lag for its TTL.)
    let mut available = serde_json::Value::Null;
    for _ in 0..50 {
        available =
            app.get("/api/products/MOUSE-007").await.1["data"]["product"]["available"].clone();
        if available == 100 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(available, 100, "units back");

    let (status, health) = app.get("/health").await;
    assert_eq!(
        (status, health["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    db.finish().await;
    // /health answers one round of checks for up to a second.
    let mut answer = app.get("/health").await;
    for _ in 0..30 {
        if answer.0 == StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        answer = app.get("/health").await;
    }
    let (status, health) = answer;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{health}");
    assert_eq!(health["status"], "down");
    assert_eq!(health["components"]["store"]["status"], "down");
    let (status, _) = app.get("/health/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, problem) = app
        .post(
            "/order",
            &json!({"productId": "LAPTOP-001", "quantity": 1, "customerId": "pg"}),
        )
        .await;
    assert_problem(
        status,
        &problem,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_the_timeout_answers_503_and_a_keyed_retry_is_safe() {
    let Some(db) = TestDatabase::create(4).await else {
        return;
    };
    let store: Arc<dyn StockStore> = Arc::new(db.store.clone());
    seed(store.as_ref()).await;
    let impatient = TestApp::over(
        store.clone(),
        ApiConfig {
            request_timeout: std::time::Duration::from_micros(1),
            ..ApiConfig::default()
        },
    )
    .await;
    let body = json!({"productId": "MOUSE-a-007", "quantity": 1, "customerId": "slow"});
    let key = [("idempotency-key", "timeout-key-1")];
    let response = impatient
        .send(Method::POST, "/order", Some(&body), &key)
        .await;
    assert!(response.headers().contains_key("retry-after"));
    let (status, problem) = super::support::read(response).await;
    assert_problem(status, &problem, StatusCode::SERVICE_UNAVAILABLE, "timeout");
    let patient = TestApp::over(store, ApiConfig::default()).await;
    let (status, placed) = patient
        .call(Method::POST, "/order", Some(&body), &key)
        .await;
    assert!(
        status == StatusCode::CREATED || status == StatusCode::OK,
        "{placed}"
    );
    let (_, list) = patient.get("/api/orders?limit=10").await;
    assert_eq!(
        list["data"]["pagination"]["total"], 1,
        "at most one order for the key"
    );
    db.finish().await;
}
