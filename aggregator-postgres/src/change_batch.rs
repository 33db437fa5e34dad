//! Applying a batch of order status changes in one transaction (group commit of the
//! worker's confirmations and failures, cancellations and expiries).
//!
//! The batch locks the orders it changes (in id order) and the stock rows they hold
//! (in (vendor, SKU) order), the lock order of [`crate::locks`], so batches, single
//! changes, re-routes and placements never deadlock.
//! It then decides each change as a single one would, in the order given: the
//! compare-and-set on the version (against the order as the batch left it, so a
//! second change of one order sees the first), the status rules. A refused change is
//! answered alone and writes nothing. What the accepted ones do is written set-based:
//! one `UPDATE` of the orders, one move of confirmed units to the vendors, one release
//! of the units of ended orders, one hold of the units under the keys they killed, one
//! insert of their outbox messages; then one commit. If the engine refuses the batch
//! (a constraint), each change is tried alone.

use std::collections::BTreeMap;

use aggregator_core::domain::{Order, OrderId, OutboxMessage, StatusChange, Transition, VendorKey};
use aggregator_core::traits::OrderCommits;
use aggregator_core::{Error, Result};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::cancellations::note_pending_many;
use crate::locks::lock_orders;
use crate::outbox::write_outbox;
use crate::rows::json_text as json;
use crate::store::PostgresStockStore;
use crate::tx::{TxResult, retrying};

type Change = (Transition, Vec<OutboxMessage>);

/// Applies `changes` as [`OrderCommits::transition`] would one after another, with one
/// commit for all that apply.
pub(crate) async fn change_batch(
    store: &PostgresStockStore,
    changes: Vec<Change>,
) -> Vec<Result<Order>> {
    match retrying(|| commit_changes(store, &changes)).await {
        Ok(answers) => answers,
        // The engine is away: every change gets the same answer.
        Err(error) if error.is_retryable() => changes.iter().map(|_| Err(error.clone())).collect(),
        // One change broke a rule the engine checks (a constraint): find which alone.
        Err(_) => {
            let mut answers = Vec::with_capacity(changes.len());
            for (transition, outbox) in &changes {
                answers.push(store.transition(transition, outbox).await);
            }
            answers
        }
    }
}

/// The stock moves and messages the accepted changes of a batch call for.
#[derive(Default)]
struct Moves {
    /// (order, vendor, when the vendor confirmed): its units there go to the vendor.
    confirmed: Vec<(Uuid, String, OffsetDateTime)>,
    /// Orders that stop holding stock: their reservations are released.
    released: Vec<Uuid>,
    /// (vendor, SKU, dead key, order, units) held until the vendor cancels the key.
    held: Vec<(String, String, String, Uuid, i64)>,
    /// (order, dead key, when it died): pending until its vendor confirms.
    killed: Vec<(Uuid, VendorKey, OffsetDateTime)>,
    messages: Vec<OutboxMessage>,
}

