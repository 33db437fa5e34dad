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
    /// Milliseconds added to the stock feed's clock (`asOf`, `X-As-Of`): the feed's
    /// server runs this much ahead (or, negative, behind).
    pub feed_clock_offset_ms: i64,
    /// Milliseconds added to the order endpoint's clock (`confirmedAt`), independently
    /// of the feed's.
    pub order_clock_offset_ms: i64,
    /// The share of order placements (0 to 1) that are carried out and whose answer is
    /// then lost: the connection breaks mid-answer.
    pub lost_answer_rate: f64,
    /// When set (a 4xx or 5xx status), every cancellation is answered with it and
    /// changes nothing: a vendor refusing cancellations (`422`, say) for a while.
    pub cancel_refusal_status: u16,
    /// A cancellation of a key the vendor never saw is answered `404` and not
    /// remembered, so a placement under that key arriving later is accepted (a vendor
    /// that keeps no record of unknown keys).
    pub forget_unknown_cancels: bool,
    /// Extra delay before a cancellation is carried out and answered (orders and
    /// everything else are not slowed).
    pub cancel_latency_ms: u64,
    /// When set, requests past this many in one second (of the vendor's clock) are
    /// answered `429` with `Retry-After` (the rest of that second) and do nothing.
    pub rate_limit_per_sec: u32,
}

/// The largest clock offset a switch accepts, in milliseconds (a day).
pub const MAX_CLOCK_OFFSET_MS: i64 = 86_400_000;

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
    /// See [`Faults::feed_clock_offset_ms`].
    pub feed_clock_offset_ms: Option<i64>,
    /// See [`Faults::order_clock_offset_ms`].
    pub order_clock_offset_ms: Option<i64>,
    /// See [`Faults::lost_answer_rate`].
    pub lost_answer_rate: Option<f64>,
    /// See [`Faults::cancel_refusal_status`]; `0` turns it off.
    pub cancel_refusal_status: Option<u16>,
    /// See [`Faults::forget_unknown_cancels`].
    pub forget_unknown_cancels: Option<bool>,
    /// See [`Faults::cancel_latency_ms`].
    pub cancel_latency_ms: Option<u64>,
    /// See [`Faults::rate_limit_per_sec`]; `0` turns it off.
    pub rate_limit_per_sec: Option<u32>,
}

impl Faults {
    /// These faults with `update` applied; refuses an error rate outside 0..=1 or a
    /// delay above [`MAX_DELAY_MS`], naming the field, and then changes nothing.
    pub fn updated(self, update: FaultUpdate) -> Result<Self, (&'static str, String)> {
        let mut next = self;
        for (field, value, slot) in [
            ("errorRate", update.error_rate, &mut next.error_rate),
            (
                "lostAnswerRate",
                update.lost_answer_rate,
                &mut next.lost_answer_rate,
            ),
        ] {
            if let Some(rate) = value {
                if !(0.0..=1.0).contains(&rate) {
                    return Err((field, format!("{rate} is outside 0..=1")));
                }
                *slot = rate;
            }
        }
        for (field, value, slot) in [
            (
                "feedClockOffsetMs",
                update.feed_clock_offset_ms,
                &mut next.feed_clock_offset_ms,
            ),
            (
                "orderClockOffsetMs",
                update.order_clock_offset_ms,
                &mut next.order_clock_offset_ms,
            ),
        ] {
            if let Some(ms) = value {
                if !(-MAX_CLOCK_OFFSET_MS..=MAX_CLOCK_OFFSET_MS).contains(&ms) {
                    return Err((field, format!("{ms} is outside ±{MAX_CLOCK_OFFSET_MS}")));
                }
                *slot = ms;
            }
        }
        for (field, value, slot) in [
            ("latencyMs", update.latency_ms, &mut next.latency_ms),
            ("slowBodyMs", update.slow_body_ms, &mut next.slow_body_ms),
            (
                "cancelLatencyMs",
                update.cancel_latency_ms,
                &mut next.cancel_latency_ms,
            ),
        ] {
            if let Some(ms) = value {
                if ms > MAX_DELAY_MS {
                    return Err((field, format!("{ms} is above {MAX_DELAY_MS}")));
                }
                *slot = ms;
            }
        }
        if let Some(status) = update.cancel_refusal_status {
            if status != 0 && !(400..=599).contains(&status) {
                return Err((
                    "cancelRefusalStatus",
                    format!("{status} is neither 0 nor a 4xx or 5xx status"),
                ));
            }
            next.cancel_refusal_status = status;
        }
        next.rate_limit_per_sec = update.rate_limit_per_sec.unwrap_or(next.rate_limit_per_sec);
        next.forget_unknown_cancels = update
            .forget_unknown_cancels
            .unwrap_or(next.forget_unknown_cancels);
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
        let skewed = faults
            .updated(FaultUpdate {
                feed_clock_offset_ms: Some(5_000),
                order_clock_offset_ms: Some(-2_000),
                lost_answer_rate: Some(0.25),
                ..FaultUpdate::default()
            })
            .expect("valid");
        assert_eq!(
            (
                skewed.feed_clock_offset_ms,
                skewed.order_clock_offset_ms,
                skewed.lost_answer_rate
            ),
            (5_000, -2_000, 0.25)
        );
        for bad in [
            FaultUpdate {
                feed_clock_offset_ms: Some(MAX_CLOCK_OFFSET_MS + 1),
                ..FaultUpdate::default()
            },
            FaultUpdate {
                lost_answer_rate: Some(-0.1),
                ..FaultUpdate::default()
            },
        ] {
            assert!(skewed.updated(bad).is_err());
        }
    }
}
