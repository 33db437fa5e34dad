//! Orders, their lines and their life cycle.
//!
//! ```text
//! pending → reserved → confirmed → cancelled
//!    ↘         ↘ failed | cancelled | expired
//!     failed | cancelled | expired
//! ```
//!
//! Every change is a compare-and-set on the order's version and is recorded as an
//! [`OrderEvent`] with its reason and time.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::{
    CustomerId, Email, HoldId, Money, OrderId, ProductId, Quantity, VendorId, VendorSku,
};
use crate::error::{Error, Result};

/// Where an order is in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OrderStatus {
    /// Accepted, stock not yet held.
    Pending,
    /// Stock held; waiting for the vendors.
    Reserved,
    /// Every vendor accepted its part.
    Confirmed,
    /// Could not be fulfilled; stock released; see the failure reason.
    Failed,
    /// Cancelled by the client; stock released.
    Cancelled,
    /// The reservation ran out before the vendors confirmed.
    Expired,
}

impl OrderStatus {
    /// Every status, in life-cycle order.
    pub const ALL: [Self; 6] = [
        Self::Pending,
        Self::Reserved,
        Self::Confirmed,
        Self::Failed,
        Self::Cancelled,
        Self::Expired,
    ];

    /// The status as a lower-case word, as in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Reserved => "reserved",
            Self::Confirmed => "confirmed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }

    /// Parses the lower-case word; an unknown word is an `Invalid` error naming `status`.
    pub fn parse(text: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| {
                Error::invalid(
                    "status",
                    format!(
                        "{text:?} is not one of pending, reserved, confirmed, failed, cancelled, expired"
                    ),
                )
            })
    }

    /// Whether the life cycle allows going from `self` to `next`.
    pub fn can_become(self, next: Self) -> bool {
        use OrderStatus::*;
        matches!(
            (self, next),
            (Pending, Reserved | Failed | Cancelled | Expired)
                | (Reserved, Confirmed | Failed | Cancelled | Expired)
                | (Confirmed, Cancelled)
        )
    }

    /// Whether units are still held in `reserved` for an order in this status.
    pub fn holds_stock(self) -> bool {
        matches!(self, Self::Pending | Self::Reserved)
    }
}

/// Units of one line taken from one vendor SKU, at the catalog price when placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Allocation {
    /// The vendor.
    pub vendor: VendorId,
    /// The vendor's SKU.
    pub sku: VendorSku,
    /// Units taken.
    pub quantity: Quantity,
    /// The catalog's unit price at placement.
    pub unit_price: Money,
}

/// One line as the client asked for it, with where its units come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderLine {
    /// The SKU or canonical product id as the client named it.
    pub item: String,
    /// The canonical product.
    pub product: ProductId,
    /// Units asked for; always the sum of the allocations.
    pub quantity: Quantity,
    /// Per-vendor parts of the line.
    pub allocations: Vec<Allocation>,
    /// The price per unit the customer quoted, if it did: every allocation of the line,
    /// a re-routed one too, is charged exactly this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quoted_unit_price: Option<super::QuotedPrice>,
}

/// Where to ship an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShippingAddress {
    /// Street and number.
    pub street: String,
    /// City.
    pub city: String,
    /// State or region, where the country has them.
    #[serde(default)]
    pub state: Option<String>,
    /// Postal code.
    pub zip_code: String,
    /// Country.
    pub country: String,
}

impl ShippingAddress {
    /// Refuses empty required fields and fields over 200 characters, naming the field.
    pub fn validate(&self) -> Result<()> {
        let required = [
            ("street", &self.street),
            ("city", &self.city),
            ("zipCode", &self.zip_code),
            ("country", &self.country),
        ];
        for (field, value) in required {
            check_free_text(field, value, 200, true)?;
        }
        if let Some(state) = &self.state {
            check_free_text("state", state, 200, false)?;
        }
        Ok(())
    }
}

