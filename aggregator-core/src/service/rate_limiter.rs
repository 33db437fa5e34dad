//! Per-key rate limits that keep working when the shared limiter is down.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::time::Instant;

use crate::memory::InMemoryCache;
use crate::traits::{Cache, RateDecision, RateGrant, RateLimit};

/// Which limiter answered a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimiterSource {
    /// The shared limiter (e.g. Redis): the limit holds across processes.
    Shared,
    /// The in-process fallback: the limit holds per process while the shared one is
    /// down.
    Local,
}

/// The most calls a process takes from the shared limiter at once.
const MAX_SHARE: u32 = 100;

/// Keys whose shares are kept before the ended ones are swept out.
const SWEEP_ABOVE: usize = 4_096;

/// Calls taken from the shared limiter for one key and not yet handed out.
#[derive(Debug, Clone, Copy)]
struct Share {
    /// Calls left to hand out.
    left: u32,
    /// The end of the shared window they were counted in.
    until: Instant,
    /// The shared limiter had no more for this window: refuse until `until`.
    spent: bool,
}

/// Checks rate limits against a shared [`Cache`] and, when that fails, against an
/// in-process limiter with the same rules, so requests are never refused (or let
/// through unlimited) because the shared limiter is down.
///
/// A limit of more than 100 calls per window is taken from the shared limiter in shares
/// of a fiftieth of it (at most 100 calls), one round trip per share instead of one per
/// call, and handed out in process until the share or its window ends. The limit still
/// holds across processes (a call is let through only once counted at the shared
/// limiter, in its window); a process may refuse a little early, by the calls the others
/// took and have not used yet. Once the shared limiter says the window is used up, the
/// process refuses the key's calls until the window ends without asking again.
#[derive(Debug)]
pub struct RateLimiter {
    shared: Arc<dyn Cache>,
    local: InMemoryCache,
    shares: Mutex<HashMap<String, Share>>,
}

impl RateLimiter {
    /// A limiter over `shared`.
    pub fn new(shared: Arc<dyn Cache>) -> Self {
        Self {
            shared,
            local: InMemoryCache::new(),
            shares: Mutex::new(HashMap::new()),
        }
    }

    fn shares(&self) -> MutexGuard<'_, HashMap<String, Share>> {
        // Shares are plain counters: whatever a panicking holder left is still usable.
        self.shares
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts one call against `key` and says whether it is within `limit`, and which
    /// limiter decided.
    pub async fn check(&self, key: &str, limit: RateLimit) -> (RateDecision, LimiterSource) {
        let share = (limit.max_requests / 50).clamp(1, MAX_SHARE);
        let shared = if share == 1 {
            self.shared.rate_limit(key, limit).await
        } else {
            if let Some(decision) = self.decide_from_share(key) {
                return (decision, LimiterSource::Shared);
            }
            self.shared
                .rate_limit_calls(key, limit, share)
                .await
                .map(|grant| self.keep_share(key, limit.window, share, grant))
        };
        match shared {
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

    /// Decides from the share held for `key`, if one is held for the current window:
    /// a call from it, or a refusal once the window is used up.
    fn decide_from_share(&self, key: &str) -> Option<RateDecision> {
        let now = Instant::now();
        let mut shares = self.shares();
        let share = shares.get_mut(key)?;
        if share.until <= now || (share.left == 0 && !share.spent) {
            return None;
        }
        let retry_after = share.until - now;
        if share.spent && share.left == 0 {
            return Some(RateDecision {
                allowed: false,
                remaining: 0,
                retry_after,
            });
        }
        share.left -= 1;
        Some(RateDecision {
            allowed: true,
            remaining: share.left,
            retry_after,
        })
    }

    /// Keeps what the shared limiter granted for `key` (whose windows last `window`) when
    /// `asked` for that many, less the call that asked.
    fn keep_share(
        &self,
        key: &str,
        window: std::time::Duration,
        asked: u32,
        grant: RateGrant,
    ) -> RateDecision {
        let now = Instant::now();
        let until = now + grant.retry_after;
        let mut shares = self.shares();
        if shares.len() > SWEEP_ABOVE {
            shares.retain(|_, share| share.until > now);
        }
        let share = shares.entry(key.to_owned()).or_insert(Share {
            left: 0,
            until,
            spent: false,
        });
        if share.until <= now || until > share.until + window / 2 {
            // The held share's window is over (here, or at the shared limiter, which
            // has started the next one): its calls must not be used in this one.
            *share = Share {
                left: 0,
                until,
                spent: false,
            };
        }
        share.until = share.until.min(until);
        // Fewer than asked for: the shared window is used up.
        share.spent |= grant.granted < asked;
        share.left = share.left.saturating_add(grant.granted);
        let retry_after = share.until.saturating_duration_since(now);
        if share.left == 0 {
            return RateDecision {
                allowed: false,
                remaining: 0,
                retry_after,
            };
        }
        share.left -= 1;
        RateDecision {
            allowed: true,
            remaining: share.left,
            retry_after,
        }
    }
}
