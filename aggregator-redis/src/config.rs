//! Connection settings.

use std::fmt;
use std::time::Duration;

use aggregator_core::redact_url;

/// How to reach Redis and how long to wait for it.
#[derive(Clone)]
pub struct RedisConfig {
    /// A `redis://[:password@]host:port[/db]` URL. The `Debug` output hides the password.
    pub url: String,
    /// Prepended to every key, so several deployments (or tests) can share one Redis.
    pub key_prefix: String,
    /// The longest any one call may take, connecting included; past it the call fails
    /// with a retryable `Unavailable` and the caller goes on without the cache.
    pub timeout: Duration,
    /// After a failed connection attempt, how long calls fail at once before the next
    /// attempt (so a down Redis costs nothing per request).
    pub reconnect_after: Duration,
}

impl RedisConfig {
    /// Settings for `url` with the defaults: prefix `aggregator:`, 250 ms per call,
    /// a new connection attempt at most every second.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            key_prefix: "aggregator:".into(),
            timeout: Duration::from_millis(250),
            reconnect_after: Duration::from_secs(1),
        }
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact_url(&self.url))
            .field("key_prefix", &self.key_prefix)
            .field("timeout", &self.timeout)
            .field("reconnect_after", &self.reconnect_after)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_password() {
        let printed = format!(
            "{:?}",
            RedisConfig::new("redis://:hunter2@cache.internal:6379/0")
        );
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(
            printed.contains("redis://:***@cache.internal:6379/0"),
            "{printed}"
        );
        let with_user = format!("{:?}", RedisConfig::new("redis://app:pw@h:6379"));
        assert!(with_user.contains("redis://app:***@h:6379"), "{with_user}");
    }
}
