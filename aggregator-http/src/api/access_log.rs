//! The access log: one `INFO` event per answered request, target `access`, carrying the
//! request id, method, route pattern (never the raw path, which can hold ids and
//! customers' data), status and latency in the event itself, so every line stands
//! alone. `RUST_LOG=access=off` turns it off.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

use super::request_id::REQUEST_ID;

/// Answers the request, then logs the answer; it runs inside the request-id layer.
pub(crate) async fn log_access(req: Request, next: Next) -> Response {
    if !tracing::enabled!(target: "access", tracing::Level::INFO) {
        return next.run(req).await;
    }
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let method = req.method().clone();
    let response = next.run(req).await;
    tracing::info!(
        target: "access",
        request_id,
        %method,
        route,
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1_000.0,
        "answered"
    );
    response
}
