//! Explicit stock holds: units set aside for a customer for a while, then turned into an
//! order or given back.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::{CustomerId, HoldId, OrderId, OrderLine};
use crate::error::{Error, Result};

/// Where a hold is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum HoldStatus {
    /// Units are held.
    Active,
    /// Given back by the client.
    Released,
    /// Turned into an order, which now holds the units.
    Converted,
    /// Ran out; units given back.
    Expired,
}

impl HoldStatus {
    /// The status as a lower-case word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Released => "released",
            Self::Converted => "converted",
            Self::Expired => "expired",
        }
    }

    /// Parses the lower-case word; anything else is `Invalid`.
    pub fn parse(text: &str) -> Result<Self> {
        [Self::Active, Self::Released, Self::Converted, Self::Expired]
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| Error::invalid("status", format!("{text:?} is not a hold status")))
    }
}

/// Units held for a customer until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hold {
    /// Its id.
    pub id: HoldId,
    /// Whose hold it is.
    pub customer: CustomerId,
    /// What is held, with where from and at what price.
    pub lines: Vec<OrderLine>,
    /// Current status.
    pub status: HoldStatus,
    /// When it was made.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it runs out while still active.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// The order it became, once converted.
    pub order: Option<OrderId>,
}
