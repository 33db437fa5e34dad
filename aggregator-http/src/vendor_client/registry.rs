//! Turning the configured vendor list into registered vendors and their clients.

use std::sync::Arc;

use aggregator_core::error::Result;
use aggregator_core::traits::{StockStore, VendorClient, VendorDirectory};

use super::client::HttpVendorClient;
use super::config::{HttpVendorConfig, VendorEndpoint};

/// Registers every endpoint's vendor in `store` (name, URL and priority; its health and
/// sync state are kept) and answers a directory of HTTP clients for them, each with the
/// default config adjusted by `tune`. Stops at the first vendor that cannot be
/// registered or whose client cannot be built.
pub async fn register_vendors(
    store: &dyn StockStore,
    endpoints: &[VendorEndpoint],
    tune: impl Fn(&mut HttpVendorConfig),
) -> Result<VendorDirectory> {
    let mut directory = VendorDirectory::new();
    for endpoint in endpoints {
        store.upsert_vendor(&endpoint.to_vendor()?).await?;
        let mut config = endpoint.client_config()?;
        tune(&mut config);
        directory.insert(Arc::new(HttpVendorClient::new(config)?) as Arc<dyn VendorClient>);
    }
    Ok(directory)
}
