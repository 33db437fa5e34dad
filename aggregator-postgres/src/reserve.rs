//! Taking and giving back units inside a transaction.
//!
//! Why READ COMMITTED is enough: a reservation is one conditional
//! `UPDATE … SET reserved = reserved + q WHERE … AND reported − reserved −
//! confirmed_not_yet_reported ≥ q`. When two transactions race for a row, the second
//! waits for the first's row lock and PostgreSQL then re-checks the `WHERE` clause
//! against the row as the first one committed it, so the condition always holds for the
//! committed value, never for a stale read. Nothing is read first and written later in
//! Rust. Transactions that touch several stock rows lock them in the one order every
//! transaction keeps (see [`crate::locks`]), so two multi-line orders cannot deadlock; the
//! CHECK constraints (`reserved ≥ 0` and friends) stand behind all of it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aggregator_core::domain::{Allocation, OrderLine, ProductId, VendorPlacement};
use aggregator_core::traits::PlannedLine;
use aggregator_core::{Error, ShortLine};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::locks::lock_sorted;
use crate::rows::money;
use crate::tx::TxResult;

/// Who holds reservation rows.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Owner {
    Order(Uuid),
    Hold(Uuid),
}

impl Owner {
    pub(crate) fn kind(self) -> &'static str {
        match self {
            Self::Order(_) => "order",
            Self::Hold(_) => "hold",
        }
    }

    pub(crate) fn id(self) -> Uuid {
        match self {
            Self::Order(id) | Self::Hold(id) => id,
        }
    }
}

pub(crate) type Key = (String, String);

/// Units asked of each (vendor, SKU), sorted by (vendor, SKU), with the product each must
/// belong to.
#[derive(Debug, Default)]
pub(crate) struct Demand {
    pub(crate) vendors: Vec<String>,
    pub(crate) skus: Vec<String>,
    pub(crate) products: Vec<String>,
    pub(crate) quantities: Vec<i64>,
}

/// What `lines` ask of each (vendor, SKU); `Invalid` for lines that do not add up or a
/// SKU named under two products.
pub(crate) fn demand(lines: &[PlannedLine]) -> aggregator_core::Result<Demand> {
    if lines.is_empty() {
        return Err(Error::invalid("items", "must not be empty"));
    }
    let mut by_key: BTreeMap<Key, (i64, &ProductId)> = BTreeMap::new();
    for (index, line) in lines.iter().enumerate() {
        line.check()
            .map_err(|e| e.within(&format!("lines[{index}]")))?;
        for allocation in &line.allocations {
            let key = (allocation.vendor.to_string(), allocation.sku.to_string());
            let entry = by_key.entry(key).or_insert((0, &line.product));
            if entry.1 != &line.product {
                return Err(Error::invalid(
                    format!("lines[{index}].allocations"),
                    format!("{} does not belong to {}", allocation.sku, line.product),
                ));
            }
            entry.0 += allocation.quantity.as_i64();
        }
    }
    let mut demand = Demand::default();
    for ((vendor, sku), (quantity, product)) in by_key {
        demand.vendors.push(vendor);
        demand.skus.push(sku);
        demand.products.push(product.to_string());
        demand.quantities.push(quantity);
    }
    Ok(demand)
}

