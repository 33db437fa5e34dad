//! Per-key rate limits that keep working when the shared limiter is down.

use std::sync::Arc;

use crate::memory::InMemoryCache;
use crate::traits::{Cache, RateDecision, RateLimit};

/// Which limiter answered a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimiterSource {
    /// The shared limiter (e.g. Redis): the limit holds across processes.
    Shared,
    /// The in-process fallback: the limit holds per process while the shared one is
    /// down.
    Local,
}

/// Checks rate limits against a shared [`Cache`] and, when that fails, against an
/// in-process limiter with the same rules, so requests are never refused (or let
/// through unlimited) because the shared limiter is down.
#[derive(Debug)]
pub struct RateLimiter {
    shared: Arc<dyn Cache>,
    local: InMemoryCache,
}

impl RateLimiter {
    /// A limiter over `shared`.
    pub fn new(shared: Arc<dyn Cache>) -> Self {
        Self {
            shared,
            local: InMemoryCache::new(),
        }
    }

    /// Counts one call against `key` and says whether it is within `limit`, and which
    /// limiter decided.
    pub async fn check(&self, key: &str, limit: RateLimit) -> (RateDecision, LimiterSource) {
        match self.shared.rate_limit(key, limit).await {
            Ok(decision) => (decision, LimiterSource::Shared),
            Err(error) => {
                tracing::debug!(%error, "shared rate limiter unavailable; limiting in process");
                match self.local.rate_limit(key, limit).await {
                    Ok(decision) => (decision, LimiterSource::Local),
                    // The in-process limiter cannot fail; refuse rather than let through.
                    Err(_) => (
                        RateDecision {
                            allowed: false,
                            remaining: 0,
                            retry_after: limit.window,
                        },
                        LimiterSource::Local,
                    ),
                }
            }
        }
    }
}
