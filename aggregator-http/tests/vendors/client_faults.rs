//! The client against wiremock: retries, timeouts, strict parsing, the circuit breaker.

use std::sync::Arc;
use std::time::Duration;

use aggregator_core::clock::ManualClock;
use aggregator_core::error::Error;
use aggregator_core::resilience::{Backoff, BreakerConfig, BreakerState};
use aggregator_core::traits::VendorClient;
use time::macros::datetime;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::support::{client, client_with_clock, quick_config};

const AS_OF: &str = "2026-11-25T12:00:00Z";

fn stock_body(quantity: i64) -> serde_json::Value {
    serde_json::json!([{
        "sku": "LAPTOP-a-001", "productId": "LAPTOP-001", "quantity": quantity,
        "price": {"minorUnits": 99_999, "currency": "USD"}
    }])
}

fn stock_answer(quantity: i64, total: u64) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("x-total-count", total.to_string().as_str())
        .insert_header("x-as-of", AS_OF)
        .set_body_json(stock_body(quantity))
}

async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.map_or(0, |r| r.len())
}

#[tokio::test]
async fn server_errors_are_retried_until_an_answer_comes() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/stock"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/stock"))
        .and(query_param("page", "1"))
        .and(query_param("limit", "50"))
        .respond_with(stock_answer(7, 1))
        .mount(&server)
        .await;
    let page = client(quick_config("VendorA", &server.uri()))
        .stock_page(1, 50)
        .await
        .expect("third try answers");
    assert_eq!(page.rows[0].quantity, 7);
    assert_eq!(page.as_of, datetime!(2026-11-25 12:00 UTC));
    assert_eq!(page.next_page, None);
    assert_eq!(page.last_page, Some(1));
    assert_eq!(requests(&server).await, 3);
}

#[tokio::test]
async fn a_vendor_that_keeps_failing_gives_a_retryable_error_naming_it() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(500)
                .set_body_json(serde_json::json!({"error": "boom", "detail": "disk full"})),
        )
        .mount(&server)
        .await;
    let error = client(quick_config("VendorA", &server.uri()))
        .stock_page(1, 10)
        .await
        .expect_err("fails");
    assert!(error.is_retryable());
    let text = error.to_string();
    for needle in ["VendorA", "GET /stock", "failed 3 time", "disk full"] {
        assert!(text.contains(needle), "{needle} missing from {text}");
    }
    assert_eq!(requests(&server).await, 3);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404).set_body_string("no"))
        .mount(&server)
        .await;
    let error = client(quick_config("VendorA", &server.uri()))
        .info()
        .await
        .expect_err("404");
    assert!(!error.is_retryable(), "{error}");
    assert!(error.to_string().contains("404"), "{error}");
    assert_eq!(requests(&server).await, 1);
}

#[tokio::test]
async fn slow_answers_time_out_and_are_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(stock_answer(1, 1).set_delay(Duration::from_millis(800)))
        .mount(&server)
        .await;
    let started = std::time::Instant::now();
    let error = client(quick_config("VendorA", &server.uri()))
        .stock_page(1, 10)
        .await
        .expect_err("times out");
    assert!(error.is_retryable());
    assert!(error.to_string().contains("timed out"), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "bounded by 3 x 500 ms + waits (generous for a loaded machine)"
    );
}

#[tokio::test]
async fn a_closed_port_fails_fast_and_retryable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let error = client(quick_config("VendorA", &url))
        .health()
        .await
        .expect_err("refused");
    assert!(error.is_retryable());
    assert!(error.to_string().contains("cannot connect"), "{error}");
}

