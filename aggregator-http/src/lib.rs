//! HTTP for Order Aggregator.
//!
//! * [`api`]: the HTTP API (axum): the seed's order endpoints, catalog, holds,
//!   operations, health, metrics and OpenAPI, built by [`api::router`] from an
//!   [`api::ApiState`] over any backends.
//! * [`ops`]: figures for Prometheus and health for every process, and the small
//!   listener that serves them where the API does not run.
//! * [`HttpVendorClient`]: the [`aggregator_core::traits::VendorClient`] for vendors that
//!   speak the mock vendors' HTTP API (`GET /stock` pages, idempotent `POST /orders`,
//!   `POST /orders/{id}/cancel`), with timeouts, retries with backoff and jitter, a
//!   circuit breaker per vendor and strict checks of everything a vendor sends.

pub mod api;
pub mod ops;
mod vendor_client;
pub mod webhooks;

pub use vendor_client::{
    HttpVendorClient, HttpVendorConfig, VendorEndpoint, WireFault, parse_vendor_list, stock_page,
    vendor_clients, vendor_clients_sharing,
};
