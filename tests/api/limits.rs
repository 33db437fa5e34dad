//! Body size, rate limits and the request id.

use std::time::Duration;

use aggregator_core::traits::RateLimit;
use aggregator_http::api::{ApiConfig, ApiKeys, Role};
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
    assert_eq!(list["data"]["pagination"]["total"], 0);
}

/// Sends `body` the way a simple client does (the whole request written on a kept-alive
/// connection, then the answer read) and returns the answer's first line, or what broke.
async fn send_whole_then_read(base: &str, path: &str, body: &[u8]) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    stream
        .write_all(body)
        .await
        .map_err(|e| format!("write: {e}"))?;
    // The connection stays open (keep-alive): read until the status line is in.
    let mut answer = Vec::new();
    while !answer.windows(2).any(|w| w == b"\r\n") {
        let mut chunk = [0_u8; 1024];
        let read = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut chunk))
            .await
            .map_err(|_| "no answer within 20 s".to_owned())?
            .map_err(|e| format!("read: {e}"))?;
        if read == 0 {
            return Err(format!("closed after {} bytes of answer", answer.len()));
        }
        answer.extend_from_slice(&chunk[..read]);
    }
    let answer = String::from_utf8_lossy(&answer).into_owned();
    Ok(answer.lines().next().unwrap_or_default().to_owned())
}

// Two threads, so that the server answers while the client is still writing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_still_sending_a_huge_body_reads_the_413_not_a_broken_connection() {
    let app = TestApp::open().await;
    // 2 MiB, 32 times the limit: the server refuses it long before it has all arrived.
    let body = vec![b' '; 2 * 1024 * 1024];
    let mut outcomes = Vec::new();
    for _ in 0..30 {
        outcomes.push(send_whole_then_read(&app.base, "/api/orders", &body).await);
    }
    let answered = outcomes
        .iter()
        .filter(|o| {
            o.as_deref()
                .is_ok_and(|line| line.starts_with("HTTP/1.1 413"))
        })
        .count();
    assert_eq!(answered, 30, "{outcomes:?}");
    // Refused before any body is read at all: the same.
    let keyed = TestApp::start(ApiConfig {
        keys: ApiKeys::none().with("admin-key-for-the-drain-test", Role::Admin),
        ..ApiConfig::default()
    })
    .await;
    for _ in 0..10 {
        let outcome = send_whole_then_read(&keyed.base, "/api/orders", &body).await;
        assert!(
            outcome
                .as_deref()
                .is_ok_and(|line| line.starts_with("HTTP/1.1 401")),
            "{outcome:?}"
        );
    }
}

#[tokio::test]
async fn a_body_past_the_drain_bound_gets_its_connection_closed_and_the_server_stays_up() {
    let app = TestApp::open().await;
    let body = vec![b' '; aggregator_http::api::DRAIN_BYTES + 4 * 1024 * 1024];
    let outcome = send_whole_then_read(&app.base, "/api/orders", &body).await;
    assert!(
        !outcome
            .as_deref()
            .is_ok_and(|line| line.starts_with("HTTP/1.1 2")),
        "{outcome:?}"
    );
    let (status, _) = app.get("/api/products").await;
    assert_eq!(status, StatusCode::OK, "the server still answers");
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