#[tokio::test]
async fn malformed_or_invalid_pages_are_refused_naming_vendor_and_field() {
    let ok_headers = |template: ResponseTemplate| {
        template
            .insert_header("x-total-count", "1")
            .insert_header("x-as-of", AS_OF)
    };
    let cases: Vec<(ResponseTemplate, &str)> = vec![
        (
            ok_headers(ResponseTemplate::new(200)).set_body_string("[{\"sku\": "),
            "EOF while parsing",
        ),
        (
            ok_headers(ResponseTemplate::new(200)).set_body_json(stock_body(-3)),
            "[0].quantity",
        ),
        (
            ok_headers(ResponseTemplate::new(200)).set_body_json(stock_body(2_000_000_000)),
            "[0].quantity",
        ),
        (
            ok_headers(ResponseTemplate::new(200))
                .set_body_json(serde_json::json!([{"sku": "A", "quantity": 1}])),
            "[0]",
        ),
        (
            ResponseTemplate::new(200)
                .insert_header("x-as-of", AS_OF)
                .set_body_json(stock_body(1)),
            "x-total-count",
        ),
        (
            ResponseTemplate::new(200)
                .insert_header("x-total-count", "1")
                .set_body_json(stock_body(1)),
            "x-as-of",
        ),
        (
            ResponseTemplate::new(200)
                .insert_header("x-total-count", "1")
                .insert_header("x-as-of", "noon")
                .set_body_json(stock_body(1)),
            "x-as-of",
        ),
        (
            ResponseTemplate::new(200)
                .insert_header("x-total-count", "5")
                .insert_header("x-as-of", AS_OF)
                .set_body_json(stock_body(1)),
            "short page",
        ),
    ];
    for (answer, field) in cases {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(answer)
            .mount(&server)
            .await;
        let error = client(quick_config("VendorQ", &server.uri()))
            .stock_page(1, 2)
            .await
            .expect_err(field);
        let text = error.to_string();
        assert!(text.contains("VendorQ"), "{text}");
        assert!(text.contains(field), "{field} missing from {text}");
        assert!(
            !error.is_retryable(),
            "bad data is not retried here: {text}"
        );
        assert_eq!(requests(&server).await, 1, "{field}: not retried");
    }
}

#[tokio::test]
async fn more_rows_than_asked_for_and_oversized_bodies_are_refused() {
    let server = MockServer::start().await;
    let rows: Vec<serde_json::Value> = (0..3)
        .map(|i| {
            serde_json::json!({"sku": format!("S-{i}"), "productId": "P", "quantity": 1,
                "price": {"minorUnits": 1, "currency": "USD"}})
        })
        .collect();
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-total-count", "3")
                .insert_header("x-as-of", AS_OF)
                .set_body_json(rows),
        )
        .mount(&server)
        .await;
    let error = client(quick_config("VendorA", &server.uri()))
        .stock_page(1, 2)
        .await
        .expect_err("too many rows");
    assert!(error.to_string().contains("at most 2"), "{error}");
    let mut small = quick_config("VendorA", &server.uri());
    small.max_body_bytes = 64;
    let error = client(small).stock_page(1, 5).await.expect_err("too large");
    assert!(
        error.to_string().contains("larger than 64 bytes"),
        "{error}"
    );
    let error = client(quick_config("VendorA", &server.uri()))
        .stock_page(0, 5)
        .await
        .expect_err("page 0");
    assert!(matches!(error, Error::Invalid { .. }));
}

#[tokio::test]
async fn the_breaker_opens_fails_fast_then_a_probe_closes_it() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(4)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"status": "ok"})))
        .mount(&server)
        .await;
    let clock = ManualClock::new(datetime!(2026-11-25 12:00 UTC));
    let mut config = quick_config("VendorA", &server.uri());
    config.breaker = BreakerConfig::new(4, Duration::from_secs(30)).expect("breaker");
    let vendor = client_with_clock(config, Arc::new(clock.clone()));
    // Two calls of up to 3 tries each: the fourth failed try opens the breaker.
    vendor.health().await.expect_err("3 failures");
    let error = vendor.health().await.expect_err("opens");
    assert_eq!(vendor.breaker_state(), Some(BreakerState::Open));
    assert!(
        error.to_string().contains("circuit breaker open"),
        "{error}"
    );
    assert_eq!(requests(&server).await, 4, "no request once open");
    let error = vendor.health().await.expect_err("still open");
    assert!(error.is_retryable());
    assert_eq!(requests(&server).await, 4, "failing fast");
    clock.advance(time::Duration::seconds(30));
    assert_eq!(vendor.breaker_state(), Some(BreakerState::HalfOpen));
    vendor.health().await.expect("the probe succeeds");
    assert_eq!(vendor.breaker_state(), Some(BreakerState::Closed));
    assert_eq!(requests(&server).await, 5);
}

