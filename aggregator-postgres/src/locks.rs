//! The one lock order of every transaction here, so that none can wait on another in a
//! circle (a deadlock, which PostgreSQL breaks only after `deadlock_timeout`, a second by
//! default, aborting a whole batch):
//!
//! 1. **order rows**, in id order ([`lock_orders`]): a status change (a single one, a
//!    batch, an expiry) and a re-route lock the order row first;
//! 2. **hold rows** (a hold's release, expiry or conversion);
//! 3. **stock rows** (`vendor_stock`), in (vendor, SKU) order ([`crate::reserve::lock_rows`], or a
//!    statement that sorts by those columns before `FOR UPDATE`, or a merge join on
//!    them in the sync's writes);
//! 4. then only rows no other transaction locks first: reservations, cancelling units
//!    and pending cancellations, pending confirmations, outbox rows, events, new rows.
//!
//! A transaction may skip a level but never go back up one. Inserting a new order or
//! hold (a placement) takes no lock another transaction waits for. Rows taken with
//! `SKIP LOCKED` (the sweeper's and the relay's claims) never wait, so they may come in
//! any order.

use std::collections::HashMap;

use aggregator_core::domain::{
    Order, OrderDetails, OrderEvent, OrderId, OrderLine, VendorPlacement,
};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::rows::OrderRow;
use crate::tx::TxResult;

/// Locks the orders with these ids (sorted) and reads them.
pub(crate) async fn lock_orders(
    tx: &mut PgConnection,
    ids: &[Uuid],
) -> TxResult<HashMap<OrderId, Order>> {
    let rows = sqlx::query_as!(
        OrderRow,
        r#"SELECT id, number, status, version, created_at, updated_at, reserved_until, failure_reason, from_hold,
                  details AS "details: Json<OrderDetails>", lines AS "lines: Json<Vec<OrderLine>>",
                  vendor_placements AS "vendor_placements: Json<Vec<VendorPlacement>>", events AS "events: Json<Vec<OrderEvent>>"
             FROM orders WHERE id = ANY($1) ORDER BY id FOR UPDATE"#,
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