/// Reserves every planned allocation of fresh vendors or, if any is short, returns
/// `InsufficientStock` naming each short line (the caller rolls back). Returns the lines
/// priced from the catalog; a quoted line charged anything but its quote is
/// `PriceMismatch` (the caller rolls back).
pub(crate) async fn reserve(
    tx: &mut PgConnection,
    lines: &[PlannedLine],
    fresh_since: OffsetDateTime,
) -> TxResult<Vec<OrderLine>> {
    let demand = demand(lines)?;
    if demand.vendors.len() > 1 {
        lock_sorted(tx, &demand.vendors, &demand.skus).await?;
    }
    let taken = sqlx::query!(
        r#"UPDATE vendor_stock s
              SET reserved = s.reserved + d.quantity, version = s.version + 1
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int8[])
                    AS d(vendor_id, sku, product_id, quantity),
                  vendors v
            WHERE s.vendor_id = d.vendor_id AND s.sku = d.sku AND s.product_id = d.product_id
              AND v.id = s.vendor_id AND v.last_good_sync >= $5
              AND s.reported - s.reserved - s.confirmed_not_yet_reported >= d.quantity
        RETURNING s.vendor_id, s.sku, s.price_minor, s.currency"#,
        &demand.vendors,
        &demand.skus,
        &demand.products,
        &demand.quantities,
        fresh_since,
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut prices = HashMap::with_capacity(taken.len());
    for row in taken {
        prices.insert(
            (row.vendor_id, row.sku),
            money(row.price_minor, &row.currency)?,
        );
    }
    if prices.len() != demand.vendors.len() {
        let short = short_lines(tx, lines, &demand, &prices, fresh_since).await?;
        return Err(Error::InsufficientStock { short }.into());
    }
    let mut priced = Vec::with_capacity(lines.len());
    for (index, line) in lines.iter().enumerate() {
        let mut allocations = Vec::with_capacity(line.allocations.len());
        for planned in &line.allocations {
            let key = (planned.vendor.to_string(), planned.sku.to_string());
            let Some(price) = prices.get(&key) else {
                return Err(Error::conflict("a reserved row went missing").into());
            };
            // The price the reserving UPDATE returned, from the row it locks until
            // commit: a quoted line is charged its quote or the transaction rolls back.
            line.check_charge(index, price)?;
            allocations.push(Allocation {
                vendor: planned.vendor.clone(),
                sku: planned.sku.clone(),
                quantity: planned.quantity,
                unit_price: *price,
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

/// The lines that could not be served and what each could have had: the sum of the
/// sellable units (of fresh vendors, for the line's product) on the rows it named, not
/// counting what this transaction took a moment ago.
async fn short_lines(
    tx: &mut PgConnection,
    lines: &[PlannedLine],
    demand: &Demand,
    taken: &HashMap<Key, aggregator_core::domain::Money>,
    fresh_since: OffsetDateTime,
) -> TxResult<Vec<ShortLine>> {
    let rows = sqlx::query!(
        r#"SELECT s.vendor_id AS "vendor_id!", s.sku AS "sku!", s.product_id AS "product_id!",
                  s.reported - s.reserved - s.confirmed_not_yet_reported AS "sellable!",
                  COALESCE((SELECT v.last_good_sync >= $3 FROM vendors v WHERE v.id = s.vendor_id),
                           false) AS "fresh!"
             FROM UNNEST($1::text[], $2::text[]) AS k(vendor_id, sku)
            CROSS JOIN LATERAL (
                  SELECT * FROM vendor_stock s
                   WHERE s.vendor_id = k.vendor_id AND s.sku = k.sku) AS s"#,
        &demand.vendors,
        &demand.skus,
        fresh_since,
    )
    .fetch_all(&mut *tx)
    .await?;
    let own: HashMap<Key, i64> = demand
        .vendors
        .iter()
        .zip(&demand.skus)
        .zip(&demand.quantities)
        .map(|((vendor, sku), quantity)| ((vendor.clone(), sku.clone()), *quantity))
        .collect();
    let usable: HashMap<Key, (i64, String)> = rows
        .into_iter()
        .filter(|row| row.fresh)
        .map(|row| {
            let key = (row.vendor_id, row.sku);
            let mine = if taken.contains_key(&key) {
                own.get(&key).copied().unwrap_or(0)
            } else {
                0
            };
            (key, (row.sellable + mine, row.product_id))
        })
        .collect();
    let short = lines
        .iter()
        .filter(|line| {
            line.allocations
                .iter()
                .any(|a| !taken.contains_key(&(a.vendor.to_string(), a.sku.to_string())))
        })
        .map(|line| {
            let keys: BTreeSet<Key> = line
                .allocations
                .iter()
                .map(|a| (a.vendor.to_string(), a.sku.to_string()))
                .collect();
            let available: i64 = keys
                .iter()
                .filter_map(|key| usable.get(key))
                .filter(|(_, product)| product == line.product.as_str())
                .map(|(sellable, _)| (*sellable).max(0))
                .sum();
            ShortLine {
                item: line.item.clone(),
                requested: line.quantity.get(),
                available: u64::try_from(available).unwrap_or(0),
            }
        })
        .collect();
    Ok(short)
}

/// The units `lines` hold, one entry per (vendor, SKU), as columns for `UNNEST`.
#[derive(Debug, Default)]
pub(crate) struct ReservationColumns {
    pub(crate) vendors: Vec<String>,
    pub(crate) skus: Vec<String>,
    pub(crate) quantities: Vec<i64>,
}

pub(crate) fn reservation_columns(lines: &[OrderLine]) -> ReservationColumns {
    let mut by_key: BTreeMap<Key, i64> = BTreeMap::new();
    for allocation in lines.iter().flat_map(|line| &line.allocations) {
        *by_key
            .entry((allocation.vendor.to_string(), allocation.sku.to_string()))
            .or_default() += allocation.quantity.as_i64();
    }
    let mut columns = ReservationColumns::default();
    for ((vendor, sku), quantity) in by_key {
        columns.vendors.push(vendor);
        columns.skus.push(sku);
        columns.quantities.push(quantity);
    }
    columns
}

/// Writes one reservation row per (vendor, SKU) of `lines` for `owner`.
pub(crate) async fn record(
    tx: &mut PgConnection,
    owner: Owner,
    lines: &[OrderLine],
    expires_at: OffsetDateTime,
) -> sqlx::Result<()> {
    let held = reservation_columns(lines);
    sqlx::query!(
        r#"INSERT INTO reservations (owner_kind, owner_id, vendor_id, sku, quantity, expires_at)
           SELECT $1, $2, r.vendor_id, r.sku, r.quantity, $6
             FROM UNNEST($3::text[], $4::text[], $5::int8[]) AS r(vendor_id, sku, quantity)"#,
        owner.kind(),
        owner.id(),
        &held.vendors,
        &held.skus,
        &held.quantities,
        expires_at,
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Locks (in order) the stock rows `owner` holds reservations on.
async fn lock_held(tx: &mut PgConnection, owner: Owner) -> sqlx::Result<()> {
    sqlx::query!(
        r#"SELECT 1 AS "locked!" FROM vendor_stock s
            WHERE (s.vendor_id, s.sku) IN (
                  SELECT r.vendor_id, r.sku FROM reservations r
                   WHERE r.owner_kind = $1 AND r.owner_id = $2)
            ORDER BY s.vendor_id, s.sku
              FOR UPDATE OF s"#,
        owner.kind(),
        owner.id(),
    )
    .fetch_all(&mut *tx)
    .await?;
    Ok(())
}

/// Gives back every unit `owner` holds, exactly once (the reservation rows go with it).
pub(crate) async fn release(tx: &mut PgConnection, owner: Owner) -> sqlx::Result<()> {
    lock_held(tx, owner).await?;
    sqlx::query!(
        r#"WITH released AS (
               DELETE FROM reservations
                WHERE owner_kind = $1 AND owner_id = $2
            RETURNING vendor_id, sku, quantity)
           UPDATE vendor_stock s
              SET reserved = s.reserved - r.quantity, version = s.version + 1
             FROM released r
            WHERE s.vendor_id = r.vendor_id AND s.sku = r.sku"#,
        owner.kind(),
        owner.id(),
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Hands an order's units to its vendors: out of `reserved` and into
/// `confirmed_not_yet_reported` with a pending-confirmation row, which a later report
/// prunes (see `StockLedger::confirm` in the core for why even a report already later
/// than the confirmation does not count it).
pub(crate) async fn hand_to_vendors(
    tx: &mut PgConnection,
    order: Uuid,
    placements: &[VendorPlacement],
) -> sqlx::Result<()> {
    let owner = Owner::Order(order);
    lock_held(tx, owner).await?;
    let vendors: Vec<String> = placements.iter().map(|p| p.vendor.to_string()).collect();
    let times: Vec<OffsetDateTime> = placements.iter().map(|p| p.confirmed_at).collect();
    sqlx::query!(
        r#"WITH released AS (
               DELETE FROM reservations
                WHERE owner_kind = 'order' AND owner_id = $1 AND vendor_id = ANY($2::text[])
            RETURNING vendor_id, sku, quantity),
           times AS (
               SELECT DISTINCT ON (t.vendor_id) t.vendor_id, t.confirmed_at
                 FROM UNNEST($2::text[], $3::timestamptz[]) AS t(vendor_id, confirmed_at)),
           moved AS (
               SELECT r.vendor_id, r.sku, r.quantity, t.confirmed_at
                 FROM released r
                 JOIN times t ON t.vendor_id = r.vendor_id),
           noted AS (
               INSERT INTO pending_confirmations (vendor_id, sku, order_id, quantity, vendor_confirmed_at)
               SELECT m.vendor_id, m.sku, $1, m.quantity, m.confirmed_at FROM moved m
               RETURNING 1)
           UPDATE vendor_stock s
              SET reserved = s.reserved - m.quantity,
                  confirmed_not_yet_reported = s.confirmed_not_yet_reported + m.quantity,
                  version = s.version + 1
             FROM moved m
            WHERE s.vendor_id = m.vendor_id AND s.sku = m.sku"#,
        order,
        &vendors,
        &times,
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}
