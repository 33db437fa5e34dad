//! A fast, lossy read cache and rate limiter.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// At most `max_requests` calls per `window`, counted per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Calls allowed per window.
    pub max_requests: u32,
    /// The window; it starts at the first call after the previous one ended.
    pub window: Duration,
}

/// The answer of a rate-limit check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    /// Whether this call may go ahead.
    pub allowed: bool,
    /// Calls left in the current window after this one.
    pub remaining: u32,
    /// How long until the window resets.
    pub retry_after: Duration,
}

/// The answer of [`Cache::rate_limit_calls`]: how many of the calls asked for fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateGrant {
    /// Calls that may go ahead, from 0 to the number asked for.
    pub granted: u32,
    /// How long until the window resets.
    pub retry_after: Duration,
}

/// A cache of derived figures (availability, vendor health), a rate limiter and
/// counted slots (how many calls to something may run at once).
///
/// The cache is only ever a read path: nothing that decides a placement reads it. What
/// every implementation guarantees: a value read back is one that was set for the key
/// and has not outlived its TTL or been deleted; every failure is
/// `Unavailable { retryable: true }` and comes back quickly rather than blocking the
/// caller; the rate limiter never allows more than `max_requests` per window per key;
/// never more than `max` slots of a key are held at once.
#[async_trait]
pub trait Cache: Send + Sync + Debug + 'static {
    /// The value under `key`, if present and not expired.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;

    /// Stores `value` under `key` for `ttl`.
    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<()>;

    /// Stores `value` under `key` for `ttl` only if no live value is there; true when
    /// it was stored. Of callers racing for one key, exactly one gets true.
    async fn set_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool>;

    /// Removes `key`; removing a missing key is fine.
    async fn delete(&self, key: &str) -> Result<()>;

    /// Removes every key of `keys` (missing ones are fine); a store may do it in one
    /// round trip. The default removes them one by one.
    async fn delete_many(&self, keys: &[String]) -> Result<()> {
        for key in keys {
            self.delete(key).await?;
        }
        Ok(())
    }

    /// Counts one call against `key` and says whether it is within `limit`.
    async fn rate_limit(&self, key: &str, limit: RateLimit) -> Result<RateDecision>;

    /// Counts `calls` calls against `key` at once, in the same window and under the same
    /// rule as as many [`Cache::rate_limit`] calls, and says how many of them are within
    /// `limit` (the first ones counted are). A process that hands calls out from such a
    /// grant itself checks with the shared limit once per grant instead of once per
    /// call. The default counts them one by one.
    async fn rate_limit_calls(&self, key: &str, limit: RateLimit, calls: u32) -> Result<RateGrant> {
        let mut grant = RateGrant {
            granted: 0,
            retry_after: Duration::ZERO,
        };
        for _ in 0..calls {
            let decision = self.rate_limit(key, limit).await?;
            grant.retry_after = decision.retry_after;
            if decision.allowed {
                grant.granted += 1;
            }
        }
        Ok(grant)
    }

    /// Takes one of `max` slots under `key` for at most `ttl`: a token to give back
    /// with [`Cache::give_back_slot`], or `None` while all `max` are held. Every process
    /// using the same cache shares the slots; a slot whose holder died comes free when
    /// its `ttl` runs out.
    async fn take_slot(&self, key: &str, max: u32, ttl: Duration) -> Result<Option<String>>;

    /// Gives back the slot `token` took under `key`; a slot that ran out, or a token
    /// never given, changes nothing.
    async fn give_back_slot(&self, key: &str, token: &str) -> Result<()>;
}

/// JSON conveniences over any [`Cache`].
#[async_trait]
pub trait CacheExt: Cache {
    /// The value under `key` decoded from JSON; a value that does not decode is treated
    /// as missing (and deleted), since the cache is never the source of truth.
    async fn get_json<T: DeserializeOwned + Send>(&self, key: &str) -> Result<Option<T>> {
        let Some(bytes) = self.get(key).await? else {
            return Ok(None);
        };
        match serde_json::from_slice(&bytes) {
            Ok(value) => Ok(Some(value)),
            Err(_) => {
                self.delete(key).await?;
                Ok(None)
            }
        }
    }

    /// Stores `value` as JSON under `key` for `ttl`.
    async fn set_json<T: Serialize + Sync>(
        &self,
        key: &str,
        value: &T,
        ttl: Duration,
    ) -> Result<()> {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| Error::invalid("cache value", format!("cannot encode: {e}")))?;
        self.set(key, &bytes, ttl).await
    }
}

impl<C: Cache + ?Sized> CacheExt for C {}

macro_rules! forward_cache {
    ($wrapper:ident) => {
        #[async_trait]
        impl<T: Cache + ?Sized> Cache for $wrapper<T> {
            async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
                (**self).get(key).await
            }
            async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<()> {
                (**self).set(key, value, ttl).await
            }
            async fn set_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool> {
                (**self).set_if_absent(key, value, ttl).await
            }
            async fn delete(&self, key: &str) -> Result<()> {
                (**self).delete(key).await
            }
            async fn delete_many(&self, keys: &[String]) -> Result<()> {
                (**self).delete_many(keys).await
            }
            async fn rate_limit(&self, key: &str, limit: RateLimit) -> Result<RateDecision> {
                (**self).rate_limit(key, limit).await
            }
            async fn rate_limit_calls(
                &self,
                key: &str,
                limit: RateLimit,
                calls: u32,
            ) -> Result<RateGrant> {
                (**self).rate_limit_calls(key, limit, calls).await
            }
            async fn take_slot(
                &self,
                key: &str,
                max: u32,
                ttl: Duration,
            ) -> Result<Option<String>> {
                (**self).take_slot(key, max, ttl).await
            }
            async fn give_back_slot(&self, key: &str, token: &str) -> Result<()> {
                (**self).give_back_slot(key, token).await
            }
        }
    };
}

forward_cache!(Arc);
forward_cache!(Box);
