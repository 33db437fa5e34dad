//! Vendors, stock snapshots and stock reads.

use aggregator_core::domain::{
    HealthPolicy, ProductId, SnapshotOutcome, SnapshotRow, Vendor, VendorId, VendorSku, VendorStock,
};
use aggregator_core::traits::Page;
use aggregator_core::traits::{CatalogReads, VendorLedger};
use aggregator_core::{Error, Result};
use async_trait::async_trait;
use sqlx::{PgConnection, PgPool};
use time::{Duration, OffsetDateTime};

use crate::error::map;
use crate::rows::{StockRow, VendorRow};
use crate::store::PostgresStockStore;
use crate::tx::{TxResult, retrying};

async fn vendor_exists(pool: &PgPool, vendor: &VendorId) -> Result<()> {
    let exists = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM vendors WHERE id = $1) AS "exists!""#,
        vendor.as_str()
    )
    .fetch_one(pool)
    .await
    .map_err(map)?;
    if exists {
        Ok(())
    } else {
        Err(Error::not_found("vendor", vendor))
    }
}

/// The columns of a snapshot page, sorted by SKU (the order rows are written and
/// locked in).
#[derive(Debug, Default)]
struct PageColumns {
    skus: Vec<String>,
    products: Vec<String>,
    quantities: Vec<i64>,
    as_ofs: Vec<OffsetDateTime>,
    prices: Vec<i64>,
    currencies: Vec<String>,
}

fn columns(rows: &[SnapshotRow]) -> Result<PageColumns> {
    let mut sorted: Vec<&SnapshotRow> = rows.iter().collect();
    sorted.sort_by(|a, b| a.sku.cmp(&b.sku));
    let mut columns = PageColumns::default();
    for (index, row) in sorted.iter().enumerate() {
        row.validate()?;
        if index > 0 && sorted[index - 1].sku == row.sku {
            return Err(Error::invalid(
                format!("stock[{}]", row.sku),
                "listed twice in one snapshot page",
            ));
        }
        columns.skus.push(row.sku.to_string());
        columns.products.push(row.product.to_string());
        columns.quantities.push(row.quantity);
        columns.as_ofs.push(row.as_of);
        columns.prices.push(row.price.minor_units());
        columns.currencies.push(row.price.currency().to_string());
    }
    Ok(columns)
}

