//! What a caller asks a store to reserve: lines with the vendor SKUs to take them from,
//! and the move of an order's units from one vendor SKU to others.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::{Money, OrderId, ProductId, Quantity, QuotedPrice, VendorId, VendorSku};
use crate::error::{Error, Result};

/// Units of a line to take from one vendor SKU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedAllocation {
    /// The vendor.
    pub vendor: VendorId,
    /// The vendor's SKU.
    pub sku: VendorSku,
    /// Units to take.
    pub quantity: Quantity,
}

/// A line with the allocation the caller wants the store to try.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedLine {
    /// The SKU or product id as the client named it.
    pub item: String,
    /// The canonical product every allocation must belong to.
    pub product: ProductId,
    /// Units asked for; must equal the sum of the allocations.
    pub quantity: Quantity,
    /// Where to take them from.
    pub allocations: Vec<PlannedAllocation>,
    /// The price per unit the customer quoted, if it did: every allocation must be
    /// charged exactly this, or the store refuses the line (`PriceMismatch`) and
    /// reserves nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quoted: Option<QuotedPrice>,
}

impl PlannedLine {
    /// Refuses a line without allocations or whose allocations do not add up to its
    /// quantity.
    pub fn check(&self) -> Result<()> {
        if self.allocations.is_empty() {
            return Err(Error::invalid("allocations", "must not be empty"));
        }
        let total: i64 = self.allocations.iter().map(|a| a.quantity.as_i64()).sum();
        if total != self.quantity.as_i64() {
            return Err(Error::invalid(
                "allocations",
                format!("add up to {total}, not the line's {}", self.quantity),
            ));
        }
        Ok(())
    }

    /// Refuses (`PriceMismatch` on `items[index].unitPrice`, naming `price`) charging
    /// this line `price` per unit when the customer quoted another price. A store calls
    /// it on every row it reserves from, with the row locked, so that what the order is
    /// charged is what the customer agreed to.
    pub fn check_charge(&self, index: usize, price: &Money) -> Result<()> {
        match &self.quoted {
            Some(quoted) if !price.is(quoted) => Err(Error::PriceMismatch {
                field: format!("items[{index}].unitPrice"),
                item: self.item.clone(),
                quoted: quoted.to_string(),
                catalog: vec![*price],
            }),
            _ => Ok(()),
        }
    }
}

/// Moving the units of one vendor SKU of an order to other vendor SKUs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reroute {
    /// The order.
    pub order: OrderId,
    /// The version the caller last saw.
    pub expected_version: i64,
    /// The vendor that refused.
    pub vendor: VendorId,
    /// Its SKU whose units move.
    pub sku: VendorSku,
    /// Where they go; quantities must add up to what the SKU held for the order.
    pub replacement: Vec<PlannedAllocation>,
    /// Why, recorded on the order.
    pub reason: String,
    /// Now, in our clock.
    pub at: OffsetDateTime,
    /// Vendors whose last good sync is older than this do not count.
    pub fresh_since: OffsetDateTime,
}
