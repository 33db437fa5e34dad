//! Turning a requested line into per-vendor allocations.
//!
//! Only vendors whose data is fresh count. Candidates are ranked by vendor priority
//! (lower first), then unit price (lower first, compared in minor units), then vendor id,
//! and the line is filled greedily in that order, so it may be split across vendors.
//! The plan is a proposal: the store decides at commit whether the units are still
//! there.

use std::collections::{BTreeMap, HashMap};

use time::OffsetDateTime;

use crate::domain::{Quantity, Vendor, VendorId, VendorSku, VendorStock};
use crate::error::ShortLine;
use crate::traits::{PlannedAllocation, PlannedLine};

/// Units already promised to earlier lines of the same request, per (vendor, SKU).
pub type Taken = HashMap<(VendorId, VendorSku), i64>;

/// A line's plan, and what is missing if the stock read cannot cover it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinePlan {
    /// The allocations to try. When the line is short, the missing units are added to
    /// the best-ranked candidate, so the store refuses the plan if it is ever tried.
    pub line: PlannedLine,
    /// Set when the stock read cannot cover the line.
    pub short: Option<ShortLine>,
}

/// Candidates of `rows` that can be allocated from, best first: rows of `product`'s
/// fresh vendors, by priority, price, then vendor id.
pub fn rank_candidates<'a>(
    rows: &'a [VendorStock],
    vendors: &BTreeMap<VendorId, Vendor>,
    fresh_since: OffsetDateTime,
) -> Vec<&'a VendorStock> {
    let mut ranked: Vec<(&VendorStock, u16)> = rows
        .iter()
        .filter_map(|row| {
            let vendor = vendors.get(&row.vendor)?;
            vendor
                .is_fresh(fresh_since)
                .then_some((row, vendor.priority))
        })
        .collect();
    ranked.sort_by(|(a, a_priority), (b, b_priority)| {
        (a_priority, a.price.minor_units(), &a.vendor, &a.sku).cmp(&(
            b_priority,
            b.price.minor_units(),
            &b.vendor,
            &b.sku,
        ))
    });
    ranked.into_iter().map(|(row, _)| row).collect()
}

/// Plans `quantity` units of `item` from `rows` (all of one product; at least one row),
/// counting what earlier lines took in `taken` and adding this line's take to it.
/// Returns `None` when `rows` is empty.
pub fn plan_line(
    item: &str,
    quantity: Quantity,
    rows: &[VendorStock],
    vendors: &BTreeMap<VendorId, Vendor>,
    fresh_since: OffsetDateTime,
    taken: &mut Taken,
) -> Option<LinePlan> {
    let product = rows.first()?.product.clone();
    let mut remaining = quantity.as_i64();
    let mut allocations: Vec<PlannedAllocation> = Vec::new();
    let ranked = rank_candidates(rows, vendors, fresh_since);
    for row in &ranked {
        if remaining == 0 {
            break;
        }
        let key = (row.vendor.clone(), row.sku.clone());
        let already = taken.get(&key).copied().unwrap_or(0);
        let free = row.sellable() - already;
        if free <= 0 {
            continue;
        }
        let take = free.min(remaining);
        remaining -= take;
        *taken.entry(key).or_default() += take;
        allocations.push(PlannedAllocation {
            vendor: row.vendor.clone(),
            sku: row.sku.clone(),
            quantity: quantity_of(take)?,
        });
    }
    let short = (remaining > 0).then(|| ShortLine {
        item: item.to_owned(),
        requested: quantity.get(),
        available: u64::try_from(quantity.as_i64() - remaining).unwrap_or(0),
    });
    if remaining > 0 {
        let best = ranked.first().copied().or_else(|| rows.first())?;
        match allocations
            .iter_mut()
            .find(|a| a.vendor == best.vendor && a.sku == best.sku)
        {
            Some(existing) => {
                existing.quantity = quantity_of(existing.quantity.as_i64() + remaining)?;
            }
            None => allocations.insert(
                0,
                PlannedAllocation {
                    vendor: best.vendor.clone(),
                    sku: best.sku.clone(),
                    quantity: quantity_of(remaining)?,
                },
            ),
        }
    }
    Some(LinePlan {
        line: PlannedLine {
            item: item.to_owned(),
            product,
            quantity,
            allocations,
            quoted: None,
        },
        short,
    })
}

