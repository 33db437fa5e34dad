//! The seed's order endpoints: happy paths, idempotency, stock and price rules.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::support::{TestApp, assert_problem, fields};

fn full_order(sku: &str, quantity: i64) -> serde_json::Value {
    json!({
        "customerId": "test-customer",
        "customerEmail": "test@example.com",
        "items": [{"sku": sku, "quantity": quantity}],
        "shippingAddress": {"street": "1 Main St", "city": "Springfield", "state": "IL", "zipCode": "62701", "country": "US"},
        "paymentMethod": "credit_card",
        "notes": "leave at the door"
    })
}

/// What a client written for the seed's original system reads, read the way it reads
/// it: `success` and `orderId` at the top, the order at `.data.order` with `id`,
/// `status` and `orderNumber`, lists at `.data.orders`.
#[derive(serde::Deserialize)]
struct SeedPlaced {
    success: bool,
    #[serde(rename = "orderId")]
    order_id: String,
    data: SeedOrderData,
}

#[derive(serde::Deserialize)]
struct SeedOrderData {
    order: SeedOrder,
}

#[derive(serde::Deserialize)]
struct SeedOrder {
    id: String,
    status: String,
    #[serde(rename = "orderNumber")]
    order_number: String,
}

#[derive(serde::Deserialize)]
struct SeedOne {
    success: bool,
    data: SeedOrderData,
}

#[derive(serde::Deserialize)]
struct SeedList {
    success: bool,
    data: SeedOrders,
}

#[derive(serde::Deserialize)]
struct SeedOrders {
    orders: Vec<SeedOrder>,
}

#[tokio::test]
async fn the_seeds_clients_read_success_order_id_and_the_order_at_data_order() {
    let app = TestApp::open().await;
    let mut placed = Vec::new();
    for (path, body) in [
        (
            "/order",
            json!({"productId": "LAPTOP-001", "quantity": 1, "customerId": "seed"}),
        ),
        (
            "/api/orders",
            json!({"customerId": "seed", "items": [{"sku": "MOUSE-a-007", "quantity": 1}]}),
        ),
    ] {
        let (status, answer) = app.post(path, &body).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        let answer: SeedPlaced = serde_json::from_value(answer).expect("the seed's shape");
        assert!(answer.success);
        assert_eq!(answer.order_id, answer.data.order.id);
        assert_eq!(answer.data.order.status, "reserved");
        assert!(
            answer.data.order.order_number.starts_with("ORD-")
                && answer.data.order.order_number.len() >= 10,
            "{}",
            answer.data.order.order_number
        );
        placed.push(answer.data.order);
    }
    assert_ne!(placed[0].order_number, placed[1].order_number);
    let (_, one) = app.get(&format!("/api/orders/{}", placed[0].id)).await;
    let one: SeedOne = serde_json::from_value(one).expect("the seed's shape");
    assert!(one.success);
    assert_eq!(one.data.order.order_number, placed[0].order_number);
    let (_, list) = app.get("/api/orders").await;
    let list: SeedList = serde_json::from_value(list).expect("the seed's list shape");
    assert!(list.success);
    let mut listed: Vec<&str> = list
        .data
        .orders
        .iter()
        .map(|o| o.order_number.as_str())
        .collect();
    listed.sort_unstable();
    let mut expected: Vec<&str> = placed.iter().map(|o| o.order_number.as_str()).collect();
    expected.sort_unstable();
    assert_eq!(listed, expected);
}