/// Drops the pending confirmations that reports at `as_ofs` now include (those the
/// report is later than by more than `margin`, as `aggregator_core::domain::covers`
/// says) and recounts `confirmed_not_yet_reported` for those SKUs.
async fn prune_confirmations(
    tx: &mut PgConnection,
    vendor: &VendorId,
    skus: &[String],
    as_ofs: &[OffsetDateTime],
    margin: Duration,
) -> sqlx::Result<()> {
    if skus.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        r#"DELETE FROM pending_confirmations p
            USING UNNEST($2::text[], $3::timestamptz[]) AS a(sku, as_of)
            WHERE p.vendor_id = $1 AND p.sku = a.sku
              AND a.as_of > p.vendor_confirmed_at + $4::float8 * interval '1 second'"#,
        vendor.as_str(),
        skus,
        as_ofs,
        margin.as_seconds_f64(),
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        r#"UPDATE vendor_stock s
              SET confirmed_not_yet_reported = COALESCE(
                      (SELECT sum(p.quantity) FROM pending_confirmations p
                        WHERE p.vendor_id = s.vendor_id AND p.sku = s.sku), 0)::int8
                    + COALESCE(
                      (SELECT sum(c.quantity) FROM cancelling_units c
                        WHERE c.vendor_id = s.vendor_id AND c.sku = s.sku), 0)::int8
            WHERE s.vendor_id = $1 AND s.sku = ANY($2::text[])"#,
        vendor.as_str(),
        skus,
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

#[async_trait]
impl VendorLedger for PostgresStockStore {
    async fn upsert_vendor(&self, vendor: &Vendor) -> Result<()> {
        let pool = &self.pool;
        sqlx::query!(
            r#"INSERT INTO vendors (id, name, base_url, priority, health, last_good_sync, consecutive_failures, last_error)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
               ON CONFLICT (id) DO UPDATE
                  SET name = EXCLUDED.name, base_url = EXCLUDED.base_url, priority = EXCLUDED.priority"#,
            vendor.id.as_str(),
            vendor.name,
            vendor.base_url,
            i32::from(vendor.priority),
            vendor.health.as_str(),
            vendor.last_good_sync,
            i32::try_from(vendor.consecutive_failures).unwrap_or(i32::MAX),
            vendor.last_error,
        )
        .execute(pool)
        .await
        .map_err(map)?;
        Ok(())
    }

    async fn apply_snapshot(
        &self,
        vendor: &VendorId,
        rows: &[SnapshotRow],
        margin: Duration,
    ) -> Result<SnapshotOutcome> {
        let pool = &self.pool;
        let page = columns(rows)?;
        vendor_exists(pool, vendor).await?;
        if rows.is_empty() {
            return Ok(SnapshotOutcome::default());
        }
        retrying(|| async {
            let mut tx = pool.begin().await?;
            // A page is vendor data we can fetch again, so its commit need not wait for the
            // disk; the durable commit of `complete_snapshot` flushes every page before it.
            // Rows the store already holds are updated through a merge join over the
            // (vendor, SKU) key: rows are locked in the order placements lock them in (so
            // the two cannot deadlock), and a chunk of thousands of rows walks the index
            // once instead of probing it row by row.
            sqlx::query!(
                "SELECT set_config('synchronous_commit', 'off', true) AS commit_mode,
                        set_config('enable_hashjoin', 'off', true) AS hash_joins,
                        set_config('enable_nestloop', 'off', true) AS nested_loops"
            )
            .fetch_one(&mut *tx)
            .await?;
            let updated = sqlx::query!(
                r#"WITH r AS (
                       SELECT * FROM UNNEST($2::text[], $3::text[], $4::int8[], $5::timestamptz[], $6::int8[], $7::text[])
                           AS r(sku, product_id, quantity, as_of, price_minor, currency)),
                   written AS (
                       UPDATE vendor_stock s
                          SET product_id = r.product_id,
                              reported = r.quantity,
                              as_of = r.as_of,
                              price_minor = r.price_minor,
                              currency = r.currency,
                              version = s.version + 1
                         FROM r
                        WHERE s.vendor_id = $1 AND s.sku = r.sku AND s.as_of <= r.as_of
                          AND s.sku >= (SELECT min(sku) FROM r) AND s.sku <= (SELECT max(sku) FROM r)
                    RETURNING s.sku, s.as_of, s.confirmed_not_yet_reported)
                   SELECT count(*) AS "applied!",
                          COALESCE(array_agg(sku) FILTER (WHERE confirmed_not_yet_reported > 0), '{}') AS "skus!",
                          COALESCE(array_agg(as_of) FILTER (WHERE confirmed_not_yet_reported > 0), '{}') AS "as_ofs!"
                     FROM written"#,
                vendor.as_str(),
                &page.skus,
                &page.products,
                &page.quantities,
                &page.as_ofs,
                &page.prices,
                &page.currencies,
            )
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query!(
                "SELECT set_config('enable_hashjoin', 'on', true) AS hash_joins,
                        set_config('enable_nestloop', 'on', true) AS nested_loops"
            )
            .fetch_one(&mut *tx)
            .await?;
            let mut applied = usize::try_from(updated.applied).unwrap_or(0);
            let (mut skus, mut as_ofs): (Vec<String>, Vec<OffsetDateTime>) =
                (updated.skus, updated.as_ofs);
            // The rest are new SKUs or rows the store holds a later report of (those the
            // conflict clause leaves alone).
            if applied < rows.len() {
                let inserted = sqlx::query!(
                    r#"WITH written AS (
                           INSERT INTO vendor_stock (vendor_id, sku, product_id, reported, as_of, price_minor, currency)
                           SELECT $1, r.sku, r.product_id, r.quantity, r.as_of, r.price_minor, r.currency
                             FROM UNNEST($2::text[], $3::text[], $4::int8[], $5::timestamptz[], $6::int8[], $7::text[])
                                  AS r(sku, product_id, quantity, as_of, price_minor, currency)
                            WHERE NOT EXISTS (SELECT 1 FROM vendor_stock s WHERE s.vendor_id = $1 AND s.sku = r.sku)
                            ORDER BY r.sku
                           ON CONFLICT (vendor_id, sku) DO UPDATE
                              SET product_id = EXCLUDED.product_id,
                                  reported = EXCLUDED.reported,
                                  as_of = EXCLUDED.as_of,
                                  price_minor = EXCLUDED.price_minor,
                                  currency = EXCLUDED.currency,
                                  version = vendor_stock.version + 1
                            WHERE vendor_stock.as_of <= EXCLUDED.as_of
                        RETURNING sku, as_of, confirmed_not_yet_reported)
                       SELECT count(*) AS "applied!",
                              COALESCE(array_agg(sku) FILTER (WHERE confirmed_not_yet_reported > 0), '{}') AS "skus!",
                              COALESCE(array_agg(as_of) FILTER (WHERE confirmed_not_yet_reported > 0), '{}') AS "as_ofs!"
                         FROM written"#,
                    vendor.as_str(),
                    &page.skus,
                    &page.products,
                    &page.quantities,
                    &page.as_ofs,
                    &page.prices,
                    &page.currencies,
                )
                .fetch_one(&mut *tx)
                .await?;
                applied += usize::try_from(inserted.applied).unwrap_or(0);
                skus.extend(inserted.skus);
                as_ofs.extend(inserted.as_ofs);
            }
            let outcome = SnapshotOutcome {
                applied,
                ignored_older: rows.len().saturating_sub(applied),
            };
            prune_confirmations(&mut tx, vendor, &skus, &as_ofs, margin).await?;
            tx.commit().await?;
            Ok(outcome)
        })
        .await
    }

    async fn complete_snapshot(
        &self,
        vendor: &VendorId,
        listed: &[VendorSku],
        as_of: OffsetDateTime,
        at: OffsetDateTime,
        margin: Duration,
    ) -> Result<Vendor> {
        let pool = &self.pool;
        vendor_exists(pool, vendor).await?;
        let listed: Vec<&str> = listed.iter().map(VendorSku::as_str).collect();
        retrying(|| async {
            let mut tx = pool.begin().await?;
            let gone = sqlx::query!(
                r#"WITH gone AS (
                       SELECT s.vendor_id, s.sku FROM vendor_stock s
                        WHERE s.vendor_id = $1 AND s.as_of < $2
                          AND NOT EXISTS (SELECT 1 FROM UNNEST($3::text[]) AS l(sku) WHERE l.sku = s.sku)
                        ORDER BY s.sku
                          FOR UPDATE)
                   UPDATE vendor_stock s SET reported = 0, as_of = $2, version = s.version + 1
                     FROM gone g
                    WHERE s.vendor_id = g.vendor_id AND s.sku = g.sku
                RETURNING s.sku, s.confirmed_not_yet_reported"#,
                vendor.as_str(),
                as_of,
                &listed as &[&str],
            )
            .fetch_all(&mut *tx)
            .await?;
            let skus: Vec<String> = gone
                .into_iter()
                .filter(|row| row.confirmed_not_yet_reported > 0)
                .map(|row| row.sku)
                .collect();
            let as_ofs = vec![as_of; skus.len()];
            prune_confirmations(&mut tx, vendor, &skus, &as_ofs, margin).await?;
            let row = sqlx::query_as!(
                VendorRow,
                r#"UPDATE vendors
                      SET health = 'healthy', consecutive_failures = 0, last_error = NULL,
                          last_good_sync = GREATEST(COALESCE(last_good_sync, $2), $2)
                    WHERE id = $1
                RETURNING id, name, base_url, priority, health, last_good_sync, consecutive_failures, last_error"#,
                vendor.as_str(),
                at,
            )
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                return TxResult::Err(Error::not_found("vendor", vendor).into());
            };
            tx.commit().await?;
            Ok(row.into_vendor()?)
        })
        .await
    }

    async fn record_sync_failure(
        &self,
        vendor: &VendorId,
        reason: &str,
        policy: HealthPolicy,
    ) -> Result<Vendor> {
        let pool = &self.pool;
        let row = sqlx::query_as!(
            VendorRow,
            r#"UPDATE vendors
                  SET consecutive_failures = consecutive_failures + 1,
                      health = CASE WHEN consecutive_failures + 1 >= $3 THEN 'down' ELSE 'degraded' END,
                      last_error = $2
                WHERE id = $1
            RETURNING id, name, base_url, priority, health, last_good_sync, consecutive_failures, last_error"#,
            vendor.as_str(),
            reason,
            i32::try_from(policy.down_after_failures).unwrap_or(i32::MAX),
        )
        .fetch_optional(pool)
        .await
        .map_err(map)?;
        row.ok_or_else(|| Error::not_found("vendor", vendor))?
            .into_vendor()
    }
}

