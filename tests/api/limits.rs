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

/// A placement role that holds every placement until the test lets it through.
#[derive(Debug)]
struct HeldPlacements {
    inner: std::sync::Arc<dyn aggregator_core::traits::OrderCommits>,
    gate: std::sync::Arc<tokio::sync::Semaphore>,
    entered: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

#[async_trait::async_trait]
impl aggregator_core::traits::OrderCommits for HeldPlacements {
    async fn place_order(
        &self,
        placement: aggregator_core::traits::OrderPlacement,
    ) -> aggregator_core::Result<aggregator_core::traits::Placed> {
        self.entered
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.gate.acquire().await.expect("gate").forget();
        self.inner.place_order(placement).await
    }

    async fn transition(
        &self,
        transition: &aggregator_core::domain::Transition,
        outbox: &[aggregator_core::domain::OutboxMessage],
    ) -> aggregator_core::Result<aggregator_core::domain::Order> {
        self.inner.transition(transition, outbox).await
    }
}

#[tokio::test]
async fn past_the_bound_of_orders_in_flight_a_placement_is_refused_at_once_with_503() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use aggregator_core::memory::InMemoryStockStore;
    use aggregator_core::traits::{StockStore, StoreRoles};

    let plain: Arc<dyn StockStore> = Arc::new(InMemoryStockStore::new());
    super::support::seed(plain.as_ref()).await;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let entered = Arc::new(AtomicUsize::new(0));
    let mut roles = StoreRoles::of(plain.clone());
    roles.commits = Arc::new(HeldPlacements {
        inner: roles.commits.clone(),
        gate: gate.clone(),
        entered: entered.clone(),
    });
    let app = Arc::new(
        TestApp::over(
            Arc::new(roles),
            ApiConfig {
                max_orders_in_flight: 1,
                ..ApiConfig::default()
            },
        )
        .await,
    );
    let order = json!({"customerId": "alice", "items": [{"sku": "MOUSE-007", "quantity": 1}]});
    let first = tokio::spawn({
        let (app, order) = (app.clone(), order.clone());
        async move {
            app.call(Method::POST, "/api/orders", Some(&order), &[])
                .await
        }
    });
    while entered.load(Ordering::SeqCst) == 0 {
        assert!(
            !first.is_finished(),
            "the first order was answered without reaching the store: {:?}",
            first.await
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // One order is in flight: the next is refused without waiting for it, on both
    // placement routes.
    for (path, body) in [
        ("/api/orders", order.clone()),
        (
            "/order",
            json!({"customerId": "alice", "productId": "MOUSE-007", "quantity": 1}),
        ),
    ] {
        let response = app.send(Method::POST, path, Some(&body), &[]).await;
        assert_eq!(response.headers()["retry-after"], "1", "{path}");
        let (status, problem) = read(response).await;
        assert_problem(
            status,
            &problem,
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
        );
    }
    assert_eq!(
        entered.load(Ordering::SeqCst),
        1,
        "the refused ones reached no store"
    );
    let (status, _) = app.get("/api/orders").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "reads of the same route are not bounded"
    );
    gate.add_permits(2);
    let (status, placed) = first.await.expect("task");
    assert_eq!(status, StatusCode::CREATED, "{placed}");
    // Its place was given back: the next order is taken.
    let (status, placed) = app
        .call(Method::POST, "/api/orders", Some(&order), &[])
        .await;
    assert_eq!(status, StatusCode::CREATED, "{placed}");
    let orders = plain
        .orders(&aggregator_core::traits::OrderQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("orders");
    assert_eq!(
        orders.items.len(),
        2,
        "exactly the two orders taken were written"
    );
}

#[tokio::test]
async fn a_client_slow_to_send_its_order_holds_no_place() {
    use tokio::io::AsyncWriteExt;

    let app = TestApp::start(ApiConfig {
        max_orders_in_flight: 1,
        ..ApiConfig::default()
    })
    .await;
    let address = app.base.trim_start_matches("http://").to_owned();
    // Headers and half a body, then nothing: the request waits for the rest.
    let mut slow = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    slow.write_all(
        b"POST /api/orders HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"customerId\":",
    )
    .await
    .expect("write");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let order = json!({"customerId": "alice", "items": [{"sku": "MOUSE-007", "quantity": 1}]});
    for _ in 0..2 {
        let (status, placed) = app
            .call(Method::POST, "/api/orders", Some(&order), &[])
            .await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "the one place is free while the slow body arrives: {placed}"
        );
    }
    drop(slow);
}
