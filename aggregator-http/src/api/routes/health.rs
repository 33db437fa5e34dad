//! Health: every component's state (`/health`), liveness and readiness.

use std::future::Future;
use std::time::{Duration, Instant};

use aggregator_core::domain::VendorHealth;
use aggregator_core::error::Result;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::extract::Caller;
use crate::api::health_report::{
    CancellationsView, ComponentHealth, Components, HealthReport, VendorHealthView,
};
use crate::api::state::ApiState;
use crate::api::views::rfc3339;

/// How long one component's check may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long one round of checks answers `/health`: under load, however many callers
/// ask, the components are checked at most once a second.
const CHECKED_FOR: Duration = Duration::from_secs(1);

/// What a caller without the right to see dependency errors reads in their place.
const DETAIL_HIDDEN: &str = "unavailable (the reason is shown to admin keys)";

/// Past this, a pending cancellation makes the system `degraded`.
const STUCK_CANCELLATION: time::Duration = time::Duration::minutes(15);

async fn probe(check: impl Future<Output = Result<()>>) -> ComponentHealth {
    match tokio::time::timeout(PROBE_TIMEOUT, check).await {
        Ok(Ok(())) => ComponentHealth {
            status: "up".into(),
            detail: None,
        },
        Ok(Err(error)) => ComponentHealth {
            status: "down".into(),
            detail: Some(error.to_string()),
        },
        Err(_) => ComponentHealth {
            status: "down".into(),
            detail: Some(format!("no answer within {} s", PROBE_TIMEOUT.as_secs())),
        },
    }
}

/// Every component and vendor, and an overall `ok`, `degraded` or `down`. Checked at
/// most once a second; why a component is down is told to admin keys (and on a server
/// without keys), not to anyone else.
#[utoipa::path(get, path = "/health", tag = "health",
    responses(
        (status = 200, description = "ok or degraded", body = HealthReport),
        (status = 503, description = "down: the store is unreachable", body = HealthReport),
    ))]
pub(crate) async fn health(
    State(state): State<ApiState>,
    caller: Caller,
) -> (StatusCode, Json<HealthReport>) {
    let (code, mut report) = {
        let mut memo = state.inner.health.0.lock().await;
        match memo.as_ref() {
            Some((at, code, report)) if at.elapsed() < CHECKED_FOR => (*code, report.clone()),
            _ => {
                let (code, report) = check(&state).await;
                *memo = Some((Instant::now(), code, report.clone()));
                (code, report)
            }
        }
    };
    let sees_reasons = match caller {
        Caller::Admin => true,
        Caller::Open => state.inner.config.keys.is_empty(),
        Caller::Client(_) => false,
    };
    if !sees_reasons {
        let components = &mut report.components;
        for component in [
            Some(&mut components.store),
            Some(&mut components.queue),
            Some(&mut components.cache),
            components.replica.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            if component.detail.is_some() {
                component.detail = Some(DETAIL_HIDDEN.to_owned());
            }
        }
    }
    (code, Json(report))
}

/// One round of checks of every component.
async fn check(state: &ApiState) -> (StatusCode, HealthReport) {
    let inner = &state.inner;
    let vendors_read = tokio::time::timeout(PROBE_TIMEOUT, inner.store.vendors()).await;
    let (store, vendors) = match vendors_read {
        Ok(Ok(vendors)) => (
            ComponentHealth {
                status: "up".into(),
                detail: None,
            },
            vendors,
        ),
        Ok(Err(error)) => (
            ComponentHealth {
                status: "down".into(),
                detail: Some(error.to_string()),
            },
            Vec::new(),
        ),
        Err(_) => (
            ComponentHealth {
                status: "down".into(),
                detail: Some(format!("no answer within {} s", PROBE_TIMEOUT.as_secs())),
            },
            Vec::new(),
        ),
    };
    let (queue, cache) = tokio::join!(probe((inner.probes.queue)()), probe((inner.probes.cache)()));
    let replica = inner.probes.replica.as_ref().map(|probe| match probe() {
        Ok(detail) => ComponentHealth {
            status: "up".into(),
            detail: Some(detail),
        },
        Err(detail) => ComponentHealth {
            status: "bypassed".into(),
            detail: Some(detail),
        },
    });
    let now = time::OffsetDateTime::now_utc();
    let cancellations =
        match tokio::time::timeout(PROBE_TIMEOUT, inner.store.cancellation_backlog()).await {
            Ok(Ok(backlog)) => {
                let age = backlog.oldest_killed_at.map_or(time::Duration::ZERO, |at| {
                    (now - at).max(time::Duration::ZERO)
                });
                Some(CancellationsView {
                    status: if age > STUCK_CANCELLATION {
                        "stuck"
                    } else {
                        "ok"
                    }
                    .into(),
                    pending: backlog.pending,
                    oldest_age_seconds: age.as_seconds_f64(),
                })
            }
            _ => None,
        };
    let store_down = store.status != "up";
    let degraded = queue.status != "up"
        || cache.status != "up"
        || replica.as_ref().is_some_and(|r| r.status != "up")
        || cancellations.as_ref().is_some_and(|c| c.status != "ok")
        || vendors.iter().any(|v| v.health != VendorHealth::Healthy);
    let status = if store_down {
        "down"
    } else if degraded {
        "degraded"
    } else {
        "ok"
    };
    let report = HealthReport {
        status: status.into(),
        success: !store_down,
        components: Components {
            store,
            queue,
            cache,
            replica,
            cancellations,
            vendors: vendors
                .iter()
                .map(|v| VendorHealthView {
                    id: v.id.to_string(),
                    status: v.health.as_str().into(),
                    last_good_sync: v.last_good_sync.map(rfc3339),
                })
                .collect(),
        },
        timestamp: rfc3339(now),
    };
    let code = if store_down {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, report)
}

/// A simple state answer for liveness and readiness.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Probe {
    /// `ok` or `unavailable`.
    status: String,
}

/// The process is running and answering.
#[utoipa::path(get, path = "/health/live", tag = "health",
    responses((status = 200, description = "Alive", body = Probe)))]
pub(crate) async fn live() -> Json<Probe> {
    Json(Probe {
        status: "ok".into(),
    })
}

/// The process can take orders: its store answers.
#[utoipa::path(get, path = "/health/ready", tag = "health",
    responses(
        (status = 200, description = "Ready", body = Probe),
        (status = 503, description = "The store is unreachable", body = Probe),
    ))]
pub(crate) async fn ready(State(state): State<ApiState>) -> (StatusCode, Json<Probe>) {
    let up = probe(async { state.inner.store.vendors().await.map(|_| ()) }).await;
    if up.status == "up" {
        (
            StatusCode::OK,
            Json(Probe {
                status: "ok".into(),
            }),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Probe {
                status: "unavailable".into(),
            }),
        )
    }
}
