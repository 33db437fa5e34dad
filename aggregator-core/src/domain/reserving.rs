//! Reservation decisions: whether locked stock rows can give what planned lines ask,
//! what each line is charged, which lines are short and by how much, and where a
//! re-route moves an order's units.
//!
//! Every store decides here and only writes what was decided: it locks the rows a
//! request names, hands them over as [`LockedRows`], and applies the answer (the units
//! of [`Demand`] taken, the priced lines recorded). A store that keeps a condition of its
//! own (PostgreSQL's conditional `UPDATE`) keeps it as a safety net that must agree,
//! never as a second rule.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use time::OffsetDateTime;

use crate::domain::{
    Allocation, Money, Order, OrderLine, OutboxMessage, PlannedLine, ProductId, Quantity, Reroute,
    VendorId, VendorKey, VendorSku,
};
use crate::error::{Error, Result, ShortLine};

/// One stock row: a vendor and its SKU.
pub type RowKey = (VendorId, VendorSku);

/// A stock row as a reservation sees it while the store holds the row's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedRow {
    /// The canonical product the row sells.
    pub product: ProductId,
    /// Units we may still promise (`reported − reserved − confirmed_not_yet_reported`);
    /// negative when the vendor reported fewer than we hold.
    pub sellable: i64,
    /// The row's price per unit.
    pub price: Money,
    /// The row's vendor's last good sync; `None` if it never had one.
    pub last_good_sync: Option<OffsetDateTime>,
}

impl LockedRow {
    /// Units the row can give to `product` for a request that only counts vendors synced
    /// at or after `fresh_since`: its sellable figure, or nothing for a stale vendor or
    /// another product.
    pub fn usable_for(&self, product: &ProductId, fresh_since: OffsetDateTime) -> i64 {
        let fresh = self.last_good_sync.is_some_and(|at| at >= fresh_since);
        if fresh && &self.product == product {
            self.sellable
        } else {
            0
        }
    }
}

/// What planned lines ask of each stock row, in row order (the order in which every
/// store locks rows).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Demand {
    by_row: BTreeMap<RowKey, (i64, ProductId)>,
}

impl Demand {
    /// The units `lines` ask of each row. Refuses (`Invalid`) no lines, a line whose
    /// allocations are empty or do not add up to its quantity (named `lines[i]`), and a
    /// SKU named under two products.
    pub fn of(lines: &[PlannedLine]) -> Result<Self> {
        if lines.is_empty() {
            return Err(Error::invalid("items", "must not be empty"));
        }
        let mut by_row: BTreeMap<RowKey, (i64, ProductId)> = BTreeMap::new();
        for (index, line) in lines.iter().enumerate() {
            line.check()
                .map_err(|e| e.within(&format!("lines[{index}]")))?;
            for allocation in &line.allocations {
                let key = (allocation.vendor.clone(), allocation.sku.clone());
                let entry = by_row
                    .entry(key)
                    .or_insert_with(|| (0, line.product.clone()));
                if entry.1 != line.product {
                    return Err(Error::invalid(
                        format!("lines[{index}].allocations"),
                        format!("{} does not belong to {}", allocation.sku, line.product),
                    ));
                }
                entry.0 += allocation.quantity.as_i64();
            }
        }
        Ok(Self { by_row })
    }

    /// Each row and the units asked of it, in row order.
    pub fn rows(&self) -> impl Iterator<Item = (&RowKey, i64)> {
        self.by_row.iter().map(|(key, (units, _))| (key, *units))
    }

    /// The product the units asked of `row` must belong to, if it is asked of.
    pub fn product(&self, row: &RowKey) -> Option<&ProductId> {
        self.by_row.get(row).map(|(_, product)| product)
    }

    /// How many rows are asked of.
    pub fn len(&self) -> usize {
        self.by_row.len()
    }

    /// True when no row is asked of.
    pub fn is_empty(&self) -> bool {
        self.by_row.is_empty()
    }
}