/// Refuses text over `max` characters, control characters, and (if `required`) blank text.
pub fn check_free_text(field: &str, value: &str, max: usize, required: bool) -> Result<()> {
    if required && value.trim().is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(Error::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// Who the order is for and how it is paid and shipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderDetails {
    /// The client's customer.
    pub customer: CustomerId,
    /// The customer's e-mail, if given.
    pub email: Option<Email>,
    /// Where to ship, if given.
    pub shipping_address: Option<ShippingAddress>,
    /// How the customer pays, e.g. `credit_card`.
    pub payment_method: Option<String>,
    /// Free-text notes.
    pub notes: Option<String>,
}

impl OrderDetails {
    /// Checks the free-text parts (address, payment method, notes).
    pub fn validate(&self) -> Result<()> {
        if let Some(address) = &self.shipping_address {
            address
                .validate()
                .map_err(|e| e.within("shippingAddress"))?;
        }
        if let Some(method) = &self.payment_method {
            check_free_text("paymentMethod", method, 64, true)?;
        }
        if let Some(notes) = &self.notes {
            check_free_text("notes", notes, 2_000, false)?;
        }
        Ok(())
    }
}

/// A vendor's acceptance of its part of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VendorPlacement {
    /// The vendor.
    pub vendor: VendorId,
    /// The vendor's id for our order.
    pub vendor_order_id: String,
    /// The idempotency key we placed it with (also how we cancel it).
    pub idempotency_key: String,
    /// The vendor's own clock at confirmation.
    #[serde(with = "time::serde::rfc3339")]
    pub confirmed_at: OffsetDateTime,
}

/// An order placed, or perhaps placed, at a vendor under an idempotency key: what must
/// end either in one of our confirmed orders or cancelled at the vendor.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VendorKey {
    /// The vendor.
    pub vendor: VendorId,
    /// The idempotency key the order is (or would be) placed under.
    pub key: String,
}

/// One recorded change of an order's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderEvent {
    /// The status before (none for creation).
    pub from: Option<OrderStatus>,
    /// The status after.
    pub to: OrderStatus,
    /// Why.
    pub reason: String,
    /// When, in our clock.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The order's version after the change.
    pub version: i64,
}

/// An order as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// Its id.
    pub id: OrderId,
    /// Its number for people (customers quoting it, support looking it up): given by
    /// the store when the order is first written, unique in that store, never changed.
    /// `None` only on an order no store has written yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<u64>,
    /// Customer, contact, shipping and payment.
    pub details: OrderDetails,
    /// The lines.
    pub lines: Vec<OrderLine>,
    /// Current status.
    pub status: OrderStatus,
    /// Bumped on every change; the compare-and-set token.
    pub version: i64,
    /// When it was placed.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// When its reservation runs out unless the vendors confirm first.
    #[serde(with = "time::serde::rfc3339")]
    pub reserved_until: OffsetDateTime,
    /// Why it failed, was cancelled or expired.
    pub failure_reason: Option<String>,
    /// Vendors that accepted their part (filled on confirmation).
    pub vendor_placements: Vec<VendorPlacement>,
    /// The hold it was made from, if any.
    pub from_hold: Option<HoldId>,
    /// Every status change, oldest first.
    pub events: Vec<OrderEvent>,
}

impl Order {
    /// A just-placed order holding its stock: status `reserved`, version 1, one event.
    pub fn new_reserved(
        id: OrderId,
        details: OrderDetails,
        lines: Vec<OrderLine>,
        at: OffsetDateTime,
        reserved_until: OffsetDateTime,
        from_hold: Option<HoldId>,
        reason: &str,
    ) -> Self {
        Self {
            id,
            number: None,
            details,
            lines,
            status: OrderStatus::Reserved,
            version: 1,
            created_at: at,
            updated_at: at,
            reserved_until,
            failure_reason: None,
            vendor_placements: Vec::new(),
            from_hold,
            events: vec![OrderEvent {
                from: None,
                to: OrderStatus::Reserved,
                reason: reason.to_owned(),
                at,
                version: 1,
            }],
        }
    }

    /// The number as people see it, `ORD-` and at least six digits (`ORD-001042`), once
    /// a store has given one.
    pub fn order_number(&self) -> Option<String> {
        self.number.map(|n| format!("ORD-{n:06}"))
    }

    /// The total price, or `None` for an order whose lines are in several currencies.
    pub fn total(&self) -> Option<Money> {
        let mut allocations = self.lines.iter().flat_map(|line| &line.allocations);
        let first = allocations.next()?;
        let mut total = first.unit_price.times(first.quantity.get()).ok()?;
        for allocation in allocations {
            let part = allocation
                .unit_price
                .times(allocation.quantity.get())
                .ok()?;
            total = total.plus(part).ok()?;
        }
        Some(total)
    }

