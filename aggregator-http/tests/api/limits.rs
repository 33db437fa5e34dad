//! Body size, rate limits and the request id.

use std::time::Duration;

use aggregator_core::traits::RateLimit;
use aggregator_http::api::ApiConfig;
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::support::{TestApp, assert_problem, read};

#[tokio::test]
async fn an_oversized_body_is_413_and_writes_nothing() {
    let app = TestApp::open().await;
    let notes = "x".repeat(70 * 1024);
    let body = json!({"customerId": "c", "items": [{"sku": "MOUSE-a-007", "quantity": 1}], "notes": notes});
    let (status, problem) = app.post("/api/orders", &body).await;
    assert_problem(
        status,
        &problem,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload-too-large",
    );
    let keyed = app
        .send(
            Method::POST,
            "/api/holds",
            Some(&body),
            &[("idempotency-key", "big-1")],
        )
        .await;
    let (status, problem) = read(keyed).await;
    assert_problem(
        status,
        &problem,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload-too-large",
    );
    let (_, list) = app.get("/api/orders").await;
    assert_eq!(list["pagination"]["total"], 0);
}

#[tokio::test]
async fn past_the_rate_limit_answers_429_with_retry_after() {
    let app = TestApp::start(ApiConfig {
        rate_limit: RateLimit {
            max_requests: 5,
            window: Duration::from_secs(30),
        },
        ..ApiConfig::default()
    })
    .await;
    for _ in 0..5 {
        let (status, _) = app.get("/api/products").await;
        assert_eq!(status, StatusCode::OK);
    }
    let response = app.send(Method::GET, "/api/products", None, &[]).await;
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .expect("text")
        .parse()
        .expect("seconds");
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    let (status, problem) = read(response).await;
    assert_problem(
        status,
        &problem,
        StatusCode::TOO_MANY_REQUESTS,
        "rate-limited",
    );
    let (status, _) = app.get("/health").await;
    assert_eq!(status, StatusCode::OK, "health is never rate limited");
}
