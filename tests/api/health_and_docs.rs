//! Health, metrics, OpenAPI and docs.

use std::sync::Arc;

use aggregator_core::clock::SystemClock;
use aggregator_core::domain::CustomerId;
use aggregator_core::domain::{Message, QueueName};
use aggregator_core::error::Error;
use aggregator_core::memory::{InMemoryCache, InMemoryOrderQueue, InMemoryStockStore};
use aggregator_core::traits::OrderQueue;
use aggregator_core::traits::StockStore;
use aggregator_http::api::{ApiConfig, ApiKeys, HealthProbes, Probe, ReplicaProbe, Role};
use aggregator_http::ops::parse_exposition;
use order_aggregator::backends::Backends;
use reqwest::StatusCode;
use serde_json::json;

use super::support::{TestApp, api_state, seed};

#[tokio::test]
async fn health_reports_every_component_and_a_down_cache_is_degraded_not_down() {
    let app = TestApp::open().await;
    let (status, health) = app.get("/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["components"]["store"]["status"], "up");
    assert_eq!(health["components"]["vendors"][0]["status"], "healthy");
    let (status, live) = app.get("/health/live").await;
    assert_eq!(
        (status, live["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let (status, _) = app.get("/health/ready").await;
    assert_eq!(status, StatusCode::OK);

    let (degraded, _) = app_with_a_down_cache(ApiConfig::default()).await;
    let (status, health) = degraded.get("/health").await;
    assert_eq!(status, StatusCode::OK, "degraded still answers 200");
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["components"]["cache"]["status"], "down");
    assert!(
        health["components"]["cache"]["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("connection refused")
    );
    let (status, _) = degraded
        .post(
            "/order",
            &json!({"productId": "MOUSE-007", "quantity": 1, "customerId": "c"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "orders still work while degraded"
    );
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text_and_show_requests_orders_queues_outbox_vendors_and_cache()
{
    let app = TestApp::open().await;
    app.post(
        "/order",
        &json!({"productId": "MOUSE-007", "quantity": 1, "customerId": "c"}),
    )
    .await;
    app.get("/api/products/MOUSE-007").await;
    app.get("/api/products/MOUSE-007").await;
    app.get("/api/orders/not-a-uuid").await;
    let brew = reqwest::Method::from_bytes(b"BREW").expect("method");
    app.send(brew, "/api/products", None, &[]).await;
    let response = app.send(reqwest::Method::GET, "/metrics", None, &[]).await;
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.expect("text");
    let metrics = parse_exposition(&text).unwrap_or_else(|why| panic!("{why}\n{text}"));
    let value = |name: &str, labels: &[(&str, &str)]| {
        metrics
            .value(name, labels)
            .unwrap_or_else(|| panic!("no {name} {labels:?} in\n{text}"))
    };
    let posted = [("route", "/order"), ("method", "POST"), ("status", "201")];
    assert_eq!(value("http_requests_total", &posted), 1.0);
    let bad = [
        ("route", "/api/orders/{id}"),
        ("method", "GET"),
        ("status", "400"),
    ];
    assert_eq!(value("http_requests_total", &bad), 1.0);
    let methods: Vec<&str> = metrics
        .named("http_requests_total")
        .filter_map(|sample| sample.labels.get("method").map(String::as_str))
        .collect();
    assert!(methods.contains(&"other"), "BREW is counted as other");
    assert!(
        methods
            .iter()
            .all(|m| ["GET", "POST", "DELETE", "other"].contains(m)),
        "only known methods: {methods:?}"
    );
    assert_eq!(
        value(
            "http_request_duration_seconds_bucket",
            &[("route", "/order"), ("le", "+Inf")]
        ),
        1.0
    );
    assert_eq!(value("aggregator_orders", &[("status", "reserved")]), 1.0);
    assert_eq!(
        value("aggregator_vendor_health", &[("vendor", "VendorA")]),
        0.0
    );
    assert!(
        value(
            "aggregator_vendor_sync_age_seconds",
            &[("vendor", "VendorA")]
        ) >= 0.0
    );
    for queue in [
        "order_queue",
        "order_queue.retry.1",
        "order_queue.dlq",
        "stock_sync_queue.dlq",
    ] {
        value("aggregator_queue_messages", &[("queue", queue)]);
    }
    assert_eq!(
        value("aggregator_queue_messages", &[("queue", "order_queue.dlq")]),
        0.0
    );
    assert_eq!(
        value("aggregator_outbox_messages", &[]),
        1.0,
        "the placement's message"
    );
    assert!(value("aggregator_outbox_oldest_age_seconds", &[]) >= 0.0);
    assert_eq!(
        value("aggregator_cache_reads_total", &[("outcome", "hit")]),
        1.0
    );
    assert_eq!(
        value("aggregator_component_up", &[("component", "store")]),
        1.0
    );
    assert_eq!(
        value("aggregator_component_up", &[("component", "queue")]),
        1.0
    );
    assert_eq!(
        metrics
            .types
            .get("aggregator_cache_reads_total")
            .map(String::as_str),
        Some("counter")
    );
}

/// Reading `/metrics` counts dead letters without taking them: the next reader gets
/// each one as a first delivery, never marked redelivered.
#[tokio::test]
async fn metrics_count_dead_letters_without_touching_them() {
    let app = TestApp::open().await;
    let queue = &app.queue;
    let mut subscription = queue
        .subscribe(QueueName::Orders, 1)
        .await
        .expect("subscribe");
    let message = Message::json(&json!({"kind": "not an order message"})).expect("message");
    queue
        .publish(QueueName::Orders, &message)
        .await
        .expect("publish");
    let delivery = subscription.next().await.expect("delivery");
    delivery
        .dead_letter("malformed")
        .await
        .expect("dead letter");
    for _ in 0..3 {
        let text = app
            .send(reqwest::Method::GET, "/metrics", None, &[])
            .await
            .text()
            .await
            .expect("text");
        let metrics = parse_exposition(&text).expect("valid");
        assert_eq!(
            metrics.value("aggregator_queue_messages", &[("queue", "order_queue.dlq")]),
            Some(1.0)
        );
    }
    queue
        .replay_dead_letters(QueueName::Orders, None)
        .await
        .expect("replay");
    let again = subscription.next().await.expect("delivery");
    assert_eq!(again.message.id, message.id);
    assert!(!again.redelivered, "scrapes did not deliver it");
    again.ack().await.expect("ack");
}

/// Header `name` of `response` as text (empty when missing).
fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// An API whose cache check fails with "connection refused" and counts its calls.
async fn app_with_a_down_cache(
    config: ApiConfig,
) -> (TestApp, Arc<std::sync::atomic::AtomicUsize>) {
    let store: Arc<dyn StockStore> = Arc::new(InMemoryStockStore::new());
    seed(store.as_ref()).await;
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = calls.clone();
    let down: Probe = Arc::new(move || {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            Err(Error::transient(
                "cache",
                "connection refused at 10.1.2.3:6379",
            ))
        })
    });
    let queue = InMemoryOrderQueue::default();
    let backends = Backends {
        store,
        queue: Arc::new(queue.clone()),
        cache: Arc::new(InMemoryCache::new()),
        clock: Arc::new(SystemClock),
        probes: HealthProbes {
            cache: down,
            ..HealthProbes::default()
        },
        replica: None,
    };
    let state = api_state(backends, config).await;
    (TestApp::serve(state, queue).await, calls)
}

#[tokio::test]
async fn health_under_many_callers_checks_the_components_once_a_second() {
    let (app, calls) = app_with_a_down_cache(ApiConfig::default()).await;
    let asks = (0..50).map(|_| app.get("/health"));
    for (status, health) in futures_util::future::join_all(asks).await {
        assert_eq!(status, StatusCode::OK);
        assert_eq!(health["components"]["cache"]["status"], "down");
    }
    assert_eq!(
        calls.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "50 callers, one check"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    app.get("/health").await;
    assert_eq!(
        calls.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "checked again after a second"
    );
}

#[tokio::test]
async fn only_admin_keys_read_why_a_component_is_down() {
    const ADMIN: &str = "admin-key-for-health-00001";
    const CLIENT: &str = "client-key-for-health-0001";
    let keys = ApiKeys::none().with(ADMIN, Role::Admin).with(
        CLIENT,
        Role::Client(CustomerId::new("alice").expect("customer")),
    );
    let (app, _) = app_with_a_down_cache(ApiConfig {
        keys,
        ..ApiConfig::default()
    })
    .await;
    let detail = |health: &serde_json::Value| {
        health["components"]["cache"]["detail"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let (status, anonymous) = app.get("/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(anonymous["components"]["cache"]["status"], "down");
    assert!(!detail(&anonymous).contains("10.1.2.3"), "{anonymous}");
    assert!(detail(&anonymous).contains("admin"), "{anonymous}");
    for (key, sees) in [(CLIENT, false), (ADMIN, true)] {
        let response = app
            .send(
                reqwest::Method::GET,
                "/health",
                None,
                &[("authorization", &format!("Bearer {key}"))],
            )
            .await;
        let health: serde_json::Value = response.json().await.expect("json");
        assert_eq!(
            detail(&health).contains("connection refused at 10.1.2.3"),
            sees,
            "{key}: {health}"
        );
    }
}

#[tokio::test]
async fn the_openapi_document_lists_every_endpoint_and_docs_render_it() {
    let app = TestApp::open().await;
    let (status, api) = app.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        api["openapi"]
            .as_str()
            .unwrap_or_default()
            .starts_with("3.")
    );
    let paths = api["paths"].as_object().expect("paths");
    for path in [
        "/order",
        "/api/orders",
        "/api/orders/{id}",
        "/api/orders/{id}/cancel",
        "/api/products",
        "/api/products/{id}",
        "/api/vendors",
        "/api/holds",
        "/api/holds/{id}",
        "/api/holds/{id}/extend",
        "/api/holds/{id}/order",
        "/api/ops/stock-sync",
        "/api/ops/dlq/{queue}",
        "/api/ops/dlq/{queue}/replay",
        "/health",
        "/health/live",
        "/health/ready",
        "/metrics",
        "/api/events",
        "/api/webhooks",
        "/api/webhooks/{id}",
        "/api/webhooks/{id}/enable",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from the OpenAPI document"
        );
    }
    assert!(
        api["paths"]["/api/orders"]["post"]["responses"]["413"].is_object(),
        "common answers listed"
    );
    assert!(api["components"]["schemas"]["Problem"].is_object());
    assert!(
        api["paths"]["/api/events"]["get"]["responses"]["200"]["content"]["text/event-stream"]
            .is_object(),
        "the event stream is documented as text/event-stream"
    );
    for schema in ["OrderEventView", "ResetView", "WebhookBody", "WebhookView"] {
        assert!(
            api["components"]["schemas"][schema].is_object(),
            "{schema} missing"
        );
    }
    assert_eq!(
        aggregator_http::api::openapi().paths.paths.len(),
        paths.len()
    );
}

#[tokio::test]
async fn the_docs_page_is_served_from_the_binary_and_loads_nothing_from_elsewhere() {
    let app = TestApp::open().await;
    let response = app.send(reqwest::Method::GET, "/docs/", None, &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(header(&response, "content-type").starts_with("text/html"));
    let policy = header(&response, "content-security-policy");
    assert!(policy.contains("default-src 'self'"), "{policy}");
    let page = response.text().await.expect("html");
    assert!(
        !page.contains("https://"),
        "no outside address in the page:\n{page}"
    );
    for asset in [
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "swagger-initializer.js",
    ] {
        assert!(page.contains(asset), "{asset} is linked");
        let response = app
            .send(reqwest::Method::GET, &format!("/docs/{asset}"), None, &[])
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{asset} is served");
        assert!(header(&response, "content-security-policy").contains("default-src 'self'"));
    }
    let initializer = app
        .send(
            reqwest::Method::GET,
            "/docs/swagger-initializer.js",
            None,
            &[],
        )
        .await
        .text()
        .await
        .expect("script");
    assert!(initializer.contains("/openapi.json"), "{initializer}");
    assert!(
        !initializer.contains("validator.swagger.io"),
        "{initializer}"
    );
    let bare = app.send(reqwest::Method::GET, "/docs", None, &[]).await;
    assert_eq!(bare.status(), StatusCode::OK, "/docs leads to the page");
}

/// The console is served from the binary to anyone (its data calls carry the key), with
/// a policy that lets it load and call nothing but this server, and its page links only
/// its own script and style sheet.
#[tokio::test]
async fn the_console_is_served_from_the_binary_without_a_key_and_loads_nothing_from_elsewhere() {
    let app = TestApp::start(ApiConfig {
        keys: ApiKeys::none().with("admin-key-for-the-console-test", Role::Admin),
        ..ApiConfig::default()
    })
    .await;
    let page = app.send(reqwest::Method::GET, "/console/", None, &[]).await;
    assert_eq!(page.status(), StatusCode::OK, "no key needed for the page");
    assert!(header(&page, "content-type").starts_with("text/html"));
    let policy = header(&page, "content-security-policy");
    assert!(
        policy.contains("default-src 'self'") && !policy.contains("unsafe-inline"),
        "{policy}"
    );
    let html = page.text().await.expect("html");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    for (asset, kind) in [
        ("/console/console.js", "text/javascript"),
        ("/console/console.css", "text/css"),
    ] {
        assert!(html.contains(asset), "{asset} is linked");
        let response = app.send(reqwest::Method::GET, asset, None, &[]).await;
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        assert!(
            header(&response, "content-type").starts_with(kind),
            "{asset}"
        );
        assert!(header(&response, "content-security-policy").contains("default-src 'self'"));
    }
    let bare = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(format!("{}/console", app.base))
        .send()
        .await
        .expect("sent");
    assert_eq!(bare.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(header(&bare, "location"), "/console/");
    let data = app
        .send(reqwest::Method::GET, "/api/orders", None, &[])
        .await;
    assert_eq!(
        data.status(),
        StatusCode::UNAUTHORIZED,
        "the data still needs a key"
    );
}

#[tokio::test]
async fn health_shows_a_read_replica_serving_or_bypassed_and_bypassed_is_degraded() {
    let serving = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flag = serving.clone();
    let replica: ReplicaProbe = Arc::new(move || {
        if flag.load(std::sync::atomic::Ordering::SeqCst) {
            Ok("serving reads, lag at most 120 ms".into())
        } else {
            Err("lagging at least 9000 ms behind the primary; reads go to the primary".into())
        }
    });
    let store: Arc<dyn StockStore> = Arc::new(InMemoryStockStore::new());
    seed(store.as_ref()).await;
    let queue = InMemoryOrderQueue::default();
    let backends = Backends {
        store,
        queue: Arc::new(queue.clone()),
        cache: Arc::new(InMemoryCache::new()),
        clock: Arc::new(SystemClock),
        probes: HealthProbes {
            replica: Some(replica),
            ..HealthProbes::default()
        },
        replica: None,
    };
    let state = api_state(backends, ApiConfig::default()).await;
    let app = TestApp::serve(state, queue).await;
    let (status, health) = app.get("/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["components"]["replica"]["status"], "up", "{health}");
    assert_eq!(
        health["components"]["replica"]["detail"],
        "serving reads, lag at most 120 ms"
    );
    serving.store(false, std::sync::atomic::Ordering::SeqCst);
    // Checks are remembered for a second.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, health) = app.get("/health").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the primary still answers: not down"
    );
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["components"]["replica"]["status"], "bypassed");
    assert!(
        health["components"]["replica"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("reads go to the primary")),
        "{health}"
    );
}

#[tokio::test]
async fn health_without_a_read_replica_has_no_replica_component() {
    let (app, _) = app_with_a_down_cache(ApiConfig::default()).await;
    let (_, health) = app.get("/health").await;
    assert!(health["components"].get("replica").is_none(), "{health}");
}