    /// Allocations grouped by vendor, vendors in id order.
    pub fn allocations_by_vendor(&self) -> Vec<(VendorId, Vec<Allocation>)> {
        let mut grouped: std::collections::BTreeMap<VendorId, Vec<Allocation>> =
            std::collections::BTreeMap::new();
        for allocation in self.lines.iter().flat_map(|line| &line.allocations) {
            grouped
                .entry(allocation.vendor.clone())
                .or_default()
                .push(allocation.clone());
        }
        grouped.into_iter().collect()
    }

    /// The units this order has allocated at `vendor`, per SKU, in SKU order.
    pub fn units_at(&self, vendor: &VendorId) -> Vec<(VendorSku, Quantity)> {
        let mut units: std::collections::BTreeMap<VendorSku, u32> =
            std::collections::BTreeMap::new();
        for allocation in self.lines.iter().flat_map(|line| &line.allocations) {
            if &allocation.vendor == vendor {
                *units.entry(allocation.sku.clone()).or_default() += allocation.quantity.get();
            }
        }
        units
            .into_iter()
            .filter_map(|(sku, units)| Quantity::try_from(units).ok().map(|q| (sku, q)))
            .collect()
    }

    /// The key this version of the order is placed under at `vendor`: stable while the
    /// version stands (so a repeated placement is a replay at the vendor), new after a
    /// re-route or any other change of version. Every handler of the same version uses
    /// the same keys, whichever process it runs in.
    pub fn vendor_key(&self, vendor: &VendorId) -> String {
        format!("{}:{}:v{}", self.id, vendor, self.version)
    }

    /// The vendor orders this order may have caused and not yet given up: while it holds
    /// stock, one key per vendor of its allocations at the current version (a handler
    /// may have used any of them, even one that crashed before it could say so); once
    /// confirmed, the keys of its vendor placements; otherwise none.
    pub fn live_vendor_keys(&self) -> Vec<VendorKey> {
        if self.status.holds_stock() {
            self.allocations_by_vendor()
                .into_iter()
                .map(|(vendor, _)| VendorKey {
                    key: self.vendor_key(&vendor),
                    vendor,
                })
                .collect()
        } else if self.status == OrderStatus::Confirmed {
            self.vendor_placements
                .iter()
                .map(|placement| VendorKey {
                    vendor: placement.vendor.clone(),
                    key: placement.idempotency_key.clone(),
                })
                .collect()
        } else {
            Vec::new()
        }
    }

    /// What moving the units of (`vendor`, `sku`) to `replacement` would move: the units
    /// the order holds there, their product and the line's item text. Refuses (changing
    /// nothing) an order that is not `reserved`, a SKU the order holds nothing on, a
    /// replacement that does not add up to those units or that names the same SKU.
    pub fn check_reroute(
        &self,
        vendor: &VendorId,
        sku: &VendorSku,
        replacement: &[(VendorId, VendorSku, Quantity)],
    ) -> Result<(Quantity, ProductId, String)> {
        if self.status != OrderStatus::Reserved {
            return Err(Error::conflict(format!(
                "order {} is {}; only reserved orders can be re-routed",
                self.id,
                self.status.as_str()
            )));
        }
        let mut moving = 0_u32;
        let mut found = None;
        for line in &self.lines {
            for allocation in &line.allocations {
                if &allocation.vendor == vendor && &allocation.sku == sku {
                    moving += allocation.quantity.get();
                    found = Some((line.product.clone(), line.item.clone()));
                }
            }
        }
        let Some((product, item)) = found else {
            return Err(Error::invalid(
                "sku",
                format!("order {} holds nothing on {sku}", self.id),
            ));
        };
        let offered: u64 = replacement.iter().map(|(_, _, q)| u64::from(q.get())).sum();
        if offered != u64::from(moving) {
            return Err(Error::invalid(
                "replacement",
                format!("moves {offered} units but the order holds {moving} on {sku}"),
            ));
        }
        if replacement.iter().any(|(v, s, _)| v == vendor && s == sku) {
            return Err(Error::invalid(
                "replacement",
                "must not name the SKU being moved away from",
            ));
        }
        Ok((Quantity::try_from(moving)?, product, item))
    }

