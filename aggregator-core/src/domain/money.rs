//! Prices: integer minor units with an ISO 4217 currency code, never floats.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A three-letter upper-case ISO 4217 currency code such as `USD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    /// US dollars.
    pub const USD: Self = Self(*b"USD");
    /// Euros.
    pub const EUR: Self = Self(*b"EUR");

    /// Parses a three-letter upper-case code.
    pub fn new(code: &str) -> Result<Self> {
        let bytes = code.as_bytes();
        match bytes {
            [a, b, c] if bytes.iter().all(u8::is_ascii_uppercase) => Ok(Self([*a, *b, *c])),
            _ => Err(Error::invalid(
                "currency",
                format!("{code:?} is not a three-letter upper-case ISO 4217 code"),
            )),
        }
    }

    /// Digits after the decimal point of this currency's minor unit (ISO 4217): 0 for
    /// currencies without one (JPY, KRW, ...), 3 for the dinars and rials that count
    /// thousandths, 2 for every other currency.
    pub fn exponent(&self) -> u32 {
        match &self.0 {
            b"BIF" | b"CLP" | b"DJF" | b"GNF" | b"ISK" | b"JPY" | b"KMF" | b"KRW" | b"PYG"
            | b"RWF" | b"UGX" | b"UYI" | b"VND" | b"VUV" | b"XAF" | b"XOF" | b"XPF" => 0,
            b"BHD" | b"IQD" | b"JOD" | b"KWD" | b"LYD" | b"OMR" | b"TND" => 3,
            _ => 2,
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        // Built only from ASCII upper-case letters, so always valid UTF-8.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl TryFrom<String> for Currency {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        Self::new(&value)
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> String {
        value.as_str().to_owned()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A non-negative amount of money in minor units (cents for USD).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Money {
    minor_units: i64,
    currency: Currency,
}

impl Money {
    /// An amount of `minor_units` in `currency`; refuses negative amounts.
    pub fn new(minor_units: i64, currency: Currency) -> Result<Self> {
        if minor_units < 0 {
            return Err(Error::invalid("price", "must not be negative"));
        }
        Ok(Self {
            minor_units,
            currency,
        })
    }

    /// Zero in `currency`.
    pub fn zero(currency: Currency) -> Self {
        Self {
            minor_units: 0,
            currency,
        }
    }

    /// The amount in minor units.
    pub fn minor_units(&self) -> i64 {
        self.minor_units
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// This amount times `quantity`; refuses overflow.
    pub fn times(self, quantity: u32) -> Result<Self> {
        self.minor_units
            .checked_mul(i64::from(quantity))
            .map(|minor_units| Self {
                minor_units,
                ..self
            })
            .ok_or_else(|| Error::invalid("price", "amount overflows"))
    }

    /// The sum of two amounts in the same currency; refuses mixed currencies and overflow.
    pub fn plus(self, other: Self) -> Result<Self> {
        if self.currency != other.currency {
            return Err(Error::invalid(
                "currency",
                format!("cannot add {} to {}", other.currency, self.currency),
            ));
        }
        self.minor_units
            .checked_add(other.minor_units)
            .map(|minor_units| Self {
                minor_units,
                ..self
            })
            .ok_or_else(|| Error::invalid("price", "amount overflows"))
    }
}

impl Money {
    /// The amount in major units as a decimal, with as many decimals as the currency's
    /// minor unit has (`999.99` for USD, `1500` for JPY, `1.250` for KWD).
    pub fn decimal(&self) -> String {
        // Never negative (`Money::new` refuses that).
        decimal(self.minor_units.unsigned_abs(), self.currency.exponent())
    }

    /// Whether `quoted` is exactly this amount (in this currency's major units).
    pub fn is(&self, quoted: &QuotedPrice) -> bool {
        quoted.in_minor_units(self.currency) == Some(self.minor_units)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.decimal(), self.currency)
    }
}

/// A price a client quoted, in major units, as an exact decimal (never a float): the
/// digits and how many of them follow the decimal point. Compared with catalog prices
/// through [`Money::is`], in any currency's minor unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuotedPrice {
    digits: u64,
    scale: u32,
}

impl QuotedPrice {
    /// The largest price a client may quote, in major units.
    pub const MAX: u64 = 1_000_000_000_000;

    /// Parses a plain non-negative decimal such as `999.99` or `1500` (at most 12
    /// digits after the point, at most [`QuotedPrice::MAX`]).
    pub fn parse(text: &str) -> Result<Self> {
        let refuse = || {
            Error::invalid(
                "unitPrice",
                format!("{text:?} is not a price from 0 to 10^12 with at most 12 decimals"),
            )
        };
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits_only = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits_only(whole) || !digits_only(fraction) || fraction.len() > 12
        {
            return Err(refuse());
        }
        let fraction = fraction.trim_end_matches('0');
        let scale = u32::try_from(fraction.len()).map_err(|_| refuse())?;
        let whole: u64 = whole.parse().map_err(|_| refuse())?;
        if whole > Self::MAX || (whole == Self::MAX && !fraction.is_empty()) {
            return Err(refuse());
        }
        let fraction_value: u64 = if fraction.is_empty() {
            0
        } else {
            fraction.parse().map_err(|_| refuse())?
        };
        let digits = whole
            .checked_mul(10_u64.pow(scale))
            .and_then(|w| w.checked_add(fraction_value))
            .ok_or_else(refuse)?;
        Ok(Self { digits, scale })
    }

    /// The decimal a JSON number stands for: the shortest decimal that reads back as
    /// `value` (what the client wrote, for every price with up to 15 significant
    /// digits). Refuses negative, non-finite and too large values.
    pub fn from_f64(value: f64) -> Result<Self> {
        if !value.is_finite() || value < 0.0 {
            return Err(Error::invalid(
                "unitPrice",
                "must be a price from 0 to 10^12",
            ));
        }
        // Rust prints the shortest round-tripping decimal, never in exponent form. A float
        // artefact such as 0.30000000000000004 (0.1 + 0.2 in a client) has more digits
        // than any currency's minor unit: round it to the 12 decimals a quote may have.
        let shortest = format!("{value}");
        match shortest.split_once('.') {
            Some((_, fraction)) if fraction.len() > 12 => Self::parse(&format!("{value:.12}")),
            _ => Self::parse(&shortest),
        }
    }

    /// This price in `currency`'s minor units, if it has no more decimals than the
    /// currency's minor unit.
    pub fn in_minor_units(&self, currency: Currency) -> Option<i64> {
        let exponent = currency.exponent();
        if self.scale > exponent {
            return None;
        }
        let minor = self.digits.checked_mul(10_u64.pow(exponent - self.scale))?;
        i64::try_from(minor).ok()
    }
}

impl fmt::Display for QuotedPrice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&decimal(self.digits, self.scale))
    }
}

