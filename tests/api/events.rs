//! `GET /api/events`: each client streams its own customer's order events, the admin
//! everyone's; `Last-Event-ID` resumes right after an event; an unknown id gets a
//! `reset` first; a bad one is refused; the stream ends when the server stops.

use std::sync::Arc;
use std::time::Duration;

use aggregator_core::clock::SystemClock;
use aggregator_core::memory::{InMemoryCache, InMemoryOrderQueue, InMemoryStockStore};
use aggregator_core::service::shutdown_pair;
use aggregator_core::traits::{RetryPolicy, StockStore};
use aggregator_http::api::{ApiConfig, HealthProbes, router};
use order_aggregator::backends::Backends;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use super::support::{ADMIN, ALICE, BOB, TestApp, api_state, assert_problem, keys, read, seed};

async fn app() -> TestApp {
    TestApp::start(ApiConfig {
        keys: keys(),
        ..ApiConfig::default()
    })
    .await
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq)]
struct Sse {
    event: String,
    id: String,
    data: Value,
}

/// An open event stream, read event by event.
struct EventStream {
    response: Response,
    buffer: String,
}

impl EventStream {
    async fn open(app: &TestApp, key: &str, last_id: Option<&str>) -> Self {
        let mut headers = vec![("x-api-key", key)];
        if let Some(id) = last_id {
            headers.push(("last-event-id", id));
        }
        let response = app.send(Method::GET, "/api/events", None, &headers).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (comments skipped); `None` when the stream ended. Fails the test
    /// after 10 s without one.
    async fn next(&mut self) -> Option<Sse> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = Sse {
                    event: String::new(),
                    id: String::new(),
                    data: Value::Null,
                };
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("event: ") {
                        event.event = value.to_owned();
                    } else if let Some(value) = line.strip_prefix("id: ") {
                        event.id = value.to_owned();
                    } else if let Some(value) = line.strip_prefix("data: ") {
                        event.data = serde_json::from_str(value).expect("json data");
                    }
                }
                if event.event.is_empty() {
                    continue;
                }
                return Some(event);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.response.chunk())
                .await
                .expect("an event within 10 s")
                .expect("stream readable")?;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    async fn next_order_event(&mut self) -> Sse {
        let event = self.next().await.expect("the stream goes on");
        assert_eq!(event.event, "order", "{event:?}");
        event
    }
}

async fn place(app: &TestApp, key: &str) -> String {
    // A client key's own customer, or (no keys) a customer of that name.
    let customer = match key {
        ALICE => "alice",
        BOB => "bob",
        other => other,
    };
    let order = json!({"productId": "MOUSE-a-007", "quantity": 1, "customerId": customer});
    let (status, placed) = app
        .call(Method::POST, "/order", Some(&order), &[("x-api-key", key)])
        .await;
    assert_eq!(status, StatusCode::CREATED, "{placed}");
    placed["orderId"].as_str().expect("id").to_owned()
}

