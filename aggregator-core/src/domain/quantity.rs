//! Units of stock on one order line.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The largest quantity one line may carry, whatever is configured.
pub const ABSOLUTE_MAX_QUANTITY: u32 = 1_000_000;

/// The configurable upper bound on one line's quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuantityLimit(u32);

impl QuantityLimit {
    /// The default bound: 1,000 units per line.
    pub const DEFAULT: Self = Self(1_000);

    /// A bound of `max` units per line; refuses 0 and anything above
    /// [`ABSOLUTE_MAX_QUANTITY`].
    pub fn new(max: u32) -> Result<Self> {
        if max == 0 || max > ABSOLUTE_MAX_QUANTITY {
            return Err(Error::invalid(
                "maxQuantityPerLine",
                format!("must be between 1 and {ABSOLUTE_MAX_QUANTITY}"),
            ));
        }
        Ok(Self(max))
    }

    /// The bound in units.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for QuantityLimit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A positive number of units, never above [`ABSOLUTE_MAX_QUANTITY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Quantity(u32);

impl Quantity {
    /// A quantity of `value` units, checked against `limit`. Takes an `i64` so that
    /// negative and huge inputs get a clear error instead of wrapping.
    pub fn new(value: i64, limit: QuantityLimit) -> Result<Self> {
        if value < 1 {
            return Err(Error::invalid("quantity", "must be at least 1"));
        }
        if value > i64::from(limit.get()) {
            return Err(Error::invalid(
                "quantity",
                format!("must be at most {} per line", limit.get()),
            ));
        }
        // The bound check above keeps the value within u32.
        Ok(Self(value as u32))
    }

    /// The number of units.
    pub fn get(self) -> u32 {
        self.0
    }

    /// The number of units as a signed stock figure.
    pub fn as_i64(self) -> i64 {
        i64::from(self.0)
    }
}

impl TryFrom<u32> for Quantity {
    type Error = Error;
    fn try_from(value: u32) -> Result<Self> {
        Self::new(i64::from(value), QuantityLimit(ABSOLUTE_MAX_QUANTITY))
    }
}

impl From<Quantity> for u32 {
    fn from(value: Quantity) -> u32 {
        value.0
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantity_bounds() {
        let limit = QuantityLimit::new(10).expect("valid limit");
        assert_eq!(Quantity::new(1, limit).map(Quantity::get), Ok(1));
        assert_eq!(Quantity::new(10, limit).map(Quantity::get), Ok(10));
        assert!(Quantity::new(0, limit).is_err());
        assert!(Quantity::new(-5, limit).is_err());
        assert!(Quantity::new(11, limit).is_err());
        assert!(Quantity::new(1_000_000_000_000, limit).is_err());
    }

    #[test]
    fn limit_bounds() {
        assert!(QuantityLimit::new(0).is_err());
        assert!(QuantityLimit::new(ABSOLUTE_MAX_QUANTITY + 1).is_err());
        assert_eq!(QuantityLimit::default().get(), 1_000);
    }

    #[test]
    fn deserializing_checks_the_absolute_bound() {
        assert!(serde_json::from_str::<Quantity>("0").is_err());
        assert!(serde_json::from_str::<Quantity>("-1").is_err());
        assert!(serde_json::from_str::<Quantity>("1.5").is_err());
        assert!(serde_json::from_str::<Quantity>("1000001").is_err());
        assert_eq!(
            serde_json::from_str::<Quantity>("7")
                .map(Quantity::get)
                .ok(),
            Some(7)
        );
    }
}
