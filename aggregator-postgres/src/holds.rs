//! Explicit stock holds.

use aggregator_core::domain::{Hold, HoldId, HoldStatus, Order, OrderLine};
use aggregator_core::traits::HoldStore;
use aggregator_core::traits::{HoldConversion, HoldPlacement, Placed};
use aggregator_core::{Error, Result};
use async_trait::async_trait;
use sqlx::PgConnection;
use sqlx::types::Json;
use time::OffsetDateTime;

use crate::error::map;
use crate::orders::insert_order;
use crate::outbox::write_outbox;
use crate::reserve::{Owner, record, release, reserve};
use crate::rows::HoldRow;
use crate::store::PostgresStockStore;
use crate::tx::{TxResult, retrying};

async fn fetch_hold(
    conn: &mut PgConnection,
    id: HoldId,
    lock: bool,
) -> sqlx::Result<Option<HoldRow>> {
    if lock {
        sqlx::query_as!(
            HoldRow,
            r#"SELECT id, customer_id, status, created_at, expires_at, order_id, lines AS "lines: Json<Vec<OrderLine>>"
                 FROM holds WHERE id = $1 FOR UPDATE"#,
            id.as_uuid()
        )
        .fetch_optional(&mut *conn)
        .await
    } else {
        sqlx::query_as!(
            HoldRow,
            r#"SELECT id, customer_id, status, created_at, expires_at, order_id, lines AS "lines: Json<Vec<OrderLine>>"
                 FROM holds WHERE id = $1"#,
            id.as_uuid()
        )
        .fetch_optional(&mut *conn)
        .await
    }
}

/// Refuses a hold that is not active or has run out at `at`.
fn check_active(hold: &Hold, at: OffsetDateTime) -> Result<()> {
    if hold.status != HoldStatus::Active {
        return Err(Error::conflict(format!(
            "hold {} is {}",
            hold.id,
            hold.status.as_str()
        )));
    }
    if hold.expires_at <= at {
        return Err(Error::conflict(format!("hold {} has run out", hold.id)));
    }
    Ok(())
}

#[async_trait]
impl HoldStore for PostgresStockStore {
    async fn place_hold(&self, placement: HoldPlacement) -> Result<Hold> {
        let pool = &self.pool;
        if placement.expires_at <= placement.at {
            return Err(Error::invalid("ttl", "must be positive"));
        }
        retrying(|| async {
            let mut tx = pool.begin().await?;
            // One customer's hold placements take turns, so the count below stays true
            // until this one commits.
            // (The count is a statement of its own: it must read after the turn is ours.)
            sqlx::query!(
                r#"SELECT pg_advisory_xact_lock(hashtextextended('hold:' || $1, 0)) AS "turn!: ()""#,
                placement.customer.as_str(),
            )
            .fetch_one(&mut *tx)
            .await?;
            let held = sqlx::query!(
                r#"SELECT count(DISTINCT h.id) AS "active!", COALESCE(sum(r.quantity), 0)::int8 AS "units!"
                     FROM holds h
                     LEFT JOIN reservations r ON r.owner_kind = 'hold' AND r.owner_id = h.id
                    WHERE h.customer_id = $1 AND h.status = 'active'"#,
                placement.customer.as_str(),
            )
            .fetch_one(&mut *tx)
            .await?;
            placement.check_limits(
                u64::try_from(held.active).unwrap_or(0),
                u64::try_from(held.units).unwrap_or(0),
            )?;
            let lines = reserve(&mut tx, &placement.lines, placement.fresh_since).await?;
            let hold = Hold {
                id: placement.id,
                customer: placement.customer.clone(),
                lines,
                status: HoldStatus::Active,
                created_at: placement.at,
                expires_at: placement.expires_at,
                order: None,
            };
            sqlx::query!(
                r#"INSERT INTO holds (id, customer_id, status, created_at, expires_at, order_id, lines)
                   VALUES ($1, $2, $3, $4, $5, NULL, $6)"#,
                hold.id.as_uuid(),
                hold.customer.as_str(),
                hold.status.as_str(),
                hold.created_at,
                hold.expires_at,
                Json(&hold.lines) as _,
            )
            .execute(&mut *tx)
            .await?;
            record(
                &mut tx,
                Owner::Hold(hold.id.as_uuid()),
                &hold.lines,
                hold.expires_at,
            )
            .await?;
            tx.commit().await?;
            TxResult::Ok(hold)
        })
        .await
    }

