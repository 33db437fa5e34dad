//! Applies the fault switches to the vendor's API.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::VendorError;
use crate::state::VendorState;

/// The largest body the malformed and slow-body switches rewrite.
const MAX_REWRITTEN_BODY: usize = 64 * 1024 * 1024;
/// How many pieces a slow body is sent in.
const SLOW_BODY_CHUNKS: usize = 10;

/// Middleware: every request is counted in its second; the rate limit, outage and error
/// rate answer before the handler runs; a lost answer,
/// latency, malformed and slow bodies act on the handler's answer.
pub(crate) async fn apply_faults(
    State(state): State<Arc<VendorState>>,
    request: Request,
    next: Next,
) -> Response {
    let faults = state.faults();
    if let Some(wait) = state.arrive() {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let mut response = VendorError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "{} takes at most {} requests a second",
                state.config.id, faults.rate_limit_per_sec
            ),
        )
        .into_response();
        if let Ok(value) = header::HeaderValue::from_str(&seconds.max(1).to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    if faults.outage {
        return VendorError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "outage",
            format!("{} is down (simulated outage)", state.config.id),
        )
        .into_response();
    }
    if state.roll(faults.error_rate) {
        return VendorError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "simulated_error",
            format!("{} failed this request on purpose", state.config.id),
        )
        .into_response();
    }
    let places_an_order =
        request.method() == axum::http::Method::POST && request.uri().path() == "/orders";
    let response = next.run(request).await;
    if places_an_order && response.status().is_success() && state.roll(faults.lost_answer_rate) {
        return lost_answer(response);
    }
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    if !faults.malformed && faults.slow_body_ms == 0 {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(mut bytes) = axum::body::to_bytes(body, MAX_REWRITTEN_BODY).await else {
        return VendorError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "body_too_large",
            "the answer was too large to rewrite for a fault",
        )
        .into_response();
    };
    if faults.malformed {
        bytes = bytes.slice(..bytes.len() / 2);
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    if faults.slow_body_ms == 0 {
        return Response::from_parts(parts, Body::from(bytes));
    }
    Response::from_parts(parts, slow_body(bytes, faults.slow_body_ms))
}

/// The order was placed, but its answer never arrives whole: the status line goes out,
/// then the connection breaks in the middle of the body.
fn lost_answer(response: Response) -> Response {
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    let broken = futures_util::stream::iter([
        Ok(Bytes::from_static(b"{\"orderId\":")),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "answer lost on purpose",
        )),
    ]);
    Response::from_parts(parts, Body::from_stream(broken))
}

/// A body that sends `bytes` in pieces spread over `total_ms`.
fn slow_body(bytes: Bytes, total_ms: u64) -> Body {
    let chunk = bytes.len().div_ceil(SLOW_BODY_CHUNKS).max(1);
    let pause = Duration::from_millis(total_ms / SLOW_BODY_CHUNKS as u64);
    let pieces: Vec<Bytes> = (0..bytes.len())
        .step_by(chunk)
        .map(|start| bytes.slice(start..(start + chunk).min(bytes.len())))
        .collect();
    let stream = futures_util::stream::unfold(pieces.into_iter(), move |mut rest| async move {
        let piece = rest.next()?;
        tokio::time::sleep(pause).await;
        Some((Ok::<_, std::io::Error>(piece), rest))
    });
    Body::from_stream(stream)
}
