use std::sync::Arc;
use std::time::Duration;

use aggregator_core::clock::Clock;
use aggregator_core::domain::VendorId;
use aggregator_core::resilience::{Backoff, BreakerConfig};
use aggregator_http::{HttpVendorClient, HttpVendorConfig};

pub(crate) fn vendor(id: &str) -> VendorId {
    VendorId::new(id).expect("vendor id")
}

/// Quick timeouts and retries, and a breaker that stays closed unless a test says so.
pub(crate) fn quicken(config: &mut HttpVendorConfig) {
    config.connect_timeout = Duration::from_millis(500);
    config.request_timeout = Duration::from_millis(500);
    config.backoff =
        Backoff::new(3, Duration::from_millis(10), Duration::from_millis(40)).expect("backoff");
    config.breaker = BreakerConfig::new(1_000, Duration::from_secs(1)).expect("breaker");
    // Fail fast on an open breaker unless a test waits on purpose.
    config.breaker_wait = Duration::ZERO;
}

/// A config for `id` at `base_url`, [`quicken`]ed.
pub(crate) fn quick_config(id: &str, base_url: &str) -> HttpVendorConfig {
    let mut config = HttpVendorConfig::new(vendor(id), base_url).expect("config");
    quicken(&mut config);
    config
}

pub(crate) fn client(config: HttpVendorConfig) -> HttpVendorClient {
    HttpVendorClient::new(config).expect("client")
}

pub(crate) fn client_with_clock(
    config: HttpVendorConfig,
    clock: Arc<dyn Clock>,
) -> HttpVendorClient {
    HttpVendorClient::with_clock(config, clock).expect("client")
}