/// The rows a store locked for a request, by key; a row the store does not have is
/// simply absent (it gives nothing).
#[derive(Debug, Clone, Default)]
pub struct LockedRows {
    rows: HashMap<RowKey, LockedRow>,
}

impl LockedRows {
    /// No rows.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the row under `key`.
    pub fn insert(&mut self, key: RowKey, row: LockedRow) {
        self.rows.insert(key, row);
    }

    /// The row under `key`, as this decision set left it.
    pub fn get(&self, key: &RowKey) -> Option<&LockedRow> {
        self.rows.get(key)
    }

    /// Decides whether `lines` (asking `demand` of the rows, see [`Demand::of`]) can be
    /// reserved, counting only vendors synced at or after `fresh_since`, and answers the
    /// lines priced from the rows. Changes nothing. Refusals, in this order:
    /// `InsufficientStock` naming every line with an allocation on a row that cannot
    /// give it, each with the units the rows it names could give its product; then
    /// `PriceMismatch` for a quoted line a row would charge another price.
    pub fn decide(
        &self,
        lines: &[PlannedLine],
        demand: &Demand,
        fresh_since: OffsetDateTime,
    ) -> Result<Vec<OrderLine>> {
        let short: HashSet<&RowKey> = demand
            .by_row
            .iter()
            .filter(|(key, (units, product))| self.usable(key, product, fresh_since) < *units)
            .map(|(key, _)| key)
            .collect();
        if !short.is_empty() {
            return Err(Error::InsufficientStock {
                short: self.short_lines(lines, &short, fresh_since),
            });
        }
        let mut priced = Vec::with_capacity(lines.len());
        for (index, line) in lines.iter().enumerate() {
            let mut allocations = Vec::with_capacity(line.allocations.len());
            for planned in &line.allocations {
                let key = (planned.vendor.clone(), planned.sku.clone());
                let Some(row) = self.rows.get(&key) else {
                    return Err(Error::conflict("a row that could give went missing"));
                };
                // A quoted line is charged its quote, or nothing is reserved.
                line.check_charge(index, &row.price)?;
                allocations.push(Allocation {
                    vendor: key.0,
                    sku: key.1,
                    quantity: planned.quantity,
                    unit_price: row.price,
                });
            }
            priced.push(OrderLine {
                item: line.item.clone(),
                product: line.product.clone(),
                quantity: line.quantity,
                allocations,
                quoted_unit_price: line.quoted,
            });
        }
        Ok(priced)
    }

    /// [`LockedRows::decide`], then takes `demand` from the rows, so that the next
    /// decision on the same rows (the next placement of a batch) sees what this one took.
    pub fn reserve(
        &mut self,
        lines: &[PlannedLine],
        demand: &Demand,
        fresh_since: OffsetDateTime,
    ) -> Result<Vec<OrderLine>> {
        let priced = self.decide(lines, demand, fresh_since)?;
        self.take(demand);
        Ok(priced)
    }

    /// Decides the re-route `request` of `current` (the order as locked): checks it
    /// ([`check_reroute_request`]), decides the replacement as a reservation of the
    /// moving units for their line's product, and applies the move to a copy of the
    /// order ([`Order::reroute`], which keeps a quoted line at its quote). Takes the
    /// replacement from the rows; on error changes nothing. A short replacement is
    /// `InsufficientStock` naming the line, the units that move and what the replacement
    /// rows could give.
    pub fn reroute(&mut self, current: &Order, request: &Reroute) -> Result<RerouteDecision> {
        let (moving, product, item) = check_reroute_request(current, request)?;
        let line = PlannedLine {
            item,
            product,
            quantity: moving,
            allocations: request.replacement.clone(),
            // The order's own lines carry the quote; `Order::reroute` checks it.
            quoted: None,
        };
        let lines = std::slice::from_ref(&line);
        let taken = Demand::of(lines)?;
        let allocations: Vec<Allocation> = self
            .decide(lines, &taken, request.fresh_since)?
            .into_iter()
            .flat_map(|line| line.allocations)
            .collect();
        let mut order = current.clone();
        let dead = order.reroute(
            &request.vendor,
            &request.sku,
            &allocations,
            &request.reason,
            request.at,
        )?;
        let cancellations = OutboxMessage::vendor_cancellations(order.id, &dead, request.at)?;
        self.take(&taken);
        Ok(RerouteDecision {
            order,
            dead,
            cancellations,
            left: ((request.vendor.clone(), request.sku.clone()), moving),
            taken,
        })
    }

