//! Exponential retry delays with jitter.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use crate::error::{Error, Result};

/// How many times a call is tried and how long to wait between tries: the wait before
/// retry `n` is `base * 2^(n-1)`, capped at `max`, then scaled by a random factor in
/// `[0.5, 1.0]` so that many callers do not retry in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    attempts: u32,
    base: Duration,
    max: Duration,
}

impl Backoff {
    /// `attempts` tries in all (at least 1; 1 means no retry), waits from `base` up to
    /// `max`; refuses a zero base or a max below the base.
    pub fn new(attempts: u32, base: Duration, max: Duration) -> Result<Self> {
        if attempts == 0 {
            return Err(Error::invalid("retryAttempts", "must be at least 1"));
        }
        if base.is_zero() {
            return Err(Error::invalid("retryBaseDelay", "must be above zero"));
        }
        if max < base {
            return Err(Error::invalid(
                "retryMaxDelay",
                "must not be below the base delay",
            ));
        }
        Ok(Self {
            attempts,
            base,
            max,
        })
    }

    /// Tries in all, the first included.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The wait before retry `retry` (from 1) with `jitter` in `[0, 1]` (0 gives half
    /// the exponential delay, 1 all of it).
    pub fn delay(&self, retry: u32, jitter: f64) -> Duration {
        let exponent = retry.saturating_sub(1).min(30);
        let full = self.base.saturating_mul(1u32 << exponent).min(self.max);
        full.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }

    /// A random number in `[0, 1)` for [`Backoff::delay`].
    pub fn random_jitter() -> f64 {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(0);
        (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Default for Backoff {
    /// Three tries, waiting about 100 ms and then 200 ms (at most 2 s).
    fn default() -> Self {
        Self {
            attempts: 3,
            base: Duration::from_millis(100),
            max: Duration::from_secs(2),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_jitter_halves_at_most() {
        let backoff =
            Backoff::new(6, Duration::from_millis(100), Duration::from_millis(500)).expect("ok");
        assert_eq!(backoff.delay(1, 1.0), Duration::from_millis(100));
        assert_eq!(backoff.delay(2, 1.0), Duration::from_millis(200));
        assert_eq!(backoff.delay(3, 1.0), Duration::from_millis(400));
        assert_eq!(backoff.delay(4, 1.0), Duration::from_millis(500));
        assert_eq!(backoff.delay(40, 1.0), Duration::from_millis(500));
        assert_eq!(backoff.delay(2, 0.0), Duration::from_millis(100));
        assert_eq!(backoff.delay(2, 7.0), Duration::from_millis(200), "clamped");
        for _ in 0..100 {
            let jitter = Backoff::random_jitter();
            assert!((0.0..1.0).contains(&jitter));
        }
    }

    #[test]
    fn bad_settings_are_refused() {
        let second = Duration::from_secs(1);
        assert!(Backoff::new(0, second, second).is_err());
        assert!(Backoff::new(1, Duration::ZERO, second).is_err());
        assert!(Backoff::new(1, second, Duration::from_millis(10)).is_err());
    }
}
