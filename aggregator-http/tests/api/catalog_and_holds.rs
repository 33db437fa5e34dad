//! Products, vendors and stock holds.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::support::{TestApp, assert_problem};

#[tokio::test]
async fn products_and_vendors_show_availability_freshness_and_health() {
    let app = TestApp::open().await;
    let (status, list) = app.get("/api/products?limit=1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        list["pagination"],
        json!({"page": 1, "limit": 1, "total": 2, "pages": 2})
    );
    assert_eq!(list["products"][0]["productId"], "LAPTOP-001");
    let (_, second) = app.get("/api/products?page=2&limit=1").await;
    assert_eq!(second["products"][0]["productId"], "MOUSE-007");
    let (status, laptop) = app.get("/api/products/LAPTOP-001").await;
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
    assert_eq!(vendors["vendors"][0]["id"], "VendorA");
    assert_eq!(vendors["vendors"][0]["health"], "healthy");
    assert!(vendors["vendors"][0]["lastGoodSync"].is_string());
    app.post(
        "/order",
        &json!({"productId": "LAPTOP-001", "quantity": 2, "customerId": "c"}),
    )
    .await;
    let (_, laptop) = app.get("/api/products/LAPTOP-001").await;
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
    assert_eq!(created["status"], "active");
    let id = created["id"].as_str().expect("id").to_owned();
    let (_, laptop) = app.get("/api/products/LAPTOP-001").await;
    assert_eq!(laptop["available"], 4, "held units are not sellable");
    let (status, fetched) = app.get(&format!("/api/holds/{id}")).await;
    assert_eq!(
        (status, fetched["id"].as_str()),
        (StatusCode::OK, Some(id.as_str()))
    );
    let (status, extended) = app
        .post(
            &format!("/api/holds/{id}/extend"),
            &json!({"ttlSeconds": 900}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{extended}");
    assert!(extended["expiresAt"].as_str() > created["expiresAt"].as_str());
    let (status, ordered) = app
        .post(
            &format!("/api/holds/{id}/order"),
            &json!({"customerEmail": "c@example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ordered}");
    assert_eq!(ordered["order"]["fromHold"], id.as_str());
    assert_eq!(ordered["order"]["customerEmail"], "c@example.com");
    let (status, again) = app
        .call(Method::POST, &format!("/api/holds/{id}/order"), None, &[])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["orderId"], ordered["orderId"], "the same order again");
    let (_, laptop) = app.get("/api/products/LAPTOP-001").await;
    assert_eq!(
        laptop["available"], 4,
        "the order took over the hold's units"
    );

    let (_, second) = app.post("/api/holds", &hold).await;
    let second_id = second["id"].as_str().expect("id").to_owned();
    let (status, released) = app
        .call(
            Method::DELETE,
            &format!("/api/holds/{second_id}"),
            None,
            &[],
        )
        .await;
    assert_eq!(
        (status, released["status"].as_str()),
        (StatusCode::OK, Some("released"))
    );
    let (_, laptop) = app.get("/api/products/LAPTOP-001").await;
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
    assert_eq!(again["id"], first["id"]);
    let (_, laptop) = app.get("/api/products/LAPTOP-001").await;
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
