//! Health: every component's state (`/health`), liveness and readiness.

use std::future::Future;
use std::time::Duration;

use aggregator_core::domain::VendorHealth;
use aggregator_core::error::Result;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::state::ApiState;
use crate::api::views::rfc3339;

/// How long one component's check may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// One component's state.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ComponentHealth {
    /// `up` or `down`.
    status: String,
    /// Why it is down.
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

/// One vendor's state, from its recent syncs.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VendorHealthView {
    /// The vendor.
    id: String,
    /// `healthy`, `degraded` or `down`.
    status: String,
    /// Our clock's time of its last good sync.
    last_good_sync: Option<String>,
}

/// The components.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Components {
    store: ComponentHealth,
    queue: ComponentHealth,
    cache: ComponentHealth,
    vendors: Vec<VendorHealthView>,
}

/// The system's health.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HealthReport {
    /// `ok`, `degraded` (something other than the store is down or a vendor is not
    /// healthy; orders still work) or `down` (the store is down).
    status: String,
    /// True unless `down`.
    success: bool,
    /// Each component.
    components: Components,
    /// When this was checked.
    timestamp: String,
}

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

/// Every component and vendor, and an overall `ok`, `degraded` or `down`.
#[utoipa::path(get, path = "/health", tag = "health",
    responses(
        (status = 200, description = "ok or degraded", body = HealthReport),
        (status = 503, description = "down: the store is unreachable", body = HealthReport),
    ))]
pub(crate) async fn health(State(state): State<ApiState>) -> (StatusCode, Json<HealthReport>) {
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
    let store_down = store.status != "up";
    let degraded = queue.status != "up"
        || cache.status != "up"
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
            vendors: vendors
                .iter()
                .map(|v| VendorHealthView {
                    id: v.id.to_string(),
                    status: v.health.as_str().into(),
                    last_good_sync: v.last_good_sync.map(rfc3339),
                })
                .collect(),
        },
        timestamp: rfc3339(time::OffsetDateTime::now_utc()),
    };
    let code = if store_down {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, Json(report))
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
