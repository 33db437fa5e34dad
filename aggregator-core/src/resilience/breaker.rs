//! A circuit breaker: after a run of failures, calls fail at once for a while, then one
//! probe call decides whether to close again.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::clock::Clock;
use crate::error::{Error, Result};

/// When a breaker opens and how long it stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Failures in a row that open the breaker.
    pub failure_threshold: u32,
    /// How long it stays open before letting one probe through.
    pub open_for: Duration,
}

impl BreakerConfig {
    /// A config; refuses a zero threshold or a zero open time.
    pub fn new(failure_threshold: u32, open_for: Duration) -> Result<Self> {
        if failure_threshold == 0 {
            return Err(Error::invalid(
                "breakerFailureThreshold",
                "must be at least 1",
            ));
        }
        if open_for.is_zero() {
            return Err(Error::invalid("breakerOpenFor", "must be above zero"));
        }
        Ok(Self {
            failure_threshold,
            open_for,
        })
    }
}

impl Default for BreakerConfig {
    /// Opens after 5 failures in a row, for 30 seconds.
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            open_for: Duration::from_secs(30),
        }
    }
}

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls fail at once.
    Open,
    /// One probe call is (or may be) in flight; its result closes or re-opens it.
    HalfOpen,
}

/// The breaker refused a call; it is open until `retry_after` from now has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerOpen {
    /// How long until a probe may go through.
    pub retry_after: Duration,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Closed { failures: u32 },
    Open { until: OffsetDateTime },
    HalfOpen { probing: bool },
}

/// A circuit breaker for one dependency; share it by reference (or `Arc`) among every
/// caller of that dependency.
#[derive(Debug)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    clock: Arc<dyn Clock>,
    phase: Mutex<Phase>,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig, clock: Arc<dyn Clock>) -> Self {
        Self {
            config,
            clock,
            phase: Mutex::new(Phase::Closed { failures: 0 }),
        }
    }

    fn phase(&self) -> MutexGuard<'_, Phase> {
        self.phase
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Where the breaker stands now (an open breaker whose time is up reads half-open).
    pub fn state(&self) -> BreakerState {
        match *self.phase() {
            Phase::Closed { .. } => BreakerState::Closed,
            Phase::Open { until } if self.clock.now() < until => BreakerState::Open,
            Phase::Open { .. } | Phase::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Asks to make a call. Closed: granted. Open: refused until its time is up, then
    /// granted to exactly one caller as the probe. The permit must be settled with
    /// [`BreakerPermit::success`] or [`BreakerPermit::failure`]; a probe permit dropped
    /// unsettled lets the next caller probe instead.
    pub fn acquire(&self) -> std::result::Result<BreakerPermit<'_>, BreakerOpen> {
        let mut phase = self.phase();
        let now = self.clock.now();
        let probe = match *phase {
            Phase::Closed { .. } => false,
            Phase::Open { until } if now < until => {
                let left = until - now;
                return Err(BreakerOpen {
                    retry_after: left.try_into().unwrap_or(Duration::ZERO),
                });
            }
            Phase::Open { .. } | Phase::HalfOpen { probing: false } => {
                *phase = Phase::HalfOpen { probing: true };
                true
            }
            Phase::HalfOpen { probing: true } => {
                return Err(BreakerOpen {
                    retry_after: Duration::ZERO,
                });
            }
        };
        Ok(BreakerPermit {
            breaker: self,
            probe,
            settled: false,
        })
    }

    /// Like [`CircuitBreaker::acquire`], but an open breaker is waited for, up to
    /// `patience`: the caller sleeps until the breaker lets a probe through (or, while
    /// another caller's probe is out, until that probe settles) instead of failing at
    /// once. Refuses only when `patience` would run out first. Waiting is not a failed
    /// call: a caller that counts its attempts spends none on it.
    pub async fn acquire_within(
        &self,
        patience: Duration,
    ) -> std::result::Result<BreakerPermit<'_>, BreakerOpen> {
        /// How often a caller looks again while another caller's probe is out.
        const PROBE_POLL: Duration = Duration::from_millis(25);
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let refused = match self.acquire() {
                Ok(permit) => return Ok(permit),
                Err(refused) => refused,
            };
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if refused.retry_after > left || left.is_zero() {
                return Err(refused);
            }
            let pause = if refused.retry_after.is_zero() {
                PROBE_POLL.min(left)
            } else {
                refused.retry_after
            };
            tokio::time::sleep(pause).await;
        }
    }

    fn settle(&self, probe: bool, succeeded: bool) {
        let mut phase = self.phase();
        let now = self.clock.now();
        let open = Phase::Open {
            until: now + self.config.open_for,
        };
        *phase = match (*phase, probe, succeeded) {
            (Phase::HalfOpen { .. }, true, true) => Phase::Closed { failures: 0 },
            (Phase::HalfOpen { .. }, true, false) => open,
            (Phase::Closed { .. }, _, true) => Phase::Closed { failures: 0 },
            (Phase::Closed { failures }, _, false) => {
                let failures = failures.saturating_add(1);
                if failures >= self.config.failure_threshold {
                    open
                } else {
                    Phase::Closed { failures }
                }
            }
            // Calls that started before the breaker opened do not move it.
            (other, _, _) => other,
        };
    }

    fn abandon(&self, probe: bool) {
        let mut phase = self.phase();
        if probe && matches!(*phase, Phase::HalfOpen { probing: true }) {
            *phase = Phase::HalfOpen { probing: false };
        }
    }
}

