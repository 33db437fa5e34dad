//! Which vendors to talk to and how patiently.

use std::time::Duration;

use aggregator_core::domain::{Vendor, VendorId};
use aggregator_core::error::{Error, Result};
use aggregator_core::resilience::{Backoff, BreakerConfig, VendorLimits};
use aggregator_core::{RedactedUrl, redact_url};

/// How to reach one vendor and how to treat its failures. Its `Debug` output hides a
/// password in the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpVendorConfig {
    /// The vendor's id.
    pub vendor: VendorId,
    /// The root of its API, e.g. `http://127.0.0.1:3001`.
    pub base_url: RedactedUrl,
    /// The longest a TCP connect may take.
    pub connect_timeout: Duration,
    /// The longest one request may take, body included.
    pub request_timeout: Duration,
    /// Tries per call and the waits between them.
    pub backoff: Backoff,
    /// When the vendor's circuit breaker opens.
    pub breaker: BreakerConfig,
    /// How long a call waits for an open breaker to let it through before it fails;
    /// the wait spends none of the call's tries.
    pub breaker_wait: Duration,
    /// The largest answer body accepted.
    pub max_body_bytes: usize,
    /// What the vendor may be asked, a second and at once (every request counts:
    /// orders, cancellations, stock pages, health checks).
    pub limits: VendorLimits,
    /// How long a request waits for its place within `limits` (or out a pause the
    /// vendor asked for) before the call fails; the wait spends none of its tries.
    pub budget_wait: Duration,
}

impl HttpVendorConfig {
    /// Defaults for `vendor` at `base_url`: connect 2 s, request 10 s, 3 tries, breaker
    /// after 5 failures for 30 s and waited for up to 30 s, bodies up to 32 MiB, the
    /// default [`VendorLimits`] waited for up to 30 s. Refuses a URL that is not http(s) or does not parse.
    pub fn new(vendor: VendorId, base_url: impl Into<String>) -> Result<Self> {
        let base_url = base_url.into().trim_end_matches('/').to_owned();
        let parsed = reqwest::Url::parse(&base_url)
            .map_err(|e| Error::invalid("baseUrl", format!("{:?}: {e}", redact_url(&base_url))))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(Error::invalid(
                "baseUrl",
                format!(
                    "{:?} must be an http:// or https:// URL with a host",
                    redact_url(&base_url)
                ),
            ));
        }
        Ok(Self {
            vendor,
            base_url: RedactedUrl::new(base_url),
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            backoff: Backoff::default(),
            breaker: BreakerConfig::default(),
            breaker_wait: Duration::from_secs(30),
            max_body_bytes: 32 * 1024 * 1024,
            limits: VendorLimits::default(),
            budget_wait: Duration::from_secs(30),
        })
    }
}

/// One entry of the configured vendor list. Its `Debug` output hides a password in the
/// URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorEndpoint {
    /// The vendor's id.
    pub id: VendorId,
    /// The root of its API.
    pub base_url: RedactedUrl,
    /// Allocation preference: its place in the list (first = 1).
    pub priority: u16,
}

impl VendorEndpoint {
    /// The vendor as the store registers it (named after its id, never synced yet).
    pub fn to_vendor(&self) -> Result<Vendor> {
        let id = self.id.as_str();
        let name = match id.strip_prefix("Vendor") {
            Some(rest) if !rest.is_empty() => format!("Vendor {rest}"),
            _ => id.to_owned(),
        };
        Vendor::new(self.id.clone(), name, self.base_url.expose(), self.priority)
    }

    /// A client config for this vendor with the default timeouts and retries.
    pub fn client_config(&self) -> Result<HttpVendorConfig> {
        HttpVendorConfig::new(self.id.clone(), self.base_url.expose())
    }
}

/// Parses a vendor list such as
/// `VendorA=http://127.0.0.1:3001,VendorB=http://127.0.0.1:3002` (the form of the
/// `AGGREGATOR_VENDORS` setting); priorities follow the order. Refuses an empty list,
/// a malformed entry, a bad id or URL, and a repeated id, naming the entry.
pub fn parse_vendor_list(text: &str) -> Result<Vec<VendorEndpoint>> {
    let mut endpoints: Vec<VendorEndpoint> = Vec::new();
    for (index, entry) in text.split(',').map(str::trim).enumerate() {
        if entry.is_empty() {
            continue;
        }
        let (id, url) = entry.split_once('=').ok_or_else(|| {
            Error::invalid(
                "vendors",
                format!("entry {entry:?} must look like VendorA=http://host:port"),
            )
        })?;
        let id = VendorId::new(id.trim())?;
        if endpoints.iter().any(|e| e.id == id) {
            return Err(Error::invalid(
                "vendors",
                format!("vendor {id} is listed twice"),
            ));
        }
        let config = HttpVendorConfig::new(id.clone(), url.trim())?;
        endpoints.push(VendorEndpoint {
            id,
            base_url: config.base_url,
            priority: u16::try_from(index + 1).unwrap_or(u16::MAX),
        });
    }
    if endpoints.is_empty() {
        return Err(Error::invalid("vendors", "the vendor list is empty"));
    }
    Ok(endpoints)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_lists_parse_in_order() {
        let list = parse_vendor_list(" VendorA=http://127.0.0.1:3001/ , VendorB=https://b.example")
            .expect("valid");
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].id.as_str(), "VendorA");
        assert_eq!(list[0].base_url.expose(), "http://127.0.0.1:3001");
        assert_eq!((list[0].priority, list[1].priority), (1, 2));
        let vendor = list[0].to_vendor().expect("vendor");
        assert_eq!(vendor.name, "Vendor A");
    }

    #[test]
    fn debug_output_hides_url_passwords() {
        let list = parse_vendor_list("VendorA=https://shop:s3cret@a.example").expect("valid");
        let config = list[0].client_config().expect("config");
        for text in [format!("{:?}", list[0]), format!("{config:?}")] {
            assert!(!text.contains("s3cret"), "{text}");
            assert!(text.contains("a.example"), "{text}");
        }
    }

    #[test]
    fn bad_vendor_lists_are_refused_with_the_reason() {
        for (text, needle) in [
            ("", "empty"),
            ("VendorA", "must look like"),
            ("Vendor A=http://x", "vendorId"),
            ("VendorA=ftp://x", "http"),
            ("VendorA=not a url", "baseUrl"),
            ("VendorA=http://a,VendorA=http://b", "twice"),
        ] {
            let error = parse_vendor_list(text).expect_err(text).to_string();
            assert!(error.contains(needle), "{text}: {error}");
        }
    }
}