    /// Moves the units of (`vendor`, `sku`) to `replacement` (priced allocations whose
    /// quantities add up to them), merging with allocations the lines already have;
    /// version + 1 and an event with `reason`. Checks as [`Order::check_reroute`] does
    /// and changes nothing on error; a line the customer quoted a price for only takes
    /// allocations at that price (`PriceMismatch` otherwise).
    ///
    /// Returns the vendor keys the change makes dead: every key of the old version (the
    /// new version places under new keys at every vendor). The store must cancel them in
    /// the same atomic step, through its outbox.
    pub fn reroute(
        &mut self,
        vendor: &VendorId,
        sku: &VendorSku,
        replacement: &[Allocation],
        reason: &str,
        at: OffsetDateTime,
    ) -> Result<Vec<VendorKey>> {
        let planned: Vec<(VendorId, VendorSku, Quantity)> = replacement
            .iter()
            .map(|a| (a.vendor.clone(), a.sku.clone(), a.quantity))
            .collect();
        self.check_reroute(vendor, sku, &planned)?;
        let dead = self.live_vendor_keys();
        let mut remaining: Vec<Allocation> = replacement.to_vec();
        let mut lines = self.lines.clone();
        for line in &mut lines {
            let mut freed = 0_u32;
            line.allocations.retain(|allocation| {
                let moving = &allocation.vendor == vendor && &allocation.sku == sku;
                if moving {
                    freed += allocation.quantity.get();
                }
                !moving
            });
            while freed > 0 {
                let Some(next) = remaining.first_mut() else {
                    break;
                };
                if let Some(quoted) = &line.quoted_unit_price
                    && !next.unit_price.is(quoted)
                {
                    // The customer agreed to the quote; a move may not charge more or less.
                    return Err(Error::PriceMismatch {
                        field: "replacement".to_owned(),
                        item: line.item.clone(),
                        quoted: quoted.to_string(),
                        catalog: vec![next.unit_price],
                    });
                }
                let take = freed.min(next.quantity.get());
                match line
                    .allocations
                    .iter_mut()
                    .find(|a| a.vendor == next.vendor && a.sku == next.sku)
                {
                    Some(existing) => {
                        existing.quantity = Quantity::try_from(existing.quantity.get() + take)?;
                    }
                    None => line.allocations.push(Allocation {
                        quantity: Quantity::try_from(take)?,
                        ..next.clone()
                    }),
                }
                freed -= take;
                if take == next.quantity.get() {
                    remaining.remove(0);
                } else {
                    next.quantity = Quantity::try_from(next.quantity.get() - take)?;
                }
            }
        }
        self.lines = lines;
        self.version += 1;
        self.updated_at = at;
        self.events.push(OrderEvent {
            from: Some(self.status),
            to: self.status,
            reason: reason.to_owned(),
            at,
            version: self.version,
        });
        Ok(dead)
    }

    /// Checks that `change` is allowed from the current status at `expected_version`,
    /// then applies it: new status, version + 1, an event, and the failure reason or
    /// vendor placements it carries. Changes nothing on error.
    ///
    /// A confirmation must carry, for exactly the vendors of the allocations, the keys of
    /// the current version ([`Order::vendor_key`]): a handler that worked on an older
    /// version cannot confirm. Returns the vendor keys the change makes dead (all live
    /// ones when the order fails, is cancelled or expires; none on confirmation); the
    /// store must cancel them in the same atomic step, through its outbox.
    pub fn apply(&mut self, transition: &Transition) -> Result<Vec<VendorKey>> {
        if self.id != transition.order {
            return Err(Error::conflict("transition is for another order"));
        }
        if self.version != transition.expected_version {
            return Err(Error::conflict(format!(
                "order {} is at version {}, not {}",
                self.id, self.version, transition.expected_version
            )));
        }
        let next = transition.change.target();
        if !self.status.can_become(next) {
            return Err(Error::conflict(format!(
                "order {} cannot go from {} to {}",
                self.id,
                self.status.as_str(),
                next.as_str()
            )));
        }
        let dead = self.live_vendor_keys();
        let dead = match &transition.change {
            StatusChange::Confirm { placements } => {
                self.check_placements(placements)?;
                self.vendor_placements = placements.clone();
                Vec::new()
            }
            StatusChange::Fail | StatusChange::Cancel | StatusChange::Expire => {
                self.failure_reason = Some(transition.reason.clone());
                dead
            }
        };
        let from = self.status;
        self.status = next;
        self.version += 1;
        self.updated_at = transition.at;
        self.events.push(OrderEvent {
            from: Some(from),
            to: next,
            reason: transition.reason.clone(),
            at: transition.at,
            version: self.version,
        });
        Ok(dead)
    }

