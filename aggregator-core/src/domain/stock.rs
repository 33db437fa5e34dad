//! Per-vendor stock and the arithmetic that keeps us from selling a unit twice.
//!
//! For every (vendor, SKU):
//!
//! ```text
//! sellable = reported − reserved − confirmed_not_yet_reported
//! ```
//!
//! * `reported` changes only when a vendor snapshot is applied; a snapshot never touches
//!   `reserved`, and a row older (by its own `as_of`) than the applied one is ignored.
//! * `reserved` grows when an order or hold takes units and shrinks when they are
//!   released or handed to the vendor.
//! * Units of an order of ours that a vendor may hold under a key that just died (the
//!   order failed, was cancelled, expired or re-routed while a worker may have placed it)
//!   are also counted in `confirmed_not_yet_reported` until the vendor confirms the
//!   cancellation, so they are not sold again while the vendor still has them.
//! * Handing units to the vendor moves them to `confirmed_not_yet_reported`, stamped with
//!   the vendor's own confirmation time. They leave that bucket once a report whose
//!   `as_of` is later than the confirmation by more than the confirmation margin is
//!   applied, because the vendor's count now includes them.
//!
//! # Clocks
//!
//! `as_of` comes from the vendor's stock feed; the confirmation time is the **later** of
//! the vendor's own `confirmedAt` (its order endpoint's clock) and the time our worker
//! received the confirmation (our clock). A report prunes a confirmation only when its
//! `as_of` is later than that by more than the **confirmation margin**.
//!
//! Our clock is also a bound on the feed: the stock sync refuses whole a report whose
//! `as_of` lies further ahead of our clock than the **clock tolerance** (such a row would
//! pin itself, every later true report looking older, and prune confirmations it does
//! not cover).
//!
//! Why no report taken before a sale can prune that sale: such a report was received
//! before the confirmation was, so its `as_of` is at most our receive time of the
//! confirmation plus the tolerance, and the confirmation counts from at least that
//! receive time. With a margin at least the tolerance, the report is never later than
//! the confirmation by more than the margin. This holds whatever the vendor's order
//! endpoint's clock says: one running behind its feed (or behind us) no longer lets an
//! old report prune a new sale. A `confirmedAt` further from our receive time than the
//! tolerance is logged and shown per vendor (`aggregator_vendor_order_clock_offset_seconds`).
//!
//! The assumptions that remain: our processes' clocks agree within the margin (the
//! worker that receives a confirmation and the sync that checks a feed may run on two
//! hosts), the margin is at least the tolerance (both 5 s by default), and a vendor's
//! feed reflects every sale it confirmed before the feed's `as_of` (the vendor's own
//! consistency). A feed running behind, or a slow clock anywhere, only makes pruning
//! later: units stay counted a little longer, never an oversell.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::domain::{Money, OrderId, ProductId, Quantity, VendorId, VendorSku};
use crate::error::{Error, Result};

/// The largest quantity a vendor may report for one SKU; more is treated as bad data.
pub const MAX_REPORTED_QUANTITY: i64 = 1_000_000_000;

/// One (vendor, SKU) as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VendorStock {
    /// The vendor.
    pub vendor: VendorId,
    /// The vendor's SKU.
    pub sku: VendorSku,
    /// The canonical product this SKU rolls up to.
    pub product: ProductId,
    /// Units the vendor last reported.
    pub reported: i64,
    /// Units held by our orders and holds.
    pub reserved: i64,
    /// Units the vendor confirmed for our orders that its reports do not yet include,
    /// and units it may hold for orders of ours whose cancellation it has not yet
    /// confirmed.
    pub confirmed_not_yet_reported: i64,
    /// The vendor's time of the applied report.
    #[serde(with = "time::serde::rfc3339")]
    pub as_of: OffsetDateTime,
    /// Price per unit.
    pub price: Money,
    /// Bumped on every change of this row.
    pub version: i64,
}

impl VendorStock {
    /// Units we may still promise; negative when the vendor reported fewer than we hold.
    pub fn sellable(&self) -> i64 {
        self.reported - self.reserved - self.confirmed_not_yet_reported
    }
}

