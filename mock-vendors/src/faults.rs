//! Fault switches: ways to break a mock vendor on purpose.

use serde::{Deserialize, Serialize};

/// The longest latency or slow-body delay a switch accepts, in milliseconds.
pub const MAX_DELAY_MS: u64 = 120_000;

/// The faults a mock vendor is currently simulating. All off by default.
///
/// They apply to the vendor's API (`/health`, `/info`, `/stock`, `/orders...`), never to
/// the `/simulate/...` switches themselves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Faults {
    /// Extra delay before each answer is sent (after the work is done, so a client that
    /// times out may miss the answer to an order the vendor did place).
    pub latency_ms: u64,
    /// The share of requests (0 to 1) answered `500` without doing anything.
    pub error_rate: f64,
    /// Every request is answered `503`: the vendor is down.
    pub outage: bool,
    /// The answer's body trickles out over this many milliseconds.
    pub slow_body_ms: u64,
    /// The answer's body is cut in half, so it is not valid JSON.
    pub malformed: bool,
    /// The stock feed reports a negative quantity for the first SKU of every page.
    pub bad_data: bool,
}

/// A change to some fault switches; the ones left out keep their value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultUpdate {
    /// See [`Faults::latency_ms`].
    pub latency_ms: Option<u64>,
    /// See [`Faults::error_rate`].
    pub error_rate: Option<f64>,
    /// See [`Faults::outage`].
    pub outage: Option<bool>,
    /// See [`Faults::slow_body_ms`].
    pub slow_body_ms: Option<u64>,
    /// See [`Faults::malformed`].
    pub malformed: Option<bool>,
    /// See [`Faults::bad_data`].
    pub bad_data: Option<bool>,
}

impl Faults {
    /// These faults with `update` applied; refuses an error rate outside 0..=1 or a
    /// delay above [`MAX_DELAY_MS`], naming the field, and then changes nothing.
    pub fn updated(self, update: FaultUpdate) -> Result<Self, (&'static str, String)> {
        let mut next = self;
        if let Some(rate) = update.error_rate {
            if !(0.0..=1.0).contains(&rate) {
                return Err(("errorRate", format!("{rate} is outside 0..=1")));
            }
            next.error_rate = rate;
        }
        for (field, value, slot) in [
            ("latencyMs", update.latency_ms, &mut next.latency_ms),
            ("slowBodyMs", update.slow_body_ms, &mut next.slow_body_ms),
        ] {
            if let Some(ms) = value {
                if ms > MAX_DELAY_MS {
                    return Err((field, format!("{ms} is above {MAX_DELAY_MS}")));
                }
                *slot = ms;
            }
        }
        next.outage = update.outage.unwrap_or(next.outage);
        next.malformed = update.malformed.unwrap_or(next.malformed);
        next.bad_data = update.bad_data.unwrap_or(next.bad_data);
        Ok(next)
    }

    /// True when no switch is on.
    pub fn is_clear(&self) -> bool {
        *self == Self::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_merge_and_bad_values_change_nothing() {
        let faults = Faults::default()
            .updated(FaultUpdate {
                latency_ms: Some(50),
                outage: Some(true),
                ..FaultUpdate::default()
            })
            .expect("valid");
        assert_eq!(faults.latency_ms, 50);
        assert!(faults.outage && !faults.is_clear());
        let faults = faults
            .updated(FaultUpdate {
                outage: Some(false),
                ..FaultUpdate::default()
            })
            .expect("valid");
        assert_eq!(faults.latency_ms, 50, "untouched switch kept");
        assert!(!faults.outage);
        let bad = faults.updated(FaultUpdate {
            error_rate: Some(1.5),
            ..FaultUpdate::default()
        });
        assert_eq!(bad.map_err(|(field, _)| field), Err("errorRate"));
        let bad = faults.updated(FaultUpdate {
            slow_body_ms: Some(MAX_DELAY_MS + 1),
            ..FaultUpdate::default()
        });
        assert_eq!(bad.map_err(|(field, _)| field), Err("slowBodyMs"));
        let nan = faults.updated(FaultUpdate {
            error_rate: Some(f64::NAN),
            ..FaultUpdate::default()
        });
        assert!(nan.is_err());
    }
}