#[async_trait]
impl CatalogReads for PostgresStockStore {
    async fn vendors(&self) -> Result<Vec<Vendor>> {
        reads::vendors(&self.pool).await
    }

    async fn stock_for_product(&self, product: &ProductId) -> Result<Vec<VendorStock>> {
        reads::stock_for_product(&self.pool, product).await
    }

    async fn stock_for_sku(&self, sku: &VendorSku) -> Result<Vec<VendorStock>> {
        reads::stock_for_sku(&self.pool, sku).await
    }

    async fn products(&self, offset: u64, limit: u32) -> Result<Page<ProductId>> {
        reads::products(&self.pool, offset, limit).await
    }
}

/// The catalog's reads on any pool: the primary's, or a read replica's.
pub(crate) mod reads {
    use super::*;

    /// Every vendor, by id.
    pub(crate) async fn vendors(pool: &PgPool) -> Result<Vec<Vendor>> {
        sqlx::query_as!(
            VendorRow,
            r#"SELECT id, name, base_url, priority, health, last_good_sync, consecutive_failures, last_error
                 FROM vendors ORDER BY id"#
        )
        .fetch_all(pool)
        .await
        .map_err(map)?
        .into_iter()
        .map(VendorRow::into_vendor)
        .collect()
    }

    /// Every stock row of `product`.
    pub(crate) async fn stock_for_product(
        pool: &PgPool,
        product: &ProductId,
    ) -> Result<Vec<VendorStock>> {
        sqlx::query_as!(
            StockRow,
            r#"SELECT vendor_id, sku, product_id, reported, reserved, confirmed_not_yet_reported,
                      as_of, price_minor, currency, version
                 FROM vendor_stock WHERE product_id = $1 ORDER BY vendor_id, sku"#,
            product.as_str()
        )
        .fetch_all(pool)
        .await
        .map_err(map)?
        .into_iter()
        .map(StockRow::into_stock)
        .collect()
    }

