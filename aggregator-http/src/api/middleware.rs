//! What runs around every handler: request ids, metrics, timeouts, API keys, rate
//! limits and idempotent replays.

use aggregator_core::domain::WebhookId;
use aggregator_core::traits::CacheExt;
use axum::body::Body;
use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::Instrument;

use super::config::Role;
use super::extract::Caller;
use super::problem::ApiError;
use super::public_paths::is_public;
use super::state::ApiState;

/// Counts the request by route pattern and status, and times it; answers 503 when it
/// runs past the configured timeout.
pub(crate) async fn metrics_and_timeout(
    State(state): State<ApiState>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = req.method().clone();
    let timeout = state.inner.config.request_timeout;
    let response = match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "The request took too long",
            format!("no answer within {} ms; try again", timeout.as_millis()),
        )
        .retry_after(1)
        .into_response(),
    };
    let status = response.status().as_u16();
    // An order refused for load is counted (by its status) but is no failure.
    let shed = response
        .extensions()
        .get::<super::admission::Shed>()
        .is_some();
    if status >= 500 && !shed {
        tracing::warn!(%route, %method, status, "request failed");
    }
    state
        .inner
        .gauges
        .telemetry()
        .request(&route, method.as_str(), status, started.elapsed());
    response
}

fn presented_key(req: &Request) -> Option<&str> {
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        return value.to_str().ok()?.strip_prefix("Bearer ").map(str::trim);
    }
    req.headers().get("x-api-key")?.to_str().ok().map(str::trim)
}

/// Finds out who is calling (API keys), then applies the per-key rate limit.
pub(crate) async fn authenticate(
    State(state): State<ApiState>,
    mut req: Request,
    next: Next,
) -> Response {
    let keys = &state.inner.config.keys;
    let (caller, limit_key) = if keys.is_empty() {
        // Open access: limit each client address (when the server knows it).
        let address = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(|| "local".to_owned(), |info| info.0.ip().to_string());
        (Caller::Open, format!("open:{address}"))
    } else {
        match presented_key(&req).and_then(|key| keys.role(key)) {
            Some((label, Role::Admin)) => (Caller::Admin, label.to_owned()),
            Some((label, Role::Client(customer))) => {
                (Caller::Client(customer.clone()), label.to_owned())
            }
            None if is_public(req.uri().path()) => (Caller::Open, "public".to_owned()),
            None => {
                let detail = if presented_key(&req).is_some() {
                    "the API key is not valid"
                } else {
                    "send an API key as `Authorization: Bearer KEY` or `X-API-Key: KEY`"
                };
                return ApiError::unauthorized(detail).into_response();
            }
        }
    };
    if req.uri().path() == "/metrics" && matches!(caller, Caller::Client(_)) {
        return ApiError::forbidden("/metrics needs an admin key").into_response();
    }
    if !is_public(req.uri().path()) {
        let limit = state.inner.config.rate_limit;
        let (decision, _) = state
            .inner
            .limiter
            .check(&format!("ratelimit:{limit_key}"), limit)
            .await;
        if !decision.allowed {
            return ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
                format!(
                    "at most {} requests per {} s for this key",
                    limit.max_requests,
                    limit.window.as_secs()
                ),
            )
            .retry_after(decision.retry_after.as_secs().max(1))
            .into_response();
        }
    }
    req.extensions_mut().insert(caller);
    req.extensions_mut().insert(LimitKey(limit_key));
    next.run(req).await
}

/// The name the rate limit and idempotent answers are kept under for this caller.
#[derive(Debug, Clone)]
pub(crate) struct LimitKey(pub(crate) String);

/// What is kept for an Idempotency-Key: the answer, or (while the first request with
/// the key runs) a claim on it with no answer yet.
#[derive(Debug, Serialize, Deserialize)]
struct KeptAnswer {
    request_hash: String,
    /// `None` while the first request is still running.
    #[serde(default)]
    answer: Option<Answer>,
}

/// A finished answer.
#[derive(Debug, Serialize, Deserialize)]
struct Answer {
    status: u16,
    content_type: String,
    /// The body, without what [`KeptWithout`] said to leave out.
    body: String,
    /// What to put back into the body when it is replayed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refill: Option<Refill>,
}

/// Set by a handler on an answer that carries a secret: the copy kept for replays
/// leaves it out (no secret is kept in the cache), and a replay reads it again from the
/// store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum KeptWithout {
    /// `data.secret` is the secret of this webhook endpoint.
    WebhookSecret(WebhookId),
}

/// What a replay puts back: see [`KeptWithout`].
type Refill = KeptWithout;