    fn take(&mut self, demand: &Demand) {
        for (key, units) in demand.rows() {
            if let Some(row) = self.rows.get_mut(key) {
                row.sellable -= units;
            }
        }
    }

    fn usable(&self, key: &RowKey, product: &ProductId, fresh_since: OffsetDateTime) -> i64 {
        self.rows
            .get(key)
            .map_or(0, |row| row.usable_for(product, fresh_since))
    }

    /// The lines with an allocation on a `short` row, each with the units the distinct
    /// rows it names could give its product (never below zero per row).
    fn short_lines(
        &self,
        lines: &[PlannedLine],
        short: &HashSet<&RowKey>,
        fresh_since: OffsetDateTime,
    ) -> Vec<ShortLine> {
        lines
            .iter()
            .filter(|line| {
                line.allocations
                    .iter()
                    .any(|a| short.contains(&(a.vendor.clone(), a.sku.clone())))
            })
            .map(|line| {
                let keys: BTreeSet<RowKey> = line
                    .allocations
                    .iter()
                    .map(|a| (a.vendor.clone(), a.sku.clone()))
                    .collect();
                let available: i64 = keys
                    .iter()
                    .map(|key| self.usable(key, &line.product, fresh_since).max(0))
                    .sum();
                ShortLine {
                    item: line.item.clone(),
                    requested: line.quantity.get(),
                    available: u64::try_from(available).unwrap_or(0),
                }
            })
            .collect()
    }
}

/// Whether `request` may re-route `current` at all, before any stock row is looked at:
/// the version the caller saw must be the order's (`Conflict` otherwise) and the move
/// must be one [`Order::check_reroute`] allows. Answers the units that move, their
/// product and the line's item text. A store may call it before it locks stock rows, to
/// refuse cheaply; [`LockedRows::reroute`] calls it again on the locked order.
pub fn check_reroute_request(
    current: &Order,
    request: &Reroute,
) -> Result<(Quantity, ProductId, String)> {
    if current.version != request.expected_version {
        return Err(Error::conflict(format!(
            "order {} is at version {}, not {}",
            current.id, current.version, request.expected_version
        )));
    }
    let planned: Vec<(VendorId, VendorSku, Quantity)> = request
        .replacement
        .iter()
        .map(|a| (a.vendor.clone(), a.sku.clone(), a.quantity))
        .collect();
    current.check_reroute(&request.vendor, &request.sku, &planned)
}

