//! The signature every webhook delivery carries, and the check a receiver runs.
//!
//! A delivery is a `POST` whose headers are [`ID_HEADER`] (the delivery's id, the same on
//! every retry of it), [`TIMESTAMP_HEADER`] (seconds since the Unix epoch when this
//! attempt was signed) and [`SIGNATURE_HEADER`] (`v1=` and the lower-case hex
//! HMAC-SHA256, keyed with the endpoint's secret, of the timestamp, a `.`, and the raw
//! body bytes). A receiver recomputes the HMAC over exactly those bytes, compares in
//! constant time, and refuses a timestamp further than its tolerance from its own
//! clock (a replayed old delivery); [`verify`] does all three.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use time::{Duration, OffsetDateTime};

use crate::error::{Error, Result};

/// The delivery's id: the same on every attempt, so a receiver can drop duplicates.
pub const ID_HEADER: &str = "Webhook-Id";
/// When this attempt was signed, in whole seconds since the Unix epoch.
pub const TIMESTAMP_HEADER: &str = "Webhook-Timestamp";
/// `v1=<hex HMAC-SHA256 of "<timestamp>.<body>">`; several, space-separated, while a
/// secret is being replaced.
pub const SIGNATURE_HEADER: &str = "Webhook-Signature";

/// How far a delivery's timestamp may be from the receiver's clock by default.
pub const DEFAULT_TOLERANCE: Duration = Duration::minutes(5);

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The [`SIGNATURE_HEADER`] value for `body` sent at `timestamp` under `secret`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let digest = mac(secret, timestamp, body).finalize().into_bytes();
    let mut text = String::with_capacity(3 + digest.len() * 2);
    text.push_str("v1=");
    for byte in digest {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Checks a delivery as a receiver should: `timestamp` (the [`TIMESTAMP_HEADER`]) lies
/// within `tolerance` of `now`, and one of the `v1=` signatures in `signatures` (the
/// [`SIGNATURE_HEADER`]) is the HMAC of `"<timestamp>.<body>"` under `secret`, compared
/// in constant time. Refuses (`Invalid`, naming the header) anything else.
pub fn verify(
    secret: &[u8],
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now: OffsetDateTime,
    tolerance: Duration,
) -> Result<()> {
    let seconds: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| Error::invalid(TIMESTAMP_HEADER, "is not a whole number of seconds"))?;
    let sent = OffsetDateTime::from_unix_timestamp(seconds)
        .map_err(|_| Error::invalid(TIMESTAMP_HEADER, "is out of range"))?;
    if (now - sent).abs() > tolerance {
        return Err(Error::invalid(
            TIMESTAMP_HEADER,
            format!(
                "is {:.0} s from our clock; more than the {:.0} s tolerated (a replay?)",
                (now - sent).abs().as_seconds_f64(),
                tolerance.as_seconds_f64()
            ),
        ));
    }
    let expected = mac(secret, seconds, body);
    let matched = signatures
        .split([' ', ','])
        .filter_map(|part| part.strip_prefix("v1="))
        .filter_map(hex_bytes)
        .any(|given| expected.clone().verify_slice(&given).is_ok());
    if matched {
        Ok(())
    } else {
        Err(Error::invalid(
            SIGNATURE_HEADER,
            "no v1 signature matches this body and timestamp",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha256_matches_rfc_4231_case_2() {
        // The HMAC itself, before our "<timestamp>." framing: key "Jefe".
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(b"Jefe").expect("key");
        mac.update(b"what do ya want for nothing?");
        let digest: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            digest,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_signature_verifies_and_any_change_is_refused() {
        let now = OffsetDateTime::from_unix_timestamp(1_764_500_000).expect("time");
        let body = br#"{"type":"order.confirmed","orderId":"x"}"#;
        let header = sign(b"s3cret", 1_764_500_000, body);
        assert!(header.starts_with("v1=") && header.len() == 67, "{header}");
        let ok = |secret: &[u8], ts: &str, sig: &str, body: &[u8]| {
            verify(secret, ts, sig, body, now, DEFAULT_TOLERANCE)
        };
        ok(b"s3cret", "1764500000", &header, body).expect("verifies");
        ok(b"s3cret", "1764500000", &format!("v1=00 {header}"), body).expect("one of several");
        for (secret, ts, sig, body, field) in [
            (
                &b"other"[..],
                "1764500000",
                header.as_str(),
                &body[..],
                SIGNATURE_HEADER,
            ),
            (b"s3cret", "1764500001", &header, body, SIGNATURE_HEADER),
            (b"s3cret", "1764500000", &header, b"{}", SIGNATURE_HEADER),
            (b"s3cret", "1764500000", "v0=abc", body, SIGNATURE_HEADER),
            (b"s3cret", "1764500000", "v1=zz", body, SIGNATURE_HEADER),
            (b"s3cret", "soon", &header, body, TIMESTAMP_HEADER),
            (b"s3cret", "1764499000", &header, body, TIMESTAMP_HEADER),
        ] {
            let error = ok(secret, ts, sig, body).expect_err("refused");
            assert!(error.to_string().contains(field), "{error}");
        }
    }
}
