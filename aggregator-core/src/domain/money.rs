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

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:02} {}",
            self.minor_units / 100,
            self.minor_units % 100,
            self.currency
        )
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
}