/// What a re-route decided; the store writes exactly this in one atomic step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RerouteDecision {
    /// The order after the move (version + 1, an event with the reason).
    pub order: Order,
    /// Every vendor key of the old version, now dead: their units stay counted until
    /// the vendors confirm the cancellations.
    pub dead: Vec<VendorKey>,
    /// The cancellation messages of `dead`, for the outbox.
    pub cancellations: Vec<OutboxMessage>,
    /// The row left and the units leaving it (given back to it).
    pub left: (RowKey, Quantity),
    /// What the replacement takes of each row.
    pub taken: Demand,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        Currency, CustomerId, OrderDetails, OrderId, OrderStatus, PlannedAllocation, QuantityLimit,
        QuotedPrice,
    };
    use time::macros::datetime;

    const SYNCED: OffsetDateTime = datetime!(2026-01-01 09:55 UTC);
    const FRESH_SINCE: OffsetDateTime = datetime!(2026-01-01 09:50 UTC);
    const NOW: OffsetDateTime = datetime!(2026-01-01 10:00 UTC);

    fn qty(n: u32) -> Quantity {
        Quantity::new(i64::from(n), QuantityLimit::DEFAULT).expect("quantity")
    }

    fn usd(minor: i64) -> Money {
        Money::new(minor, Currency::USD).expect("price")
    }

    fn key(vendor: &str, sku: &str) -> RowKey {
        (
            VendorId::new(vendor).expect("vendor"),
            VendorSku::new(sku).expect("sku"),
        )
    }

    fn row(product: &str, sellable: i64, price: i64) -> LockedRow {
        LockedRow {
            product: ProductId::new(product).expect("product"),
            sellable,
            price: usd(price),
            last_good_sync: Some(SYNCED),
        }
    }

    fn line(item: &str, product: &str, takes: &[(&str, &str, u32)]) -> PlannedLine {
        PlannedLine {
            item: item.into(),
            product: ProductId::new(product).expect("product"),
            quantity: qty(takes.iter().map(|(_, _, n)| n).sum()),
            allocations: takes
                .iter()
                .map(|(vendor, sku, n)| {
                    let (vendor, sku) = key(vendor, sku);
                    PlannedAllocation {
                        vendor,
                        sku,
                        quantity: qty(*n),
                    }
                })
                .collect(),
            quoted: None,
        }
    }

    fn rows() -> LockedRows {
        let mut rows = LockedRows::new();
        rows.insert(key("A", "a-1"), row("P1", 5, 1_000));
        rows.insert(key("B", "b-1"), row("P1", 2, 1_100));
        rows.insert(key("C", "c-2"), row("P2", 3, 500));
        rows
    }

    #[test]
    fn a_line_that_every_row_can_give_is_priced_from_the_rows_and_taken_once_reserved() {
        let lines = vec![line("P1", "P1", &[("A", "a-1", 4), ("B", "b-1", 1)])];
        let demand = Demand::of(&lines).expect("demand");
        let mut rows = rows();
        let priced = rows.decide(&lines, &demand, FRESH_SINCE).expect("decided");
        let prices: Vec<i64> = priced[0]
            .allocations
            .iter()
            .map(|a| a.unit_price.minor_units())
            .collect();
        assert_eq!(prices, vec![1_000, 1_100]);
        assert_eq!(rows.get(&key("A", "a-1")).map(|r| r.sellable), Some(5));
        rows.reserve(&lines, &demand, FRESH_SINCE)
            .expect("reserved");
        assert_eq!(rows.get(&key("A", "a-1")).map(|r| r.sellable), Some(1));
        // The next decision on the same rows sees what this one took.
        let again = rows.reserve(&lines, &demand, FRESH_SINCE);
        assert!(
            matches!(again, Err(Error::InsufficientStock { .. })),
            "{again:?}"
        );
    }

    #[test]
    fn short_lines_name_what_their_rows_could_give_their_product_and_take_nothing() {
        let mut rows = rows();
        rows.insert(key("D", "d-1"), row("P1", -4, 900));
        let lines = vec![
            line(
                "P1",
                "P1",
                &[("A", "a-1", 3), ("B", "b-1", 3), ("D", "d-1", 1)],
            ),
            line("P2", "P2", &[("C", "c-2", 1)]),
            line("P3", "P3", &[("X", "unknown", 1)]),
        ];
        let demand = Demand::of(&lines).expect("demand");
        let refused = rows.reserve(&lines, &demand, FRESH_SINCE);
        let Err(Error::InsufficientStock { short }) = refused else {
            panic!("expected short lines, got {refused:?}");
        };
        let named: Vec<(&str, u32, u64)> = short
            .iter()
            .map(|s| (s.item.as_str(), s.requested, s.available))
            .collect();
        // A negative row counts as nothing; a row the store lacks gives nothing.
        assert_eq!(named, vec![("P1", 7, 7), ("P3", 1, 0)]);
        assert_eq!(rows.get(&key("C", "c-2")).map(|r| r.sellable), Some(3));
    }

    #[test]
    fn a_stale_vendor_or_another_product_gives_nothing() {
        let mut rows = rows();
        rows.insert(
            key("A", "a-1"),
            LockedRow {
                last_good_sync: Some(FRESH_SINCE - time::Duration::seconds(1)),
                ..row("P1", 5, 1_000)
            },
        );
        let stale = vec![line("P1", "P1", &[("A", "a-1", 1)])];
        let refused = rows.decide(&stale, &Demand::of(&stale).expect("demand"), FRESH_SINCE);
        let Err(Error::InsufficientStock { short }) = refused else {
            panic!("expected a short line, got {refused:?}");
        };
        assert_eq!(short[0].available, 0, "a stale vendor's units do not count");
        // Synced exactly at the limit counts as fresh.
        rows.insert(
            key("A", "a-1"),
            LockedRow {
                last_good_sync: Some(FRESH_SINCE),
                ..row("P1", 5, 1_000)
            },
        );
        rows.decide(&stale, &Demand::of(&stale).expect("demand"), FRESH_SINCE)
            .expect("fresh at the limit");
        let wrong = vec![line("P1", "P1", &[("C", "c-2", 1)])];
        let refused = rows.decide(&wrong, &Demand::of(&wrong).expect("demand"), FRESH_SINCE);
        let Err(Error::InsufficientStock { short }) = refused else {
            panic!("expected a short line, got {refused:?}");
        };
        assert_eq!(short[0].available, 0);
    }

    #[test]
    fn a_quoted_line_at_its_quote_is_taken_and_a_short_line_is_named_before_any_quote() {
        let mut quoted = line("P1", "P1", &[("A", "a-1", 2)]);
        quoted.quoted = Some(QuotedPrice::parse("10.00").expect("quote"));
        let lines = vec![quoted.clone()];
        let priced = rows()
            .decide(&lines, &Demand::of(&lines).expect("demand"), FRESH_SINCE)
            .expect("the row charges the quote");
        assert_eq!(priced[0].allocations[0].unit_price, usd(1_000));
        // A short line and a quote the rows would break: the short line is the answer.
        let mut breaks = line("P1", "P1", &[("B", "b-1", 1)]);
        breaks.quoted = Some(QuotedPrice::parse("10.00").expect("quote"));
        let lines = vec![breaks, line("P2", "P2", &[("C", "c-2", 9)])];
        let refused = rows().decide(&lines, &Demand::of(&lines).expect("demand"), FRESH_SINCE);
        assert!(
            matches!(refused, Err(Error::InsufficientStock { .. })),
            "{refused:?}"
        );
    }

    #[test]
    fn a_quoted_line_is_charged_its_quote_or_nothing_is_decided() {
        let mut quoted = line("P1", "P1", &[("A", "a-1", 1), ("B", "b-1", 1)]);
        quoted.quoted = Some(QuotedPrice::parse("10.00").expect("quote"));
        let lines = vec![quoted];
        let demand = Demand::of(&lines).expect("demand");
        let mut rows = rows();
        let refused = rows.reserve(&lines, &demand, FRESH_SINCE);
        assert!(
            matches!(refused, Err(Error::PriceMismatch { .. })),
            "{refused:?}"
        );
        assert_eq!(rows.get(&key("A", "a-1")).map(|r| r.sellable), Some(5));
    }

    #[test]
    fn demand_sums_by_row_in_row_order_and_refuses_a_sku_under_two_products() {
        let lines = vec![
            line("P1", "P1", &[("B", "b-1", 1), ("A", "a-1", 2)]),
            line("P1 again", "P1", &[("A", "a-1", 1)]),
        ];
        let demand = Demand::of(&lines).expect("demand");
        let rows: Vec<(RowKey, i64)> = demand.rows().map(|(k, u)| (k.clone(), u)).collect();
        assert_eq!(rows, vec![(key("A", "a-1"), 3), (key("B", "b-1"), 1)]);
        let clash = vec![
            line("P1", "P1", &[("A", "a-1", 1)]),
            line("P2", "P2", &[("A", "a-1", 1)]),
        ];
        assert!(matches!(Demand::of(&clash), Err(Error::Invalid { .. })));
        assert!(matches!(Demand::of(&[]), Err(Error::Invalid { .. })));
    }

    fn reserved_order() -> Order {
        let allocation = |vendor: &str, sku: &str, n: u32, price: i64| {
            let (vendor, sku) = key(vendor, sku);
            Allocation {
                vendor,
                sku,
                quantity: qty(n),
                unit_price: usd(price),
            }
        };
        let mut order = Order::new_reserved(
            OrderId::new(),
            OrderDetails {
                customer: CustomerId::new("c1").expect("customer"),
                email: None,
                shipping_address: None,
                payment_method: None,
                notes: None,
            },
            vec![OrderLine {
                item: "P1".into(),
                product: ProductId::new("P1").expect("product"),
                quantity: qty(3),
                allocations: vec![allocation("A", "a-1", 3, 1_000)],
                quoted_unit_price: None,
            }],
            NOW,
            NOW + time::Duration::minutes(15),
            None,
            "placed",
        );
        order.version = 2;
        order
    }

    fn reroute_of(order: &Order, to: &[(&str, &str, u32)]) -> Reroute {
        Reroute {
            order: order.id,
            expected_version: order.version,
            vendor: key("A", "a-1").0,
            sku: key("A", "a-1").1,
            replacement: line("P1", "P1", to).allocations,
            reason: "vendor A refused".into(),
            at: NOW,
            fresh_since: FRESH_SINCE,
        }
    }

    #[test]
    fn a_reroute_moves_the_units_at_the_new_rows_prices_and_kills_the_old_keys() {
        let order = reserved_order();
        let mut rows = rows();
        let decided = rows
            .reroute(
                &order,
                &reroute_of(&order, &[("B", "b-1", 2), ("D", "d-1", 1)]),
            )
            .map(|_| ());
        // D has no row: the replacement is short by what B and D could give (2).
        let Err(Error::InsufficientStock { short }) = decided else {
            panic!("expected a short replacement, got {decided:?}");
        };
        assert_eq!((short[0].requested, short[0].available), (3, 2));
        rows.insert(key("D", "d-1"), row("P1", 4, 1_200));
        let decision = rows
            .reroute(
                &order,
                &reroute_of(&order, &[("B", "b-1", 2), ("D", "d-1", 1)]),
            )
            .expect("re-routed");
        assert_eq!(decision.order.version, order.version + 1);
        assert_eq!(decision.order.status, OrderStatus::Reserved);
        assert_eq!(decision.left, (key("A", "a-1"), qty(3)));
        let taken: Vec<(RowKey, i64)> =
            decision.taken.rows().map(|(k, u)| (k.clone(), u)).collect();
        assert_eq!(taken, vec![(key("B", "b-1"), 2), (key("D", "d-1"), 1)]);
        let prices: Vec<i64> = decision.order.lines[0]
            .allocations
            .iter()
            .map(|a| a.unit_price.minor_units())
            .collect();
        assert_eq!(prices, vec![1_100, 1_200]);
        assert_eq!(decision.dead, order.live_vendor_keys());
        assert_eq!(decision.cancellations.len(), decision.dead.len());
        assert_eq!(rows.get(&key("B", "b-1")).map(|r| r.sellable), Some(0));
    }

    #[test]
    fn a_reroute_of_a_version_the_caller_did_not_see_is_a_conflict_and_takes_nothing() {
        let order = reserved_order();
        let mut request = reroute_of(&order, &[("B", "b-1", 2), ("A2", "x", 1)]);
        request.expected_version -= 1;
        let mut rows = rows();
        let refused = rows.reroute(&order, &request);
        assert!(
            matches!(refused, Err(Error::Conflict { .. })),
            "{refused:?}"
        );
        assert_eq!(rows.get(&key("B", "b-1")).map(|r| r.sellable), Some(2));
    }
}
