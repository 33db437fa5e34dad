//! Bad input of every kind: a clear 4xx problem naming the field, never a 500, and
//! nothing written.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::support::{TestApp, assert_problem, fields, read};

/// One bad request: what to send, and the status, problem kind and field expected.
struct Case {
    name: &'static str,
    method: Method,
    path: String,
    body: Option<String>,
    content_type: &'static str,
    status: StatusCode,
    kind: &'static str,
    field: Option<&'static str>,
}

fn case(
    name: &'static str,
    path: &str,
    body: &str,
    status: StatusCode,
    kind: &'static str,
    field: Option<&'static str>,
) -> Case {
    Case {
        name,
        method: Method::POST,
        path: path.to_owned(),
        body: Some(body.to_owned()),
        content_type: "application/json",
        status,
        kind,
        field,
    }
}

fn items(items: &str) -> String {
    format!(r#"{{"customerId": "c", "items": {items}}}"#)
}

#[tokio::test]
async fn every_bad_input_gets_a_clear_problem_and_writes_nothing() {
    let app = TestApp::open().await;
    let bad = StatusCode::BAD_REQUEST;
    let thousand: Vec<serde_json::Value> = (0..1_000)
        .map(|_| json!({"sku": "MOUSE-a-007", "quantity": 1}))
        .collect();
    let thousand = serde_json::to_string(&thousand).expect("json");
    let some_order = "/api/orders/01a22c4d-58dd-70dc-8c71-52b1c87236c2/cancel";
    let mut cases = vec![
        // serde fills a struct from an array by position; a body must be an object.
        case(
            "an array for an optional body",
            some_order,
            "[null]",
            bad,
            "validation",
            Some("body"),
        ),
        case(
            "an array for the stock-sync body",
            "/api/ops/stock-sync",
            "[null]",
            bad,
            "validation",
            Some("body"),
        ),
        case(
            "an order as an array, field by field",
            "/api/orders",
            r#"["c", null, [{"sku": "MOUSE-a-007", "quantity": 1}]]"#,
            bad,
            "validation",
            Some("body"),
        ),
        case(
            "a number for a body",
            "/api/holds",
            "42",
            bad,
            "validation",
            Some("body"),
        ),
        case(
            "malformed JSON",
            "/api/orders",
            r#"{"customerId": "c", "items": [}"#,
            bad,
            "malformed-json",
            None,
        ),
        case(
            "trailing garbage",
            "/api/orders",
            r#"{"customerId": "c", "items": []} x"#,
            bad,
            "malformed-json",
            None,
        ),
        case(
            "empty object",
            "/api/orders",
            "{}",
            bad,
            "validation",
            Some("items"),
        ),
        case(
            "wrong type for items",
            "/api/orders",
            &items(r#""LAPTOP-001""#),
            bad,
            "validation",
            Some("items"),
        ),
        case(
            "wrong type for quantity",
            "/api/orders",
            &items(r#"[{"sku": "LAPTOP-001", "quantity": "one"}]"#),
            bad,
            "validation",
            Some("items[0].quantity"),
        ),
        case(
            "missing quantity",
            "/api/orders",
            &items(r#"[{"sku": "LAPTOP-001"}]"#),
            bad,
            "validation",
            Some("items[0].quantity"),
        ),
        case(
            "missing sku",
            "/api/orders",
            &items(r#"[{"quantity": 1}]"#),
            bad,
            "validation",
            Some("items[0].sku"),
        ),
        case(
            "quantity 0",
            "/api/orders",
            &items(r#"[{"sku": "LAPTOP-001", "quantity": 0}]"#),
            bad,
            "validation",
            Some("items[0].quantity"),
        ),
        case(
            "negative quantity",
            "/api/orders",
            &items(r#"[{"sku": "LAPTOP-001", "quantity": -1}]"#),
            bad,
            "validation",
            Some("items[0].quantity"),
        ),
        case(
            "quantity 10^9",
            "/api/orders",
            &items(r#"[{"sku": "LAPTOP-001", "quantity": 1000000000}]"#),
            bad,
            "validation",
            Some("items[0].quantity"),
        ),
        case(
            "non-integer quantity",
            "/api/orders",
            &items(r#"[{"sku": "LAPTOP-001", "quantity": 1.5}]"#),
            bad,
            "validation",
            Some("items[0].quantity"),
        ),
        case(
            "quantity beyond i64",
            "/api/orders",
            &items(r#"[{"sku": "LAPTOP-001", "quantity": 1e300}]"#),
            bad,
            "validation",
            Some("items[0].quantity"),
        ),
        case(
            "unknown sku",
            "/api/orders",
            &items(r#"[{"sku": "NOPE-404", "quantity": 1}]"#),
            bad,
            "validation",
            Some("items[0].sku"),
        ),
        case(
            "malformed sku",
            "/api/orders",
            &items(r#"[{"sku": "bad sku!", "quantity": 1}]"#),
            bad,
            "validation",
            Some("items[0].sku"),
        ),
        case(
            "empty items",
            "/api/orders",
            &items("[]"),
            bad,
            "validation",
            Some("items"),
        ),
        case(
            "1,000 items",
            "/api/orders",
            &items(&thousand),
            bad,
            "validation",
            Some("items"),
        ),
        case(
            "unknown field",
            "/api/orders",
            r#"{"customerId": "c", "items": [], "coupon": "FREE"}"#,
            bad,
            "validation",
            Some("coupon"),
        ),
        case(
            "bad email",
            "/api/orders",
            r#"{"customerId": "c", "customerEmail": "not-an-email", "items": [{"sku": "MOUSE-a-007", "quantity": 1}]}"#,
            bad,
            "validation",
            Some("customerEmail"),
        ),
        case(
            "blank street",
            "/api/orders",
            r#"{"customerId": "c", "items": [{"sku": "MOUSE-a-007", "quantity": 1}], "shippingAddress": {"street": " ", "city": "X", "zipCode": "1", "country": "US"}}"#,
            bad,
            "validation",
            Some("shippingAddress.street"),
        ),
        case(
            "missing customer",
            "/api/orders",
            r#"{"items": [{"sku": "MOUSE-a-007", "quantity": 1}]}"#,
            bad,
            "validation",
            Some("customerId"),
        ),
        case(
            "bad customer id",
            "/api/orders",
            r#"{"customerId": "has space", "items": [{"sku": "MOUSE-a-007", "quantity": 1}]}"#,
            bad,
            "validation",
            Some("customerId"),
        ),
        case(
            "negative unit price",
            "/api/orders",
            &items(r#"[{"sku": "MOUSE-a-007", "quantity": 1, "unitPrice": -1}]"#),
            bad,
            "validation",
            Some("items[0].unitPrice"),
        ),
        case(
            "seed order: quantity 0",
            "/order",
            r#"{"productId": "LAPTOP-001", "quantity": 0, "customerId": "c"}"#,
            bad,
            "validation",
            Some("quantity"),
        ),
        case(
            "seed order: unknown product",
            "/order",
            r#"{"productId": "NOPE-1", "quantity": 1, "customerId": "c"}"#,
            bad,
            "validation",
            Some("productId"),
        ),
        case(
            "seed order: missing productId",
            "/order",
            r#"{"quantity": 1, "customerId": "c"}"#,
            bad,
            "validation",
            Some("productId"),
        ),
        case(
            "no body",
            "/api/orders",
            "",
            bad,
            "validation",
            Some("body"),
        ),
        case(
            "JSON null body",
            "/api/orders",
            "null",
            bad,
            "validation",
            Some("body"),
        ),
        case(
            "hold: ttl 0",
            "/api/holds",
            r#"{"customerId": "c", "items": [{"sku": "MOUSE-a-007", "quantity": 1}], "ttlSeconds": 0}"#,
            bad,
            "validation",
            Some("ttlSeconds"),
        ),
        case(
            "hold: ttl too long",
            "/api/holds",
            r#"{"customerId": "c", "items": [{"sku": "MOUSE-a-007", "quantity": 1}], "ttlSeconds": 999999}"#,
            bad,
            "validation",
            Some("ttl"),
        ),
        case(
            "cancel: reason too long",
            "/api/orders/01a211db-cf0d-71ed-bf5a-7f2a6038e505/cancel",
            &format!(r#"{{"reason": "{}"}}"#, "x".repeat(501)),
            bad,
            "validation",
            Some("reason"),
        ),
    ];
    let mut wrong_type = case(
        "wrong content type",
        "/api/orders",
        r#"{"customerId": "c"}"#,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        None,
    );
    wrong_type.content_type = "text/plain";
    cases.push(wrong_type);
    let mut form = case(
        "form body",
        "/order",
        "productId=LAPTOP-001&quantity=1",
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        None,
    );
    form.content_type = "application/x-www-form-urlencoded";
    cases.push(form);
    for (name, path, status, kind, field) in [
        (
            "bad UUID",
            "/api/orders/not-a-uuid",
            bad,
            "validation",
            Some("id"),
        ),
        (
            "unknown order",
            "/api/orders/01a211db-cf0d-71ed-bf5a-7f2a6038e505",
            StatusCode::NOT_FOUND,
            "not-found",
            None,
        ),
        (
            "page 0",
            "/api/orders?page=0",
            bad,
            "validation",
            Some("page"),
        ),
        (
            "page not a number",
            "/api/orders?page=two",
            bad,
            "validation",
            Some("page"),
        ),
        (
            "page too far",
            "/api/orders?page=99999999999",
            bad,
            "validation",
            Some("page"),
        ),
        (
            "limit 0",
            "/api/orders?limit=0",
            bad,
            "validation",
            Some("limit"),
        ),
        (
            "limit 101",
            "/api/orders?limit=101",
            bad,
            "validation",
            Some("limit"),
        ),
        (
            "limit negative",
            "/api/products?limit=-5",
            bad,
            "validation",
            Some("limit"),
        ),
        (
            "unknown status",
            "/api/orders?status=shipped",
            bad,
            "validation",
            Some("status"),
        ),
        (
            "bad product id",
            "/api/products/bad%20id",
            bad,
            "validation",
            Some("productId"),
        ),
        (
            "unknown product",
            "/api/products/NOPE-1",
            StatusCode::NOT_FOUND,
            "not-found",
            None,
        ),
        (
            "bad hold id",
            "/api/holds/xyz",
            bad,
            "validation",
            Some("id"),
        ),
        (
            "unknown hold",
            "/api/holds/01a211db-cf0d-71ed-bf5a-7f2a6038e505",
            StatusCode::NOT_FOUND,
            "not-found",
            None,
        ),
        (
            "unknown queue",
            "/api/ops/dlq/nope",
            bad,
            "validation",
            Some("queue"),
        ),
        (
            "unknown endpoint",
            "/api/nothing",
            StatusCode::NOT_FOUND,
            "not-found",
            None,
        ),
    ] {
        cases.push(Case {
            name,
            method: Method::GET,
            path: path.to_owned(),
            body: None,
            content_type: "application/json",
            status,
            kind,
            field,
        });
    }
    cases.push(Case {
        name: "wrong method",
        method: Method::PUT,
        path: "/api/orders".into(),
        body: None,
        content_type: "application/json",
        status: StatusCode::METHOD_NOT_ALLOWED,
        kind: "method-not-allowed",
        field: None,
    });
    for case in cases {
        let mut request = app
            .http
            .request(case.method.clone(), format!("{}{}", app.base, case.path));
        if let Some(body) = &case.body {
            request = request
                .header("content-type", case.content_type)
                .body(body.clone());
        }
        let response = request.send().await.expect("sent");
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let (status, body) = read(response).await;
        assert_eq!(
            content_type, "application/problem+json",
            "{}: {body}",
            case.name
        );
        assert_problem(status, &body, case.status, case.kind);
        if let Some(field) = case.field {
            assert!(
                fields(&body).iter().any(|f| f.starts_with(field)),
                "{}: expected field {field} in {body}",
                case.name
            );
        }
    }
    let (_, list) = app.get("/api/orders").await;
    assert_eq!(
        list["data"]["pagination"]["total"], 0,
        "no bad request wrote an order"
    );
    let (_, mouse) = app.get("/api/products/MOUSE-007").await;
    let mouse = mouse["data"]["product"].clone();
    assert_eq!(mouse["available"], 100);
}

#[tokio::test]
async fn bad_idempotency_keys_and_request_ids_are_handled() {
    let app = TestApp::open().await;
    let body = json!({"productId": "MOUSE-a-007", "quantity": 1, "customerId": "c"});
    let long = "k".repeat(256);
    let (status, problem) = app
        .call(
            Method::POST,
            "/order",
            Some(&body),
            &[("idempotency-key", long.as_str())],
        )
        .await;
    assert_problem(status, &problem, StatusCode::BAD_REQUEST, "validation");
    assert_eq!(fields(&problem), ["Idempotency-Key"]);
    let (status, problem) = app
        .call(Method::POST, "/api/holds", Some(&json!({"customerId": "c", "items": [{"sku": "MOUSE-a-007", "quantity": 1}], "ttlSeconds": 60})), &[("idempotency-key", long.as_str())])
        .await;
    assert_problem(status, &problem, StatusCode::BAD_REQUEST, "validation");
    let response = app
        .send(
            Method::GET,
            "/health/live",
            None,
            &[("x-request-id", "trace-123")],
        )
        .await;
    assert_eq!(response.headers()["x-request-id"], "trace-123");
    let response = app
        .send(
            Method::GET,
            "/health/live",
            None,
            &[("x-request-id", "has space")],
        )
        .await;
    let made = response.headers()["x-request-id"]
        .to_str()
        .expect("text")
        .to_owned();
    assert_ne!(made, "has space");
    assert_eq!(made.len(), 36, "a fresh UUID: {made}");
}
