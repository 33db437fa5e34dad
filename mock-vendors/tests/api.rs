//! The mock vendor's HTTP API as a client sees it, bad requests included.

use mock_vendors::{MockVendor, MockVendorConfig};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

async fn start(skus: usize) -> (MockVendor, Client) {
    let vendor = MockVendor::spawn_local(MockVendorConfig::new("VendorA").with_sku_count(skus))
        .await
        .expect("spawn");
    (vendor, Client::new())
}

async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

#[tokio::test]
async fn the_seed_scripts_read_the_stock_as_a_plain_array() {
    let (vendor, http) = start(10).await;
    let response = http
        .get(format!("{}/stock", vendor.base_url()))
        .send()
        .await
        .expect("stock");
    let headers = response.headers().clone();
    let (status, body) = read(response).await;
    assert_eq!(status, StatusCode::OK);
    let rows = body.as_array().expect("a JSON array");
    assert_eq!(rows.len(), 10);
    assert_eq!(rows[0]["sku"], "LAPTOP-a-001");
    assert_eq!(rows[0]["productId"], "LAPTOP-001");
    assert_eq!(headers["x-total-count"], "10");
    assert!(headers.contains_key("x-as-of"));
    let health = read(
        http.get(format!("{}/health", vendor.base_url()))
            .send()
            .await
            .expect("health"),
    )
    .await;
    assert_eq!(health.1["status"], "ok");
    let info = read(
        http.get(format!("{}/info", vendor.base_url()))
            .send()
            .await
            .expect("info"),
    )
    .await;
    assert_eq!(
        (info.1["name"].as_str(), info.1["skuCount"].as_u64()),
        (Some("Vendor A"), Some(10))
    );
}

#[tokio::test]
async fn paging_headers_point_to_the_next_and_last_pages() {
    let (vendor, http) = start(25).await;
    let response = http
        .get(format!("{}/stock?page=2&limit=10", vendor.base_url()))
        .send()
        .await
        .expect("stock");
    let link = response.headers()["link"]
        .to_str()
        .expect("text")
        .to_owned();
    assert!(
        link.contains("</stock?page=3&limit=10>; rel=\"next\""),
        "{link}"
    );
    assert!(link.contains("rel=\"last\""), "{link}");
    let (_, body) = read(response).await;
    assert_eq!(body[0]["sku"], "ITEM-a-000011");
    let last = http
        .get(format!("{}/stock?page=3&limit=10", vendor.base_url()))
        .send()
        .await
        .expect("stock");
    assert!(
        !last.headers()["link"]
            .to_str()
            .expect("text")
            .contains("next")
    );
    assert_eq!(read(last).await.1.as_array().map(Vec::len), Some(5));
}

