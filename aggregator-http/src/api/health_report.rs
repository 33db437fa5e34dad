//! What `/health` answers, and the last answer every caller shares for a moment. The
//! health routes fill these in; the API's state keeps the shared answer.

use std::time::Instant;

use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

/// The last round of checks, shared by every caller for a moment (`CHECKED_FOR` in the
/// health routes); one caller checks while the others wait for its answer.
#[derive(Debug, Default)]
pub(crate) struct HealthMemo(
    pub(crate) tokio::sync::Mutex<Option<(Instant, StatusCode, HealthReport)>>,
);

/// One component's state.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ComponentHealth {
    /// `up` or `down`.
    pub(crate) status: String,
    /// Why it is down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) detail: Option<String>,
}

/// One vendor's state, from its recent syncs.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VendorHealthView {
    /// The vendor.
    pub(crate) id: String,
    /// `healthy`, `degraded` or `down`.
    pub(crate) status: String,
    /// Our clock's time of its last good sync.
    pub(crate) last_good_sync: Option<String>,
}

/// The components.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Components {
    pub(crate) store: ComponentHealth,
    pub(crate) queue: ComponentHealth,
    pub(crate) cache: ComponentHealth,
    /// The read replica, when one is configured: `up` while it answers catalog and
    /// order-list reads, `bypassed` while the primary answers them (it lags too far or
    /// is down).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) replica: Option<ComponentHealth>,
    /// Cancellations at vendors that no vendor has confirmed yet (asked again until it
    /// does); absent when the store cannot say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cancellations: Option<CancellationsView>,
    pub(crate) vendors: Vec<VendorHealthView>,
}

/// Cancellations at vendors still pending.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CancellationsView {
    /// `ok`, or `stuck` once the oldest has been pending longer than 15 minutes (the
    /// system is `degraded` then: a vendor keeps refusing, or no worker runs).
    pub(crate) status: String,
    /// How many are pending.
    pub(crate) pending: u64,
    /// Seconds since the oldest one's key died (0 when none).
    pub(crate) oldest_age_seconds: f64,
}

/// The system's health.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HealthReport {
    /// `ok`, `degraded` (something other than the store is down, the read replica is
    /// bypassed, a vendor is not healthy, or a cancellation at a vendor is stuck; orders
    /// still work) or `down` (the store is down).
    pub(crate) status: String,
    /// True unless `down`.
    pub(crate) success: bool,
    /// Each component.
    pub(crate) components: Components,
    /// When this was checked.
    pub(crate) timestamp: String,
}
