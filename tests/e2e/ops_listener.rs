//! The ops listener: a process without the API still serves `/metrics`, `/health/live`
//! and `/health/ready`, and its figures show what its parts did.

use std::sync::Arc;
use std::time::Duration;

use aggregator_core::error::Error;
use aggregator_http::api::Probe;
use aggregator_http::ops::{Exposition, parse_exposition};
use order_aggregator::app::App;
use order_aggregator::settings::Settings;
use order_aggregator::stack::Roles;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::support::{eventually, get_json, memory_backends, settings, vendors};

/// Every part but the API, as a scaled-out back-office process runs.
const BACK_OFFICE: Roles = Roles {
    api: false,
    ..Roles::ALL
};

/// `settings` with an ops listener on a free port.
fn with_ops_listener(mut settings: Settings) -> Settings {
    settings.ops.ops_addr = Some("127.0.0.1:0".parse().expect("addr"));
    settings
}

/// GET `path` of the ops listener at `ops`.
async fn answer(http: &reqwest::Client, ops: &str, path: &str) -> reqwest::Response {
    http.get(format!("{ops}{path}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

async fn scrape(http: &reqwest::Client, base: &str) -> Exposition {
    let response = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.expect("text");
    parse_exposition(&text).unwrap_or_else(|why| panic!("{why}\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_without_the_api_serves_metrics_and_health_showing_its_work() {
    let (a, b) = vendors().await;
    let backends = memory_backends();
    let api = App::on(settings(&[&a, &b]), backends.clone())
        .await
        .expect("api app")
        .start(Roles {
            api: true,
            ..Roles::NONE
        })
        .await
        .expect("api started");
    let back_office = App::on(with_ops_listener(settings(&[&a, &b])), backends)
        .await
        .expect("back-office app")
        .start(BACK_OFFICE)
        .await
        .expect("back office started");
    assert_eq!(back_office.api_addr, None);
    let ops = format!("http://{}", back_office.ops_addr.expect("ops listener"));
    let base = format!("http://{}", api.api_addr.expect("api"));
    let http = reqwest::Client::new();

    let live = answer(&http, &ops, "/health/live").await;
    assert_eq!(live.status(), StatusCode::OK);
    let ready = answer(&http, &ops, "/health/ready").await;
    assert_eq!(ready.status(), StatusCode::OK);
    let ready: Value = ready.json().await.expect("json");
    assert_eq!(ready, json!({"status": "ok", "store": "up", "queue": "up"}));
    let other = answer(&http, &ops, "/api/orders").await;
    assert_eq!(other.status(), StatusCode::NOT_FOUND, "only the ops paths");

    eventually("the first sync", Duration::from_secs(10), || async {
        let product = get_json(&http, &format!("{base}/api/products/LAPTOP-001")).await;
        (product["data"]["product"]["available"].as_i64() > Some(0)).then_some(())
    })
    .await;
    let placed = http
        .post(format!("{base}/order"))
        .json(&json!({"productId": "LAPTOP-001", "quantity": 1, "customerId": "ops"}))
        .send()
        .await
        .expect("placed");
    assert_eq!(placed.status(), StatusCode::CREATED);

    let metrics = eventually("the order confirmed", Duration::from_secs(20), || async {
        let metrics = scrape(&http, &ops).await;
        (metrics.value("aggregator_orders", &[("status", "confirmed")]) == Some(1.0))
            .then_some(metrics)
    })
    .await;
    let at_least_one = |name: &str, labels: &[(&str, &str)]| {
        let value = metrics.value(name, labels).unwrap_or(0.0);
        assert!(value >= 1.0, "{name} {labels:?} is {value}");
    };
    at_least_one(
        "aggregator_worker_messages_total",
        &[("outcome", "confirmed")],
    );
    at_least_one("aggregator_outbox_published_total", &[]);
    at_least_one(
        "aggregator_stock_syncs_total",
        &[("vendor", "VendorA"), ("outcome", "applied")],
    );
    at_least_one(
        "aggregator_batch_size_count",
        &[("batcher", "placement batcher")],
    );
    assert_eq!(
        metrics.value("aggregator_vendor_breaker_state", &[("vendor", "VendorA")]),
        Some(0.0),
        "closed"
    );
    assert_eq!(
        metrics.value("aggregator_queue_messages", &[("queue", "order_queue.dlq")]),
        Some(0.0)
    );
    assert!(
        metrics
            .value(
                "aggregator_vendor_sync_age_seconds",
                &[("vendor", "VendorB")]
            )
            .is_some_and(|age| (0.0..60.0).contains(&age))
    );
    for (name, kind) in [
        ("aggregator_worker_messages_total", "counter"),
        ("aggregator_batch_size", "histogram"),
        ("aggregator_stock_sync_duration_seconds", "histogram"),
        ("aggregator_outbox_oldest_age_seconds", "gauge"),
    ] {
        assert_eq!(
            metrics.types.get(name).map(String::as_str),
            Some(kind),
            "{name}"
        );
    }

    back_office.shutdown().await.expect("back office stopped");
    api.shutdown().await.expect("api stopped");
}

#[tokio::test]
async fn readiness_fails_while_the_queue_is_down_and_says_which() {
    let (a, b) = vendors().await;
    let mut backends = memory_backends();
    let down: Probe = Arc::new(|| {
        Box::pin(async { Err(Error::transient("queue", "connection refused at 10.0.0.7")) })
    });
    backends.probes.queue = down;
    let running = App::on(with_ops_listener(settings(&[&a, &b])), backends)
        .await
        .expect("app")
        .start(Roles {
            sweeper: true,
            ..Roles::NONE
        })
        .await
        .expect("started");
    let ops = format!("http://{}", running.ops_addr.expect("ops listener"));
    let http = reqwest::Client::new();
    let ready = answer(&http, &ops, "/health/ready").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = ready.text().await.expect("text");
    assert!(!body.contains("10.0.0.7"), "no raw error text: {body}");
    let body: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(body["queue"], "down");
    assert_eq!(body["store"], "up");
    let live = answer(&http, &ops, "/health/live").await;
    assert_eq!(live.status(), StatusCode::OK, "alive all the same");
    running.shutdown().await.expect("stopped");
}

#[tokio::test]
async fn an_ops_address_in_use_is_refused_at_start_with_the_setting_named() {
    let (a, b) = vendors().await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut settings = settings(&[&a, &b]);
    settings.ops.ops_addr = Some(taken.local_addr().expect("addr"));
    let error = App::on(settings, memory_backends())
        .await
        .expect("app")
        .start(Roles {
            sweeper: true,
            ..Roles::NONE
        })
        .await
        .expect_err("the port is taken");
    assert!(error.to_string().contains("opsAddr"), "{error}");
}

/// A confirmation margin smaller than the clock tolerance would let a report taken
/// before a sale prune it: refused at start, naming the setting.
#[tokio::test]
async fn a_confirmation_margin_below_the_clock_tolerance_is_refused_at_start() {
    let (a, b) = vendors().await;
    let mut settings = settings(&[&a, &b]);
    settings.sync.clock_tolerance = std::time::Duration::from_secs(5);
    settings.sync.confirmation_margin = std::time::Duration::from_secs(1);
    let error = App::on(settings, memory_backends())
        .await
        .expect_err("margin below tolerance");
    assert!(error.to_string().contains("confirmationMargin"), "{error}");
    assert!(error.to_string().contains("--clock-tolerance"), "{error}");
}