#[tokio::test]
async fn bad_requests_get_clear_client_errors() {
    let (vendor, http) = start(10).await;
    let base = vendor.base_url();
    let post = |path: &str, body: Value, key: Option<&str>| {
        let mut request = http.post(format!("{base}{path}")).json(&body);
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        request.send()
    };
    let line = json!({"lines": [{"sku": "LAPTOP-a-001", "quantity": 1}]});
    let cases: Vec<(reqwest::Response, StatusCode, &str)> = vec![
        (http.get(format!("{base}/stock?page=0")).send().await.expect("send"), StatusCode::BAD_REQUEST, "page"),
        (http.get(format!("{base}/stock?limit=100001")).send().await.expect("send"), StatusCode::BAD_REQUEST, "limit"),
        (http.get(format!("{base}/stock?page=x")).send().await.expect("send"), StatusCode::BAD_REQUEST, "page"),
        (post("/orders", line.clone(), None).await.expect("send"), StatusCode::BAD_REQUEST, "Idempotency-Key"),
        (post("/orders", json!({"lines": []}), Some("k")).await.expect("send"), StatusCode::BAD_REQUEST, "lines"),
        (post("/orders", json!({"lines": [{"sku": "LAPTOP-a-001", "quantity": 0}]}), Some("k")).await.expect("send"), StatusCode::BAD_REQUEST, "quantity"),
        (post("/orders", json!({"lines": [{"sku": "LAPTOP-a-001", "quantity": 1}, {"sku": "LAPTOP-a-001", "quantity": 1}]}), Some("k")).await.expect("send"), StatusCode::BAD_REQUEST, "twice"),
        (post("/orders", json!({"lines": [{"sku": "LAPTOP-a-001", "quantity": "one"}]}), Some("k")).await.expect("send"), StatusCode::UNPROCESSABLE_ENTITY, "quantity"),
        (post("/orders", json!({"idempotencyKey": "a", "lines": [{"sku": "LAPTOP-a-001", "quantity": 1}]}), Some("b")).await.expect("send"), StatusCode::BAD_REQUEST, "differ"),
        (post("/orders", json!({"lines": [], "extra": 1}), Some("k")).await.expect("send"), StatusCode::UNPROCESSABLE_ENTITY, "extra"),
        (http.post(format!("{base}/orders")).header("idempotency-key", "k").body("{").send().await.expect("send"), StatusCode::UNSUPPORTED_MEDIA_TYPE, "Content-Type"),
        (post("/simulate/fault", json!({"errorRate": -0.1}), None).await.expect("send"), StatusCode::BAD_REQUEST, "errorRate"),
        (post("/simulate/fault", json!({"latencyMs": 999_999}), None).await.expect("send"), StatusCode::BAD_REQUEST, "latencyMs"),
        (post("/simulate/fault", json!({"explode": true}), None).await.expect("send"), StatusCode::UNPROCESSABLE_ENTITY, "explode"),
        (post("/simulate/stock", json!({"sku": "NOPE", "quantity": 1}), None).await.expect("send"), StatusCode::NOT_FOUND, "NOPE"),
        (post("/simulate/stock", json!({"sku": "LAPTOP-a-001", "quantity": -1}), None).await.expect("send"), StatusCode::BAD_REQUEST, "quantity"),
        (http.get(format!("{base}/orders/unknown")).send().await.expect("send"), StatusCode::NOT_FOUND, "unknown"),
        (http.get(format!("{base}/nowhere")).send().await.expect("send"), StatusCode::NOT_FOUND, "endpoint"),
        (http.delete(format!("{base}/stock")).send().await.expect("send"), StatusCode::METHOD_NOT_ALLOWED, "method"),
    ];
    for (response, status, needle) in cases {
        let (got, body) = read(response).await;
        assert_eq!(got, status, "{needle}: {body}");
        assert!(body["error"].is_string(), "{needle}: {body}");
        assert!(
            body.to_string().contains(needle),
            "{needle} missing from {body}"
        );
    }
    assert_eq!(vendor.orders_placed(), 0, "no bad request placed anything");
}