async fn cancel(app: &TestApp, key: &str, id: &str) {
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/api/orders/{id}/cancel"),
            Some(&json!({"reason": "changed my mind"})),
            &[("x-api-key", key)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn clients_stream_their_own_order_events_and_resume_after_the_last_id() {
    let app = app().await;
    let mut alice = EventStream::open(&app, ALICE, None).await;
    let alices = place(&app, ALICE).await;
    let bobs = place(&app, BOB).await;
    cancel(&app, ALICE, &alices).await;

    let placed = alice.next_order_event().await;
    assert_eq!(placed.data["id"], format!("{alices}:v1"));
    assert_eq!(placed.data["orderId"], alices.as_str());
    assert_eq!(placed.data["customerId"], "alice");
    assert_eq!(placed.data["from"], Value::Null);
    assert_eq!(placed.data["to"], "reserved");
    assert_eq!(placed.data["version"], 1);
    let cancelled = alice.next_order_event().await;
    assert_eq!(
        (
            &cancelled.data["from"],
            &cancelled.data["to"],
            &cancelled.data["version"]
        ),
        (&json!("reserved"), &json!("cancelled"), &json!(2))
    );
    assert!(
        cancelled.data["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("changed my mind"),
        "{cancelled:?}"
    );

    let mut admin = EventStream::open(&app, ADMIN, None).await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let event = admin.next_order_event().await;
        seen.push((
            event.data["orderId"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            event.data["version"].as_i64().unwrap_or_default(),
        ));
    }
    assert_eq!(
        seen,
        vec![(alices.clone(), 1), (bobs.clone(), 1), (alices.clone(), 2)],
        "the admin streams every customer's events in log order"
    );

    let mut resumed = EventStream::open(&app, ALICE, Some(&placed.id)).await;
    assert_eq!(
        resumed.next_order_event().await,
        cancelled,
        "resuming goes on right after the last event the client has"
    );
    let later = place(&app, ALICE).await;
    let next = resumed.next_order_event().await;
    assert_eq!(next.data["orderId"], later.as_str(), "bob's never show up");
}

#[tokio::test]
async fn an_unknown_last_event_id_gets_a_reset_and_a_malformed_one_is_refused() {
    let app = app().await;
    let mut stream = EventStream::open(&app, ALICE, Some("999999999-1")).await;
    let reset = stream.next().await.expect("a reset");
    assert_eq!(reset.event, "reset");
    assert_eq!(reset.data["resumeFrom"], reset.id.as_str());
    assert!(
        reset.data["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("re-read"),
        "{reset:?}"
    );
    let id = place(&app, ALICE).await;
    assert_eq!(stream.next_order_event().await.data["orderId"], id.as_str());

    for bad in ["yesterday", "12", "1-2-3"] {
        let response = app
            .send(
                Method::GET,
                "/api/events",
                None,
                &[("x-api-key", ALICE), ("last-event-id", bad)],
            )
            .await;
        let (status, problem) = read(response).await;
        assert_problem(status, &problem, StatusCode::BAD_REQUEST, "validation");
        assert!(problem.to_string().contains("lastEventId"), "{problem}");
    }
    let (status, problem) = app
        .call(
            Method::GET,
            "/api/events?lastEventId=x",
            None,
            &[("x-api-key", ALICE)],
        )
        .await;
    assert_problem(status, &problem, StatusCode::BAD_REQUEST, "validation");
    let (status, _) = app.get("/api/events").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a key is needed");
}

#[tokio::test]
async fn the_stream_ends_when_the_server_stops() {
    let store: Arc<dyn StockStore> = Arc::new(InMemoryStockStore::new());
    seed(store.as_ref()).await;
    let (app, trigger, server) = serve_until_stopped(store).await;
    let mut stream = EventStream::open(&app, ALICE, None).await;
    let id = place(&app, ALICE).await;
    assert_eq!(stream.next_order_event().await.data["orderId"], id.as_str());
    trigger.trigger();
    assert_eq!(stream.next().await, None, "the stream ends");
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server drains within 10 s")
        .expect("joined");
}

/// An API over `store` that stops when `trigger` fires, and the task serving it.
async fn serve_until_stopped(
    store: Arc<dyn StockStore>,
) -> (
    TestApp,
    aggregator_core::service::ShutdownTrigger,
    tokio::task::JoinHandle<()>,
) {
    let queue =
        InMemoryOrderQueue::new(RetryPolicy::new(vec![Duration::from_millis(10)]).expect("policy"));
    let backends = Backends {
        store,
        queue: Arc::new(queue.clone()),
        cache: Arc::new(InMemoryCache::new()),
        clock: Arc::new(SystemClock),
        probes: HealthProbes::default(),
        replica: None,
    };
    let (trigger, signal) = shutdown_pair();
    let config = ApiConfig {
        keys: keys(),
        ..ApiConfig::default()
    };
    let state = api_state(backends, config)
        .await
        .with_shutdown(signal.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router(state))
            .with_graceful_shutdown(signal.wait())
            .await;
    });
    let app = TestApp {
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        queue,
    };
    (app, trigger, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_client_resumes_across_an_api_restart() {
    let Some(db) = aggregator_postgres::testing::TestDatabase::create(8).await else {
        return;
    };
    let first_store: Arc<dyn StockStore> = Arc::new(db.store.clone());
    seed(first_store.as_ref()).await;
    let (app, trigger, server) = serve_until_stopped(first_store).await;
    let mut stream = EventStream::open(&app, ALICE, None).await;
    let first = place(&app, ALICE).await;
    let seen = stream.next_order_event().await;
    assert_eq!(seen.data["orderId"], first.as_str());
    trigger.trigger();
    assert_eq!(stream.next().await, None, "the old API ended the stream");
    server.await.expect("the old API stopped");

    // A new API process: its own pool over the same database. Meanwhile the order was
    // cancelled and another placed.
    let store = aggregator_postgres::PostgresStockStore::connect(db.config())
        .await
        .expect("connect again");
    let second_store: Arc<dyn StockStore> = Arc::new(store);
    let (app, trigger, server) = serve_until_stopped(second_store).await;
    cancel(&app, ALICE, &first).await;
    let second = place(&app, ALICE).await;
    let mut resumed = EventStream::open(&app, ALICE, Some(&seen.id)).await;
    let cancelled = resumed.next_order_event().await;
    assert_eq!(
        (
            cancelled.data["orderId"].as_str(),
            cancelled.data["version"].as_i64()
        ),
        (Some(first.as_str()), Some(2)),
        "the next event after the one the client had, none missed"
    );
    let placed = resumed.next_order_event().await;
    assert_eq!(placed.data["orderId"], second.as_str());
    trigger.trigger();
    server.await.expect("stopped");
    db.finish().await;
}

/// One key may hold only so many streams open; one more is a 429 with `Retry-After`,
/// and a stream whose client left frees its place.
#[tokio::test]
async fn a_key_holds_at_most_its_share_of_open_streams() {
    let app = TestApp::start(ApiConfig {
        keys: keys(),
        max_streams_per_key: 2,
        ..ApiConfig::default()
    })
    .await;
    let first = EventStream::open(&app, ALICE, None).await;
    let _second = EventStream::open(&app, ALICE, None).await;
    let third = app
        .send(Method::GET, "/api/events", None, &[("x-api-key", ALICE)])
        .await;
    assert!(third.headers().contains_key("retry-after"));
    let (status, problem) = read(third).await;
    assert_problem(
        status,
        &problem,
        StatusCode::TOO_MANY_REQUESTS,
        "too-many-streams",
    );
    // Another key has its own share.
    let _bobs = EventStream::open(&app, BOB, None).await;
    // A client that leaves gives its place back (once the server notices).
    drop(first);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let again = app
            .send(Method::GET, "/api/events", None, &[("x-api-key", ALICE)])
            .await;
        if again.status() == StatusCode::OK {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the place of a closed stream came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Index and table scans of `order_events` so far in this test's database (statistics
/// are flushed within a second, so this waits for them first).
async fn event_log_scans(pool: &sqlx::PgPool) -> i64 {
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    sqlx::query_scalar::<_, i64>(
        "SELECT (COALESCE(seq_scan, 0) + COALESCE(idx_scan, 0))::int8
           FROM pg_stat_user_tables WHERE relname = 'order_events'",
    )
    .fetch_one(pool)
    .await
    .expect("scans")
}

/// Two hundred open streams cost the store what one does: a single reader per server
/// follows the log for all of them. Every stream gets every event, and placements go on
/// as before (their times are printed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_streams_share_one_reader_of_the_log() {
    let Some(db) = aggregator_postgres::testing::TestDatabase::create(20).await else {
        return;
    };
    let store: Arc<dyn StockStore> = Arc::new(db.store.clone());
    seed(store.as_ref()).await;
    let app = TestApp::over(
        store,
        ApiConfig {
            max_streams_per_key: 1_000,
            ..ApiConfig::default()
        },
    )
    .await;
    let place_some = |count: usize| {
        let app = &app;
        async move {
            let mut took = Vec::with_capacity(count);
            for n in 0..count {
                let started = std::time::Instant::now();
                let order = json!({"productId": "MOUSE-a-007", "quantity": 1, "customerId": format!("c{n}")});
                let (status, placed) = app.call(Method::POST, "/order", Some(&order), &[]).await;
                assert_eq!(status, StatusCode::CREATED, "{placed}");
                took.push(started.elapsed());
            }
            took.sort();
            took[took.len() / 2]
        }
    };
    let alone = place_some(20).await;
    let mut streams = Vec::new();
    for _ in 0..200 {
        let response = app.send(Method::GET, "/api/events", None, &[]).await;
        assert_eq!(response.status(), StatusCode::OK);
        streams.push(EventStream {
            response,
            buffer: String::new(),
        });
    }
    // Every stream starts at the log's beginning: the 20 placements so far.
    let before = event_log_scans(db.store.pool()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = event_log_scans(db.store.pool()).await - before;
    let with_streams = place_some(20).await;
    let readers: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move {
                let mut seen = 0;
                while seen < 40 {
                    stream.next_order_event().await;
                    seen += 1;
                }
                seen
            })
        })
        .collect();
    for reader in readers {
        assert_eq!(
            reader.await.expect("reader"),
            40,
            "every event on every stream"
        );
    }
    println!(
        "200 open streams: {idle} scans of the event log in 3.5 s idle; median placement \
         {alone:?} without streams, {with_streams:?} with them"
    );
    // One read of the log is about five scans (the position check before and after
    // it, and the read), four reads a second: some 70 in 3.5 s for the one reader, and
    // two hundred times that if every stream read for itself.
    assert!(
        idle < 200,
        "{idle} scans of the log in 3.5 s with 200 streams: one reader makes about 70"
    );
    db.finish().await;
}