#[tokio::test]
async fn a_call_waits_for_an_open_breaker_without_spending_its_tries() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"status": "ok"})))
        .mount(&server)
        .await;
    let mut config = quick_config("VendorA", &server.uri());
    config.backoff =
        Backoff::new(1, Duration::from_millis(10), Duration::from_millis(10)).expect("backoff");
    config.breaker = BreakerConfig::new(2, Duration::from_millis(300)).expect("breaker");
    config.breaker_wait = Duration::from_secs(10);
    let vendor = client(config);
    vendor.health().await.expect_err("one try, failed");
    vendor.health().await.expect_err("opens");
    assert_eq!(vendor.breaker_state(), Some(BreakerState::Open));
    // One try per call: a call that failed at once on the open breaker would fail here.
    vendor
        .health()
        .await
        .expect("waits for the breaker, then its one try succeeds");
    assert_eq!(vendor.breaker_state(), Some(BreakerState::Closed));
    assert_eq!(requests(&server).await, 3);
}

#[tokio::test]
async fn a_failed_probe_opens_the_breaker_again() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let clock = ManualClock::new(datetime!(2026-11-25 12:00 UTC));
    let mut config = quick_config("VendorA", &server.uri());
    config.breaker = BreakerConfig::new(2, Duration::from_secs(30)).expect("breaker");
    let vendor = client_with_clock(config, Arc::new(clock.clone()));
    vendor.health().await.expect_err("opens after 2");
    assert_eq!(requests(&server).await, 2);
    clock.advance(time::Duration::seconds(31));
    vendor.health().await.expect_err("probe fails");
    assert_eq!(requests(&server).await, 3, "one probe only");
    assert_eq!(vendor.breaker_state(), Some(BreakerState::Open));
}

#[tokio::test]
async fn order_answers_map_to_outcomes() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/orders"))
        .and(wiremock::matchers::header("idempotency-key", "short-key"))
        .respond_with(ResponseTemplate::new(409).set_body_json(serde_json::json!({
            "error": "insufficient_stock", "detail": "not enough",
            "short": [{"sku": "LAPTOP-a-001", "requested": 3, "available": 1}]
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/orders"))
        .and(wiremock::matchers::header("idempotency-key", "garbled"))
        .respond_with(ResponseTemplate::new(201).set_body_string("{\"orderId\""))
        .mount(&server)
        .await;
    let vendor = client(quick_config("VendorA", &server.uri()));
    let order = |key: &str| aggregator_core::traits::VendorOrder {
        idempotency_key: key.into(),
        lines: vec![aggregator_core::traits::VendorOrderLine {
            sku: aggregator_core::domain::VendorSku::new("LAPTOP-a-001").expect("sku"),
            quantity: aggregator_core::domain::Quantity::new(
                3,
                aggregator_core::domain::QuantityLimit::default(),
            )
            .expect("quantity"),
        }],
    };
    let outcome = vendor
        .place_order(&order("short-key"))
        .await
        .expect("answer");
    assert!(matches!(
        outcome,
        aggregator_core::traits::VendorOrderOutcome::Refused { ref short } if short[0].available == 1
    ));
    let error = vendor
        .place_order(&order("garbled"))
        .await
        .expect_err("garbled");
    assert!(
        error.is_retryable(),
        "an order answer we cannot read may have placed it: retry under the key"
    );
    assert!(error.to_string().contains("malformed"), "{error}");
}

/// A vendor that says "already cancelled" as a refusal has cancelled all the same; any
/// other refusal of a cancellation is retryable, never final.
#[tokio::test]
async fn an_already_cancelled_refusal_is_done_and_other_refusals_are_retryable() {
    use aggregator_core::traits::CancelOutcome;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/orders/gone/cancel"))
        .respond_with(ResponseTemplate::new(409).set_body_json(
            serde_json::json!({"error": "order_cancelled", "detail": "already cancelled"}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/orders/shipped/cancel"))
        .respond_with(ResponseTemplate::new(409).set_body_json(
            serde_json::json!({"error": "already_shipped", "detail": "too late to cancel"}),
        ))
        .mount(&server)
        .await;
    let vendor = client(quick_config("VendorA", &server.uri()));
    assert_eq!(
        vendor.cancel_order("gone").await,
        Ok(CancelOutcome::Cancelled)
    );
    let refused = vendor.cancel_order("shipped").await.expect_err("refused");
    assert!(refused.is_retryable(), "{refused}");
}
