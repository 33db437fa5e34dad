//! [`ops_router`]: `/metrics`, `/health/live` and `/health/ready` for a process that
//! does not serve the API (worker, relay, sweeper, sync).

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;

use super::probes::HealthProbes;
use super::system::SystemGauges;

/// The Prometheus text format's content type.
pub(crate) const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the ops listener reads: the system's gauges (and through them the store and
/// the queue) and the health checks of the queue and the cache.
#[derive(Debug, Clone)]
pub struct OpsState {
    /// The figures `/metrics` renders.
    pub gauges: SystemGauges,
    /// The queue's and the cache's checks.
    pub probes: HealthProbes,
}

/// The ops listener's routes:
/// * `GET /metrics`: every figure of this process in the Prometheus text format;
/// * `GET /health/live`: 200 while the process answers;
/// * `GET /health/ready`: 200 when the store and the queue answer, 503 otherwise (the
///   body names which is down, never why).
///
/// Anything else is 404. It carries no keys: listen on an address only operators reach.
pub fn ops_router(state: OpsState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .with_state(state)
}

async fn metrics(State(state): State<OpsState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, PROMETHEUS_TEXT)],
        state.gauges.render().await,
    )
}

async fn live() -> impl IntoResponse {
    axum::Json(json!({ "status": "ok" }))
}

async fn ready(State(state): State<OpsState>) -> impl IntoResponse {
    let store = state.gauges.store_answers().await;
    let queue = (state.probes.queue)().await.is_ok();
    let status = if store && queue {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = |up: bool| if up { "up" } else { "down" };
    (
        status,
        axum::Json(json!({
            "status": if status == StatusCode::OK { "ok" } else { "unavailable" },
            "store": word(store),
            "queue": word(queue),
        })),
    )
}
