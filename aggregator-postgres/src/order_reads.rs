//! Reading one order by its id, for the single-order and the batched writes alike.

use aggregator_core::domain::{
    Order, OrderDetails, OrderEvent, OrderId, OrderLine, VendorPlacement,
};
use aggregator_core::{Error, Result};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::map;
use crate::rows::OrderRow;

/// The `orders` row of `id` read on `conn` (inside a transaction, it sees what that
/// transaction wrote); `None` when there is none.
pub(crate) async fn fetch_order(
    conn: &mut PgConnection,
    id: Uuid,
) -> sqlx::Result<Option<OrderRow>> {
    sqlx::query_as!(
        OrderRow,
        r#"SELECT id, number, status, version, created_at, updated_at, reserved_until, failure_reason, from_hold,
                  details AS "details: Json<OrderDetails>", lines AS "lines: Json<Vec<OrderLine>>",
                  vendor_placements AS "vendor_placements: Json<Vec<VendorPlacement>>", events AS "events: Json<Vec<OrderEvent>>"
             FROM orders WHERE id = $1"#,
        id
    )
    .fetch_optional(&mut *conn)
    .await
}

/// The orders of `ids` that exist, each once, in one query on a connection of its own.
pub(crate) async fn load_orders(pool: &PgPool, ids: &[OrderId]) -> Result<Vec<Order>> {
    let ids: Vec<Uuid> = ids.iter().map(|id| id.as_uuid()).collect();
    let rows = sqlx::query_as!(
        OrderRow,
        r#"SELECT id, number, status, version, created_at, updated_at, reserved_until, failure_reason, from_hold,
                  details AS "details: Json<OrderDetails>", lines AS "lines: Json<Vec<OrderLine>>",
                  vendor_placements AS "vendor_placements: Json<Vec<VendorPlacement>>", events AS "events: Json<Vec<OrderEvent>>"
             FROM orders WHERE id = ANY($1)"#,
        &ids[..]
    )
    .fetch_all(pool)
    .await
    .map_err(map)?;
    rows.into_iter().map(OrderRow::into_order).collect()
}

/// The order `id`, read on a connection of its own.
pub(crate) async fn load_order(pool: &PgPool, id: OrderId) -> Result<Order> {
    let mut conn = pool.acquire().await.map_err(map)?;
    fetch_order(&mut conn, id.as_uuid())
        .await
        .map_err(map)?
        .ok_or_else(|| Error::not_found("order", id))?
        .into_order()
}