/// How long a claim on a key outlives the longest request, so that a process that died
/// mid-request does not block its key for long. While the request runs, its claim is
/// renewed every half of this plus the request timeout, so a request that runs past its
/// timeout (its caller got a 503) still holds the key until its answer is kept.
const CLAIM_SLACK: std::time::Duration = std::time::Duration::from_secs(5);

/// The cache key of an Idempotency-Key: a digest of the caller and the key, so that the
/// cache holds neither.
fn cache_key(caller: &str, key: &str) -> String {
    let digest = Sha256::new()
        .chain_update(caller.as_bytes())
        .chain_update([0])
        .chain_update(key.as_bytes())
        .finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("idempotency:{hex}")
}

/// Replays the kept answer of a repeated Idempotency-Key, or runs the request and
/// keeps its answer, for the POSTs the router attaches it to (every POST but the
/// placements, which are idempotent in the store itself, durably): a retry gets the
/// same answer, and the same key with another request gets 422. Without a working
/// cache the request simply runs.
///
/// The request runs in a task of its own that outlives this call: when the timeout
/// layer outside gives up on it (the caller gets a 503), it still finishes, and what it
/// did is kept under its key, so the caller's retry gets that answer instead of running
/// the request a second time.
pub(crate) async fn idempotent_replay(
    State(state): State<ApiState>,
    req: Request,
    next: Next,
) -> Response {
    let key = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // Attached to the routes whose POSTs keep their answer (the API's router says
    // which); their other methods are reads.
    let (Some(key), true) = (key, req.method() == Method::POST) else {
        return next.run(req).await;
    };
    if aggregator_core::domain::IdempotencyKey::new(&key).is_err() {
        return ApiError::invalid(
            "Idempotency-Key",
            "must be 1 to 255 printable ASCII characters",
        )
        .into_response();
    }
    let caller = req
        .extensions()
        .get::<LimitKey>()
        .map_or_else(|| "open".to_owned(), |k| k.0.clone());
    let (parts, body) = req.into_parts();
    let limit = state.inner.config.body_limit;
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "The request body is too large",
            format!("the body must be at most {limit} bytes"),
        )
        .into_response();
    };
    let mut hasher = Sha256::new();
    hasher.update(parts.method.as_str().as_bytes());
    hasher.update(parts.uri.path().as_bytes());
    hasher.update(&bytes);
    let request_hash: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let cache_key = cache_key(&caller, &key);
    let cache = &state.inner.cache;
    // Claim the key before running, so that of two identical requests in flight only
    // one runs; the other is told to come back (or gets the answer once it is kept).
    let claim = KeptAnswer {
        request_hash: request_hash.clone(),
        answer: None,
    };
    let claim_ttl = state.inner.config.request_timeout + CLAIM_SLACK;
    let claim_bytes = match serde_json::to_vec(&claim) {
        Ok(bytes) => bytes,
        Err(error) => {
            tracing::warn!(%error, "cannot encode an idempotency claim; running the request");
            return next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
        }
    };
    let mut owned = false;
    match cache
        .set_if_absent(&cache_key, &claim_bytes, claim_ttl)
        .await
    {
        Ok(true) => owned = true,
        Ok(false) => match cache.get_json::<KeptAnswer>(&cache_key).await {
            Ok(Some(kept)) if kept.request_hash != request_hash => {
                return ApiError::from(aggregator_core::Error::IdempotencyMismatch { key })
                    .into_response();
            }
            Ok(Some(KeptAnswer {
                answer: Some(answer),
                ..
            })) => return replay(&state, answer).await,
            Ok(Some(KeptAnswer { answer: None, .. })) => return in_progress(),
            // Gone in between (its claim ran out, or the first request failed): claim
            // it again, or let the one that did run it.
            Ok(None) => match cache
                .set_if_absent(&cache_key, &claim_bytes, claim_ttl)
                .await
            {
                Ok(true) => owned = true,
                _ => return in_progress(),
            },
            // The cache answered the claim but not the read: running now could run the
            // request twice; the caller tries again.
            Err(_) => {
                return ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "The Idempotency-Key cannot be checked right now",
                    "the cache did not answer; retry in a moment",
                )
                .retry_after(1)
                .into_response();
            }
        },
        // No working cache: the request simply runs.
        Err(error) => tracing::debug!(%error, "no idempotency claim; running the request"),
    }
    let request = Request::from_parts(parts, Body::from(bytes));
    if !owned {
        return next.run(request).await;
    }
    let run = KeyedRun {
        state: state.clone(),
        cache_key,
        request_hash,
        claim: claim_bytes,
        claim_ttl,
    };
    // The task goes on if this call is dropped (the caller's timeout); its answer is
    // kept either way.
    match tokio::spawn(run.run(next, request).in_current_span()).await {
        Ok(response) => response,
        Err(error) => {
            tracing::error!(%error, "a keyed request's task failed");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
                "the request could not be completed",
            )
            .into_response()
        }
    }
}