#[tokio::test]
async fn the_seed_one_line_order_reserves_and_answers_success_and_order_id() {
    let app = TestApp::open().await;
    let (status, body) = app
        .post(
            "/order",
            &json!({"productId": "LAPTOP-001", "quantity": 1, "customerId": "test"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["success"], true);
    assert_eq!(body["orderId"], body["data"]["order"]["id"]);
    assert_eq!(body["data"]["order"]["status"], "reserved");
    assert_eq!(body["data"]["order"]["customerId"], "test");
    assert_eq!(
        body["data"]["order"]["items"][0]["allocations"][0]["vendor"],
        "VendorA"
    );
    assert_eq!(body["data"]["order"]["total"]["amount"], "999.99");
}

#[tokio::test]
async fn a_full_order_round_trips_with_every_field_and_can_be_listed_read_and_cancelled() {
    let app = TestApp::open().await;
    let (status, placed) = app.post("/api/orders", &full_order("MOUSE-a-007", 2)).await;
    assert_eq!(status, StatusCode::CREATED, "{placed}");
    let order = &placed["data"]["order"];
    assert_eq!(order["customerEmail"], "test@example.com");
    assert_eq!(order["shippingAddress"]["zipCode"], "62701");
    assert_eq!(order["paymentMethod"], "credit_card");
    assert_eq!(order["notes"], "leave at the door");
    assert_eq!(
        order["items"][0]["allocations"][0]["unitPrice"]["minorUnits"],
        2_999
    );
    assert_eq!(order["total"]["minorUnits"], 5_998);
    let id = placed["orderId"].as_str().expect("id");

    let (status, fetched) = app.get(&format!("/api/orders/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched["data"]["order"]["id"], id);

    app.post(
        "/order",
        &json!({"productId": "LAPTOP-001", "quantity": 1, "customerId": "other"}),
    )
    .await;
    let (status, list) = app.get("/api/orders?page=1&limit=1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["data"]["orders"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        list["data"]["pagination"],
        json!({"page": 1, "limit": 1, "total": 2, "pages": 2})
    );
    let (_, reserved) = app.get("/api/orders?status=reserved&limit=100").await;
    assert_eq!(reserved["data"]["pagination"]["total"], 2);

    let (status, cancelled) = app
        .post(
            &format!("/api/orders/{id}/cancel"),
            &json!({"reason": "changed my mind"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["data"]["order"]["status"], "cancelled");
    let last = cancelled["data"]["order"]["events"]
        .as_array()
        .and_then(|e| e.last())
        .cloned();
    assert_eq!(
        last.map(|e| e["reason"].clone()),
        Some(json!("changed my mind"))
    );
    // Cancel again, without a body: the same answer.
    let (status, again) = app
        .call(Method::POST, &format!("/api/orders/{id}/cancel"), None, &[])
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(
        again["data"]["order"]["version"],
        cancelled["data"]["order"]["version"]
    );
    let (_, cancelled_list) = app.get("/api/orders?status=cancelled").await;
    assert_eq!(cancelled_list["data"]["pagination"]["total"], 1);
}

#[tokio::test]
async fn an_idempotency_key_replays_the_same_answer_and_refuses_another_body() {
    let app = TestApp::open().await;
    let body = json!({"productId": "LAPTOP-001", "quantity": 2, "customerId": "test"});
    let key = [("idempotency-key", "order-key-1")];
    let (first_status, first) = app.call(Method::POST, "/order", Some(&body), &key).await;
    assert_eq!(first_status, StatusCode::CREATED);
    let (again_status, again) = app.call(Method::POST, "/order", Some(&body), &key).await;
    assert_eq!(again_status, StatusCode::OK);
    assert_eq!(again["orderId"], first["orderId"]);
    assert_eq!(again["data"]["replayed"], true);
    let other = json!({"productId": "LAPTOP-001", "quantity": 3, "customerId": "test"});
    let (status, problem) = app.call(Method::POST, "/order", Some(&other), &key).await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency-key-reused",
    );
    let (_, list) = app.get("/api/orders").await;
    assert_eq!(
        list["data"]["pagination"]["total"], 1,
        "one order for three requests"
    );
}

#[tokio::test]
async fn short_stock_is_a_409_naming_each_item_and_what_is_available() {
    let app = TestApp::open().await;
    let (status, problem) = app
        .post(
            "/api/orders",
            &json!({"customerId": "c", "items": [{"sku": "LAPTOP-001", "quantity": 9}, {"sku": "MOUSE-a-007", "quantity": 1}]}),
        )
        .await;
    assert_problem(status, &problem, StatusCode::CONFLICT, "insufficient-stock");
    assert_eq!(
        problem["short"],
        json!([{"item": "LAPTOP-001", "requested": 9, "available": 8}])
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("LAPTOP-001")
    );
    let (_, list) = app.get("/api/orders").await;
    assert_eq!(
        list["data"]["pagination"]["total"], 0,
        "nothing half-written"
    );
    let (_, product) = app.get("/api/products/MOUSE-007").await;
    let product = product["data"]["product"].clone();
    assert_eq!(product["available"], 100, "the mouse was not reserved");
}

#[tokio::test]
async fn a_quoted_price_must_be_the_catalog_price() {
    let app = TestApp::open().await;
    let (status, problem) = app
        .post(
            "/api/orders",
            &json!({"customerId": "c", "items": [{"sku": "MOUSE-a-007", "quantity": 1, "unitPrice": 19.99}]}),
        )
        .await;
    assert_problem(status, &problem, StatusCode::CONFLICT, "price-mismatch");
    assert_eq!(fields(&problem), ["items[0].unitPrice"]);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("29.99"),
        "{problem}"
    );
    let (status, placed) = app
        .post(
            "/api/orders",
            &json!({"customerId": "c", "items": [{"sku": "MOUSE-a-007", "quantity": 1, "unitPrice": 29.99}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{placed}");
    // For a product, any current vendor price matches; the order shows what is charged.
    let (status, placed) = app
        .post(
            "/api/orders",
            &json!({"customerId": "c", "items": [{"sku": "LAPTOP-001", "quantity": 1, "unitPrice": 989.99}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{placed}");
}

#[tokio::test]
async fn the_seed_race_never_oversells() {
    let app = TestApp::open().await;
    let mut racers = Vec::new();
    for n in 0..40 {
        let http = app.http.clone();
        let url = format!("{}/order", app.base);
        racers.push(tokio::spawn(async move {
            http.post(url)
                .json(&json!({"productId": "LAPTOP-001", "quantity": 1, "customerId": format!("racer-{n}")}))
                .send()
                .await
                .map(|r| r.status())
        }));
    }
    let mut created = 0;
    let mut refused = 0;
    for racer in racers {
        match racer.await.expect("joined").expect("sent") {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => refused += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((created, refused), (8, 32), "5 + 3 laptops, no more");
}
