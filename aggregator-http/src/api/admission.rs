//! Bounded admission of new orders: past [`ApiConfig::max_orders_in_flight`] placements
//! at once, another is refused at once (503 with `Retry-After`) instead of queueing
//! behind the ones the store is already taking, so that past capacity the orders taken
//! keep their latency and the rest learn it in well under a millisecond of work.
//!
//! [`ApiConfig::max_orders_in_flight`]: super::ApiConfig::max_orders_in_flight

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::problem::ApiError;
use super::state::ApiState;

/// Placements in flight in this process, against their bound.
#[derive(Debug)]
pub(crate) struct Admission {
    limit: usize,
    in_flight: Arc<AtomicUsize>,
}

impl Admission {
    /// At most `limit` placements at once; 0 admits every one.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            in_flight: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A place for one more placement, or `None` when `limit` are in flight.
    pub(crate) fn enter(&self) -> Option<Admitted> {
        let before = self.in_flight.fetch_add(1, Ordering::AcqRel);
        let admitted = Admitted {
            in_flight: Arc::clone(&self.in_flight),
        };
        // Over the bound: dropping the place gives the count back.
        (self.limit == 0 || before < self.limit).then_some(admitted)
    }

    /// Placements in flight now.
    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }
}

/// One placement's place; given back when dropped (answered, or its caller went away).
#[derive(Debug)]
pub(crate) struct Admitted {
    in_flight: Arc<AtomicUsize>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Marks a response as a refusal for load, so that it is counted but not logged as a
/// failure.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shed;

/// Admits a `POST` that places an order when fewer than the bound are in flight, and
/// answers 503 with `Retry-After: 1` (type `overloaded`) at once otherwise. Other methods
/// of the same routes pass.
pub(crate) async fn admit_placement(
    State(state): State<ApiState>,
    req: Request,
    next: Next,
) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(admitted) = state.inner.admission.enter() else {
        let limit = state.inner.config.max_orders_in_flight;
        let mut response = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "Too many orders in flight",
            format!("this server is placing {limit} orders already; try again shortly"),
        )
        .retry_after(1)
        .into_response();
        response.extensions_mut().insert(Shed);
        return response;
    };
    let response = next.run(req).await;
    drop(admitted);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_bounded_and_given_back() {
        let admission = Admission::new(2);
        let first = admission.enter().expect("first");
        let second = admission.enter().expect("second");
        assert!(admission.enter().is_none(), "a third is over the bound");
        assert_eq!(admission.in_flight(), 2, "a refusal holds no place");
        drop(first);
        let third = admission.enter().expect("a place came free");
        drop((second, third));
        assert_eq!(admission.in_flight(), 0);
    }

    #[test]
    fn a_bound_of_zero_admits_everything() {
        let admission = Admission::new(0);
        let held: Vec<_> = (0..1_000).map(|_| admission.enter()).collect();
        assert!(held.iter().all(Option::is_some));
        assert_eq!(admission.in_flight(), 1_000);
    }
}