#[tokio::test]
async fn the_fault_switches_work_over_http_and_never_block_the_controls() {
    let (vendor, http) = start(10).await;
    let base = vendor.base_url();
    let set = |body: Value| {
        http.post(format!("{base}/simulate/fault"))
            .json(&body)
            .send()
    };
    let (status, faults) = read(
        set(json!({"outage": true, "latencyMs": 5}))
            .await
            .expect("set"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (faults["outage"].as_bool(), faults["latencyMs"].as_u64()),
        (Some(true), Some(5))
    );
    let (status, body) = read(
        http.get(format!("{base}/health"))
            .send()
            .await
            .expect("health"),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"], "outage");
    let (status, _) = read(
        http.post(format!("{base}/simulate/fluctuation"))
            .send()
            .await
            .expect("fluctuate"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "controls are never faulted");
    set(json!({"outage": false, "errorRate": 1.0}))
        .await
        .expect("set");
    let (status, _) = read(http.get(format!("{base}/info")).send().await.expect("info")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    set(json!({"errorRate": 0.0, "malformed": true}))
        .await
        .expect("set");
    let text = http
        .get(format!("{base}/stock"))
        .send()
        .await
        .expect("stock")
        .text()
        .await
        .expect("text");
    assert!(
        serde_json::from_str::<Value>(&text).is_err(),
        "cut in half: {text}"
    );
    let (_, body) = read(
        http.get(format!("{base}/simulate/fault"))
            .send()
            .await
            .expect("faults"),
    )
    .await;
    assert_eq!(body["malformed"], true);
    let (_, body) = read(
        http.post(format!("{base}/simulate/reset"))
            .send()
            .await
            .expect("reset"),
    )
    .await;
    assert_eq!(body["malformed"], false);
    assert!(vendor.faults().is_clear());
    set(json!({"badData": true})).await.expect("set");
    let (_, rows) = read(
        http.get(format!("{base}/stock?limit=3"))
            .send()
            .await
            .expect("stock"),
    )
    .await;
    assert_eq!(rows[0]["quantity"], -5);
    set(json!({"badData": false, "slowBodyMs": 300}))
        .await
        .expect("set");
    let started = std::time::Instant::now();
    let (status, _) = read(
        http.get(format!("{base}/stock"))
            .send()
            .await
            .expect("stock"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(250),
        "the body trickled"
    );
}

#[tokio::test]
async fn orders_over_http_decrement_replay_refuse_and_cancel() {
    let (vendor, http) = start(10).await;
    let base = vendor.base_url();
    assert!(vendor.set_quantity("MOUSE-a-007", 4));
    let place = |key: &str, quantity: i64| {
        http.post(format!("{base}/orders"))
            .header("idempotency-key", key)
            .json(&json!({"lines": [{"sku": "MOUSE-a-007", "quantity": quantity}]}))
            .send()
    };
    let (status, first) = read(place("o-1", 3).await.expect("place")).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(first["status"], "confirmed");
    assert!(first["confirmedAt"].is_string());
    let replay = place("o-1", 3).await.expect("place");
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(read(replay).await, (StatusCode::OK, first.clone()));
    let (status, body) = read(place("o-1", 2).await.expect("place")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("idempotency_key_reused")
        )
    );
    let (status, body) = read(place("o-2", 2).await.expect("place")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        body["short"][0],
        json!({"sku": "MOUSE-a-007", "requested": 2, "available": 1})
    );
    let id = first["orderId"].as_str().expect("id");
    let (status, cancelled) = read(
        http.post(format!("{base}/orders/{id}/cancel"))
            .send()
            .await
            .expect("cancel"),
    )
    .await;
    assert_eq!(
        (status, cancelled["status"].as_str()),
        (StatusCode::OK, Some("cancelled"))
    );
    read(
        http.post(format!("{base}/orders/o-1/cancel"))
            .send()
            .await
            .expect("cancel"),
    )
    .await;
    assert_eq!(vendor.quantity("MOUSE-a-007"), Some(4));
    let (status, body) = read(place("o-1", 3).await.expect("place")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("order_cancelled"))
    );
    let (status, fetched) = read(
        http.get(format!("{base}/orders/o-1"))
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(
        (status, fetched["status"].as_str()),
        (StatusCode::OK, Some("cancelled"))
    );
}

#[tokio::test]
async fn a_shut_down_vendor_frees_its_port() {
    let (vendor, http) = start(10).await;
    let base = vendor.base_url();
    vendor.shutdown().await.expect("shutdown");
    assert!(http.get(format!("{base}/health")).send().await.is_err());
}

#[tokio::test]
async fn clock_switches_move_the_feed_and_the_order_endpoint_apart() {
    let (vendor, http) = start(10).await;
    let base = vendor.base_url();
    let (status, _) = read(
        http.post(format!("{base}/simulate/fault"))
            .json(&json!({"feedClockOffsetMs": 3_600_000, "orderClockOffsetMs": -5_000}))
            .send()
            .await
            .expect("set"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let now = time::OffsetDateTime::now_utc();
    let parse = |text: &str| {
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .expect("time")
    };
    let stock = http
        .get(format!("{base}/stock?limit=2"))
        .send()
        .await
        .expect("stock");
    let header = parse(stock.headers()["x-as-of"].to_str().expect("text"));
    let (_, rows) = read(stock).await;
    let row = parse(rows[0]["asOf"].as_str().expect("asOf"));
    for feed in [header, row] {
        let ahead = feed - now;
        assert!(
            ahead > time::Duration::minutes(59) && ahead < time::Duration::minutes(61),
            "the feed runs an hour ahead: {ahead}"
        );
    }
    let (_, order) = read(
        http.post(format!("{base}/orders"))
            .header("idempotency-key", "skewed")
            .json(&json!({"lines": [{"sku": "MOUSE-a-007", "quantity": 1}]}))
            .send()
            .await
            .expect("place"),
    )
    .await;
    let behind = now - parse(order["confirmedAt"].as_str().expect("confirmedAt"));
    assert!(
        behind > time::Duration::seconds(4) && behind < time::Duration::seconds(6),
        "the order endpoint runs 5 s behind: {behind}"
    );
    let (status, problem) = read(
        http.post(format!("{base}/simulate/fault"))
            .json(&json!({"orderClockOffsetMs": 100_000_000_000_i64}))
            .send()
            .await
            .expect("set"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
}

#[tokio::test]
async fn a_lost_answer_breaks_the_connection_after_the_order_was_placed() {
    let (vendor, http) = start(10).await;
    let base = vendor.base_url();
    assert!(vendor.set_quantity("MOUSE-a-007", 4));
    vendor.set_faults(mock_vendors::Faults {
        lost_answer_rate: 1.0,
        ..mock_vendors::Faults::default()
    });
    let place = || {
        http.post(format!("{base}/orders"))
            .header("idempotency-key", "lost-1")
            .json(&json!({"lines": [{"sku": "MOUSE-a-007", "quantity": 3}]}))
            .send()
    };
    let lost = match place().await {
        Ok(response) => response.bytes().await.map(|_| ()),
        Err(error) => Err(error),
    };
    assert!(lost.is_err(), "the client sees no answer");
    assert_eq!(
        vendor.quantity("MOUSE-a-007"),
        Some(1),
        "but the order was placed"
    );
    assert_eq!(vendor.orders().len(), 1);
    vendor.reset_faults();
    let (status, replay) = read(place().await.expect("retry")).await;
    assert_eq!(status, StatusCode::OK, "a retry under the key replays it");
    assert_eq!(replay["status"], "confirmed");
    assert_eq!(vendor.quantity("MOUSE-a-007"), Some(1), "placed once");
}

/// The rate-limit switch answers 429 with Retry-After past its rate in a second, and
/// the vendor counts every request it received, per second.
#[tokio::test]
async fn the_rate_limit_switch_refuses_past_its_rate_and_arrivals_are_counted() {
    let vendor = mock_vendors::MockVendor::spawn_local(
        mock_vendors::MockVendorConfig::new("VendorA").with_sku_count(5),
    )
    .await
    .expect("vendor");
    vendor.set_faults(mock_vendors::Faults {
        rate_limit_per_sec: 5,
        ..mock_vendors::Faults::default()
    });
    let http = reqwest::Client::new();
    let mut refused = 0;
    for _ in 0..12 {
        let answer = http
            .get(format!("{}/health", vendor.base_url()))
            .send()
            .await
            .expect("answer");
        if answer.status() == reqwest::StatusCode::TOO_MANY_REQUESTS {
            let wait: u64 = answer.headers()["retry-after"]
                .to_str()
                .expect("text")
                .parse()
                .expect("seconds");
            assert!((1..=1).contains(&wait), "{wait}");
            refused += 1;
        }
    }
    let total: u64 = vendor.arrivals_per_second().iter().map(|(_, n)| n).sum();
    assert_eq!(total, 12, "every request counted, refused ones too");
    assert!(
        refused >= 12 - 10,
        "at most 5 a second pass: {refused} refused"
    );
    assert_eq!(vendor.refused_for_rate(), refused);
}

#[tokio::test]
async fn every_order_record_is_listed_for_audits_even_during_an_outage() {
    let (vendor, http) = start(3).await;
    let base = vendor.base_url();
    let placed = http
        .post(format!("{base}/orders"))
        .header("idempotency-key", "placed-1")
        .json(&json!({"lines": [{"sku": "LAPTOP-a-001", "quantity": 2}]}))
        .send()
        .await
        .expect("place");
    assert_eq!(placed.status(), StatusCode::CREATED);
    let cancelled = http
        .post(format!("{base}/orders/never-placed/cancel"))
        .send()
        .await
        .expect("cancel");
    assert!(cancelled.status().is_success(), "{}", cancelled.status());
    vendor.set_faults(mock_vendors::Faults {
        outage: true,
        ..vendor.faults()
    });
    let (status, body) = read(
        http.get(format!("{base}/simulate/orders"))
            .send()
            .await
            .expect("list"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let mut records: Vec<(String, String, Value)> = body["orders"]
        .as_array()
        .expect("orders")
        .iter()
        .map(|r| {
            (
                r["idempotencyKey"].as_str().unwrap_or_default().to_owned(),
                r["status"].to_string(),
                r["lines"].clone(),
            )
        })
        .collect();
    records.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(records.len(), 2, "{body}");
    assert_eq!(records[0].0, "never-placed");
    assert_eq!(records[0].2, json!([]));
    assert_eq!(records[1].0, "placed-1");
    assert_eq!(records[1].2[0]["quantity"], 2, "{body}");
}
