//! A webhook receiver for tests: checks each delivery's signature the way docs/API.md
//! tells integrators to (its own HMAC-SHA256 over `"<Webhook-Timestamp>.<body>"`, not
//! the aggregator's code), keeps what it accepted, and can be told to fail.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How far a delivery's timestamp may be from the receiver's clock, in seconds.
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 300;

/// What the receiver answers to a correctly signed delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiverMode {
    /// 204, and the delivery is kept.
    Accept,
    /// This status, and the delivery is not kept (an outage of the receiver's own).
    Fail(u16),
}

/// One delivery the receiver accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedDelivery {
    /// Its `Webhook-Id`.
    pub id: String,
    /// Its body.
    pub body: serde_json::Value,
}

#[derive(Debug)]
struct ReceiverState {
    secret: Vec<u8>,
    mode: Mutex<ReceiverMode>,
    accepted: Mutex<Vec<ReceivedDelivery>>,
    attempts: Mutex<u64>,
    forged: Mutex<u64>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A receiver serving `POST /hooks` on a local port until dropped.
#[derive(Debug)]
pub struct WebhookReceiver {
    state: Arc<ReceiverState>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl WebhookReceiver {
    /// Starts a receiver checking signatures with `secret` on a free port of 127.0.0.1.
    pub async fn spawn_local(secret: &str) -> io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(ReceiverState {
            secret: secret.as_bytes().to_vec(),
            mode: Mutex::new(ReceiverMode::Accept),
            accepted: Mutex::new(Vec::new()),
            attempts: Mutex::new(0),
            forged: Mutex::new(0),
        });
        let app = Router::new()
            .route("/hooks", post(receive))
            .with_state(state.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(Self {
            state,
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// Where to register it: `http://127.0.0.1:<port>/hooks`.
    pub fn url(&self) -> String {
        format!("http://{}/hooks", self.addr)
    }

    /// Changes what it answers from now on.
    pub fn set_mode(&self, mode: ReceiverMode) {
        *lock(&self.state.mode) = mode;
    }

    /// The deliveries it accepted, in arrival order (repeats included).
    pub fn accepted(&self) -> Vec<ReceivedDelivery> {
        lock(&self.state.accepted).clone()
    }

    /// Every request it got, accepted or not.
    pub fn attempts(&self) -> u64 {
        *lock(&self.state.attempts)
    }

    /// Requests whose signature or timestamp did not check out (answered 401).
    pub fn forged(&self) -> u64 {
        *lock(&self.state.forged)
    }

    /// Stops serving; the port refuses connections afterwards.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The integrator's check: the timestamp is recent, and `v1=` of the signature header
/// is the hex HMAC-SHA256 of `"<timestamp>.<body>"` under the shared secret.
fn signed_correctly(secret: &[u8], headers: &HeaderMap, body: &[u8]) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(timestamp), Some(signatures)) =
        (header("webhook-timestamp"), header("webhook-signature"))
    else {
        return false;
    };
    let Ok(seconds) = timestamp.parse::<i64>() else {
        return false;
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if (now - seconds).abs() > TIMESTAMP_TOLERANCE_SECS {
        return false;
    }
    signatures
        .split(' ')
        .filter_map(|part| part.strip_prefix("v1="))
        .filter_map(|hex| {
            (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
                .collect::<Option<Vec<u8>>>()
        })
        .any(|given| {
            let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret) else {
                return false;
            };
            mac.update(timestamp.as_bytes());
            mac.update(b".");
            mac.update(body);
            mac.verify_slice(&given).is_ok()
        })
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    *lock(&state.attempts) += 1;
    if !signed_correctly(&state.secret, &headers, &body) {
        *lock(&state.forged) += 1;
        return StatusCode::UNAUTHORIZED;
    }
    if let ReceiverMode::Fail(status) = *lock(&state.mode) {
        return StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    }
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let Ok(body) = serde_json::from_slice(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    lock(&state.accepted).push(ReceivedDelivery { id, body });
    StatusCode::NO_CONTENT
}
