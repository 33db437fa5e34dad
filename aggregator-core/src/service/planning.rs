//! Checking requested items and planning them against a fresh read of the store.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::allocator::rank_candidates;
use super::allocator::{Taken, plan_line};
use crate::domain::{ProductId, Quantity, QuantityLimit, QuotedPrice, Vendor, VendorId, VendorSku};
use crate::error::{Error, Result, ShortLine};
use crate::traits::{CatalogReads, PlannedLine};

/// One requested item: a vendor SKU (pinned to the vendors carrying it) or a canonical
/// product id (any vendor), and how many units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemRequest {
    /// A vendor SKU such as `LAPTOP-a-001` or a product id such as `LAPTOP-001`.
    pub item: String,
    /// Units; checked against the configured limit (so it is signed here on purpose).
    pub quantity: i64,
    /// The price per unit the client expects, if it quoted one: the item is refused
    /// (`PriceMismatch` naming the current prices, nothing reserved) unless it is a
    /// current catalog price of the item at a fresh vendor, and is then allocated only
    /// to rows at that price, so the line is charged exactly the quote (the store checks
    /// it again on the rows it locks).
    ///
    /// Not part of the request's idempotency fingerprint: a retry quoting another price
    /// still gets the first answer.
    #[serde(default, skip_serializing)]
    pub unit_price: Option<QuotedPrice>,
}

impl ItemRequest {
    /// `quantity` units of `item`, without a quoted price.
    pub fn new(item: impl Into<String>, quantity: i64) -> Self {
        Self {
            item: item.into(),
            quantity,
            unit_price: None,
        }
    }
}

/// A checked item: its text, quantity and the store rows it may be taken from.
#[derive(Debug)]
struct ResolvedItem {
    item: String,
    quantity: Quantity,
    rows: Vec<crate::domain::VendorStock>,
}

/// The plan for a whole request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestPlan {
    pub(crate) lines: Vec<PlannedLine>,
    pub(crate) short: Vec<ShortLine>,
}

/// Checks the items' shape (count, quantities, names) without touching the store.
pub(crate) fn check_items(
    items: &[ItemRequest],
    max_lines: usize,
    limit: QuantityLimit,
) -> Result<Vec<Quantity>> {
    if items.is_empty() {
        return Err(Error::invalid("items", "must not be empty"));
    }
    if items.len() > max_lines {
        return Err(Error::invalid(
            "items",
            format!("must have at most {max_lines} lines, got {}", items.len()),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            VendorSku::new(item.item.as_str()).map_err(|e| e.within(&format!("items[{index}]")))?;
            Quantity::new(item.quantity, limit).map_err(|e| e.within(&format!("items[{index}]")))
        })
        .collect()
}

/// Looks each item up as a vendor SKU first, then as a product id; an item that is
/// neither is `Invalid` naming `items[i].sku`.
async fn resolve(
    store: &dyn CatalogReads,
    items: &[ItemRequest],
    quantities: &[Quantity],
) -> Result<Vec<ResolvedItem>> {
    let mut resolved = Vec::with_capacity(items.len());
    for (index, (item, quantity)) in items.iter().zip(quantities).enumerate() {
        let sku = VendorSku::new(item.item.as_str())?;
        let mut rows = store.stock_for_sku(&sku).await?;
        if rows.is_empty() {
            let product = ProductId::new(item.item.as_str())?;
            rows = store.stock_for_product(&product).await?;
        }
        if rows.is_empty() {
            return Err(Error::invalid(
                format!("items[{index}].sku"),
                format!("{:?} is neither a known SKU nor a known product", item.item),
            ));
        }
        // A SKU carried by several vendors must name one product to be allocated.
        let product = rows[0].product.clone();
        rows.retain(|row| row.product == product);
        resolved.push(ResolvedItem {
            item: item.item.clone(),
            quantity: *quantity,
            rows,
        });
    }
    Ok(resolved)
}

/// Refuses `item` if `quoted` is none of its current prices at fresh vendors (an item no
/// fresh vendor carries has no current price to compare with: it is left to planning,
/// which finds it short).
fn check_price(
    index: usize,
    item: &ResolvedItem,
    quoted: &QuotedPrice,
    vendors: &BTreeMap<VendorId, Vendor>,
    fresh_since: OffsetDateTime,
) -> Result<()> {
    let mut catalog: Vec<crate::domain::Money> = rank_candidates(&item.rows, vendors, fresh_since)
        .into_iter()
        .map(|row| row.price)
        .collect();
    if catalog.is_empty() || catalog.iter().any(|price| price.is(quoted)) {
        return Ok(());
    }
    catalog.sort_by_key(|price| (price.currency(), price.minor_units()));
    catalog.dedup();
    Err(Error::PriceMismatch {
        field: format!("items[{index}].unitPrice"),
        item: item.item.clone(),
        quoted: quoted.to_string(),
        catalog,
    })
}

/// Reads the store and plans every item; short lines are reported, not refused, so the
/// caller decides whether to try the plan (e.g. to let an idempotent replay through).
pub(crate) async fn plan_request(
    store: &dyn CatalogReads,
    items: &[ItemRequest],
    quantities: &[Quantity],
    fresh_since: OffsetDateTime,
) -> Result<RequestPlan> {
    let mut resolved = resolve(store, items, quantities).await?;
    let vendors: BTreeMap<VendorId, Vendor> = store
        .vendors()
        .await?
        .into_iter()
        .map(|vendor| (vendor.id.clone(), vendor))
        .collect();
    let mut taken = Taken::new();
    let mut plan = RequestPlan {
        lines: Vec::with_capacity(resolved.len()),
        short: Vec::new(),
    };
    for (index, item) in resolved.iter_mut().enumerate() {
        if let Some(quoted) = &items[index].unit_price {
            check_price(index, item, quoted, &vendors, fresh_since)?;
            // A quoted line is allocated only to rows at the quoted price: what the
            // customer agreed to pay is what it is charged. (With no fresh row at all,
            // the line is left to come out short.)
            if item.rows.iter().any(|row| row.price.is(quoted)) {
                item.rows.retain(|row| row.price.is(quoted));
            }
        }
    }
    for (index, item) in resolved.into_iter().enumerate() {
        let Some(line) = plan_line(
            &item.item,
            item.quantity,
            &item.rows,
            &vendors,
            fresh_since,
            &mut taken,
        ) else {
            return Err(Error::invalid(
                "items",
                format!("{} has no stock rows", item.item),
            ));
        };
        plan.short.extend(line.short);
        let mut planned = line.line;
        planned.quoted = items[index].unit_price;
        plan.lines.push(planned);
    }
    Ok(plan)
}
