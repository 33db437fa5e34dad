//! `/metrics`: Prometheus text.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::api::state::ApiState;
use crate::ops::PROMETHEUS_TEXT;

/// Requests by route, method and status, latency by route, orders by status, queue
/// depths, the outbox backlog, vendors' health, sync age and breakers, cache reads,
/// and the services' own counts (worker outcomes, batch sizes, relay, sweeper, syncs).
/// A figure that cannot be read right now keeps its last value, and
/// `aggregator_component_up` says which component could not be read.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text", body = String, content_type = "text/plain")))]
pub(crate) async fn metrics(State(state): State<ApiState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, PROMETHEUS_TEXT)],
        state.inner.gauges.render().await,
    )
}
