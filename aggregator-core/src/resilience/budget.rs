//! A vendor's budget: how many of our requests may be at it at once and how many a
//! second, counted over every process through the cache (in process memory without
//! one, or while it is down), and a pause every process honours when the vendor asks
//! us to wait (`Retry-After`).

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::domain::VendorId;
use crate::error::{Error, Result};
use crate::traits::{Cache, RateLimit};

/// What one vendor may be asked, by all our processes together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VendorLimits {
    /// Requests a second. Counted in windows of a tenth of a second (or one request's
    /// share of a second, at rates below ten), so no second seen by the vendor holds
    /// more than 10% above it; set it that much under the vendor's own limit.
    pub per_second: u32,
    /// Requests at the vendor at once.
    pub in_flight: u32,
}

impl VendorLimits {
    /// Refuses a limit of zero, naming it.
    pub fn validate(&self) -> Result<()> {
        if self.per_second == 0 {
            return Err(Error::invalid(
                "vendorLimits.perSecond",
                "must be at least 1",
            ));
        }
        if self.in_flight == 0 {
            return Err(Error::invalid(
                "vendorLimits.inFlight",
                "must be at least 1",
            ));
        }
        Ok(())
    }

    /// The counting window and how many requests it allows.
    fn window(&self) -> RateLimit {
        let per_second = self.per_second.max(1);
        if per_second >= 10 {
            RateLimit {
                max_requests: per_second / 10,
                window: Duration::from_millis(100),
            }
        } else {
            RateLimit {
                max_requests: 1,
                window: Duration::from_millis(1_000 / u64::from(per_second)),
            }
        }
    }
}

impl Default for VendorLimits {
    /// 5,000 a second, 256 at once: above what one vendor sees from us at our own
    /// top rate, so the defaults only stop a runaway; set each vendor's own.
    fn default() -> Self {
        Self {
            per_second: 5_000,
            in_flight: 256,
        }
    }
}

/// How long to sleep between looks at a full budget.
const FULL_PAUSE: Duration = Duration::from_millis(10);

/// The local count used without a cache (or while it fails).
#[derive(Debug)]
struct Local {
    slots: Arc<Semaphore>,
    window: Mutex<(u32, Instant)>,
    paused_until: Mutex<Option<Instant>>,
}

/// One vendor's budget; cheap to clone (clones share it).
#[derive(Clone)]
pub struct VendorBudget {
    vendor: VendorId,
    limits: VendorLimits,
    cache: Option<Arc<dyn Cache>>,
    hold_at_most: Duration,
    local: Arc<Local>,
}

impl fmt::Debug for VendorBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VendorBudget")
            .field("vendor", &self.vendor)
            .field("limits", &self.limits)
            .field("shared", &self.cache.is_some())
            .finish()
    }
}

/// A request's place in the budget; given back when dropped.
#[derive(Debug)]
pub struct BudgetPermit {
    held: Held,
}

#[derive(Debug)]
enum Held {
    Shared {
        cache: Arc<dyn Cache>,
        key: String,
        token: String,
    },
    Local(#[allow(dead_code)] OwnedSemaphorePermit),
}

impl Drop for BudgetPermit {
    fn drop(&mut self) {
        if let Held::Shared { cache, key, token } = &self.held
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let (cache, key, token) = (cache.clone(), key.clone(), token.clone());
            runtime.spawn(async move {
                if let Err(error) = cache.give_back_slot(&key, &token).await {
                    tracing::debug!(%error, "a vendor slot comes free when it runs out");
                }
            });
        }
    }
}