/// One SKU as a vendor reported it in a stock snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotRow {
    /// The vendor's SKU.
    pub sku: VendorSku,
    /// The canonical product it belongs to.
    pub product: ProductId,
    /// Units the vendor has.
    pub quantity: i64,
    /// Price per unit.
    pub price: Money,
    /// The vendor's time of this figure.
    #[serde(with = "time::serde::rfc3339")]
    pub as_of: OffsetDateTime,
}

impl SnapshotRow {
    /// Refuses a negative or absurd quantity, naming the SKU.
    pub fn validate(&self) -> Result<()> {
        if !(0..=MAX_REPORTED_QUANTITY).contains(&self.quantity) {
            return Err(Error::invalid(
                format!("stock[{}].quantity", self.sku),
                format!("{} is outside 0..={MAX_REPORTED_QUANTITY}", self.quantity),
            ));
        }
        Ok(())
    }
}

/// What applying a snapshot page did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotOutcome {
    /// Rows written.
    pub applied: usize,
    /// Rows skipped because the store already holds a later report for that SKU.
    pub ignored_older: usize,
}

/// Units a vendor confirmed for one of our orders, in the vendor's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingConfirmation {
    /// The order the units went to.
    pub order: OrderId,
    /// How many units.
    pub quantity: Quantity,
    /// The vendor's time of the confirmation.
    #[serde(with = "time::serde::rfc3339")]
    pub vendor_confirmed_at: OffsetDateTime,
}

/// A (vendor, SKU) row together with the confirmations behind its
/// `confirmed_not_yet_reported`; the rules of the module documentation as methods.
///
/// Stores that keep rows in memory use this directly; others implement the same rules in
/// their engine and are held to them by the conformance suite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockLedger {
    stock: VendorStock,
    pending: Vec<PendingConfirmation>,
    cancelling: Vec<(String, i64)>,
}

impl StockLedger {
    /// A row first seen in a snapshot: nothing reserved or confirmed yet.
    pub fn from_report(vendor: VendorId, row: &SnapshotRow) -> Self {
        Self {
            stock: VendorStock {
                vendor,
                sku: row.sku.clone(),
                product: row.product.clone(),
                reported: row.quantity,
                reserved: 0,
                confirmed_not_yet_reported: 0,
                as_of: row.as_of,
                price: row.price,
                version: 1,
            },
            pending: Vec::new(),
            cancelling: Vec::new(),
        }
    }

    /// The row's current figures.
    pub fn stock(&self) -> &VendorStock {
        &self.stock
    }

    /// Applies a vendor report: sets `reported`, `as_of`, price and product, and drops
    /// the confirmations the report includes (those it is later than by more than
    /// `margin`). Returns false (and changes nothing) when the report is older than the
    /// one already applied. Never touches `reserved`.
    pub fn apply_report(&mut self, row: &SnapshotRow, margin: Duration) -> bool {
        if row.as_of < self.stock.as_of {
            return false;
        }
        self.stock.reported = row.quantity;
        self.stock.as_of = row.as_of;
        self.stock.price = row.price;
        self.stock.product = row.product.clone();
        self.pending
            .retain(|confirmation| !covers(row.as_of, confirmation.vendor_confirmed_at, margin));
        self.recount();
        self.stock.version += 1;
        true
    }

    /// Zeroes `reported` when a completed snapshot taken at `as_of` did not list this SKU
    /// (the vendor no longer has it), unless the row holds a report at least as new.
    /// Returns whether anything changed.
    pub fn report_missing(&mut self, as_of: OffsetDateTime, margin: Duration) -> bool {
        if self.stock.as_of >= as_of {
            return false;
        }
        let row = SnapshotRow {
            sku: self.stock.sku.clone(),
            product: self.stock.product.clone(),
            quantity: 0,
            price: self.stock.price,
            as_of,
        };
        self.apply_report(&row, margin)
    }

    /// Takes `quantity` units if at least that many are sellable; otherwise changes
    /// nothing and returns false.
    pub fn try_reserve(&mut self, quantity: Quantity) -> bool {
        if self.stock.sellable() < quantity.as_i64() {
            return false;
        }
        self.stock.reserved += quantity.as_i64();
        self.stock.version += 1;
        true
    }

    /// Gives back `quantity` reserved units (cancel, failure, expiry, re-route).
    pub fn release(&mut self, quantity: Quantity) {
        self.stock.reserved = (self.stock.reserved - quantity.as_i64()).max(0);
        self.stock.version += 1;
    }