/// The answer to a request whose key another request with the same body is running
/// under.
fn in_progress() -> Response {
    let mut response = ApiError::new(
        StatusCode::CONFLICT,
        "request-in-progress",
        "A request with this Idempotency-Key is still running",
        "the first request with this key has not answered yet; retry in a moment",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// One keyed request whose claim this process holds.
struct KeyedRun {
    state: ApiState,
    cache_key: String,
    request_hash: String,
    claim: Vec<u8>,
    claim_ttl: std::time::Duration,
}

impl KeyedRun {
    /// Runs the request, renewing the claim while it runs, then keeps its answer (or,
    /// for an answer not worth keeping, frees the key) and returns it.
    async fn run(self, next: Next, request: Request) -> Response {
        let cache = &self.state.inner.cache;
        let handler = next.run(request);
        tokio::pin!(handler);
        let mut renew = tokio::time::interval(self.claim_ttl / 2);
        renew.tick().await;
        let response = loop {
            tokio::select! {
                response = &mut handler => break response,
                _ = renew.tick() => {
                    if let Err(error) = cache.set(&self.cache_key, &self.claim, self.claim_ttl).await {
                        tracing::warn!(%error, "could not renew an idempotency claim");
                    }
                }
            }
        };
        let status = response.status();
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            // Not an answer to keep: free the key so that a retry runs again.
            if let Err(error) = cache.delete(&self.cache_key).await {
                tracing::warn!(%error, "could not free an idempotency claim; it expires by itself");
            }
            return response;
        }
        let refill = response.extensions().get::<KeptWithout>().cloned();
        let (parts, body) = response.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, 16 * 1024 * 1024).await else {
            return ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
                "the answer could not be read back",
            )
            .into_response();
        };
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let kept_body = match &refill {
            Some(KeptWithout::WebhookSecret(_)) => without_secret(&text),
            None => Some(text),
        };
        match kept_body {
            Some(body) => {
                let kept = KeptAnswer {
                    request_hash: self.request_hash,
                    answer: Some(Answer {
                        status: status.as_u16(),
                        content_type: parts
                            .headers
                            .get(header::CONTENT_TYPE)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("application/json")
                            .to_owned(),
                        body,
                        refill,
                    }),
                };
                if let Err(error) = cache
                    .set_json(
                        &self.cache_key,
                        &kept,
                        self.state.inner.config.idempotency_ttl,
                    )
                    .await
                {
                    tracing::warn!(%error, "could not keep an idempotent answer; a retry will run again");
                }
            }
            // An answer whose secret cannot be taken out is not kept (a retry would
            // create a second endpoint, so hold the key until its claim runs out).
            None => tracing::warn!("an answer with a secret could not be kept without it"),
        }
        Response::from_parts(parts, Body::from(bytes))
    }
}

/// The JSON answer `body` without `data.secret`; `None` when it is not such JSON.
fn without_secret(body: &str) -> Option<String> {
    let mut value: serde_json::Value = serde_json::from_str(body).ok()?;
    value.get_mut("data")?.as_object_mut()?.remove("secret");
    serde_json::to_string(&value).ok()
}

/// The kept answer, as it was first given (a secret left out of the kept copy read
/// again from the store), marked as a replay.
async fn replay(state: &ApiState, answer: Answer) -> Response {
    let body = match &answer.refill {
        Some(KeptWithout::WebhookSecret(id)) => {
            match state.inner.store.webhook(*id).await {
                Ok(endpoint) => with_secret(&answer.body, &endpoint.secret),
                // Removed since: the answer is replayed without its secret.
                Err(_) => answer.body,
            }
        }
        None => answer.body,
    };
    let mut response = (
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK),
        body,
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&answer.content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

/// `body` (a JSON answer) with `data.secret` set to `secret`.
fn with_secret(body: &str, secret: &str) -> String {
    let Ok(mut value) = serde_json::from_str::<serde_json::Value>(body) else {
        return body.to_owned();
    };
    if let Some(data) = value.get_mut("data").and_then(|data| data.as_object_mut()) {
        data.insert(
            "secret".into(),
            serde_json::Value::String(secret.to_owned()),
        );
    }
    serde_json::to_string(&value).unwrap_or_else(|_| body.to_owned())
}