    /// Refuses placements that do not name exactly the vendors of the allocations, once
    /// each, under this version's keys.
    fn check_placements(&self, placements: &[VendorPlacement]) -> Result<()> {
        let vendors = self.allocations_by_vendor();
        for (vendor, _) in &vendors {
            let expected = self.vendor_key(vendor);
            let mut from_vendor = placements.iter().filter(|p| &p.vendor == vendor);
            match (from_vendor.next(), from_vendor.next()) {
                (None, _) => {
                    return Err(Error::invalid(
                        "placements",
                        format!("no confirmation from vendor {vendor}"),
                    ));
                }
                (Some(_), Some(_)) => {
                    return Err(Error::invalid(
                        "placements",
                        format!("two confirmations from vendor {vendor}"),
                    ));
                }
                (Some(placement), None) if placement.idempotency_key != expected => {
                    return Err(Error::conflict(format!(
                        "the confirmation from vendor {vendor} is for key {}, not {expected} of version {}",
                        placement.idempotency_key, self.version
                    )));
                }
                (Some(_), None) => {}
            }
        }
        if let Some(stray) = placements
            .iter()
            .find(|p| !vendors.iter().any(|(vendor, _)| vendor == &p.vendor))
        {
            return Err(Error::invalid(
                "placements",
                format!("vendor {} has no part in the order", stray.vendor),
            ));
        }
        Ok(())
    }
}

/// A requested status change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusChange {
    /// Every vendor accepted; their placements (one per vendor of the order).
    Confirm {
        /// The vendors' acceptances, each with the vendor's confirmation time.
        placements: Vec<VendorPlacement>,
    },
    /// Cannot be fulfilled; release held stock.
    Fail,
    /// The client cancelled; release held stock (or, once confirmed, cancel at vendors).
    Cancel,
    /// The reservation ran out; release held stock.
    Expire,
}

impl StatusChange {
    /// The status this change leads to.
    pub fn target(&self) -> OrderStatus {
        match self {
            Self::Confirm { .. } => OrderStatus::Confirmed,
            Self::Fail => OrderStatus::Failed,
            Self::Cancel => OrderStatus::Cancelled,
            Self::Expire => OrderStatus::Expired,
        }
    }
}