impl VendorBudget {
    /// The budget of `vendor`, counted through `cache` (shared by every process using
    /// it) or in this process when `None`. A request holds its slot at most
    /// `hold_at_most` (the longest one may take): a process that dies holding slots gives
    /// them back then. Refuses zero limits.
    pub fn new(
        vendor: VendorId,
        limits: VendorLimits,
        cache: Option<Arc<dyn Cache>>,
        hold_at_most: Duration,
    ) -> Result<Self> {
        limits.validate()?;
        let slots = usize::try_from(limits.in_flight).unwrap_or(usize::MAX);
        Ok(Self {
            vendor,
            limits,
            cache,
            hold_at_most: hold_at_most.max(Duration::from_secs(1)),
            local: Arc::new(Local {
                slots: Arc::new(Semaphore::new(slots)),
                window: Mutex::new((0, Instant::now())),
                paused_until: Mutex::new(None),
            }),
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> VendorLimits {
        self.limits
    }

    fn key(&self, what: &str) -> String {
        format!("vendor-budget:{}:{what}", self.vendor)
    }

    /// Waits (at most `wait_at_most`) until the vendor is not paused, a slot is free and
    /// the rate allows one more request, and answers the request's permit. Past the
    /// wait, a retryable `Unavailable` naming the vendor and the limit.
    pub async fn acquire(&self, wait_at_most: Duration) -> Result<BudgetPermit> {
        let deadline = Instant::now() + wait_at_most;
        self.wait_out_pause(deadline).await?;
        let held = self.take_slot(deadline).await?;
        self.take_rate(deadline).await?;
        Ok(BudgetPermit { held })
    }

    /// Asks every process to send this vendor nothing for `how_long` (the vendor's
    /// `Retry-After`).
    pub async fn pause(&self, how_long: Duration) {
        let until = Instant::now() + how_long;
        {
            let mut paused = self
                .local
                .paused_until
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *paused = Some(paused.map_or(until, |held| held.max(until)));
        }
        if let Some(cache) = &self.cache {
            let wall = time::OffsetDateTime::now_utc() + how_long;
            let millis = (wall.unix_timestamp_nanos() / 1_000_000).to_string();
            if let Err(error) = cache
                .set(&self.key("paused-until"), millis.as_bytes(), how_long)
                .await
            {
                tracing::debug!(%error, "the pause is kept in this process only");
            }
        }
        tracing::info!(vendor = %self.vendor, wait_ms = how_long.as_millis(), "vendor asked us to wait");
    }

    fn exhausted(&self, what: &str, waited: Duration) -> Error {
        Error::transient(
            format!("vendor {}", self.vendor),
            format!(
                "{what} (at most {} requests a second and {} at once); waited {} ms",
                self.limits.per_second,
                self.limits.in_flight,
                waited.as_millis()
            ),
        )
    }

    async fn wait_out_pause(&self, deadline: Instant) -> Result<()> {
        let started = Instant::now();
        let local = *self
            .local
            .paused_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut until = local.filter(|until| *until > started);
        if let Some(cache) = &self.cache
            && let Ok(Some(value)) = cache.get(&self.key("paused-until")).await
            && let Some(millis) = std::str::from_utf8(&value)
                .ok()
                .and_then(|text| text.parse::<i128>().ok())
        {
            let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
            let left = u64::try_from(millis - now).unwrap_or(0);
            if left > 0 {
                let shared = started + Duration::from_millis(left);
                until = Some(until.map_or(shared, |held| held.max(shared)));
            }
        }
        let Some(until) = until else {
            return Ok(());
        };
        if until > deadline {
            return Err(self.exhausted("asked us to wait longer than we may", started.elapsed()));
        }
        tokio::time::sleep_until(until).await;
        Ok(())
    }

    async fn take_slot(&self, deadline: Instant) -> Result<Held> {
        let started = Instant::now();
        if let Some(cache) = &self.cache {
            let key = self.key("in-flight");
            loop {
                match cache
                    .take_slot(&key, self.limits.in_flight, self.hold_at_most)
                    .await
                {
                    Ok(Some(token)) => {
                        return Ok(Held::Shared {
                            cache: cache.clone(),
                            key,
                            token,
                        });
                    }
                    Ok(None) if Instant::now() + FULL_PAUSE < deadline => {
                        tokio::time::sleep(FULL_PAUSE).await;
                    }
                    Ok(None) => {
                        return Err(self.exhausted("too many requests at once", started.elapsed()));
                    }
                    // The cache is down: count in this process meanwhile.
                    Err(_) => break,
                }
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, self.local.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Held::Local(permit)),
            _ => Err(self.exhausted("too many requests at once", started.elapsed())),
        }
    }

    async fn take_rate(&self, deadline: Instant) -> Result<()> {
        let started = Instant::now();
        let limit = self.limits.window();
        loop {
            let wait = match &self.cache {
                Some(cache) => match cache.rate_limit(&self.key("rate"), limit).await {
                    Ok(decision) if decision.allowed => return Ok(()),
                    Ok(decision) => decision.retry_after.max(Duration::from_millis(1)),
                    Err(_) => match self.take_local_rate(limit) {
                        None => return Ok(()),
                        Some(wait) => wait,
                    },
                },
                None => match self.take_local_rate(limit) {
                    None => return Ok(()),
                    Some(wait) => wait,
                },
            };
            if Instant::now() + wait > deadline {
                return Err(self.exhausted("too many requests a second", started.elapsed()));
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Counts one request in this process's window: `None` when it may go, or how long
    /// until the window resets.
    fn take_local_rate(&self, limit: RateLimit) -> Option<Duration> {
        let mut window = self
            .local
            .window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        if window.1 <= now {
            *window = (0, now + limit.window);
        }
        if window.0 < limit.max_requests {
            window.0 += 1;
            return None;
        }
        Some(
            window
                .1
                .saturating_duration_since(now)
                .max(Duration::from_millis(1)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::InMemoryCache;

    fn vendor() -> VendorId {
        VendorId::new("VendorA").expect("id")
    }

    #[test]
    fn windows_keep_any_second_within_a_tenth_above_the_rate() {
        let fast = VendorLimits {
            per_second: 45,
            in_flight: 1,
        };
        assert_eq!(
            fast.window(),
            RateLimit {
                max_requests: 4,
                window: Duration::from_millis(100)
            }
        );
        let slow = VendorLimits {
            per_second: 4,
            in_flight: 1,
        };
        assert_eq!(
            slow.window(),
            RateLimit {
                max_requests: 1,
                window: Duration::from_millis(250)
            }
        );
        assert!(
            VendorLimits {
                per_second: 0,
                in_flight: 1
            }
            .validate()
            .is_err()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_is_held_with_and_without_a_cache() {
        let limits = VendorLimits {
            per_second: 20,
            in_flight: 100,
        };
        for cache in [None, Some(Arc::new(InMemoryCache::new()) as Arc<dyn Cache>)] {
            let budget =
                VendorBudget::new(vendor(), limits, cache, Duration::from_secs(10)).expect("ok");
            let started = Instant::now();
            let mut permits = Vec::new();
            for _ in 0..20 {
                permits.push(
                    budget
                        .acquire(Duration::from_secs(5))
                        .await
                        .expect("permit"),
                );
            }
            // Two a tenth of a second: twenty take ten windows.
            let took = started.elapsed();
            assert!(
                took >= Duration::from_millis(900) && took <= Duration::from_millis(1_100),
                "{took:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn slots_bound_requests_at_once_and_a_full_budget_fails_after_the_wait() {
        let limits = VendorLimits {
            per_second: 1_000,
            in_flight: 2,
        };
        let cache: Arc<dyn Cache> = Arc::new(InMemoryCache::new());
        let budget =
            VendorBudget::new(vendor(), limits, Some(cache), Duration::from_secs(10)).expect("ok");
        let first = budget.acquire(Duration::from_secs(1)).await.expect("1");
        let _second = budget.acquire(Duration::from_secs(1)).await.expect("2");
        let refused = budget.acquire(Duration::from_millis(100)).await;
        assert!(
            matches!(refused, Err(ref error) if error.is_retryable()),
            "{refused:?}"
        );
        drop(first);
        // The slot is given back by a task: let it run.
        tokio::time::sleep(Duration::from_millis(5)).await;
        budget
            .acquire(Duration::from_secs(1))
            .await
            .expect("a slot came free");
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_every_request_of_every_budget_sharing_the_cache() {
        let cache: Arc<dyn Cache> = Arc::new(InMemoryCache::new());
        let one = VendorBudget::new(
            vendor(),
            VendorLimits::default(),
            Some(cache.clone()),
            Duration::from_secs(10),
        )
        .expect("ok");
        let other = VendorBudget::new(
            vendor(),
            VendorLimits::default(),
            Some(cache),
            Duration::from_secs(10),
        )
        .expect("ok");
        one.pause(Duration::from_secs(2)).await;
        assert!(
            other.acquire(Duration::from_millis(500)).await.is_err(),
            "paused longer than we may wait"
        );
        let started = Instant::now();
        let _late = other
            .acquire(Duration::from_secs(5))
            .await
            .expect("after the pause");
        assert!(
            started.elapsed() >= Duration::from_millis(1_000),
            "{:?}",
            started.elapsed()
        );
    }
}
