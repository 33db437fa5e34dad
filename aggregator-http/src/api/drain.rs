//! Lingering close: a request whose body the server did not read to the end (it was
//! refused as too large, unauthorized, rate-limited...) has the rest read and thrown
//! away, up to a bound, before the answer goes out.
//!
//! Without it the server closes the connection while the client is still writing, the
//! client's TCP stack receives a reset, and most clients report a broken connection
//! instead of the 413 or 401 the server sent.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};

/// At most this many unread bytes are read and discarded; a client sending more gets
/// its connection closed.
pub const DRAIN_BYTES: usize = 16 * 1024 * 1024;

/// Reading the rest of a body stops after this long.
pub const DRAIN_TIME: Duration = Duration::from_secs(10);

/// The request body, shared between the handlers (which read what they need) and this
/// middleware (which reads the rest).
#[derive(Clone)]
struct SharedBody(Arc<Mutex<Body>>);

impl SharedBody {
    fn lock(&self) -> MutexGuard<'_, Body> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl http_body::Body for SharedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut *self.lock()).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.lock().is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.lock().size_hint()
    }
}

/// Runs the request, then reads whatever of its body is left (at most [`DRAIN_BYTES`]
/// within [`DRAIN_TIME`]) before answering.
pub(crate) async fn drain_unread_body(req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    if http_body::Body::is_end_stream(&body) {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let shared = SharedBody(Arc::new(Mutex::new(body)));
    let response = next
        .run(Request::from_parts(parts, Body::new(shared.clone())))
        .await;
    if !http_body::Body::is_end_stream(&shared) {
        let drained = tokio::time::timeout(DRAIN_TIME, discard(shared)).await;
        if !matches!(drained, Ok(true)) {
            tracing::debug!("request body left unread past the drain bound; closing");
        }
    }
    response
}

/// Reads `body` to its end; false when it held more than [`DRAIN_BYTES`] or failed.
async fn discard(mut body: SharedBody) -> bool {
    let mut read = 0_usize;
    loop {
        let frame =
            std::future::poll_fn(|cx| http_body::Body::poll_frame(Pin::new(&mut body), cx)).await;
        match frame {
            None => return true,
            Some(Err(_)) => return false,
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    read = read.saturating_add(data.len());
                    if read > DRAIN_BYTES {
                        return false;
                    }
                }
            }
        }
    }
}
