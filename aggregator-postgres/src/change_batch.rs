//! Applying a batch of order status changes in one transaction (group commit of the
//! worker's confirmations and failures).
//!
//! The batch reads every order it changes in one query, locks the stock rows those
//! orders hold in (vendor, SKU) order (so batches and single changes never deadlock),
//! then applies each change as a single one would: its own compare-and-set, its own
//! stock moves and outbox messages. A change that is refused (stale version, illegal
//! status change) is answered alone before it writes anything; the others commit
//! together. A change later in the batch sees what an earlier one did to its order.
//! If the transaction fails in the engine, each change is tried alone.

use std::collections::HashMap;

use aggregator_core::domain::{
    Order, OrderDetails, OrderEvent, OrderId, OrderLine, OutboxMessage, Transition, VendorPlacement,
};
use aggregator_core::traits::OrderStore;
use aggregator_core::{Error, Result};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::orders::transition_in;
use crate::rows::OrderRow;
use crate::store::PostgresStockStore;
use crate::tx::{Fail, TxResult, retrying};

type Change = (Transition, Vec<OutboxMessage>);

/// Applies `changes` as [`OrderStore::transition`] would one after another, with one
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

async fn commit_changes(
    store: &PostgresStockStore,
    changes: &[Change],
) -> TxResult<Vec<Result<Order>>> {
    let ids: Vec<Uuid> = changes.iter().map(|(t, _)| t.order.as_uuid()).collect();
    let mut tx = store.pool.begin().await?;
    let mut current = load_orders(&mut tx, &ids).await?;
    lock_held_by(&mut tx, &ids).await?;
    let mut answers = Vec::with_capacity(changes.len());
    let mut applied = 0;
    for (transition, outbox) in changes {
        let Some(order) = current.get(&transition.order) else {
            answers.push(Err(Error::not_found("order", transition.order)));
            continue;
        };
        match transition_in(&mut tx, order, transition, outbox).await {
            Ok(next) => {
                applied += 1;
                current.insert(next.id, next.clone());
                answers.push(Ok(next));
            }
            // Refused before anything was written: the others go on.
            Err(Fail::Domain(error)) => answers.push(Err(error)),
            Err(db) => return Err(db),
        }
    }
    if applied == 0 {
        tx.rollback().await?;
    } else {
        tx.commit().await?;
    }
    Ok(answers)
}

/// The orders with these ids, as they are now.
async fn load_orders(tx: &mut PgConnection, ids: &[Uuid]) -> TxResult<HashMap<OrderId, Order>> {
    let rows = sqlx::query_as!(
        OrderRow,
        r#"SELECT id, status, version, created_at, updated_at, reserved_until, failure_reason, from_hold,
                  details AS "details: Json<OrderDetails>", lines AS "lines: Json<Vec<OrderLine>>",
                  vendor_placements AS "vendor_placements: Json<Vec<VendorPlacement>>", events AS "events: Json<Vec<OrderEvent>>"
             FROM orders WHERE id = ANY($1)"#,
        ids
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut orders = HashMap::with_capacity(rows.len());
    for row in rows {
        let order = row.into_order()?;
        orders.insert(order.id, order);
    }
    Ok(orders)
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
