//! Rate limits taken from the shared limiter in shares: one round trip per share, never
//! more calls let through than the limit across processes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aggregator_core::error::Result;
use aggregator_core::memory::InMemoryCache;
use aggregator_core::service::{LimiterSource, RateLimiter};
use aggregator_core::traits::{Cache, RateDecision, RateGrant, RateLimit};
use async_trait::async_trait;

/// An in-memory shared limiter that counts the round trips made to it.
#[derive(Debug, Default)]
struct CountingCache {
    inner: InMemoryCache,
    trips: AtomicU32,
}

#[async_trait]
impl Cache for CountingCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.inner.get(key).await
    }
    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<()> {
        self.inner.set(key, value, ttl).await
    }
    async fn set_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool> {
        self.inner.set_if_absent(key, value, ttl).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.inner.delete(key).await
    }
    async fn rate_limit(&self, key: &str, limit: RateLimit) -> Result<RateDecision> {
        self.trips.fetch_add(1, Ordering::SeqCst);
        self.inner.rate_limit(key, limit).await
    }
    async fn rate_limit_calls(&self, key: &str, limit: RateLimit, calls: u32) -> Result<RateGrant> {
        self.trips.fetch_add(1, Ordering::SeqCst);
        self.inner.rate_limit_calls(key, limit, calls).await
    }
    async fn take_slot(&self, key: &str, max: u32, ttl: Duration) -> Result<Option<String>> {
        self.inner.take_slot(key, max, ttl).await
    }
    async fn give_back_slot(&self, key: &str, token: &str) -> Result<()> {
        self.inner.give_back_slot(key, token).await
    }
}

fn per_minute(max_requests: u32) -> RateLimit {
    RateLimit {
        max_requests,
        window: Duration::from_secs(60),
    }
}

#[tokio::test]
async fn a_large_limit_is_taken_from_the_shared_limiter_a_share_at_a_time() {
    let shared = Arc::new(CountingCache::default());
    let limiter = RateLimiter::new(shared.clone());
    // 1,000 a window: shares of 20.
    for _ in 0..100 {
        let (decision, source) = limiter.check("k", per_minute(1_000)).await;
        assert!(decision.allowed);
        assert_eq!(source, LimiterSource::Shared);
    }
    assert_eq!(
        shared.trips.load(Ordering::SeqCst),
        5,
        "one trip per 20 calls"
    );
    // A small limit is counted call by call, as before.
    for _ in 0..5 {
        limiter.check("small", per_minute(99)).await;
    }
    assert_eq!(shared.trips.load(Ordering::SeqCst), 10);
}

#[tokio::test]
async fn processes_sharing_a_limit_let_through_exactly_the_limit_and_then_stop_asking() {
    let shared = Arc::new(CountingCache::default());
    let processes: Vec<RateLimiter> = (0..3).map(|_| RateLimiter::new(shared.clone())).collect();
    let limit = per_minute(500); // shares of 10
    let mut allowed = 0;
    for round in 0..300 {
        for process in &processes {
            let (decision, _) = process.check(&format!("key-{}", 1), limit).await;
            allowed += usize::from(decision.allowed);
            assert!(
                decision.allowed || round > 100,
                "refused early at round {round}"
            );
        }
    }
    assert_eq!(allowed, 500, "exactly the limit, across the three");
    // Every process has now been told the window is used up: it refuses without asking.
    let trips = shared.trips.load(Ordering::SeqCst);
    for process in &processes {
        let (decision, source) = process.check("key-1", limit).await;
        assert!(!decision.allowed && decision.retry_after > Duration::ZERO);
        assert_eq!(source, LimiterSource::Shared);
    }
    assert_eq!(shared.trips.load(Ordering::SeqCst), trips);
    // Another key has its own window.
    assert!(processes[0].check("key-2", limit).await.0.allowed);
}

#[tokio::test]
async fn many_calls_at_once_never_pass_the_limit() {
    let shared = Arc::new(CountingCache::default());
    let limiter = Arc::new(RateLimiter::new(shared));
    let limit = per_minute(250); // shares of 5
    let calls = (0..400).map(|_| {
        let limiter = limiter.clone();
        tokio::spawn(async move { limiter.check("k", limit).await.0.allowed })
    });
    let mut allowed = 0;
    for call in calls {
        allowed += usize::from(call.await.expect("task"));
    }
    assert_eq!(allowed, 250);
}

#[tokio::test(start_paused = true)]
async fn a_share_is_not_used_past_its_window() {
    let shared = Arc::new(CountingCache::default());
    let limiter = RateLimiter::new(shared.clone());
    let limit = RateLimit {
        max_requests: 200, // shares of 4
        window: Duration::from_secs(1),
    };
    assert!(limiter.check("k", limit).await.0.allowed);
    assert_eq!(shared.trips.load(Ordering::SeqCst), 1);
    tokio::time::advance(Duration::from_millis(1_100)).await;
    // The three calls left of the share belonged to the window that ended.
    assert!(limiter.check("k", limit).await.0.allowed);
    assert_eq!(
        shared.trips.load(Ordering::SeqCst),
        2,
        "a new share, in the new window"
    );
}