async fn commit_changes(
    store: &PostgresStockStore,
    changes: &[Change],
) -> TxResult<Vec<Result<Order>>> {
    let mut ids: Vec<Uuid> = changes.iter().map(|(t, _)| t.order.as_uuid()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut tx = store.pool.begin().await?;
    let mut current = lock_orders(&mut tx, &ids).await?;
    lock_held_by(&mut tx, &ids).await?;
    let mut answers = Vec::with_capacity(changes.len());
    let mut moves = Moves::default();
    let mut changed: BTreeMap<OrderId, Order> = BTreeMap::new();
    for (transition, outbox) in changes {
        let Some(before) = current.get(&transition.order) else {
            answers.push(Err(Error::not_found("order", transition.order)));
            continue;
        };
        let mut next = before.clone();
        let dead = match next.apply(transition) {
            Ok(dead) => dead,
            Err(refused) => {
                answers.push(Err(refused));
                continue;
            }
        };
        let cancellations = match OutboxMessage::vendor_cancellations(next.id, &dead, transition.at)
        {
            Ok(messages) => messages,
            Err(error) => {
                answers.push(Err(error));
                continue;
            }
        };
        let id = next.id.as_uuid();
        match &transition.change {
            StatusChange::Confirm { placements } => {
                for placement in placements {
                    moves.confirmed.push((
                        id,
                        placement.vendor.to_string(),
                        placement.confirmed_at,
                    ));
                }
            }
            StatusChange::Fail | StatusChange::Cancel | StatusChange::Expire => {
                if before.status.holds_stock() {
                    moves.released.push(id);
                    for key in &dead {
                        for (sku, quantity) in before.units_at(&key.vendor) {
                            moves.held.push((
                                key.vendor.to_string(),
                                sku.to_string(),
                                key.key.clone(),
                                id,
                                quantity.as_i64(),
                            ));
                        }
                    }
                }
            }
        }
        moves
            .killed
            .extend(dead.into_iter().map(|key| (id, key, transition.at)));
        moves.messages.extend(outbox.iter().cloned());
        moves.messages.extend(cancellations);
        current.insert(next.id, next.clone());
        changed.insert(next.id, next.clone());
        answers.push(Ok(next));
    }
    if changed.is_empty() {
        tx.rollback().await?;
        return Ok(answers);
    }
    update_orders(&mut tx, changed.values()).await?;
    hand_to_vendors(&mut tx, &moves.confirmed).await?;
    release(&mut tx, &moves.released).await?;
    hold_for_cancellation(&mut tx, &moves.held).await?;
    let killed: Vec<(Uuid, &VendorKey, OffsetDateTime)> = moves
        .killed
        .iter()
        .map(|(order, key, at)| (*order, key, *at))
        .collect();
    note_pending_many(&mut tx, &killed).await?;
    write_outbox(&mut tx, &moves.messages).await?;
    tx.commit().await?;
    Ok(answers)
}

/// Locks, in (vendor, SKU) order, every stock row the orders hold reservations on.
async fn lock_held_by(tx: &mut PgConnection, ids: &[Uuid]) -> sqlx::Result<()> {
    sqlx::query!(
        r#"SELECT 1 AS "locked!" FROM vendor_stock s
            WHERE (s.vendor_id, s.sku) IN (
                  SELECT r.vendor_id, r.sku FROM reservations r
                   WHERE r.owner_kind = 'order' AND r.owner_id = ANY($1))
            ORDER BY s.vendor_id, s.sku
              FOR UPDATE OF s"#,
        ids,
    )
    .fetch_all(&mut *tx)
    .await?;
    Ok(())
}

/// Writes the changed orders (the rows are locked, so no version check is needed
/// beyond the one each change made against the locked row).
async fn update_orders<'a>(
    tx: &mut PgConnection,
    orders: impl Iterator<Item = &'a Order>,
) -> TxResult<()> {
    let mut ids = Vec::new();
    let mut statuses = Vec::new();
    let mut versions = Vec::new();
    let mut updated = Vec::new();
    let mut reasons: Vec<Option<String>> = Vec::new();
    let mut lines = Vec::new();
    let mut placements = Vec::new();
    let mut events = Vec::new();
    for order in orders {
        ids.push(order.id.as_uuid());
        statuses.push(order.status.as_str());
        versions.push(order.version);
        updated.push(order.updated_at);
        reasons.push(order.failure_reason.clone());
        lines.push(json(&order.lines)?);
        placements.push(json(&order.vendor_placements)?);
        events.push(json(&order.events)?);
    }
    let written = sqlx::query!(
        r#"UPDATE orders o
              SET status = u.status, version = u.version, updated_at = u.updated_at,
                  failure_reason = u.failure_reason, lines = u.lines::jsonb,
                  vendor_placements = u.vendor_placements::jsonb, events = u.events::jsonb
             FROM UNNEST($1::uuid[], $2::text[], $3::int8[], $4::timestamptz[], $5::text[],
                         $6::text[], $7::text[], $8::text[])
                  AS u(id, status, version, updated_at, failure_reason, lines, vendor_placements, events)
            WHERE o.id = u.id"#,
        &ids,
        &statuses as &[&str],
        &versions,
        &updated,
        &reasons as &[Option<String>],
        &lines,
        &placements,
        &events,
    )
    .execute(&mut *tx)
    .await?;
    if written.rows_affected() != ids.len() as u64 {
        return Err(Error::conflict("an order of the batch went missing").into());
    }
    Ok(())
}

