//! Bounded admission of new orders: past [`ApiConfig::max_orders_in_flight`] placements
//! at once, another waits at most [`ApiConfig::admission_wait`] for one of them to finish
//! and is then refused (503 with `Retry-After`) instead of queueing behind the ones the
//! store is already taking, so that past capacity the orders taken keep their latency
//! and the rest learn it within that wait.
//!
//! A placement takes its place once its body is read ([`Admission::enter`], from the
//! handler), so a client that is slow to send its body holds no place; while every
//! place is taken (and there is no wait), [`admit_placement`] refuses new placements at
//! the door, before their key check, rate limit or body cost anything.
//!
//! [`ApiConfig::max_orders_in_flight`]: super::ApiConfig::max_orders_in_flight
//! [`ApiConfig::admission_wait`]: super::ApiConfig::admission_wait

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::problem::ApiError;
use super::state::ApiState;

/// The paths whose `POST` places a new order.
const PLACEMENT_PATHS: [&str; 2] = ["/api/orders", "/order"];

/// Places for placements in flight in this process.
#[derive(Debug)]
pub(crate) struct Admission {
    /// `None`: no bound.
    places: Option<Arc<Semaphore>>,
    wait: Duration,
}

impl Admission {
    /// At most `limit` placements at once (0: no bound); one more waits at most `wait`
    /// for a place.
    pub(crate) fn new(limit: usize, wait: Duration) -> Self {
        let limit = limit.min(Semaphore::MAX_PERMITS);
        Self {
            places: (limit > 0).then(|| Arc::new(Semaphore::new(limit))),
            wait,
        }
    }

    /// A place for one more placement (`Some(None)` when there is no bound), or `None`
    /// when every place stayed taken for the whole wait.
    pub(crate) async fn enter(&self) -> Option<Option<OwnedSemaphorePermit>> {
        let Some(places) = &self.places else {
            return Some(None);
        };
        if let Ok(place) = places.clone().try_acquire_owned() {
            return Some(Some(place));
        }
        if self.wait.is_zero() {
            return None;
        }
        match tokio::time::timeout(self.wait, places.clone().acquire_owned()).await {
            Ok(Ok(place)) => Some(Some(place)),
            _ => None,
        }
    }
}

/// Marks a response as a refusal for load, so that it is counted but not logged as a
/// failure.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shed;

impl Admission {
    /// True when a placement arriving now would be refused without waiting: every
    /// place is taken and there is no wait.
    fn refuses_at_once(&self) -> bool {
        self.wait.is_zero()
            && self
                .places
                .as_ref()
                .is_some_and(|places| places.available_permits() == 0)
    }
}

/// The answer to a placement refused for load: 503 `overloaded`, `Retry-After: 1`.
pub(crate) fn overloaded(state: &ApiState) -> ApiError {
    let config = &state.inner.config;
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "overloaded",
        "Too many orders in flight",
        format!(
            "this server is placing {} orders already and none finished within {} ms; try again shortly",
            config.max_orders_in_flight,
            config.admission_wait.as_millis()
        ),
    )
    .retry_after(1)
    .for_load()
}

/// Refuses a `POST` that places an order (`/api/orders`, `/order`) at the door while
/// every place is taken and there is no wait (see [`overloaded`]); every other request,
/// and a placement that may still get a place, passes (the handler takes the place).
pub(crate) async fn admit_placement(
    State(state): State<ApiState>,
    req: Request,
    next: Next,
) -> Response {
    if req.method() == Method::POST
        && PLACEMENT_PATHS.contains(&req.uri().path())
        && state.inner.admission.refuses_at_once()
    {
        return overloaded(&state).into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn places_are_bounded_waited_for_and_given_back() {
        let admission = Admission::new(2, Duration::from_millis(5));
        let first = admission.enter().await.expect("first");
        let second = admission.enter().await.expect("second");
        let started = tokio::time::Instant::now();
        assert!(
            admission.enter().await.is_none(),
            "a third is over the bound"
        );
        assert_eq!(
            started.elapsed(),
            Duration::from_millis(5),
            "refused after the wait, not before"
        );
        drop(first);
        let third = admission.enter().await.expect("a place came free");
        // A place that comes free during the wait is taken.
        let waiting = tokio::spawn({
            let places = admission.places.clone().expect("bounded");
            async move {
                let admission = Admission {
                    places: Some(places),
                    wait: Duration::from_millis(50),
                };
                admission.enter().await.is_some()
            }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(second);
        assert!(
            waiting.await.expect("task"),
            "the freed place went to the waiter"
        );
        drop(third);
    }

    #[tokio::test]
    async fn a_bound_of_zero_admits_everything() {
        let admission = Admission::new(0, Duration::ZERO);
        for _ in 0..1_000 {
            assert!(admission.enter().await.is_some());
        }
    }
}
