//! `/api/webhooks`: clients register endpoints for their own customer, admins for
//! anyone or everyone; destinations inside the network are refused unless allowed; the
//! secret is shown once; others' endpoints look missing.

use aggregator_http::api::ApiConfig;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::support::{ADMIN, ALICE, BOB, TestApp, assert_problem, keys};
use super::test_cache::TestCache;

async fn app(allow_private: bool) -> TestApp {
    let keys = keys();
    TestApp::start(ApiConfig {
        keys,
        webhook_allow_private: allow_private,
        ..ApiConfig::default()
    })
    .await
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<&Value>,
    key: &str,
) -> (StatusCode, Value) {
    app.call(method, path, body, &[("x-api-key", key)]).await
}

#[tokio::test]
async fn destinations_inside_the_network_are_refused_unless_the_operator_allows_them() {
    let app = app(false).await;
    for url in [
        "http://127.0.0.1:8080/hooks",
        "http://localhost/hooks",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hooks",
        "http://10.0.0.7/hooks",
    ] {
        let (status, problem) = call(
            &app,
            Method::POST,
            "/api/webhooks",
            Some(&json!({"url": url})),
            ALICE,
        )
        .await;
        assert_problem(status, &problem, StatusCode::BAD_REQUEST, "validation");
        assert!(
            problem.to_string().contains("--webhook-allow-private"),
            "{url}: {problem}"
        );
    }
    let (_, list) = call(&app, Method::GET, "/api/webhooks", None, ADMIN).await;
    assert_eq!(list["data"], json!([]), "nothing was registered");
}

#[tokio::test]
async fn endpoints_are_registered_per_customer_and_managed_by_their_owner() {
    let app = app(true).await;
    let (status, created) = call(
        &app,
        Method::POST,
        "/api/webhooks",
        Some(&json!({"url": "http://127.0.0.1:9/hooks", "events": ["order.confirmed", "order.failed"]})),
        ALICE,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let hook = &created["data"];
    assert_eq!(hook["customerId"], "alice");
    assert_eq!(hook["events"], json!(["order.confirmed", "order.failed"]));
    assert_eq!(hook["enabled"], true);
    let secret = hook["secret"].as_str().expect("the secret, shown once");
    assert!(
        secret.starts_with("whsec_") && secret.len() == 70,
        "{secret}"
    );
    let id = hook["id"].as_str().expect("id").to_owned();
    let path = format!("/api/webhooks/{id}");

    let (status, read) = call(&app, Method::GET, &path, None, ALICE).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        read["data"].get("secret").is_none(),
        "never shown again: {read}"
    );
    let (status, problem) = call(&app, Method::GET, &path, None, BOB).await;
    assert_problem(status, &problem, StatusCode::NOT_FOUND, "not-found");
    let (status, _) = call(&app, Method::DELETE, &path, None, BOB).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "bob cannot remove alice's");
    let (_, bobs) = call(&app, Method::GET, "/api/webhooks", None, BOB).await;
    assert_eq!(bobs["data"], json!([]));

    let (status, problem) = call(
        &app,
        Method::POST,
        "/api/webhooks",
        Some(&json!({"url": "http://127.0.0.1:9/hooks", "customerId": "bob"})),
        ALICE,
    )
    .await;
    assert_problem(status, &problem, StatusCode::FORBIDDEN, "forbidden");
    let (status, global) = call(
        &app,
        Method::POST,
        "/api/webhooks",
        Some(&json!({"url": "https://127.0.0.1:9/all", "secret": "my-own-secret-0123456789"})),
        ADMIN,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{global}");
    assert_eq!(
        global["data"]["customerId"],
        Value::Null,
        "every customer's"
    );
    assert_eq!(global["data"]["secret"], "my-own-secret-0123456789");
    let (_, all) = call(&app, Method::GET, "/api/webhooks", None, ADMIN).await;
    assert_eq!(all["data"].as_array().map(Vec::len), Some(2));
    let (_, alices) = call(&app, Method::GET, "/api/webhooks", None, ALICE).await;
    assert_eq!(
        alices["data"].as_array().map(Vec::len),
        Some(1),
        "only her own"
    );

    let (status, enabled) = call(&app, Method::POST, &format!("{path}/enable"), None, ALICE).await;
    assert_eq!(status, StatusCode::OK, "{enabled}");
    let (status, _) = call(&app, Method::DELETE, &path, None, ALICE).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(&app, Method::GET, &path, None, ALICE).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_registrations_name_the_field() {
    let app = app(true).await;
    for (body, field) in [
        (json!({"url": "ftp://127.0.0.1/x"}), "url"),
        (json!({"url": "http://user:pw@127.0.0.1/x"}), "url"),
        (
            json!({"url": "http://127.0.0.1/x", "secret": "short"}),
            "secret",
        ),
        (
            json!({"url": "http://127.0.0.1/x", "events": ["order.shipped"]}),
            "events[0]",
        ),
        (
            json!({"url": "http://127.0.0.1/x", "events": ["order.failed", "order.failed"]}),
            "events",
        ),
        (
            json!({"url": "http://127.0.0.1/x", "colour": "red"}),
            "colour",
        ),
    ] {
        let (status, problem) = call(&app, Method::POST, "/api/webhooks", Some(&body), ALICE).await;
        assert_problem(status, &problem, StatusCode::BAD_REQUEST, "validation");
        assert!(problem.to_string().contains(field), "{body}: {problem}");
    }
    let (status, problem) = call(&app, Method::GET, "/api/webhooks/not-a-uuid", None, ALICE).await;
    assert_problem(status, &problem, StatusCode::BAD_REQUEST, "validation");
}

/// The answer kept for a keyed registration holds no secret (nor the Idempotency-Key);
/// a retry still gets the secret, read again from the store.
#[tokio::test]
async fn a_keyed_registration_keeps_no_secret_in_the_cache_and_its_replay_shows_it() {
    let cache = std::sync::Arc::new(TestCache::default());
    let store: std::sync::Arc<dyn aggregator_core::traits::StockStore> =
        std::sync::Arc::new(aggregator_core::memory::InMemoryStockStore::new());
    super::support::seed(store.as_ref()).await;
    let app = TestApp::over_with_cache(
        store,
        cache.clone(),
        ApiConfig {
            keys: keys(),
            webhook_allow_private: true,
            ..ApiConfig::default()
        },
    )
    .await;
    let body = json!({"url": "http://127.0.0.1:9/hooks"});
    let headers = [
        ("x-api-key", ALICE),
        ("idempotency-key", "register-webhook-once"),
    ];
    let (status, first) = app
        .call(Method::POST, "/api/webhooks", Some(&body), &headers)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let secret = first["data"]["secret"].as_str().expect("the secret, once");
    let response = app
        .send(Method::POST, "/api/webhooks", Some(&body), &headers)
        .await;
    assert_eq!(response.headers()["idempotent-replayed"], "true");
    let (status, again) = super::support::read(response).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        again["data"]["id"], first["data"]["id"],
        "the same endpoint"
    );
    assert_eq!(
        again["data"]["secret"], secret,
        "its secret, from the store"
    );
    let written = cache.written();
    assert!(!written.is_empty(), "the answer was kept");
    for value in written {
        let text = String::from_utf8_lossy(&value);
        assert!(!text.contains(secret), "a secret in the cache: {text}");
        assert!(
            !text.contains("register-webhook-once"),
            "the Idempotency-Key in the cache: {text}"
        );
    }
}
