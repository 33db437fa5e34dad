//! An in-memory cache with knobs the API tests turn: late reads, late invalidations,
//! and a record of every value written.

use std::sync::Mutex;
use std::time::Duration;

use aggregator_core::memory::InMemoryCache;
use aggregator_core::traits::{RateDecision, RateLimit};
use aggregator_core::{Cache, Result};

/// [`InMemoryCache`] with delays and a record of writes.
#[derive(Debug, Default)]
pub(crate) struct TestCache {
    inner: InMemoryCache,
    read_delay: Duration,
    invalidation_delay: Duration,
    written: Mutex<Vec<Vec<u8>>>,
}

impl TestCache {
    /// Reads answer late (a loaded Redis), so that requests racing on one key all read
    /// before any of them writes.
    pub(crate) fn slow_reads(delay: Duration) -> Self {
        Self {
            read_delay: delay,
            ..Self::default()
        }
    }

    /// Invalidations (`delete_many`) take `delay`, so that a request that invalidates
    /// after its change answers well after the change committed.
    pub(crate) fn slow_invalidations(delay: Duration) -> Self {
        Self {
            invalidation_delay: delay,
            ..Self::default()
        }
    }

    /// Every value written so far (by `set` and `set_if_absent`).
    pub(crate) fn written(&self) -> Vec<Vec<u8>> {
        self.written
            .lock()
            .map(|written| written.clone())
            .unwrap_or_default()
    }

    fn note(&self, value: &[u8]) {
        if let Ok(mut written) = self.written.lock() {
            written.push(value.to_vec());
        }
    }
}

#[async_trait::async_trait]
impl Cache for TestCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let value = self.inner.get(key).await;
        tokio::time::sleep(self.read_delay).await;
        value
    }
    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<()> {
        self.note(value);
        self.inner.set(key, value, ttl).await
    }
    async fn set_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool> {
        self.note(value);
        self.inner.set_if_absent(key, value, ttl).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.inner.delete(key).await
    }
    async fn delete_many(&self, keys: &[String]) -> Result<()> {
        tokio::time::sleep(self.invalidation_delay).await;
        self.inner.delete_many(keys).await
    }
    async fn rate_limit(&self, key: &str, limit: RateLimit) -> Result<RateDecision> {
        self.inner.rate_limit(key, limit).await
    }
    async fn take_slot(&self, key: &str, max: u32, ttl: Duration) -> Result<Option<String>> {
        self.inner.take_slot(key, max, ttl).await
    }
    async fn give_back_slot(&self, key: &str, token: &str) -> Result<()> {
        self.inner.give_back_slot(key, token).await
    }
}