    /// Moves `confirmation.quantity` units from `reserved` to
    /// `confirmed_not_yet_reported`, stamped with the vendor's confirmation time. They
    /// stay there until a later report covers them, even if the report applied now is
    /// already later than the confirmation: whether it includes the sale depends on the
    /// margin between two vendor clocks, and counting a unit twice for one sync
    /// interval undersells, while counting it never oversells.
    pub fn confirm(&mut self, confirmation: PendingConfirmation) {
        self.stock.reserved = (self.stock.reserved - confirmation.quantity.as_i64()).max(0);
        self.pending.push(confirmation);
        self.recount();
        self.stock.version += 1;
    }
}

impl StockLedger {
    /// Keeps `quantity` units counted (in `confirmed_not_yet_reported`) for an order
    /// of ours the vendor may hold under `key`, which a change of the order just made
    /// dead: until the vendor confirms the cancellation, it may still have them.
    /// Holding a key twice holds it once.
    pub fn hold_for_cancellation(&mut self, key: &str, quantity: Quantity) {
        if self.cancelling.iter().any(|(held, _)| held == key) {
            return;
        }
        self.cancelling.push((key.to_owned(), quantity.as_i64()));
        self.recount();
        self.stock.version += 1;
    }

    /// The vendor cancelled (or never had) the order under `key`: its units are free.
    /// Returns whether anything was held for it.
    pub fn cancellation_done(&mut self, key: &str) -> bool {
        let before = self.cancelling.len();
        self.cancelling.retain(|(held, _)| held != key);
        if self.cancelling.len() == before {
            return false;
        }
        self.recount();
        self.stock.version += 1;
        true
    }

    fn recount(&mut self) {
        let confirmed: i64 = self
            .pending
            .iter()
            .map(|confirmation| confirmation.quantity.as_i64())
            .sum();
        let cancelling: i64 = self.cancelling.iter().map(|(_, units)| units).sum();
        self.stock.confirmed_not_yet_reported = confirmed + cancelling;
    }
}