/// `units` with its last `scale` digits after a decimal point (`99999`, 2: `999.99`).
fn decimal(units: u64, scale: u32) -> String {
    if scale == 0 {
        return units.to_string();
    }
    let divisor = 10_u64.pow(scale);
    format!(
        "{}.{:0width$}",
        units / divisor,
        units % divisor,
        width = scale as usize
    )
}

impl Serialize for QuotedPrice {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for QuotedPrice {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_codes() {
        assert_eq!(Currency::new("USD"), Ok(Currency::USD));
        assert!(Currency::new("usd").is_err());
        assert!(Currency::new("US").is_err());
        assert!(Currency::new("USDX").is_err());
        assert!(Currency::new("ÜSD").is_err());
    }

    #[test]
    fn money_arithmetic() {
        let price = Money::new(99_999, Currency::USD).expect("valid price");
        assert_eq!(price.times(2).map(|m| m.minor_units()), Ok(199_998));
        assert_eq!(price.to_string(), "999.99 USD");
        let sum = price
            .plus(Money::zero(Currency::USD))
            .expect("same currency");
        assert_eq!(sum, price);
        assert!(price.plus(Money::zero(Currency::EUR)).is_err());
        assert!(Money::new(-1, Currency::USD).is_err());
        assert!(
            Money::new(i64::MAX, Currency::USD)
                .expect("max")
                .times(2)
                .is_err()
        );
    }

    #[test]
    fn quoted_prices_compare_exactly_in_each_currencys_minor_unit() {
        let usd = Money::new(99_999, Currency::USD).expect("usd");
        assert!(usd.is(&QuotedPrice::parse("999.99").expect("q")));
        assert!(usd.is(&QuotedPrice::parse("999.990").expect("q")));
        assert!(usd.is(&QuotedPrice::from_f64(999.99).expect("q")));
        assert!(!usd.is(&QuotedPrice::parse("999.991").expect("q")));
        assert!(!usd.is(&QuotedPrice::parse("999.9").expect("q")));
        let yen = Money::new(1_500, Currency::new("JPY").expect("jpy")).expect("yen");
        assert_eq!(yen.decimal(), "1500");
        assert!(yen.is(&QuotedPrice::parse("1500").expect("q")));
        assert!(!yen.is(&QuotedPrice::parse("15.00").expect("q")));
        assert!(!yen.is(&QuotedPrice::parse("1500.5").expect("q")));
        let dinar = Money::new(1_250, Currency::new("KWD").expect("kwd")).expect("kwd");
        assert_eq!(dinar.decimal(), "1.250");
        assert!(dinar.is(&QuotedPrice::from_f64(1.25).expect("q")));
        assert_eq!(usd.to_string(), "999.99 USD");
        // 0.1 + 0.2 is not 0.3 in floats; the quoted decimal is what the client wrote,
        // and a float artefact rounds to 12 decimals.
        assert_eq!(QuotedPrice::from_f64(0.3).expect("q").to_string(), "0.3");
        assert_eq!(
            QuotedPrice::from_f64(0.1 + 0.2).expect("q").to_string(),
            "0.3"
        );
        assert!(
            Money::new(30, Currency::USD)
                .expect("usd")
                .is(&QuotedPrice::from_f64(0.1 + 0.2).expect("q"))
        );
    }

    #[test]
    fn bad_quoted_prices_are_refused() {
        for text in [
            "",
            "-1",
            "1e3",
            "1.2.3",
            "abc",
            " 1",
            "1000000000000.5",
            "0.0000000000001",
        ] {
            assert!(QuotedPrice::parse(text).is_err(), "{text:?}");
        }
        for value in [f64::NAN, f64::INFINITY, -0.5, 1e13] {
            assert!(QuotedPrice::from_f64(value).is_err(), "{value}");
        }
        assert!(QuotedPrice::parse("1000000000000").is_ok());
    }
}
