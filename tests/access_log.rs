//! One access log line per answered request.
//!
//! Its own test binary: the log subscriber is process-wide here. Inside the `api`
//! binary, tests on other threads would have `tracing` cache the access log's callsite
//! as disabled.

use std::io::Write;
use std::sync::{Arc, Mutex};

use reqwest::{Method, StatusCode};
use tracing_subscriber::fmt::MakeWriter;

#[path = "api/support.rs"]
#[allow(dead_code)]
mod support;

use support::TestApp;

/// Log lines written by this thread's subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Self;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    fn lines(&self) -> Vec<serde_json::Value> {
        let text = String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned();
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect()
    }
}

#[tokio::test]
async fn every_answer_is_logged_with_its_request_id_route_status_and_latency() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(captured.clone())
        .with_max_level(tracing::Level::INFO)
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    let app = TestApp::open().await;
    let private = uuid::Uuid::now_v7().to_string();
    let response = app
        .send(
            Method::GET,
            &format!("/api/orders/{private}"),
            None,
            &[("x-request-id", "access-log-test-1")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = app.send(Method::GET, "/api/products", None, &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let generated = response.headers()["x-request-id"]
        .to_str()
        .expect("id")
        .to_owned();

    let lines = captured.lines();
    let access: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["target"] == "access" && l["fields"]["message"] == "answered")
        .collect();
    assert_eq!(access.len(), 2, "{lines:#?}");
    let first = access[0];
    assert_eq!(first["level"], "INFO");
    assert_eq!(first["fields"]["status"], 404);
    assert!(
        first["fields"]["latency_ms"]
            .as_f64()
            .is_some_and(|ms| ms >= 0.0)
    );
    assert_eq!(first["fields"]["request_id"], "access-log-test-1");
    assert_eq!(first["fields"]["method"], "GET");
    assert_eq!(first["fields"]["route"], "/api/orders/{id}");
    assert!(
        !first.to_string().contains(&private),
        "the raw path stays out of the log: {first}"
    );
    assert_eq!(access[1]["fields"]["status"], 200);
    assert_eq!(access[1]["fields"]["request_id"], generated.as_str());
    assert_eq!(access[1]["fields"]["route"], "/api/products");
}
