//! Taking and giving back units inside a transaction.
//!
//! Why READ COMMITTED is enough: a reservation first locks the stock rows it names
//! (`SELECT … FOR UPDATE`, in the one lock order of [`crate::locks`], so two multi-line
//! orders cannot deadlock). A locking read returns each row as the last transaction that
//! held its lock committed it, and nobody can change the row until this transaction
//! ends, so the domain decides (`LockedRows` in the core: short lines, quotes, prices)
//! on the current figures, never on a stale read. The write that follows is still a
//! conditional `UPDATE … WHERE reported − reserved − confirmed_not_yet_reported ≥ q`,
//! a safety net the locks make always hold, and the CHECK constraints (`reserved ≥ 0`
//! and friends) stand behind all of it.

use std::collections::BTreeMap;

use aggregator_core::Error;
use aggregator_core::domain::{
    Demand, LockedRow, LockedRows, OrderLine, PlannedLine, ProductId, RowKey, VendorId,
    VendorPlacement, VendorSku,
};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::corrupt;
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

/// Reserves every planned allocation of fresh vendors, or none: locks the rows the
/// lines name (in the one lock order), lets the domain decide on them
/// ([`LockedRows::decide`]: short lines, quotes, prices) and writes what it decided.
/// Returns the priced lines; a refusal is the domain's (the caller rolls back).
///
/// Lines that name one row take a shorter road when the row can give: one conditional
/// `UPDATE` locks and takes it and returns the row as it was, and the domain decides on
/// that. Only when the `UPDATE` refuses does the row get read and decided on as on the
/// long road, so the answer is always the domain's.
///
/// On that shorter road the units are taken before the domain answers: on any error the
/// caller must roll the transaction back (every caller returns the error out of its
/// transaction, which drops it), never go on in it.
pub(crate) async fn reserve(
    tx: &mut PgConnection,
    lines: &[PlannedLine],
    fresh_since: OffsetDateTime,
) -> TxResult<Vec<OrderLine>> {
    let demand = Demand::of(lines)?;
    if let Some(rows) = take_one_row(tx, &demand, fresh_since).await? {
        return Ok(rows.decide(lines, &demand, fresh_since)?);
    }
    let rows = lock_rows(tx, demand.rows().map(|(key, _)| key)).await?;
    let priced = rows.decide(lines, &demand, fresh_since)?;
    let taken: BTreeMap<RowKey, i64> = demand
        .rows()
        .map(|(key, units)| (key.clone(), units))
        .collect();
    reserve_taken(tx, &taken).await?;
    Ok(priced)
}

