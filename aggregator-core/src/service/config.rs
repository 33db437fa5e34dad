//! Settings of the ordering logic.

use time::Duration;

use crate::domain::{QuantityLimit, StalenessLimit};
use crate::error::{Error, Result};
use crate::traits::HoldLimits;

/// Rules for placing orders and holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderConfig {
    /// How long a placed order holds its units before it expires unconfirmed.
    pub reservation_ttl: Duration,
    /// How old a vendor's last good sync may be before its stock stops counting.
    pub staleness: StalenessLimit,
    /// The most units one line may ask for.
    pub quantity_limit: QuantityLimit,
    /// The most lines one order may have.
    pub max_lines: usize,
    /// How many times a placement that lost a race for stock is planned again.
    pub placement_attempts: u32,
    /// The longest a hold may last (on creation and per extension).
    pub max_hold_ttl: Duration,
    /// The longest a hold may last from its creation, extensions included.
    pub max_hold_lifetime: Duration,
    /// What one customer may hold at once.
    pub hold_limits: HoldLimits,
}

impl OrderConfig {
    /// Refuses settings that cannot work (zero or negative durations, no lines, no
    /// attempts).
    pub fn validate(&self) -> Result<()> {
        if self.reservation_ttl <= Duration::ZERO {
            return Err(Error::invalid("reservationTtl", "must be positive"));
        }
        if self.max_hold_ttl <= Duration::ZERO {
            return Err(Error::invalid("maxHoldTtl", "must be positive"));
        }
        if self.max_hold_lifetime <= Duration::ZERO {
            return Err(Error::invalid("maxHoldLifetime", "must be positive"));
        }
        if self.hold_limits.max_active == 0 || self.hold_limits.max_units == 0 {
            return Err(Error::invalid(
                "holdLimits",
                "must allow at least one hold of one unit",
            ));
        }
        if self.max_lines == 0 {
            return Err(Error::invalid("maxLines", "must be at least 1"));
        }
        if self.placement_attempts == 0 {
            return Err(Error::invalid("placementAttempts", "must be at least 1"));
        }
        Ok(())
    }
}

impl Default for OrderConfig {
    /// 15-minute reservations, 5-minute staleness, 1,000 units and 100 lines at most,
    /// 3 placement attempts, holds of at most an hour in all, 10 holds and 100 held
    /// units per customer.
    fn default() -> Self {
        Self {
            reservation_ttl: Duration::minutes(15),
            staleness: StalenessLimit::DEFAULT,
            quantity_limit: QuantityLimit::DEFAULT,
            max_lines: 100,
            placement_attempts: 3,
            max_hold_ttl: Duration::hours(1),
            max_hold_lifetime: Duration::hours(1),
            hold_limits: HoldLimits::default(),
        }
    }
}
