//! Units held on one (vendor, SKU) for an order or a hold.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::{HoldId, OrderId, Quantity, VendorId, VendorSku};

/// Who holds reserved units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "camelCase")]
pub enum ReservationOwner {
    /// An order that has not been confirmed, failed, cancelled or expired yet.
    Order(OrderId),
    /// An active hold.
    Hold(HoldId),
}

/// Units counted in a (vendor, SKU)'s `reserved` until they are released or handed to
/// the vendor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reservation {
    /// The order or hold holding them.
    pub owner: ReservationOwner,
    /// The vendor.
    pub vendor: VendorId,
    /// The vendor's SKU.
    pub sku: VendorSku,
    /// Units held.
    pub quantity: Quantity,
    /// When the owner's hold on them runs out.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}