/// Moves the units of each (order, vendor) out of `reserved` and into
/// `confirmed_not_yet_reported`, with a pending-confirmation row each (see the single
/// change's `hand_to_vendors`).
async fn hand_to_vendors(
    tx: &mut PgConnection,
    confirmed: &[(Uuid, String, OffsetDateTime)],
) -> sqlx::Result<()> {
    if confirmed.is_empty() {
        return Ok(());
    }
    let orders: Vec<Uuid> = confirmed.iter().map(|c| c.0).collect();
    let vendors: Vec<&str> = confirmed.iter().map(|c| c.1.as_str()).collect();
    let times: Vec<OffsetDateTime> = confirmed.iter().map(|c| c.2).collect();
    sqlx::query!(
        r#"WITH confirmed AS (
               SELECT DISTINCT ON (c.order_id, c.vendor_id) c.order_id, c.vendor_id, c.confirmed_at
                 FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[]) AS c(order_id, vendor_id, confirmed_at)),
           released AS (
               DELETE FROM reservations r
                USING confirmed c
                WHERE r.owner_kind = 'order' AND r.owner_id = c.order_id AND r.vendor_id = c.vendor_id
            RETURNING r.owner_id, r.vendor_id, r.sku, r.quantity, c.confirmed_at),
           noted AS (
               INSERT INTO pending_confirmations (vendor_id, sku, order_id, quantity, vendor_confirmed_at)
               SELECT vendor_id, sku, owner_id, quantity, confirmed_at FROM released
               RETURNING 1),
           moved AS (
               SELECT vendor_id, sku, sum(quantity)::int8 AS quantity FROM released GROUP BY vendor_id, sku)
           UPDATE vendor_stock s
              SET reserved = s.reserved - m.quantity,
                  confirmed_not_yet_reported = s.confirmed_not_yet_reported + m.quantity,
                  version = s.version + 1
             FROM moved m
            WHERE s.vendor_id = m.vendor_id AND s.sku = m.sku"#,
        &orders,
        &vendors as &[&str],
        &times,
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Gives back every unit these orders hold, exactly once.
async fn release(tx: &mut PgConnection, orders: &[Uuid]) -> sqlx::Result<()> {
    if orders.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        r#"WITH released AS (
               DELETE FROM reservations
                WHERE owner_kind = 'order' AND owner_id = ANY($1)
            RETURNING vendor_id, sku, quantity),
           moved AS (
               SELECT vendor_id, sku, sum(quantity)::int8 AS quantity FROM released GROUP BY vendor_id, sku)
           UPDATE vendor_stock s
              SET reserved = s.reserved - m.quantity, version = s.version + 1
             FROM moved m
            WHERE s.vendor_id = m.vendor_id AND s.sku = m.sku"#,
        orders,
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Keeps the units under each dead key counted in `confirmed_not_yet_reported` until
/// the vendor confirms the key's cancellation (see the single change's
/// `hold_for_cancellation`).
async fn hold_for_cancellation(
    tx: &mut PgConnection,
    held: &[(String, String, String, Uuid, i64)],
) -> sqlx::Result<()> {
    if held.is_empty() {
        return Ok(());
    }
    let vendors: Vec<&str> = held.iter().map(|h| h.0.as_str()).collect();
    let skus: Vec<&str> = held.iter().map(|h| h.1.as_str()).collect();
    let keys: Vec<&str> = held.iter().map(|h| h.2.as_str()).collect();
    let orders: Vec<Uuid> = held.iter().map(|h| h.3).collect();
    let quantities: Vec<i64> = held.iter().map(|h| h.4).collect();
    sqlx::query!(
        r#"WITH held AS (
               INSERT INTO cancelling_units (vendor_id, sku, idempotency_key, order_id, quantity)
               SELECT h.vendor_id, h.sku, h.key, h.order_id, h.quantity
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::uuid[], $5::int8[])
                      AS h(vendor_id, sku, key, order_id, quantity)
               ON CONFLICT DO NOTHING
               RETURNING vendor_id, sku, quantity),
           moved AS (
               SELECT vendor_id, sku, sum(quantity)::int8 AS quantity FROM held GROUP BY vendor_id, sku)
           UPDATE vendor_stock s
              SET confirmed_not_yet_reported = s.confirmed_not_yet_reported + m.quantity,
                  version = s.version + 1
             FROM moved m
            WHERE s.vendor_id = m.vendor_id AND s.sku = m.sku"#,
        &vendors as &[&str],
        &skus as &[&str],
        &keys as &[&str],
        &orders,
        &quantities,
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}
