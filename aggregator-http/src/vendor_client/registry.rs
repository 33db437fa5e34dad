//! Turning the configured vendor list into vendors and their HTTP clients.

use std::sync::Arc;

use aggregator_core::domain::Vendor;
use aggregator_core::error::Result;
use aggregator_core::traits::{Cache, VendorClient};

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
    vendor_clients_sharing(endpoints, None, tune)
}

/// As [`vendor_clients`], with each vendor's budget (its [`HttpVendorConfig::limits`])
/// counted through `cache`, so that every process using the same cache shares it; in
/// this process alone when `None`.
pub fn vendor_clients_sharing(
    endpoints: &[VendorEndpoint],
    cache: Option<Arc<dyn Cache>>,
    tune: impl Fn(&mut HttpVendorConfig),
) -> Result<Vec<(Vendor, Arc<dyn VendorClient>)>> {
    endpoints
        .iter()
        .map(|endpoint| {
            let mut config = endpoint.client_config()?;
            tune(&mut config);
            let mut client = HttpVendorClient::new(config)?;
            if let Some(cache) = &cache {
                client = client.sharing_budget_through(cache.clone())?;
            }
            let client: Arc<dyn VendorClient> = Arc::new(client);
            Ok((endpoint.to_vendor()?, client))
        })
        .collect()
}
