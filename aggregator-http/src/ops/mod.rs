//! Operating a process: its figures for Prometheus and its health.
//!
//! * [`Telemetry`]: one instance's figures (HTTP requests, gauges read at scrape time)
//!   plus the process-wide ones the core services record (worker outcomes, batch
//!   sizes, relay, sweeper, syncs), rendered in the Prometheus text format.
//! * [`SystemGauges`]: orders by status, queue depths (read without touching a
//!   message), the outbox backlog and its oldest message's age, vendors' sync age,
//!   health and breakers, cache reads.
//! * [`ops_router`]: `/metrics`, `/health/live`, `/health/ready` for the processes that
//!   do not serve the API (the API serves the same paths itself).
//! * [`parse_exposition`]: reads `/metrics` back, checking the format's rules.
//! * [`HealthProbes`]: how to tell whether the queue, the cache and a read replica are
//!   up.

mod exposition;
mod probes;
mod server;
mod system;
mod telemetry;

pub use exposition::{Exposition, Sample, parse_exposition};
pub use probes::{HealthProbes, Probe, ReplicaProbe};
pub(crate) use server::PROMETHEUS_TEXT;
pub use server::{OpsState, ops_router};
pub use system::{
    CACHE_READS, CANCELLATIONS_OLDEST_AGE, CANCELLATIONS_PENDING, COMPONENT_UP, ORDERS,
    OUTBOX_MESSAGES, OUTBOX_OLDEST_AGE, QUEUE_MESSAGES, SystemGauges, VENDOR_BREAKER,
    VENDOR_FAILURES, VENDOR_HEALTH, VENDOR_SYNC_AGE,
};
pub use telemetry::{HTTP_REQUEST_DURATION, HTTP_REQUESTS, Telemetry, method_label};