    /// Every stock row of `sku`.
    pub(crate) async fn stock_for_sku(pool: &PgPool, sku: &VendorSku) -> Result<Vec<VendorStock>> {
        sqlx::query_as!(
            StockRow,
            r#"SELECT vendor_id, sku, product_id, reported, reserved, confirmed_not_yet_reported,
                      as_of, price_minor, currency, version
                 FROM vendor_stock WHERE sku = $1 ORDER BY vendor_id"#,
            sku.as_str()
        )
        .fetch_all(pool)
        .await
        .map_err(map)?
        .into_iter()
        .map(StockRow::into_stock)
        .collect()
    }

    /// A page of product ids.
    pub(crate) async fn products(
        pool: &PgPool,
        offset: u64,
        limit: u32,
    ) -> Result<Page<ProductId>> {
        let ids = sqlx::query_scalar!(
            r#"SELECT DISTINCT product_id AS "product_id!" FROM vendor_stock
                ORDER BY 1 LIMIT $1 OFFSET $2"#,
            i64::from(limit),
            i64::try_from(offset).unwrap_or(i64::MAX),
        )
        .fetch_all(pool)
        .await
        .map_err(map)?;
        let total = sqlx::query_scalar!(
            r#"SELECT count(DISTINCT product_id) AS "count!" FROM vendor_stock"#
        )
        .fetch_one(pool)
        .await
        .map_err(map)?;
        let items = ids
            .into_iter()
            .map(|id| ProductId::new(id).map_err(|e| crate::error::corrupt("product id", e)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Page {
            items,
            total: u64::try_from(total).unwrap_or(0),
        })
    }
}
