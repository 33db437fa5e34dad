//! Vendors and their health as seen by stock sync.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::domain::VendorId;
use crate::error::{Error, Result};

/// How a vendor's recent syncs went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum VendorHealth {
    /// The last sync succeeded.
    Healthy,
    /// Recent syncs failed, fewer than the policy's limit in a row.
    Degraded,
    /// At least the policy's limit of syncs failed in a row.
    Down,
}

impl VendorHealth {
    /// The health as a lower-case word (`healthy`, `degraded`, `down`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Down => "down",
        }
    }

    /// Parses the lower-case word; anything else is `Invalid`.
    pub fn parse(text: &str) -> Result<Self> {
        [Self::Healthy, Self::Degraded, Self::Down]
            .into_iter()
            .find(|health| health.as_str() == text)
            .ok_or_else(|| Error::invalid("health", format!("{text:?} is not a vendor health")))
    }
}

/// When a run of failed syncs turns a vendor from degraded to down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthPolicy {
    /// Consecutive failures after which a vendor is `Down` (fewer make it `Degraded`).
    pub down_after_failures: u32,
}

impl HealthPolicy {
    /// The health a vendor has after `consecutive_failures` failed syncs in a row.
    pub fn health_after(&self, consecutive_failures: u32) -> VendorHealth {
        match consecutive_failures {
            0 => VendorHealth::Healthy,
            n if n >= self.down_after_failures => VendorHealth::Down,
            _ => VendorHealth::Degraded,
        }
    }
}

impl Default for HealthPolicy {
    fn default() -> Self {
        Self {
            down_after_failures: 3,
        }
    }
}

/// How old a vendor's last good sync may be before its stock stops counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StalenessLimit(Duration);

impl StalenessLimit {
    /// The default: five minutes (ten missed syncs at the default 30 s interval).
    pub const DEFAULT: Self = Self(Duration::minutes(5));

    /// A limit of `limit`; refuses zero or negative durations.
    pub fn new(limit: Duration) -> Result<Self> {
        if limit <= Duration::ZERO {
            return Err(Error::invalid("stalenessLimit", "must be positive"));
        }
        Ok(Self(limit))
    }

    /// The limit as a duration.
    pub fn get(self) -> Duration {
        self.0
    }

    /// The oldest last-good-sync time (in our clock) that still counts at `now`.
    pub fn fresh_since(self, now: OffsetDateTime) -> OffsetDateTime {
        now - self.0
    }
}

impl Default for StalenessLimit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A third-party vendor whose stock we sell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Vendor {
    /// The vendor's id.
    pub id: VendorId,
    /// Display name.
    pub name: String,
    /// Where its API lives.
    pub base_url: String,
    /// Allocation preference: lower numbers are tried first.
    pub priority: u16,
    /// Health from recent syncs.
    pub health: VendorHealth,
    /// Our clock's time of the last sync that succeeded, if any.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_good_sync: Option<OffsetDateTime>,
    /// Failed syncs since the last good one.
    pub consecutive_failures: u32,
    /// Why the last sync failed, if it did.
    pub last_error: Option<String>,
}

impl Vendor {
    /// A newly registered vendor: healthy, never synced, so not yet counted toward
    /// availability. Refuses an empty name or a base URL that is not http(s).
    pub fn new(
        id: VendorId,
        name: impl Into<String>,
        base_url: impl Into<String>,
        priority: u16,
    ) -> Result<Self> {
        let name = name.into();
        let base_url = base_url.into();
        if name.trim().is_empty() || name.len() > 200 {
            return Err(Error::invalid("name", "must have 1 to 200 characters"));
        }
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(Error::invalid(
                "baseUrl",
                "must start with http:// or https://",
            ));
        }
        Ok(Self {
            id,
            name,
            base_url,
            priority,
            health: VendorHealth::Healthy,
            last_good_sync: None,
            consecutive_failures: 0,
            last_error: None,
        })
    }

    /// True when the vendor's last good sync is at or after `fresh_since`, so its stock
    /// counts toward availability.
    pub fn is_fresh(&self, fresh_since: OffsetDateTime) -> bool {
        self.last_good_sync.is_some_and(|at| at >= fresh_since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn health_policy_degrades_then_goes_down() {
        let policy = HealthPolicy {
            down_after_failures: 3,
        };
        assert_eq!(policy.health_after(0), VendorHealth::Healthy);
        assert_eq!(policy.health_after(1), VendorHealth::Degraded);
        assert_eq!(policy.health_after(2), VendorHealth::Degraded);
        assert_eq!(policy.health_after(3), VendorHealth::Down);
        assert_eq!(policy.health_after(30), VendorHealth::Down);
    }

    #[test]
    fn freshness_follows_last_good_sync() {
        let id = VendorId::new("VendorA").expect("valid id");
        let mut vendor = Vendor::new(id, "Vendor A", "http://127.0.0.1:3001", 1).expect("valid");
        let now = datetime!(2026-11-24 12:00 UTC);
        let limit = StalenessLimit::new(Duration::minutes(5)).expect("positive");
        assert!(!vendor.is_fresh(limit.fresh_since(now)), "never synced");
        vendor.last_good_sync = Some(now - Duration::minutes(5));
        assert!(
            vendor.is_fresh(limit.fresh_since(now)),
            "exactly at the limit"
        );
        vendor.last_good_sync = Some(now - Duration::minutes(6));
        assert!(!vendor.is_fresh(limit.fresh_since(now)));
        assert!(StalenessLimit::new(Duration::ZERO).is_err());
    }

    #[test]
    fn vendor_validation() {
        let id = VendorId::new("VendorA").expect("valid id");
        assert!(Vendor::new(id.clone(), " ", "http://x", 1).is_err());
        assert!(Vendor::new(id, "A", "ftp://x", 1).is_err());
    }
}