/// When `demand` names one row: takes its units if the row can give them (product,
/// freshness, sellable units), in one statement, and answers the row as it was before
/// the take. `None` when `demand` names several rows or the row cannot give.
async fn take_one_row(
    tx: &mut PgConnection,
    demand: &Demand,
    fresh_since: OffsetDateTime,
) -> TxResult<Option<LockedRows>> {
    let mut asked = demand.rows();
    let (Some((key, units)), None) = (asked.next(), asked.next()) else {
        return Ok(None);
    };
    let Some(product) = demand.product(key) else {
        return Ok(None);
    };
    let taken = sqlx::query!(
        r#"UPDATE vendor_stock s
              SET reserved = s.reserved + $4, version = s.version + 1
             FROM vendors v
            WHERE s.vendor_id = $1 AND s.sku = $2 AND s.product_id = $3
              AND v.id = s.vendor_id AND v.last_good_sync >= $5
              AND s.reported - s.reserved - s.confirmed_not_yet_reported >= $4
        RETURNING s.product_id, s.price_minor, s.currency,
                  s.reported - s.reserved - s.confirmed_not_yet_reported + $4 AS "sellable!",
                  v.last_good_sync"#,
        key.0.as_str(),
        key.1.as_str(),
        product.as_str(),
        units,
        fresh_since,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = taken else {
        return Ok(None);
    };
    let mut rows = LockedRows::new();
    rows.insert(
        key.clone(),
        LockedRow {
            product: ProductId::new(row.product_id).map_err(|e| corrupt("product id", e))?,
            sellable: row.sellable,
            price: money(row.price_minor, &row.currency)?,
            last_good_sync: row.last_good_sync,
        },
    );
    Ok(Some(rows))
}

/// Locks the stock rows `keys` name, in (vendor, SKU) order (see [`crate::locks`]), and
/// reads each as a reservation decides on it; a key without a row is left out.
pub(crate) async fn lock_rows<'k>(
    tx: &mut PgConnection,
    keys: impl Iterator<Item = &'k RowKey>,
) -> TxResult<LockedRows> {
    let (vendors, skus): (Vec<&str>, Vec<&str>) = keys
        .map(|(vendor, sku)| (vendor.as_str(), sku.as_str()))
        .unzip();
    let locked = sqlx::query!(
        // One primary-key lookup per key, locked in key order. (A join against the
        // array let the generic plan look rows up by vendor alone and filter by SKU:
        // 20x slower once a vendor has thousands of rows.)
        r#"SELECT s.vendor_id AS "vendor_id!", s.sku AS "sku!", s.product_id AS "product_id!",
                  s.price_minor AS "price_minor!", s.currency AS "currency!",
                  s.reported - s.reserved - s.confirmed_not_yet_reported AS "sellable!",
                  (SELECT v.last_good_sync FROM vendors v WHERE v.id = s.vendor_id) AS last_good_sync
             FROM (SELECT * FROM UNNEST($1::text[], $2::text[]) AS u(vendor_id, sku)
                    ORDER BY vendor_id, sku) AS k
            CROSS JOIN LATERAL (
                  SELECT * FROM vendor_stock s
                   WHERE s.vendor_id = k.vendor_id AND s.sku = k.sku
                     FOR UPDATE) AS s"#,
        &vendors as &[&str],
        &skus as &[&str],
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut rows = LockedRows::new();
    for row in locked {
        let key = (
            VendorId::new(row.vendor_id).map_err(|e| corrupt("vendor id", e))?,
            VendorSku::new(row.sku).map_err(|e| corrupt("sku", e))?,
        );
        rows.insert(
            key,
            LockedRow {
                product: ProductId::new(row.product_id).map_err(|e| corrupt("product id", e))?,
                sellable: row.sellable,
                price: money(row.price_minor, &row.currency)?,
                last_good_sync: row.last_good_sync,
            },
        );
    }
    Ok(rows)
}

/// Adds what was decided to each row's `reserved`, on the condition that the row can
/// still give it: a safety net under the domain's decision, which the row locks make
/// always hold; if one row refuses, the transaction fails rather than oversell.
pub(crate) async fn reserve_taken(
    tx: &mut PgConnection,
    taken: &BTreeMap<RowKey, i64>,
) -> TxResult<()> {
    let vendors: Vec<&str> = taken.keys().map(|(v, _)| v.as_str()).collect();
    let skus: Vec<&str> = taken.keys().map(|(_, s)| s.as_str()).collect();
    let quantities: Vec<i64> = taken.values().copied().collect();
    let updated = sqlx::query!(
        r#"UPDATE vendor_stock s
              SET reserved = s.reserved + d.quantity, version = s.version + 1
             FROM UNNEST($1::text[], $2::text[], $3::int8[]) AS d(vendor_id, sku, quantity)
            WHERE s.vendor_id = d.vendor_id AND s.sku = d.sku
              AND s.reported - s.reserved - s.confirmed_not_yet_reported >= d.quantity"#,
        &vendors as &[&str],
        &skus as &[&str],
        &quantities,
    )
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() != taken.len() as u64 {
        // Cannot happen while the rows are locked; refuse rather than oversell.
        return Err(
            Error::transient("postgres", "stock changed under a reservation's locks").into(),
        );
    }
    Ok(())
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