/// Leave to make one call through a [`CircuitBreaker`].
#[derive(Debug)]
#[must_use = "settle the permit with success() or failure()"]
pub struct BreakerPermit<'a> {
    breaker: &'a CircuitBreaker,
    probe: bool,
    settled: bool,
}

impl BreakerPermit<'_> {
    /// True if this call is the half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// The call worked (the dependency answered sensibly).
    pub fn success(mut self) {
        self.settled = true;
        self.breaker.settle(self.probe, true);
    }

    /// The call failed in a way that counts against the dependency.
    pub fn failure(mut self) {
        self.settled = true;
        self.breaker.settle(self.probe, false);
    }
}

impl Drop for BreakerPermit<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.breaker.abandon(self.probe);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use time::macros::datetime;

    fn breaker() -> (CircuitBreaker, ManualClock) {
        let clock = ManualClock::new(datetime!(2026-11-25 12:00 UTC));
        let config = BreakerConfig::new(3, Duration::from_secs(10)).expect("valid");
        (CircuitBreaker::new(config, Arc::new(clock.clone())), clock)
    }

    #[test]
    fn opens_after_the_threshold_and_a_success_resets_the_count() {
        let (breaker, _) = breaker();
        breaker.acquire().expect("closed").failure();
        breaker.acquire().expect("closed").failure();
        breaker.acquire().expect("closed").success();
        breaker.acquire().expect("closed").failure();
        breaker.acquire().expect("closed").failure();
        assert_eq!(breaker.state(), BreakerState::Closed);
        breaker.acquire().expect("closed").failure();
        assert_eq!(breaker.state(), BreakerState::Open);
        let refused = breaker.acquire().expect_err("open");
        assert_eq!(refused.retry_after, Duration::from_secs(10));
    }

    #[test]
    fn one_probe_after_the_open_time_closes_or_reopens() {
        let (breaker, clock) = breaker();
        for _ in 0..3 {
            breaker.acquire().expect("closed").failure();
        }
        clock.advance(time::Duration::seconds(10));
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        let probe = breaker.acquire().expect("probe");
        assert!(probe.is_probe());
        assert!(breaker.acquire().is_err(), "only one probe at a time");
        probe.failure();
        assert_eq!(breaker.state(), BreakerState::Open, "failed probe re-opens");
        clock.advance(time::Duration::seconds(10));
        let probe = breaker.acquire().expect("probe");
        probe.success();
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert!(!breaker.acquire().expect("closed").is_probe());
    }

    #[test]
    fn an_abandoned_probe_lets_another_caller_probe() {
        let (breaker, clock) = breaker();
        for _ in 0..3 {
            breaker.acquire().expect("closed").failure();
        }
        clock.advance(time::Duration::seconds(11));
        drop(breaker.acquire().expect("probe"));
        let probe = breaker.acquire().expect("the next caller probes");
        assert!(probe.is_probe());
        probe.success();
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[test]
    fn late_results_of_calls_started_while_closed_do_not_close_an_open_breaker() {
        let (breaker, _) = breaker();
        let early = breaker.acquire().expect("closed");
        for _ in 0..3 {
            breaker.acquire().expect("closed").failure();
        }
        early.success();
        assert_eq!(breaker.state(), BreakerState::Open);
    }

    #[tokio::test]
    async fn waiting_callers_get_through_once_the_breaker_lets_them() {
        let config = BreakerConfig::new(1, Duration::from_millis(150)).expect("valid");
        let breaker = Arc::new(CircuitBreaker::new(
            config,
            Arc::new(crate::clock::SystemClock),
        ));
        breaker.acquire().expect("closed").failure();
        assert_eq!(breaker.state(), BreakerState::Open);
        let impatient = breaker.acquire_within(Duration::from_millis(10)).await;
        assert!(impatient.is_err(), "gives up when the wait would be longer");
        // Three callers wait; the first through is the probe, the others wait for it.
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let breaker = Arc::clone(&breaker);
                tokio::spawn(async move {
                    let permit = breaker
                        .acquire_within(Duration::from_secs(10))
                        .await
                        .expect("let through");
                    let probe = permit.is_probe();
                    permit.success();
                    probe
                })
            })
            .collect();
        let mut probes = 0;
        for waiter in waiters {
            if waiter.await.expect("joined") {
                probes += 1;
            }
        }
        assert_eq!(probes, 1, "one probe, then the breaker was closed");
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(BreakerConfig::new(0, Duration::from_secs(1)).is_err());
        assert!(BreakerConfig::new(1, Duration::ZERO).is_err());
    }
}