    async fn hold(&self, id: HoldId) -> Result<Hold> {
        let pool = &self.pool;
        let mut conn = pool.acquire().await.map_err(map)?;
        fetch_hold(&mut conn, id, false)
            .await
            .map_err(map)?
            .ok_or_else(|| Error::not_found("hold", id))?
            .into_hold()
    }

    async fn extend_hold(
        &self,
        id: HoldId,
        expires_at: OffsetDateTime,
        at: OffsetDateTime,
    ) -> Result<Hold> {
        let pool = &self.pool;
        retrying(|| async {
            let mut tx = pool.begin().await?;
            let Some(row) = fetch_hold(&mut tx, id, true).await? else {
                return Err(Error::not_found("hold", id).into());
            };
            let mut hold = row.into_hold()?;
            check_active(&hold, at)?;
            if expires_at <= at {
                return Err(Error::invalid("ttl", "must be positive").into());
            }
            sqlx::query!(
                "UPDATE holds SET expires_at = $2 WHERE id = $1",
                id.as_uuid(),
                expires_at
            )
            .execute(&mut *tx)
            .await?;
            sqlx::query!(
                "UPDATE reservations SET expires_at = $2 WHERE owner_kind = 'hold' AND owner_id = $1",
                id.as_uuid(),
                expires_at
            )
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            hold.expires_at = expires_at;
            TxResult::Ok(hold)
        })
        .await
    }

    async fn release_hold(&self, id: HoldId, _at: OffsetDateTime) -> Result<Hold> {
        let pool = &self.pool;
        retrying(|| async {
            let mut tx = pool.begin().await?;
            let Some(row) = fetch_hold(&mut tx, id, true).await? else {
                return Err(Error::not_found("hold", id).into());
            };
            let mut hold = row.into_hold()?;
            match hold.status {
                HoldStatus::Released | HoldStatus::Expired => return Ok(hold),
                HoldStatus::Converted => {
                    return Err(Error::conflict(format!(
                        "hold {id} was turned into an order; cancel the order instead"
                    ))
                    .into());
                }
                HoldStatus::Active => {}
            }
            sqlx::query!(
                "UPDATE holds SET status = 'released' WHERE id = $1",
                id.as_uuid()
            )
            .execute(&mut *tx)
            .await?;
            release(&mut tx, Owner::Hold(id.as_uuid())).await?;
            tx.commit().await?;
            hold.status = HoldStatus::Released;
            TxResult::Ok(hold)
        })
        .await
    }

    async fn convert_hold(&self, conversion: HoldConversion) -> Result<Placed> {
        let pool = &self.pool;
        conversion.details.validate()?;
        retrying(|| async {
            let mut tx = pool.begin().await?;
            let Some(row) = fetch_hold(&mut tx, conversion.hold, true).await? else {
                return Err(Error::not_found("hold", conversion.hold).into());
            };
            let hold = row.into_hold()?;
            check_active(&hold, conversion.at)?;
            if hold.customer != conversion.details.customer {
                return Err(Error::not_found("hold", hold.id).into());
            }
            let mut order = Order::new_reserved(
                conversion.order,
                conversion.details.clone(),
                hold.lines.clone(),
                conversion.at,
                conversion.reserved_until,
                Some(hold.id),
                "placed from hold: stock reserved",
            );
            order.number = u64::try_from(insert_order(&mut tx, &order).await?).ok();
            sqlx::query!(
                "UPDATE holds SET status = 'converted', order_id = $2 WHERE id = $1",
                hold.id.as_uuid(),
                order.id.as_uuid()
            )
            .execute(&mut *tx)
            .await?;
            sqlx::query!(
                r#"UPDATE reservations SET owner_kind = 'order', owner_id = $2, expires_at = $3
                    WHERE owner_kind = 'hold' AND owner_id = $1"#,
                hold.id.as_uuid(),
                order.id.as_uuid(),
                order.reserved_until,
            )
            .execute(&mut *tx)
            .await?;
            write_outbox(&mut tx, &conversion.outbox).await?;
            tx.commit().await?;
            TxResult::Ok(Placed {
                order,
                replayed: false,
            })
        })
        .await
    }
}
