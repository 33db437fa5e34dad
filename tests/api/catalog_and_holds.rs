//! Products, vendors and stock holds.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::support::{TestApp, assert_problem};
use super::test_cache::TestCache;

#[tokio::test]
async fn products_and_vendors_show_availability_freshness_and_health() {
    let app = TestApp::open().await;
    let (status, list) = app.get("/api/products?limit=1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        list["data"]["pagination"],
        json!({"page": 1, "limit": 1, "total": 2, "pages": 2})
    );
    assert_eq!(list["data"]["products"][0]["productId"], "LAPTOP-001");
    let (_, second) = app.get("/api/products?page=2&limit=1").await;
    assert_eq!(second["data"]["products"][0]["productId"], "MOUSE-007");
    let (status, laptop) = app.get("/api/products/LAPTOP-001").await;
    let laptop = laptop["data"]["product"].clone();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(laptop["available"], 8);
    let vendors = laptop["vendors"].as_array().expect("vendors");
    assert_eq!(vendors.len(), 2);
    assert!(
        vendors
            .iter()
            .all(|v| v["fresh"] == true && v["health"] == "healthy")
    );
    assert_eq!(vendors[0]["price"]["amount"], "999.99");
    let (status, vendors) = app.get("/api/vendors").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(vendors["data"]["vendors"][0]["id"], "VendorA");
    assert_eq!(vendors["data"]["vendors"][0]["health"], "healthy");
    assert!(vendors["data"]["vendors"][0]["lastGoodSync"].is_string());
    app.post(
        "/order",
        &json!({"productId": "LAPTOP-001", "quantity": 2, "customerId": "c"}),
    )
    .await;
    let (_, laptop) = app.get("/api/products/LAPTOP-001").await;
    let laptop = laptop["data"]["product"].clone();
    assert_eq!(
        laptop["available"], 6,
        "a placement is seen at once (cache invalidated)"
    );
}

