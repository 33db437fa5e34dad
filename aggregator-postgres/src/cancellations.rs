//! Pending cancellations at vendors: written with every change that kills vendor keys,
//! deleted when the vendor confirms, queued again by the sweeper when their message may
//! have died.

use aggregator_core::Result;
use aggregator_core::domain::{OrderId, OutboxMessage, VendorId, VendorKey};
use aggregator_core::traits::CancellationBacklog;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::map;
use crate::outbox::write_outbox;
use crate::tx::{TxResult, retrying};

/// Keeps each of `dead` (keys of `order` killed at `at`) pending until its vendor
/// confirms the cancellation; in the caller's transaction.
pub(crate) async fn note_pending(
    tx: &mut PgConnection,
    order: Uuid,
    dead: &[VendorKey],
    at: OffsetDateTime,
) -> sqlx::Result<()> {
    let pending: Vec<(Uuid, &VendorKey, OffsetDateTime)> =
        dead.iter().map(|key| (order, key, at)).collect();
    note_pending_many(tx, &pending).await
}

/// [`note_pending`] for keys of several orders, each with its own time.
pub(crate) async fn note_pending_many(
    tx: &mut PgConnection,
    pending: &[(Uuid, &VendorKey, OffsetDateTime)],
) -> sqlx::Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let orders: Vec<Uuid> = pending.iter().map(|(order, _, _)| *order).collect();
    let vendors: Vec<&str> = pending
        .iter()
        .map(|(_, key, _)| key.vendor.as_str())
        .collect();
    let keys: Vec<&str> = pending.iter().map(|(_, key, _)| key.key.as_str()).collect();
    let times: Vec<OffsetDateTime> = pending.iter().map(|(_, _, at)| *at).collect();
    sqlx::query!(
        r#"INSERT INTO pending_vendor_cancellations
                  (vendor_id, idempotency_key, order_id, killed_at, queued_at)
           SELECT p.vendor_id, p.key, p.order_id, p.at, p.at
             FROM UNNEST($1::text[], $2::text[], $3::uuid[], $4::timestamptz[])
                  AS p(vendor_id, key, order_id, at)
           ON CONFLICT DO NOTHING"#,
        &vendors as &[&str],
        &keys as &[&str],
        &orders,
        &times,
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The cancellation of `key` at `vendor` is done; in the caller's transaction.
pub(crate) async fn forget(
    tx: &mut PgConnection,
    vendor: &VendorId,
    key: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "DELETE FROM pending_vendor_cancellations WHERE vendor_id = $1 AND idempotency_key = $2",
        vendor.as_str(),
        key,
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// See `OrderStore::requeue_cancellations`: rows another sweeper is queueing are
/// skipped, not waited for.
pub(crate) async fn requeue(
    pool: &PgPool,
    queued_before: OffsetDateTime,
    now: OffsetDateTime,
    limit: u32,
) -> Result<u32> {
    retrying(|| async {
        let mut tx = pool.begin().await?;
        let due = sqlx::query!(
            r#"WITH due AS (
                   SELECT vendor_id, idempotency_key FROM pending_vendor_cancellations
                    WHERE queued_at <= $1
                    ORDER BY queued_at
                    LIMIT $3
                      FOR UPDATE SKIP LOCKED)
               UPDATE pending_vendor_cancellations p
                  SET queued_at = $2
                 FROM due d
                WHERE p.vendor_id = d.vendor_id AND p.idempotency_key = d.idempotency_key
            RETURNING p.vendor_id, p.idempotency_key, p.order_id, p.killed_at"#,
            queued_before,
            now,
            i64::from(limit),
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut messages = Vec::with_capacity(due.len());
        for row in &due {
            let dead = VendorKey {
                vendor: VendorId::new(row.vendor_id.as_str())?,
                key: row.idempotency_key.clone(),
            };
            messages.push(OutboxMessage::vendor_cancellation(
                OrderId::from_uuid(row.order_id),
                &dead,
                row.killed_at,
                now,
            )?);
        }
        write_outbox(&mut tx, &messages).await?;
        tx.commit().await?;
        TxResult::Ok(u32::try_from(due.len()).unwrap_or(u32::MAX))
    })
    .await
}

/// See `OrderStore::cancellation_backlog`.
pub(crate) async fn backlog(pool: &PgPool) -> Result<CancellationBacklog> {
    let row = sqlx::query!(
        r#"SELECT count(*) AS "pending!", min(killed_at) AS oldest
             FROM pending_vendor_cancellations"#
    )
    .fetch_one(pool)
    .await
    .map_err(map)?;
    Ok(CancellationBacklog {
        pending: u64::try_from(row.pending).unwrap_or(0),
        oldest_killed_at: row.oldest,
    })
}
