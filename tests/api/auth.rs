//! API keys: clients see only their own orders; admins see everything and run
//! operations; no key or a wrong key is 401.

use aggregator_http::api::ApiConfig;
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::support::{ADMIN, ALICE, BOB, TestApp, assert_problem, keys};

async fn app() -> TestApp {
    let keys = keys();
    TestApp::start(ApiConfig {
        keys,
        ..ApiConfig::default()
    })
    .await
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

#[tokio::test]
async fn missing_or_wrong_keys_are_refused_and_health_stays_public() {
    let app = app().await;
    let (status, problem) = app.get("/api/orders").await;
    assert_problem(status, &problem, StatusCode::UNAUTHORIZED, "unauthorized");
    let wrong = bearer("not-a-key-at-all-000");
    let (status, problem) = app
        .call(
            Method::GET,
            "/api/orders",
            None,
            &[("authorization", wrong.as_str())],
        )
        .await;
    assert_problem(status, &problem, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("not valid")
    );
    for public in ["/health", "/health/live", "/health/ready", "/openapi.json"] {
        let (status, _) = app.get(public).await;
        assert_eq!(status, StatusCode::OK, "{public}");
    }
    for page in ["/docs", "/docs/", "/docs/swagger-ui.css"] {
        let response = app.send(Method::GET, page, None, &[]).await;
        assert_eq!(response.status(), StatusCode::OK, "{page} needs no key");
    }
    let (status, _) = app.get("/docsx").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "only the docs themselves are open"
    );
    let (status, _) = app.get("/metrics").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "metrics need an admin key"
    );
    let response = app
        .send(Method::GET, "/metrics", None, &[("x-api-key", ADMIN)])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn clients_see_and_cancel_only_their_own_orders() {
    let app = app().await;
    let alice = bearer(ALICE);
    let bob = bearer(BOB);
    let admin = bearer(ADMIN);
    let order = json!({"productId": "MOUSE-a-007", "quantity": 1});
    let (status, placed) = app
        .call(
            Method::POST,
            "/order",
            Some(&order),
            &[("authorization", alice.as_str())],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{placed}");
    assert_eq!(
        placed["data"]["order"]["customerId"], "alice",
        "the key's customer"
    );
    let id = placed["orderId"].as_str().expect("id").to_owned();
    let path = format!("/api/orders/{id}");

    let (status, problem) = app
        .call(Method::GET, &path, None, &[("authorization", bob.as_str())])
        .await;
    assert_problem(status, &problem, StatusCode::NOT_FOUND, "not-found");
    let (status, _) = app
        .call(
            Method::POST,
            &format!("{path}/cancel"),
            None,
            &[("authorization", bob.as_str())],
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "bob cannot cancel alice's order"
    );
    let (_, bobs) = app
        .call(
            Method::GET,
            "/api/orders",
            None,
            &[("authorization", bob.as_str())],
        )
        .await;
    assert_eq!(bobs["data"]["pagination"]["total"], 0);
    let (status, _) = app
        .call(
            Method::GET,
            &path,
            None,
            &[("authorization", alice.as_str())],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .call(
            Method::GET,
            &path,
            None,
            &[("authorization", admin.as_str())],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "admins see everything");

    let as_bob = json!({"productId": "MOUSE-a-007", "quantity": 1, "customerId": "bob"});
    let (status, problem) = app
        .call(
            Method::POST,
            "/order",
            Some(&as_bob),
            &[("authorization", alice.as_str())],
        )
        .await;
    assert_problem(status, &problem, StatusCode::FORBIDDEN, "forbidden");

    let (status, problem) = app
        .call(
            Method::POST,
            "/api/ops/stock-sync",
            None,
            &[("authorization", alice.as_str())],
        )
        .await;
    assert_problem(status, &problem, StatusCode::FORBIDDEN, "forbidden");
    let (status, _) = app
        .call(
            Method::POST,
            "/api/ops/stock-sync",
            None,
            &[("authorization", admin.as_str())],
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _) = app
        .call(
            Method::POST,
            &format!("{path}/cancel"),
            None,
            &[("authorization", alice.as_str())],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "alice cancels her own");
}