#[tokio::test]
async fn holds_are_created_extended_ordered_and_released() {
    let app = TestApp::open().await;
    let hold = json!({"customerId": "c", "items": [{"sku": "LAPTOP-001", "quantity": 4}], "ttlSeconds": 300});
    let (status, created) = app.post("/api/holds", &hold).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["data"]["hold"]["status"], "active");
    let id = created["data"]["hold"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (_, laptop) = app.get("/api/products/LAPTOP-001").await;
    let laptop = laptop["data"]["product"].clone();
    assert_eq!(laptop["available"], 4, "held units are not sellable");
    let (status, fetched) = app.get(&format!("/api/holds/{id}")).await;
    assert_eq!(
        (status, fetched["data"]["hold"]["id"].as_str()),
        (StatusCode::OK, Some(id.as_str()))
    );
    let (status, extended) = app
        .post(
            &format!("/api/holds/{id}/extend"),
            &json!({"ttlSeconds": 900}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{extended}");
    assert!(
        extended["data"]["hold"]["expiresAt"].as_str()
            > created["data"]["hold"]["expiresAt"].as_str()
    );
    let (status, ordered) = app
        .post(
            &format!("/api/holds/{id}/order"),
            &json!({"customerEmail": "c@example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ordered}");
    assert_eq!(ordered["data"]["order"]["fromHold"], id.as_str());
    assert_eq!(ordered["data"]["order"]["customerEmail"], "c@example.com");
    let (status, again) = app
        .call(Method::POST, &format!("/api/holds/{id}/order"), None, &[])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["orderId"], ordered["orderId"], "the same order again");
    let (_, laptop) = app.get("/api/products/LAPTOP-001").await;
    let laptop = laptop["data"]["product"].clone();
    assert_eq!(
        laptop["available"], 4,
        "the order took over the hold's units"
    );

    let (_, second) = app.post("/api/holds", &hold).await;
    let second_id = second["data"]["hold"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (status, released) = app
        .call(
            Method::DELETE,
            &format!("/api/holds/{second_id}"),
            None,
            &[],
        )
        .await;
    assert_eq!(
        (status, released["data"]["hold"]["status"].as_str()),
        (StatusCode::OK, Some("released"))
    );
    let (_, laptop) = app.get("/api/products/LAPTOP-001").await;
    let laptop = laptop["data"]["product"].clone();
    assert_eq!(laptop["available"], 4);
    let (status, problem) = app
        .post(
            &format!("/api/holds/{second_id}/extend"),
            &json!({"ttlSeconds": 60}),
        )
        .await;
    assert_problem(status, &problem, StatusCode::CONFLICT, "conflict");
    let too_many = json!({"customerId": "c", "items": [{"sku": "LAPTOP-001", "quantity": 5}], "ttlSeconds": 60});
    let (status, problem) = app.post("/api/holds", &too_many).await;
    assert_problem(status, &problem, StatusCode::CONFLICT, "insufficient-stock");
}

#[tokio::test]
async fn a_repeated_idempotency_key_replays_a_hold_instead_of_holding_twice() {
    let app = TestApp::open().await;
    let hold = json!({"customerId": "c", "items": [{"sku": "LAPTOP-001", "quantity": 2}], "ttlSeconds": 300});
    let key = [("idempotency-key", "hold-key-1")];
    let first = app
        .send(Method::POST, "/api/holds", Some(&hold), &key)
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: serde_json::Value = first.json().await.expect("json");
    let again = app
        .send(Method::POST, "/api/holds", Some(&hold), &key)
        .await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: serde_json::Value = again.json().await.expect("json");
    assert_eq!(again["data"]["hold"]["id"], first["data"]["hold"]["id"]);
    let (_, laptop) = app.get("/api/products/LAPTOP-001").await;
    let laptop = laptop["data"]["product"].clone();
    assert_eq!(laptop["available"], 6, "held once");
    let other = json!({"customerId": "c", "items": [{"sku": "LAPTOP-001", "quantity": 1}], "ttlSeconds": 300});
    let (status, problem) = app
        .call(Method::POST, "/api/holds", Some(&other), &key)
        .await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency-key-reused",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_keyed_requests_in_flight_at_once_hold_only_once() {
    let app = TestApp::with_cache(std::sync::Arc::new(TestCache::slow_reads(
        std::time::Duration::from_millis(200),
    )))
    .await;
    let (_, before) = app.get("/api/products/LAPTOP-001").await;
    let before = before["data"]["product"].clone();
    let hold = json!({"customerId": "c", "items": [{"sku": "LAPTOP-001", "quantity": 1}], "ttlSeconds": 300});
    let racers: Vec<_> = (0..30)
        .map(|_| {
            let (http, base, hold) = (app.http.clone(), app.base.clone(), hold.clone());
            tokio::spawn(async move {
                http.post(format!("{base}/api/holds"))
                    .header("idempotency-key", "same-hold-key")
                    .json(&hold)
                    .send()
                    .await
                    .expect("sent")
            })
        })
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    for racer in racers {
        let response = racer.await.expect("joined");
        match response.status() {
            StatusCode::CREATED => {
                let body: serde_json::Value = response.json().await.expect("json");
                ids.insert(body["data"]["hold"]["id"].as_str().expect("id").to_owned());
            }
            StatusCode::CONFLICT => {
                assert_eq!(response.headers()["retry-after"], "1");
                let body: serde_json::Value = response.json().await.expect("json");
                assert!(
                    body["type"]
                        .as_str()
                        .is_some_and(|t| t.ends_with("request-in-progress")),
                    "{body}"
                );
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(ids.len(), 1, "every answer names the one hold: {ids:?}");
    let (_, after) = app.get("/api/products/LAPTOP-001").await;
    let after = after["data"]["product"].clone();
    assert_eq!(
        before["available"].as_i64().expect("n") - after["available"].as_i64().expect("n"),
        1,
        "one unit held, once"
    );
}

/// A keyed hold that commits after its request timed out (the client saw a 503) keeps
/// its answer under its key: a retry, even after the claim on the key would have run
/// out, gets that hold instead of holding a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyed_hold_that_commits_after_its_timeout_is_replayed_not_held_twice() {
    let store: std::sync::Arc<dyn aggregator_core::traits::StockStore> =
        std::sync::Arc::new(aggregator_core::memory::InMemoryStockStore::new());
    super::support::seed(store.as_ref()).await;
    let app = TestApp::over_with_cache(
        store,
        std::sync::Arc::new(TestCache::slow_invalidations(
            std::time::Duration::from_millis(600),
        )),
        aggregator_http::api::ApiConfig {
            request_timeout: std::time::Duration::from_millis(200),
            ..aggregator_http::api::ApiConfig::default()
        },
    )
    .await;
    let (_, before) = app.get("/api/products/MOUSE-007").await;
    let before = before["data"]["product"]["available"].as_i64().expect("n");
    let hold = json!({"customerId": "c", "items": [{"sku": "MOUSE-007", "quantity": 1}], "ttlSeconds": 300});
    let key = [("idempotency-key", "slow-hold-key")];
    let (status, problem) = app
        .call(Method::POST, "/api/holds", Some(&hold), &key)
        .await;
    assert_problem(status, &problem, StatusCode::SERVICE_UNAVAILABLE, "timeout");
    // Past the request timeout plus the claim's slack: the claim of a request that was
    // simply dropped would have run out by now.
    tokio::time::sleep(std::time::Duration::from_millis(5_600)).await;
    let response = app
        .send(Method::POST, "/api/holds", Some(&hold), &key)
        .await;
    assert_eq!(response.headers()["idempotent-replayed"], "true");
    let (status, replayed) = super::support::read(response).await;
    assert_eq!(status, StatusCode::CREATED, "{replayed}");
    let (_, after) = app.get("/api/products/MOUSE-007").await;
    let after = after["data"]["product"]["available"].as_i64().expect("n");
    assert_eq!(before - after, 1, "held once, not twice");
}
