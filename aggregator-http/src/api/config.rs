//! Settings of the API server: limits, API keys and protected mode.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use aggregator_core::domain::CustomerId;
use aggregator_core::error::{Error, Result};
use aggregator_core::traits::RateLimit;
use sha2::{Digest, Sha256};

/// What an API key may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Acts for one customer: places orders and holds for it, sees and cancels only its
    /// own (anything else answers 404).
    Client(CustomerId),
    /// Sees everything and runs the operations endpoints.
    Admin,
}

/// The configured API keys. Keys are kept only as SHA-256 digests and never printed.
#[derive(Clone, Default)]
pub struct ApiKeys {
    by_digest: HashMap<[u8; 32], (String, Role)>,
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeys")
            .field("keys", &self.by_digest.len())
            .finish()
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

impl ApiKeys {
    /// No keys: the server is open, and only allowed on loopback (protected mode).
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses `admin:KEY` and `client:CUSTOMER:KEY` entries separated by commas (the
    /// form of `AGGREGATOR_API_KEYS`). Keys must have at least 16 characters; refuses
    /// malformed entries and repeated keys without ever echoing a key.
    pub fn parse(text: &str) -> Result<Self> {
        let mut keys = Self::default();
        for (index, entry) in text.split(',').map(str::trim).enumerate() {
            if entry.is_empty() {
                continue;
            }
            let (label, role, key) = match entry.split(':').collect::<Vec<_>>()[..] {
                ["admin", key] => ("admin".to_owned(), Role::Admin, key),
                ["client", customer, key] => (
                    format!("client {customer}"),
                    Role::Client(CustomerId::new(customer)?),
                    key,
                ),
                _ => {
                    return Err(Error::invalid(
                        "apiKeys",
                        format!(
                            "entry {} must be admin:KEY or client:CUSTOMER:KEY",
                            index + 1
                        ),
                    ));
                }
            };
            if key.len() < 16 || !key.chars().all(|c| c.is_ascii_graphic()) {
                return Err(Error::invalid(
                    "apiKeys",
                    format!(
                        "the key of entry {} must be 16 or more printable characters",
                        index + 1
                    ),
                ));
            }
            if keys.by_digest.insert(digest(key), (label, role)).is_some() {
                return Err(Error::invalid(
                    "apiKeys",
                    format!("entry {} repeats a key", index + 1),
                ));
            }
        }
        Ok(keys)
    }

    /// Adds one key (for embedding and tests).
    pub fn with(mut self, key: &str, role: Role) -> Self {
        let label = match &role {
            Role::Admin => "admin".to_owned(),
            Role::Client(customer) => format!("client {customer}"),
        };
        self.by_digest.insert(digest(key), (label, role));
        self
    }

    /// True when no key is configured.
    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    /// The role of `key` and a printable label for it, if it is one of ours.
    pub fn role(&self, key: &str) -> Option<(&str, &Role)> {
        self.by_digest
            .get(&digest(key))
            .map(|(label, role)| (label.as_str(), role))
    }
}

/// Limits and rules of the API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// API keys; none means open access, allowed only on loopback.
    pub keys: ApiKeys,
    /// The largest request body accepted (larger: 413).
    pub body_limit: usize,
    /// The longest a request may take (longer: 503).
    pub request_timeout: Duration,
    /// Requests per window per API key (per client address without keys).
    pub rate_limit: RateLimit,
    /// Items per page when a client does not say.
    pub default_page_size: u32,
    /// The most items a page may have.
    pub max_page_size: u32,
    /// How long an Idempotency-Key's answer is kept for non-order POSTs.
    pub idempotency_ttl: Duration,
    /// Whether webhook endpoints may point at loopback or private addresses (an operator
    /// setting, off by default: see [`crate::webhooks::resolve_destination`]).
    pub webhook_allow_private: bool,
    /// Order event streams one API key (one client address without keys) may hold open
    /// at once; one more is answered 429 with `Retry-After`.
    pub max_streams_per_key: usize,
    /// Orders this server places at once (`POST /api/orders` and `POST /order`, from
    /// the request's arrival to its answer); one more waits at most
    /// [`ApiConfig::admission_wait`] for a place and is then answered 503 with
    /// `Retry-After`, so that past capacity the orders taken keep their latency. 0: no
    /// bound.
    pub max_orders_in_flight: usize,
    /// How long an order waits for a place when [`ApiConfig::max_orders_in_flight`] are
    /// in flight before it is refused (a burst shorter than this is absorbed, but every
    /// refusal then holds its connection this long).
    pub admission_wait: Duration,
}

impl Default for ApiConfig {
    /// No keys, 64 KiB bodies, 10 s per request, 2,000 requests a second per key (per
    /// client address without keys), pages of 20 (at most 100), idempotent answers kept
    /// 24 h, webhooks only to public addresses, 16 event streams per key, 256 orders in
    /// flight and no waiting for a place.
    fn default() -> Self {
        Self {
            keys: ApiKeys::none(),
            body_limit: 64 * 1024,
            request_timeout: Duration::from_secs(10),
            rate_limit: RateLimit {
                max_requests: 2_000,
                window: Duration::from_secs(1),
            },
            default_page_size: 20,
            max_page_size: 100,
            idempotency_ttl: Duration::from_secs(24 * 3600),
            webhook_allow_private: false,
            max_streams_per_key: 16,
            max_orders_in_flight: 256,
            admission_wait: Duration::ZERO,
        }
    }
}

/// Whether a server may start on an address with these keys (Redis-style protected
/// mode): with keys, anywhere; without keys, only on a loopback address. The `Ok`
/// value is the line to log at start-up.
pub fn check_bind(addr: SocketAddr, keys: &ApiKeys) -> Result<String> {
    if !keys.is_empty() {
        return Ok(format!("API keys required; listening on {addr}"));
    }
    if addr.ip().is_loopback() {
        return Ok(format!(
            "protected mode: no API keys configured, so the API is open but bound to loopback only ({addr}); set AGGREGATOR_API_KEYS to listen elsewhere"
        ));
    }
    Err(Error::invalid(
        "bind",
        format!(
            "refusing to listen on {addr} without API keys (protected mode): set AGGREGATOR_API_KEYS (admin:KEY,client:CUSTOMER:KEY) or bind to 127.0.0.1"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_and_never_print() {
        let keys = ApiKeys::parse("admin:0123456789abcdef, client:shop-1:fedcba9876543210")
            .expect("valid");
        assert!(matches!(
            keys.role("0123456789abcdef"),
            Some((_, Role::Admin))
        ));
        assert!(
            matches!(keys.role("fedcba9876543210"), Some((_, Role::Client(c))) if c.as_str() == "shop-1")
        );
        assert!(keys.role("nope").is_none());
        assert!(!format!("{keys:?}").contains("0123456789abcdef"));
        for bad in [
            "admin",
            "admin:short",
            "user:x:0123456789abcdef",
            "admin:0123456789abcdef,admin:0123456789abcdef",
            "client:bad id:0123456789abcdef",
        ] {
            let error = ApiKeys::parse(bad).expect_err(bad).to_string();
            assert!(!error.contains("0123456789abcdef"), "{error}");
        }
    }

    #[test]
    fn protected_mode_allows_open_access_on_loopback_only() {
        let none = ApiKeys::none();
        assert!(check_bind("127.0.0.1:3000".parse().expect("addr"), &none).is_ok());
        assert!(check_bind("[::1]:3000".parse().expect("addr"), &none).is_ok());
        let refused =
            check_bind("0.0.0.0:3000".parse().expect("addr"), &none).expect_err("refused");
        assert!(refused.to_string().contains("protected mode"));
        let keys = ApiKeys::none().with("0123456789abcdef", Role::Admin);
        assert!(check_bind("0.0.0.0:3000".parse().expect("addr"), &keys).is_ok());
    }
}
