//! Connection settings.

use std::time::Duration;

use aggregator_core::RedactedUrl;

/// How to reach Redis and how long to wait for it.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// A `redis://[:password@]host:port[/db]` URL. The `Debug` output hides the password.
    /// With `cluster`, one or more nodes of the cluster, comma-separated (the client
    /// finds the others from any one that answers).
    pub url: RedactedUrl,
    /// Whether `url` names a Redis Cluster. Every command touches one key (or keys the
    /// client splits by slot), so keys need no hash tags.
    pub cluster: bool,
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
    /// Settings for the single Redis at `url` with the defaults: prefix `aggregator:`, 250 ms per call,
    /// a new connection attempt at most every second.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: RedactedUrl::new(url),
            cluster: false,
            key_prefix: "aggregator:".into(),
            timeout: Duration::from_millis(250),
            reconnect_after: Duration::from_secs(1),
        }
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
