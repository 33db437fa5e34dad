//! [`InMemoryCache`]: the cache and rate limiter in process memory.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::error::Result;
use crate::traits::{Cache, RateDecision, RateGrant, RateLimit};

#[derive(Debug, Default)]
struct CacheState {
    values: HashMap<String, (Vec<u8>, Instant)>,
    windows: HashMap<String, (u32, Instant)>,
    /// Held slots per key: (token, when it runs out).
    slots: HashMap<String, Vec<(String, Instant)>>,
}

/// A [`Cache`] in process memory with the same TTL, fixed-window rate-limit and slot
/// rules as the Redis backend. Expired entries are dropped when read and swept when the map grows.
#[derive(Debug, Default)]
pub struct InMemoryCache {
    state: Mutex<CacheState>,
}

/// Sweep expired entries when a map grows past this many keys.
const SWEEP_ABOVE: usize = 10_000;

impl InMemoryCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, CacheState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts `calls` calls against `key` in its window (a new one once it ended):
    /// answers the count after them, how many of them are within the limit, and the time
    /// until the window resets.
    fn count_calls(&self, key: &str, limit: RateLimit, calls: u32) -> (u32, u32, Duration) {
        let mut state = self.state();
        let now = Instant::now();
        if state.windows.len() > SWEEP_ABOVE {
            state.windows.retain(|_, (_, resets)| *resets > now);
        }
        let window = state
            .windows
            .entry(key.to_owned())
            .or_insert((0, now + limit.window));
        if window.1 <= now {
            *window = (0, now + limit.window);
        }
        let before = window.0;
        window.0 = window.0.saturating_add(calls);
        let granted = limit.max_requests.saturating_sub(before).min(calls);
        (window.0, granted, window.1.saturating_duration_since(now))
    }
}

#[async_trait]
impl Cache for InMemoryCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let mut state = self.state();
        let now = Instant::now();
        match state.values.get(key) {
            Some((value, expires)) if *expires > now => Ok(Some(value.clone())),
            Some(_) => {
                state.values.remove(key);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<()> {
        let mut state = self.state();
        let now = Instant::now();
        if state.values.len() > SWEEP_ABOVE {
            state.values.retain(|_, (_, expires)| *expires > now);
        }
        state
            .values
            .insert(key.to_owned(), (value.to_vec(), now + ttl));
        Ok(())
    }

    async fn set_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool> {
        let mut state = self.state();
        let now = Instant::now();
        if state
            .values
            .get(key)
            .is_some_and(|(_, expires)| *expires > now)
        {
            return Ok(false);
        }
        state
            .values
            .insert(key.to_owned(), (value.to_vec(), now + ttl));
        Ok(true)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.state().values.remove(key);
        Ok(())
    }

    async fn delete_many(&self, keys: &[String]) -> Result<()> {
        let mut state = self.state();
        for key in keys {
            state.values.remove(key);
        }
        Ok(())
    }

    async fn rate_limit(&self, key: &str, limit: RateLimit) -> Result<RateDecision> {
        let (used, granted, retry_after) = self.count_calls(key, limit, 1);
        Ok(RateDecision {
            allowed: granted == 1,
            remaining: limit.max_requests.saturating_sub(used),
            retry_after,
        })
    }

    async fn rate_limit_calls(&self, key: &str, limit: RateLimit, calls: u32) -> Result<RateGrant> {
        let (_, granted, retry_after) = self.count_calls(key, limit, calls);
        Ok(RateGrant {
            granted,
            retry_after,
        })
    }

    async fn take_slot(&self, key: &str, max: u32, ttl: Duration) -> Result<Option<String>> {
        let mut state = self.state();
        let now = Instant::now();
        if state.slots.len() > SWEEP_ABOVE {
            state.slots.retain(|_, held| {
                held.retain(|(_, until)| *until > now);
                !held.is_empty()
            });
        }
        let held = state.slots.entry(key.to_owned()).or_default();
        held.retain(|(_, until)| *until > now);
        if held.len() >= usize::try_from(max).unwrap_or(usize::MAX) {
            return Ok(None);
        }
        let token = uuid::Uuid::new_v4().simple().to_string();
        held.push((token.clone(), now + ttl));
        Ok(Some(token))
    }

    async fn give_back_slot(&self, key: &str, token: &str) -> Result<()> {
        let mut state = self.state();
        if let Some(held) = state.slots.get_mut(key) {
            held.retain(|(held, _)| held != token);
            if held.is_empty() {
                state.slots.remove(key);
            }
        }
        Ok(())
    }
}
