//! HTTP for Order Aggregator.
//!
//! Today this crate holds [`HttpVendorClient`]: the [`aggregator_core::traits::VendorClient`]
//! for vendors that speak the mock vendors' HTTP API (`GET /stock` pages, idempotent
//! `POST /orders`, `POST /orders/{id}/cancel`), with timeouts, retries with backoff and
//! jitter, a circuit breaker per vendor and strict checks of everything a vendor sends.
//! The API server is to come.

mod vendor_client;

pub use vendor_client::{HttpVendorClient, HttpVendorConfig, VendorEndpoint, parse_vendor_list};