fn quantity_of(units: i64) -> Option<Quantity> {
    u32::try_from(units)
        .ok()
        .and_then(|n| Quantity::try_from(n).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Currency, Money, ProductId, QuantityLimit};
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-01-01 12:00 UTC);

    fn vendor(id: &str, priority: u16, synced: Option<OffsetDateTime>) -> Vendor {
        let mut vendor = Vendor::new(
            VendorId::new(id).expect("id"),
            id,
            "http://127.0.0.1:1",
            priority,
        )
        .expect("vendor");
        vendor.last_good_sync = synced;
        vendor
    }

    fn row(vendor: &str, sku: &str, reported: i64, price: i64) -> VendorStock {
        VendorStock {
            vendor: VendorId::new(vendor).expect("id"),
            sku: VendorSku::new(sku).expect("sku"),
            product: ProductId::new("LAPTOP-001").expect("product"),
            reported,
            reserved: 0,
            confirmed_not_yet_reported: 0,
            as_of: NOW,
            price: Money::new(price, Currency::USD).expect("price"),
            version: 1,
        }
    }

    fn vendors(list: Vec<Vendor>) -> BTreeMap<VendorId, Vendor> {
        list.into_iter().map(|v| (v.id.clone(), v)).collect()
    }

    fn qty(n: i64) -> Quantity {
        Quantity::new(n, QuantityLimit::DEFAULT).expect("qty")
    }

    fn parts(plan: &LinePlan) -> Vec<(String, u32)> {
        plan.line
            .allocations
            .iter()
            .map(|a| (a.sku.to_string(), a.quantity.get()))
            .collect()
    }

    #[test]
    fn priority_then_price_then_split() {
        let vendors = vendors(vec![
            vendor("A", 2, Some(NOW)),
            vendor("B", 1, Some(NOW)),
            vendor("C", 1, Some(NOW)),
        ]);
        let rows = vec![
            row("A", "a-1", 10, 100),
            row("B", "b-1", 2, 500),
            row("C", "c-1", 3, 400),
        ];
        let plan = plan_line(
            "LAPTOP-001",
            qty(7),
            &rows,
            &vendors,
            NOW,
            &mut Taken::new(),
        )
        .expect("plan");
        assert_eq!(plan.short, None);
        assert_eq!(
            parts(&plan),
            vec![("c-1".into(), 3), ("b-1".into(), 2), ("a-1".into(), 2)]
        );
    }

    #[test]
    fn stale_and_unknown_vendors_do_not_count() {
        let vendors = vendors(vec![
            vendor("A", 1, Some(NOW - time::Duration::hours(1))),
            vendor("B", 1, Some(NOW)),
        ]);
        let rows = vec![
            row("A", "a-1", 10, 100),
            row("B", "b-1", 1, 100),
            row("Z", "z-1", 10, 1),
        ];
        let fresh_since = NOW - time::Duration::minutes(5);
        let plan = plan_line(
            "LAPTOP-001",
            qty(3),
            &rows,
            &vendors,
            fresh_since,
            &mut Taken::new(),
        )
        .expect("plan");
        let short = plan.short.clone().expect("short");
        assert_eq!((short.requested, short.available), (3, 1));
        // The missing units go to the best candidate so the store refuses the plan.
        assert_eq!(parts(&plan), vec![("b-1".into(), 3)]);
    }

    #[test]
    fn earlier_lines_of_the_same_request_are_counted() {
        let vendors = vendors(vec![vendor("A", 1, Some(NOW)), vendor("B", 2, Some(NOW))]);
        let rows = vec![row("A", "a-1", 2, 100), row("B", "b-1", 5, 100)];
        let mut taken = Taken::new();
        let first = plan_line("x", qty(2), &rows, &vendors, NOW, &mut taken).expect("plan");
        let second = plan_line("x", qty(2), &rows, &vendors, NOW, &mut taken).expect("plan");
        assert_eq!(parts(&first), vec![("a-1".into(), 2)]);
        assert_eq!(parts(&second), vec![("b-1".into(), 2)]);
    }

    #[test]
    fn negative_sellable_is_skipped() {
        let vendors = vendors(vec![vendor("A", 1, Some(NOW)), vendor("B", 2, Some(NOW))]);
        let mut oversold = row("A", "a-1", 1, 100);
        oversold.reserved = 3;
        let rows = vec![oversold, row("B", "b-1", 5, 100)];
        let plan = plan_line("x", qty(2), &rows, &vendors, NOW, &mut Taken::new()).expect("plan");
        assert_eq!(parts(&plan), vec![("b-1".into(), 2)]);
    }

    #[test]
    fn no_rows_no_plan() {
        assert!(plan_line("x", qty(1), &[], &BTreeMap::new(), NOW, &mut Taken::new()).is_none());
    }
}
