//! The HTTP vendor client and the stock sync against wiremock and the mock vendors.

mod client_faults;
mod client_mock_vendors;
mod clock_skew;
mod support;
mod sync_mock_vendors;
mod webhooks;
mod worker_mock_vendors;