/// A compare-and-set of an order's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The order.
    pub order: OrderId,
    /// The version the caller last saw; any other current version is a Conflict.
    pub expected_version: i64,
    /// What to do.
    pub change: StatusChange,
    /// Why, recorded in the event.
    pub reason: String,
    /// When, in our clock.
    pub at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Currency, QuantityLimit};
    use time::macros::datetime;

    fn order() -> Order {
        let at = datetime!(2026-01-01 10:00 UTC);
        Order {
            id: OrderId::new(),
            number: Some(42),
            details: OrderDetails {
                customer: CustomerId::new("c1").expect("customer"),
                email: None,
                shipping_address: None,
                payment_method: None,
                notes: None,
            },
            lines: vec![OrderLine {
                item: "LAPTOP-001".into(),
                product: ProductId::new("LAPTOP-001").expect("product"),
                quantity: Quantity::new(3, QuantityLimit::DEFAULT).expect("qty"),
                allocations: vec![
                    Allocation {
                        vendor: VendorId::new("VendorA").expect("vendor"),
                        sku: VendorSku::new("LAPTOP-a-001").expect("sku"),
                        quantity: Quantity::new(2, QuantityLimit::DEFAULT).expect("qty"),
                        unit_price: Money::new(1_000, Currency::USD).expect("price"),
                    },
                    Allocation {
                        vendor: VendorId::new("VendorB").expect("vendor"),
                        sku: VendorSku::new("LAPTOP-b-001").expect("sku"),
                        quantity: Quantity::new(1, QuantityLimit::DEFAULT).expect("qty"),
                        unit_price: Money::new(1_100, Currency::USD).expect("price"),
                    },
                ],
                quoted_unit_price: None,
            }],
            status: OrderStatus::Reserved,
            version: 2,
            created_at: at,
            updated_at: at,
            reserved_until: at,
            failure_reason: None,
            vendor_placements: vec![],
            from_hold: None,
            events: vec![],
        }
    }

    fn transition(order: &Order, change: StatusChange) -> Transition {
        Transition {
            order: order.id,
            expected_version: order.version,
            change,
            reason: "test".into(),
            at: datetime!(2026-01-01 10:01 UTC),
        }
    }

    #[test]
    fn the_order_number_reads_as_ord_and_six_digits_or_more() {
        let mut order = order();
        assert_eq!(order.order_number().as_deref(), Some("ORD-000042"));
        order.number = Some(12_345_678);
        assert_eq!(order.order_number().as_deref(), Some("ORD-12345678"));
        order.number = None;
        assert_eq!(order.order_number(), None);
    }

    #[test]
    fn allowed_transitions_only() {
        use OrderStatus::*;
        let allowed = [
            (Pending, Reserved),
            (Pending, Failed),
            (Pending, Cancelled),
            (Pending, Expired),
            (Reserved, Confirmed),
            (Reserved, Failed),
            (Reserved, Cancelled),
            (Reserved, Expired),
            (Confirmed, Cancelled),
        ];
        for from in OrderStatus::ALL {
            for to in OrderStatus::ALL {
                assert_eq!(
                    from.can_become(to),
                    allowed.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
        }
    }

    #[test]
    fn status_words_round_trip() {
        for status in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(status.as_str()), Ok(status));
        }
        assert!(
            matches!(OrderStatus::parse("done"), Err(Error::Invalid { field, .. }) if field == "status")
        );
    }

    #[test]
    fn apply_checks_version_and_records_an_event() {
        let mut order = order();
        let mut stale = transition(&order, StatusChange::Cancel);
        stale.expected_version = 1;
        assert!(matches!(order.apply(&stale), Err(Error::Conflict { .. })));
        assert_eq!(order.status, OrderStatus::Reserved);

        let cancel = transition(&order, StatusChange::Cancel);
        order.apply(&cancel).expect("cancel");
        assert_eq!(order.status, OrderStatus::Cancelled);
        assert_eq!(order.version, 3);
        assert_eq!(order.failure_reason.as_deref(), Some("test"));
        let event = order.events.last().expect("event");
        assert_eq!(
            (event.from, event.to, event.version),
            (Some(OrderStatus::Reserved), OrderStatus::Cancelled, 3)
        );

        let again = transition(&order, StatusChange::Confirm { placements: vec![] });
        assert!(
            matches!(order.apply(&again), Err(Error::Conflict { .. })),
            "illegal transition is a conflict"
        );
    }

    fn placement(order: &Order, vendor: &str, key: Option<&str>) -> VendorPlacement {
        let vendor = VendorId::new(vendor).expect("vendor");
        VendorPlacement {
            idempotency_key: key.map_or_else(|| order.vendor_key(&vendor), str::to_owned),
            vendor,
            vendor_order_id: "vo-1".into(),
            confirmed_at: datetime!(2026-01-01 10:00 UTC),
        }
    }

    #[test]
    fn confirm_needs_every_vendor_once_under_this_versions_key() {
        let mut order = order();
        let only_a = vec![placement(&order, "VendorA", None)];
        let confirm = transition(&order, StatusChange::Confirm { placements: only_a });
        assert!(matches!(order.apply(&confirm), Err(Error::Invalid { .. })));
        let twice_a = vec![
            placement(&order, "VendorA", None),
            placement(&order, "VendorA", None),
            placement(&order, "VendorB", None),
        ];
        let confirm = transition(
            &order,
            StatusChange::Confirm {
                placements: twice_a,
            },
        );
        assert!(matches!(order.apply(&confirm), Err(Error::Invalid { .. })));
        let stray = vec![
            placement(&order, "VendorA", None),
            placement(&order, "VendorB", None),
            placement(&order, "VendorC", None),
        ];
        let confirm = transition(&order, StatusChange::Confirm { placements: stray });
        assert!(matches!(order.apply(&confirm), Err(Error::Invalid { .. })));
        let old_key = format!("{}:VendorB:v{}", order.id, order.version - 1);
        let stale = vec![
            placement(&order, "VendorA", None),
            placement(&order, "VendorB", Some(&old_key)),
        ];
        let confirm = transition(&order, StatusChange::Confirm { placements: stale });
        assert!(
            matches!(order.apply(&confirm), Err(Error::Conflict { .. })),
            "a placement under an older version's key cannot confirm"
        );
        assert_eq!(order.version, 2, "nothing changed");
        let good = vec![
            placement(&order, "VendorB", None),
            placement(&order, "VendorA", None),
        ];
        let confirm = transition(&order, StatusChange::Confirm { placements: good });
        assert_eq!(order.apply(&confirm), Ok(vec![]), "confirming kills no key");
        assert_eq!(order.status, OrderStatus::Confirmed);
    }

    #[test]
    fn leaving_reserved_kills_every_key_of_the_version_and_a_confirmed_cancel_its_placements() {
        for change in [
            StatusChange::Fail,
            StatusChange::Cancel,
            StatusChange::Expire,
        ] {
            let mut order = order();
            let expected = vec![
                VendorKey {
                    vendor: VendorId::new("VendorA").expect("vendor"),
                    key: format!("{}:VendorA:v2", order.id),
                },
                VendorKey {
                    vendor: VendorId::new("VendorB").expect("vendor"),
                    key: format!("{}:VendorB:v2", order.id),
                },
            ];
            assert_eq!(order.live_vendor_keys(), expected);
            let change = transition(&order, change);
            assert_eq!(order.apply(&change), Ok(expected));
            assert_eq!(order.live_vendor_keys(), vec![], "nothing left alive");
        }
        let mut order = order();
        let placements = vec![
            placement(&order, "VendorA", None),
            placement(&order, "VendorB", None),
        ];
        let keys: Vec<VendorKey> = placements
            .iter()
            .map(|p| VendorKey {
                vendor: p.vendor.clone(),
                key: p.idempotency_key.clone(),
            })
            .collect();
        let confirm = transition(&order, StatusChange::Confirm { placements });
        order.apply(&confirm).expect("confirmed");
        assert_eq!(order.live_vendor_keys(), keys);
        let cancel = transition(&order, StatusChange::Cancel);
        assert_eq!(order.apply(&cancel), Ok(keys));
    }

    #[test]
    fn a_reroute_kills_every_key_of_the_old_version() {
        let mut order = order();
        let before = order.live_vendor_keys();
        let replacement = vec![Allocation {
            vendor: VendorId::new("VendorC").expect("vendor"),
            sku: VendorSku::new("LAPTOP-c-001").expect("sku"),
            quantity: Quantity::new(1, QuantityLimit::DEFAULT).expect("qty"),
            unit_price: Money::new(1_200, Currency::USD).expect("price"),
        }];
        let dead = order
            .reroute(
                &VendorId::new("VendorB").expect("vendor"),
                &VendorSku::new("LAPTOP-b-001").expect("sku"),
                &replacement,
                "B is short",
                datetime!(2026-01-01 10:02 UTC),
            )
            .expect("rerouted");
        assert_eq!(dead, before, "A's key changes too: the version moved");
        let now: Vec<String> = order
            .live_vendor_keys()
            .into_iter()
            .map(|k| k.key)
            .collect();
        assert_eq!(
            now,
            vec![
                format!("{}:VendorA:v3", order.id),
                format!("{}:VendorC:v3", order.id)
            ]
        );
    }

    #[test]
    fn total_sums_allocations() {
        let order = order();
        assert_eq!(order.total().map(|m| m.minor_units()), Some(3_100));
        assert_eq!(order.allocations_by_vendor().len(), 2);
    }

    #[test]
    fn details_validation_names_nested_fields() {
        let mut details = order().details;
        details.shipping_address = Some(ShippingAddress {
            street: "1 Main St".into(),
            city: "".into(),
            state: None,
            zip_code: "02101".into(),
            country: "USA".into(),
        });
        assert!(
            matches!(details.validate(), Err(Error::Invalid { field, .. }) if field == "shippingAddress.city")
        );
        details.shipping_address = None;
        details.notes = Some("x".repeat(2_001));
        assert!(details.validate().is_err());
    }
}