/// Whether a report taken at `as_of` includes a sale the vendor confirmed at
/// `confirmed_at`: it must be later by more than `margin` (both in the vendor's clocks).
pub fn covers(as_of: OffsetDateTime, confirmed_at: OffsetDateTime, margin: Duration) -> bool {
    as_of > confirmed_at + margin
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Currency;
    use time::macros::datetime;

    fn row(quantity: i64, as_of: OffsetDateTime) -> SnapshotRow {
        SnapshotRow {
            sku: VendorSku::new("LAPTOP-a-001").expect("sku"),
            product: ProductId::new("LAPTOP-001").expect("product"),
            quantity,
            price: Money::new(99_999, Currency::USD).expect("price"),
            as_of,
        }
    }

    fn ledger(quantity: i64, as_of: OffsetDateTime) -> StockLedger {
        StockLedger::from_report(VendorId::new("VendorA").expect("id"), &row(quantity, as_of))
    }

    fn qty(n: i64) -> Quantity {
        Quantity::new(n, crate::domain::QuantityLimit::DEFAULT).expect("quantity")
    }

    #[test]
    fn reserve_never_exceeds_sellable() {
        let mut stock = ledger(3, datetime!(2026-01-01 10:00 UTC));
        assert!(stock.try_reserve(qty(2)));
        assert!(!stock.try_reserve(qty(2)));
        assert!(stock.try_reserve(qty(1)));
        assert_eq!(stock.stock().sellable(), 0);
    }

    #[test]
    fn report_below_reserved_makes_sellable_negative_and_keeps_reservations() {
        let mut stock = ledger(5, datetime!(2026-01-01 10:00 UTC));
        assert!(stock.try_reserve(qty(4)));
        assert!(stock.apply_report(&row(1, datetime!(2026-01-01 10:01 UTC)), Duration::ZERO));
        assert_eq!(stock.stock().reserved, 4);
        assert_eq!(stock.stock().sellable(), -3);
        assert!(!stock.try_reserve(qty(1)));
    }

    #[test]
    fn older_report_is_ignored() {
        let mut stock = ledger(5, datetime!(2026-01-01 10:00 UTC));
        assert!(!stock.apply_report(&row(50, datetime!(2026-01-01 09:59 UTC)), Duration::ZERO));
        assert_eq!(stock.stock().reported, 5);
    }

    #[test]
    fn confirmed_units_stay_counted_until_a_later_report() {
        let mut stock = ledger(5, datetime!(2026-01-01 10:00 UTC));
        assert!(stock.try_reserve(qty(2)));
        stock.confirm(PendingConfirmation {
            order: OrderId::new(),
            quantity: qty(2),
            vendor_confirmed_at: datetime!(2026-01-01 10:05 UTC),
        });
        assert_eq!(stock.stock().reserved, 0);
        assert_eq!(stock.stock().confirmed_not_yet_reported, 2);
        assert_eq!(stock.stock().sellable(), 3);
        // A report taken before the confirmation still shows the old count.
        assert!(stock.apply_report(&row(5, datetime!(2026-01-01 10:04 UTC)), Duration::ZERO));
        assert_eq!(stock.stock().sellable(), 3);
        // A report taken after it already includes the two units.
        assert!(stock.apply_report(&row(3, datetime!(2026-01-01 10:06 UTC)), Duration::ZERO));
        assert_eq!(stock.stock().confirmed_not_yet_reported, 0);
        assert_eq!(stock.stock().sellable(), 3);
    }

    #[test]
    fn a_report_within_the_margin_of_a_confirmation_does_not_prune_it() {
        // The feed's clock runs 5 s ahead of the order endpoint's: a report the feed
        // stamps 10:05:04 was taken before a sale the order endpoint stamps 10:05:00.
        let margin = Duration::seconds(10);
        let mut stock = ledger(10, datetime!(2026-01-01 10:00 UTC));
        assert!(stock.try_reserve(qty(1)));
        stock.confirm(PendingConfirmation {
            order: OrderId::new(),
            quantity: qty(1),
            vendor_confirmed_at: datetime!(2026-01-01 10:05 UTC),
        });
        assert!(stock.apply_report(&row(10, datetime!(2026-01-01 10:05:04 UTC)), margin));
        assert_eq!(
            (
                stock.stock().confirmed_not_yet_reported,
                stock.stock().sellable()
            ),
            (1, 9),
            "the sale is still counted: no unit sold twice"
        );
        assert!(stock.apply_report(&row(10, datetime!(2026-01-01 10:05:10 UTC)), margin));
        assert_eq!(
            stock.stock().confirmed_not_yet_reported,
            1,
            "exactly the margin"
        );
        assert!(stock.apply_report(&row(9, datetime!(2026-01-01 10:05:11 UTC)), margin));
        assert_eq!(
            (
                stock.stock().confirmed_not_yet_reported,
                stock.stock().sellable()
            ),
            (0, 9)
        );
    }

    #[test]
    fn a_confirmation_older_than_the_applied_report_waits_for_the_next_report() {
        let mut stock = ledger(5, datetime!(2026-01-01 10:10 UTC));
        assert!(stock.try_reserve(qty(1)));
        stock.confirm(PendingConfirmation {
            order: OrderId::new(),
            quantity: qty(1),
            vendor_confirmed_at: datetime!(2026-01-01 10:05 UTC),
        });
        assert_eq!(stock.stock().confirmed_not_yet_reported, 1);
        assert_eq!(
            stock.stock().sellable(),
            4,
            "counted until a report covers it"
        );
        assert!(stock.apply_report(&row(5, datetime!(2026-01-01 10:11 UTC)), Duration::ZERO));
        assert_eq!(stock.stock().sellable(), 5);
    }

    #[test]
    fn missing_from_a_completed_snapshot_means_zero() {
        let mut stock = ledger(5, datetime!(2026-01-01 10:00 UTC));
        assert!(stock.report_missing(datetime!(2026-01-01 10:01 UTC), Duration::ZERO));
        assert_eq!(stock.stock().reported, 0);
        assert!(!stock.report_missing(datetime!(2026-01-01 10:01 UTC), Duration::ZERO));
    }

    #[test]
    fn snapshot_rows_refuse_negative_and_absurd_quantities() {
        assert!(row(-1, datetime!(2026-01-01 10:00 UTC)).validate().is_err());
        assert!(
            row(MAX_REPORTED_QUANTITY + 1, datetime!(2026-01-01 10:00 UTC))
                .validate()
                .is_err()
        );
        assert!(row(0, datetime!(2026-01-01 10:00 UTC)).validate().is_ok());
    }
}
