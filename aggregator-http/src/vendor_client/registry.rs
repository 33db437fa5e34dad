//! Turning the configured vendor list into vendors and their HTTP clients.

use std::sync::Arc;

use aggregator_core::domain::Vendor;
use aggregator_core::error::Result;
use aggregator_core::traits::VendorClient;

use super::client::HttpVendorClient;
use super::config::{HttpVendorConfig, VendorEndpoint};

/// Each endpoint's vendor (named after its id, never synced yet) and an HTTP client for
/// it, built from the default config adjusted by `tune`; register them with
/// [`aggregator_core::service::register_vendors`]. Stops at the first endpoint whose
/// vendor or client cannot be built.
pub fn vendor_clients(
    endpoints: &[VendorEndpoint],
    tune: impl Fn(&mut HttpVendorConfig),
) -> Result<Vec<(Vendor, Arc<dyn VendorClient>)>> {
    endpoints
        .iter()
        .map(|endpoint| {
            let mut config = endpoint.client_config()?;
            tune(&mut config);
            let client: Arc<dyn VendorClient> = Arc::new(HttpVendorClient::new(config)?);
            Ok((endpoint.to_vendor()?, client))
        })
        .collect()
}
