//! Where "now" comes from, so that expiry and staleness can be tested without waiting.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use time::{Duration, OffsetDateTime};

/// A source of the current time (our clock, never a vendor's).
pub trait Clock: Send + Sync + Debug + 'static {
    /// The current time.
    fn now(&self) -> OffsetDateTime;
}

/// The system's wall clock, to the microsecond (the resolution PostgreSQL stores, so a
/// time read back equals the time written).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        let now = OffsetDateTime::now_utc();
        let micros = now.microsecond();
        now.replace_microsecond(micros).unwrap_or(now)
    }
}

/// A clock that stands still until moved; for tests.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<OffsetDateTime>>,
}

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: OffsetDateTime) -> Self {
        Self {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *now += by;
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: OffsetDateTime) {
        *self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
