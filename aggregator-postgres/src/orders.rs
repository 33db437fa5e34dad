//! Placing orders, reading them, and changing their status.

use aggregator_core::traits::{OrderCommits, OrderStore};
use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet};

use aggregator_core::domain::{
    CustomerId, HoldId, Order, OrderId, OutboxMessage, RerouteDecision, RowKey, StatusChange,
    Transition, VendorId, VendorKey, check_reroute_request,
};
use aggregator_core::traits::{
    CancellationBacklog, ExpiredBatch, IdempotencyRecord, OrderListing, OrderPlacement, OrderQuery,
    Page, Placed, Reroute,
};
use aggregator_core::{Error, Result};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::cancellations::{forget, note_pending};
use crate::error::{corrupt, map};
use crate::locks::lock_orders;
use crate::order_reads::{fetch_order, load_order, load_orders};
use crate::outbox::{OutboxColumns, write_outbox};
use crate::reserve::{
    Owner, hand_to_vendors, lock_rows, release, reservation_columns, reserve, reserve_taken,
};
use crate::rows::OrderRow;
use crate::store::PostgresStockStore;
use crate::tx::{TxResult, retrying};

/// What a placement's idempotency key already stands for.
async fn remembered(pool: &PgPool, placement: &OrderPlacement) -> Result<Option<Placed>> {
    match &placement.idempotency {
        Some(record) => placed_under_key(pool, &placement.details.customer, record).await,
        None => Ok(None),
    }
}

/// What `customer`'s idempotency key already stands for.
async fn placed_under_key(
    pool: &PgPool,
    customer: &CustomerId,
    record: &IdempotencyRecord,
) -> Result<Option<Placed>> {
    let found = sqlx::query!(
        r#"SELECT fingerprint, order_id FROM idempotency_keys WHERE customer_id = $1 AND key = $2"#,
        customer.as_str(),
        record.key.as_str(),
    )
    .fetch_optional(pool)
    .await
    .map_err(map)?;
    let Some(found) = found else {
        return Ok(None);
    };
    if found.fingerprint != record.fingerprint {
        return Err(Error::IdempotencyMismatch {
            key: record.key.to_string(),
        });
    }
    let order = load_order(pool, OrderId::from_uuid(found.order_id)).await?;
    Ok(Some(Placed {
        order,
        replayed: true,
    }))
}

/// Writes a just-placed order, its reservation rows, its outbox messages and its
/// idempotency record in one statement (one round trip); answers the order's number.
async fn insert_placed(
    tx: &mut PgConnection,
    order: &Order,
    outbox: &[OutboxMessage],
    idempotency: Option<&IdempotencyRecord>,
) -> sqlx::Result<i64> {
    let held = reservation_columns(&order.lines);
    let messages = OutboxColumns::from(outbox);
    sqlx::query_scalar!(
        r#"WITH placed AS (
               INSERT INTO orders (id, customer_id, status, version, created_at, updated_at, reserved_until,
                                   failure_reason, from_hold, details, lines, vendor_placements, events)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
               RETURNING number),
           held AS (
               INSERT INTO reservations (owner_kind, owner_id, vendor_id, sku, quantity, expires_at)
               SELECT 'order', $1, r.vendor_id, r.sku, r.quantity, $7
                 FROM UNNEST($14::text[], $15::text[], $16::int8[]) AS r(vendor_id, sku, quantity)),
           queued AS (
               INSERT INTO outbox (id, queue, body, created_at)
               SELECT * FROM UNNEST($17::uuid[], $18::text[], $19::bytea[], $20::timestamptz[])),
           remembered AS (
               INSERT INTO idempotency_keys (customer_id, key, fingerprint, order_id, created_at)
               SELECT $2, $21, $22, $1, $5 WHERE $21::text IS NOT NULL)
           SELECT number AS "number!" FROM placed"#,
        order.id.as_uuid(),
        order.details.customer.as_str(),
        order.status.as_str(),
        order.version,
        order.created_at,
        order.updated_at,
        order.reserved_until,
        order.failure_reason,
        order.from_hold.map(|hold| hold.as_uuid()),
        Json(&order.details) as _,
        Json(&order.lines) as _,
        Json(&order.vendor_placements) as _,
        Json(&order.events) as _,
        &held.vendors,
        &held.skus,
        &held.quantities,
        &messages.ids,
        &messages.queues as &[&str],
        &messages.bodies as &[&[u8]],
        &messages.created,
        idempotency.map(|record| record.key.as_str()),
        idempotency.map(|record| record.fingerprint.as_str()),
    )
    .fetch_one(&mut *tx)
    .await
}

/// Writes a new order; answers the number the database gave it.
pub(crate) async fn insert_order(tx: &mut PgConnection, order: &Order) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"INSERT INTO orders (id, customer_id, status, version, created_at, updated_at, reserved_until,
                               failure_reason, from_hold, details, lines, vendor_placements, events)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
        RETURNING number"#,
        order.id.as_uuid(),
        order.details.customer.as_str(),
        order.status.as_str(),
        order.version,
        order.created_at,
        order.updated_at,
        order.reserved_until,
        order.failure_reason,
        order.from_hold.map(|hold| hold.as_uuid()),
        Json(&order.details) as _,
        Json(&order.lines) as _,
        Json(&order.vendor_placements) as _,
        Json(&order.events) as _,
    )
    .fetch_one(&mut *tx)
    .await
}

/// Writes `next` over the stored order if the stored version is still `expected`;
/// false when it is not (someone else changed it first).
async fn compare_and_set(tx: &mut PgConnection, next: &Order, expected: i64) -> sqlx::Result<bool> {
    let updated = sqlx::query!(
        r#"UPDATE orders
              SET status = $3, version = $4, updated_at = $5, failure_reason = $6,
                  lines = $7, vendor_placements = $8, events = $9
            WHERE id = $1 AND version = $2"#,
        next.id.as_uuid(),
        expected,
        next.status.as_str(),
        next.version,
        next.updated_at,
        next.failure_reason,
        Json(&next.lines) as _,
        Json(&next.vendor_placements) as _,
        Json(&next.events) as _,
    )
    .execute(&mut *tx)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Applies `transition` to `current` (as read) inside `tx`: the compare-and-set, the
/// stock it moves and the outbox messages it writes.
pub(crate) async fn transition_in(
    tx: &mut PgConnection,
    current: &Order,
    transition: &Transition,
    outbox: &[OutboxMessage],
) -> TxResult<Order> {
    let mut next = current.clone();
    let dead = next.apply(transition)?;
    let mut messages = outbox.to_vec();
    messages.extend(OutboxMessage::vendor_cancellations(
        next.id,
        &dead,
        transition.at,
    )?);
    if !compare_and_set(tx, &next, current.version).await? {
        return Err(Error::conflict(format!(
            "order {} changed since version {}",
            current.id, current.version
        ))
        .into());
    }
    let owner = Owner::Order(next.id.as_uuid());
    match &transition.change {
        StatusChange::Confirm { placements } => {
            hand_to_vendors(tx, next.id.as_uuid(), placements).await?
        }
        StatusChange::Fail | StatusChange::Cancel | StatusChange::Expire => {
            if current.status.holds_stock() {
                release(tx, owner).await?;
                hold_for_cancellation(tx, current, &dead).await?;
            }
        }
    }
    note_pending(tx, next.id.as_uuid(), &dead, transition.at).await?;
    write_outbox(tx, &messages).await?;
    Ok(next)
}

/// Keeps the units `order` (as it was before the change) allocated under each dead key
/// counted in `confirmed_not_yet_reported` until the vendor confirms the key's
/// cancellation. The stock rows are locked already (released or re-routed in `tx`).
async fn hold_for_cancellation(
    tx: &mut PgConnection,
    order: &Order,
    dead: &[VendorKey],
) -> sqlx::Result<()> {
    let mut vendors = Vec::new();
    let mut skus = Vec::new();
    let mut keys = Vec::new();
    let mut quantities = Vec::new();
    for key in dead {
        for (sku, quantity) in order.units_at(&key.vendor) {
            vendors.push(key.vendor.to_string());
            skus.push(sku.to_string());
            keys.push(key.key.clone());
            quantities.push(quantity.as_i64());
        }
    }
    if keys.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        r#"WITH held AS (
               INSERT INTO cancelling_units (vendor_id, sku, idempotency_key, order_id, quantity)
               SELECT h.vendor_id, h.sku, h.key, $5, h.quantity
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int8[])
                      AS h(vendor_id, sku, key, quantity)
               ON CONFLICT DO NOTHING
               RETURNING vendor_id, sku, quantity)
           UPDATE vendor_stock s
              SET confirmed_not_yet_reported = s.confirmed_not_yet_reported + h.quantity,
                  version = s.version + 1
             FROM held h
            WHERE s.vendor_id = h.vendor_id AND s.sku = h.sku"#,
        &vendors,
        &skus,
        &keys,
        &quantities,
        order.id.as_uuid(),
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Expires one order if it is still overdue and nobody holds it; false otherwise.
async fn expire_order(pool: &PgPool, id: Uuid, now: OffsetDateTime) -> Result<bool> {
    retrying(|| async {
        let mut tx = pool.begin().await?;
        let still_due = sqlx::query_scalar!(
            r#"SELECT id FROM orders
                WHERE id = $1 AND status IN ('pending', 'reserved') AND reserved_until <= $2
                  FOR UPDATE SKIP LOCKED"#,
            id,
            now,
        )
        .fetch_optional(&mut *tx)
        .await?;
        if still_due.is_none() {
            return TxResult::Ok(false);
        }
        let Some(row) = fetch_order(&mut tx, id).await? else {
            return Ok(false);
        };
        let current = row.into_order()?;
        let transition = Transition {
            order: current.id,
            expected_version: current.version,
            change: StatusChange::Expire,
            reason: "reservation ran out before the vendors confirmed".into(),
            at: now,
        };
        transition_in(&mut tx, &current, &transition, &[]).await?;
        tx.commit().await?;
        Ok(true)
    })
    .await
}

/// Expires one hold if it is still active and overdue; false otherwise.
async fn expire_hold(pool: &PgPool, id: Uuid, now: OffsetDateTime) -> Result<bool> {
    retrying(|| async {
        let mut tx = pool.begin().await?;
        let expired = sqlx::query_scalar!(
            r#"UPDATE holds SET status = 'expired'
                WHERE id = $1 AND status = 'active' AND expires_at <= $2
            RETURNING id"#,
            id,
            now,
        )
        .fetch_optional(&mut *tx)
        .await?;
        if expired.is_none() {
            return TxResult::Ok(false);
        }
        release(&mut tx, Owner::Hold(id)).await?;
        tx.commit().await?;
        Ok(true)
    })
    .await
}

/// A page of orders, newest first, for every combination of the optional filters
/// (`$1` customer, `$2` status; `$3` limit, `$4` offset, `$5` = limit + offset). Each
/// combination is a branch switched by a one-time filter on the parameters and ordered
/// and limited on its own index, so that even the generic plan (the store's connections
/// force it) stays on the indexes: Merge Append over `Limit -> Index Scan` per branch,
/// the others never executed.
const ORDERS_PAGE: &str = r#"
SELECT id, number, status, version, created_at, updated_at, reserved_until, failure_reason, from_hold,
       details, lines, vendor_placements, events
  FROM ((SELECT * FROM orders
          WHERE $1::text IS NOT NULL AND customer_id = $1 AND ($2::text IS NULL OR status = $2)
          ORDER BY id DESC LIMIT $5)
        UNION ALL
        (SELECT * FROM orders
          WHERE $1::text IS NULL AND $2::text IS NOT NULL AND status = $2
          ORDER BY id DESC LIMIT $5)
        UNION ALL
        (SELECT * FROM orders
          WHERE $1::text IS NULL AND $2::text IS NULL
          ORDER BY id DESC LIMIT $5)) AS matching
 ORDER BY id DESC LIMIT $3 OFFSET $4"#;

#[async_trait]
impl OrderListing for PostgresStockStore {
    async fn orders(&self, query: &OrderQuery) -> Result<Page<Order>> {
        list_orders(&self.pool, query).await
    }
}

/// A page of orders on any pool: the primary's, or a read replica's.
pub(crate) async fn list_orders(pool: &PgPool, query: &OrderQuery) -> Result<Page<Order>> {
    // One statement for every filter combination. The connections run with
    // `plan_cache_mode = force_generic_plan`, and a generic plan of `($1 IS NULL OR
    // customer_id = $1)` cannot use an index; so each combination is its own branch,
    // switched on and off by a one-time filter on the parameters, each ordered and
    // limited on its own index (`orders_by_customer`, or the primary key backwards),
    // and merged: see [`ORDERS_PAGE`] and the test that EXPLAINs it.
    let customer = query.customer.as_ref().map(|c| c.as_str());
    let status = query.status.map(|s| s.as_str());
    let limit = i64::from(query.limit);
    let offset = i64::try_from(query.offset).unwrap_or(i64::MAX);
    let reach = limit.saturating_add(offset);
    let rows = sqlx::query_as::<_, OrderRow>(ORDERS_PAGE)
        .bind(customer)
        .bind(status)
        .bind(limit)
        .bind(offset)
        .bind(reach)
        .fetch_all(pool)
        .await;
    let total = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!"
             FROM (SELECT 1 FROM orders
                    WHERE $1::text IS NOT NULL AND customer_id = $1
                      AND ($2::text IS NULL OR status = $2)
                   UNION ALL
                   SELECT 1 FROM orders
                    WHERE $1::text IS NULL AND $2::text IS NOT NULL AND status = $2
                   UNION ALL
                   SELECT 1 FROM orders WHERE $1::text IS NULL AND $2::text IS NULL) AS matching"#,
        customer,
        status
    )
    .fetch_one(pool)
    .await;
    let (rows, total) = (rows.map_err(map)?, total.map_err(map)?);
    Ok(Page {
        items: rows
            .into_iter()
            .map(OrderRow::into_order)
            .collect::<Result<_>>()?,
        total: u64::try_from(total).unwrap_or(0),
    })
}

#[async_trait]
impl OrderStore for PostgresStockStore {
    async fn order(&self, id: OrderId) -> Result<Order> {
        load_order(&self.pool, id).await
    }

    async fn orders_by_id(&self, ids: &[OrderId]) -> Result<Vec<Order>> {
        load_orders(&self.pool, ids).await
    }

    async fn placed_under_key(
        &self,
        customer: &CustomerId,
        record: &IdempotencyRecord,
    ) -> Result<Option<Placed>> {
        placed_under_key(&self.pool, customer, record).await
    }

    async fn reroute(&self, request: &Reroute) -> Result<Order> {
        let pool = &self.pool;
        retrying(|| async {
            let mut tx = pool.begin().await?;
            // The order row first, then stock rows: the lock order (see `crate::locks`).
            let Some(current) = lock_orders(&mut tx, &[request.order.as_uuid()])
                .await?
                .remove(&request.order)
            else {
                return Err(Error::not_found("order", request.order).into());
            };
            // A stale version or a move the order does not allow is refused before any
            // stock row is locked (the decision below checks it again).
            check_reroute_request(&current, request)?;
            // Lock the row being left, the replacement's rows and every row of the old
            // version (its keys die and hold their units), all in one order; the
            // domain decides on them.
            let mut keys: BTreeSet<RowKey> = request
                .replacement
                .iter()
                .map(|a| (a.vendor.clone(), a.sku.clone()))
                .collect();
            keys.insert((request.vendor.clone(), request.sku.clone()));
            for allocation in current.lines.iter().flat_map(|line| &line.allocations) {
                keys.insert((allocation.vendor.clone(), allocation.sku.clone()));
            }
            let mut rows = lock_rows(&mut tx, keys.iter()).await?;
            let RerouteDecision {
                order: next,
                dead,
                cancellations,
                left: ((left_vendor, left_sku), moving),
                taken,
            } = rows.reroute(&current, request)?;
            let taken: BTreeMap<RowKey, i64> =
                taken.rows().map(|(key, units)| (key.clone(), units)).collect();
            reserve_taken(&mut tx, &taken).await?;
            if !compare_and_set(&mut tx, &next, current.version).await? {
                return Err(
                    Error::conflict(format!("order {} changed while re-routing", current.id)).into(),
                );
            }
            let released = sqlx::query!(
                r#"WITH left_row AS (
                       DELETE FROM reservations
                        WHERE owner_kind = 'order' AND owner_id = $1 AND vendor_id = $2 AND sku = $3
                    RETURNING vendor_id, sku, quantity)
                   UPDATE vendor_stock s
                      SET reserved = s.reserved - l.quantity, version = s.version + 1
                     FROM left_row l
                    WHERE s.vendor_id = l.vendor_id AND s.sku = l.sku
                RETURNING l.quantity AS "released!""#,
                current.id.as_uuid(),
                left_vendor.as_str(),
                left_sku.as_str(),
            )
            .fetch_optional(&mut *tx)
            .await?;
            // The reservation row must hold exactly the units the domain moves; anything
            // else means the rows and the order disagree, and nothing is written.
            let released = released.map(|row| row.released);
            if released != Some(moving.as_i64()) {
                return Err(corrupt(
                    "reservation",
                    format!(
                        "order {} holds {released:?} units on {left_vendor}/{left_sku}, not the {moving} it moves",
                        current.id
                    ),
                )
                .into());
            }
            let new_vendors: Vec<&str> = taken.keys().map(|(v, _)| v.as_str()).collect();
            let new_skus: Vec<&str> = taken.keys().map(|(_, s)| s.as_str()).collect();
            let quantities: Vec<i64> = taken.values().copied().collect();
            sqlx::query!(
                r#"INSERT INTO reservations (owner_kind, owner_id, vendor_id, sku, quantity, expires_at)
                   SELECT 'order', $1, r.vendor_id, r.sku, sum(r.quantity)::int8, $5
                     FROM UNNEST($2::text[], $3::text[], $4::int8[]) AS r(vendor_id, sku, quantity)
                    GROUP BY r.vendor_id, r.sku
                   ON CONFLICT (owner_kind, owner_id, vendor_id, sku)
                      DO UPDATE SET quantity = reservations.quantity + EXCLUDED.quantity"#,
                current.id.as_uuid(),
                &new_vendors as &[&str],
                &new_skus as &[&str],
                &quantities,
                current.reserved_until,
            )
            .execute(&mut *tx)
            .await?;
            hold_for_cancellation(&mut tx, &current, &dead).await?;
            note_pending(&mut tx, current.id.as_uuid(), &dead, request.at).await?;
            write_outbox(&mut tx, &cancellations).await?;
            tx.commit().await?;
            Ok(next)
        })
        .await
    }

    async fn vendor_cancellation_done(&self, vendor: &VendorId, key: &str) -> Result<()> {
        let pool = &self.pool;
        retrying(|| async {
            let mut tx = pool.begin().await?;
            sqlx::query!(
                r#"SELECT 1 AS "locked!" FROM vendor_stock s
                    WHERE s.vendor_id = $1
                      AND s.sku IN (SELECT c.sku FROM cancelling_units c
                                     WHERE c.vendor_id = $1 AND c.idempotency_key = $2)
                    ORDER BY s.sku
                      FOR UPDATE OF s"#,
                vendor.as_str(),
                key,
            )
            .fetch_all(&mut *tx)
            .await?;
            sqlx::query!(
                r#"WITH done AS (
                       DELETE FROM cancelling_units
                        WHERE vendor_id = $1 AND idempotency_key = $2
                    RETURNING vendor_id, sku, quantity)
                   UPDATE vendor_stock s
                      SET confirmed_not_yet_reported = s.confirmed_not_yet_reported - d.quantity,
                          version = s.version + 1
                     FROM done d
                    WHERE s.vendor_id = d.vendor_id AND s.sku = d.sku"#,
                vendor.as_str(),
                key,
            )
            .execute(&mut *tx)
            .await?;
            forget(&mut tx, vendor, key).await?;
            tx.commit().await?;
            TxResult::Ok(())
        })
        .await
    }

    async fn requeue_cancellations(
        &self,
        queued_before: OffsetDateTime,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<u32> {
        crate::cancellations::requeue(&self.pool, queued_before, now, limit).await
    }

    async fn cancellation_backlog(&self) -> Result<CancellationBacklog> {
        crate::cancellations::backlog(&self.pool).await
    }

    // Expires up to `limit` overdue orders and holds, each in a transaction of its own:
    // it locks only that item's stock rows, in the (vendor, SKU) order placements use, so
    // it cannot deadlock against them, and an item that cannot be expired (a row that
    // cannot be read, say) is logged and skipped instead of stopping the round.
    async fn expire_overdue(&self, now: OffsetDateTime, limit: u32) -> Result<ExpiredBatch> {
        let pool = &self.pool;
        let mut batch = ExpiredBatch::default();
        let due = sqlx::query_scalar!(
            r#"SELECT id FROM orders
                WHERE status IN ('pending', 'reserved') AND reserved_until <= $1
                ORDER BY reserved_until
                LIMIT $2"#,
            now,
            i64::from(limit),
        )
        .fetch_all(pool)
        .await
        .map_err(map)?;
        for id in due {
            match expire_order(pool, id, now).await {
                Ok(true) => batch.orders.push(OrderId::from_uuid(id)),
                Ok(false) => {}
                Err(error) => {
                    tracing::error!(order = %id, %error, "could not expire an overdue order; skipped");
                }
            }
        }
        let room = i64::from(limit) - i64::try_from(batch.orders.len()).unwrap_or(i64::MAX);
        if room <= 0 {
            return Ok(batch);
        }
        let due = sqlx::query_scalar!(
            r#"SELECT id FROM holds
                WHERE status = 'active' AND expires_at <= $1
                ORDER BY expires_at
                LIMIT $2"#,
            now,
            room,
        )
        .fetch_all(pool)
        .await
        .map_err(map)?;
        for id in due {
            match expire_hold(pool, id, now).await {
                Ok(true) => batch.holds.push(HoldId::from_uuid(id)),
                Ok(false) => {}
                Err(error) => {
                    tracing::error!(hold = %id, %error, "could not expire an overdue hold; skipped");
                }
            }
        }
        Ok(batch)
    }
}

#[async_trait]
impl OrderCommits for PostgresStockStore {
    async fn place_order(&self, placement: OrderPlacement) -> Result<Placed> {
        let pool = &self.pool;
        placement.details.validate()?;
        if let Some(replay) = remembered(pool, &placement).await? {
            return Ok(replay);
        }
        let placed = retrying(|| async {
            let mut tx = pool.begin().await?;
            let lines = reserve(&mut tx, &placement.lines, placement.fresh_since).await?;
            let mut order = Order::new_reserved(
                placement.id,
                placement.details.clone(),
                lines,
                placement.at,
                placement.reserved_until,
                None,
                "placed: stock reserved",
            );
            let number = insert_placed(
                &mut tx,
                &order,
                &placement.outbox,
                placement.idempotency.as_ref(),
            )
            .await?;
            order.number = u64::try_from(number).ok();
            tx.commit().await?;
            TxResult::Ok(order)
        })
        .await;
        match placed {
            Ok(order) => Ok(Placed {
                order,
                replayed: false,
            }),
            // Another placement with the same key won the race: answer as it did.
            Err(Error::Conflict { .. }) if placement.idempotency.is_some() => {
                match remembered(pool, &placement).await? {
                    Some(replay) => Ok(replay),
                    None => Err(Error::conflict(format!(
                        "order {} already exists",
                        placement.id
                    ))),
                }
            }
            Err(Error::Conflict { .. }) => Err(Error::conflict(format!(
                "order {} already exists",
                placement.id
            ))),
            Err(other) => Err(other),
        }
    }
    async fn place_orders(&self, mut placements: Vec<OrderPlacement>) -> Vec<Result<Placed>> {
        if placements.len() == 1
            && let Some(placement) = placements.pop()
        {
            return vec![self.place_order(placement).await];
        }
        crate::place_batch::place_batch(self, placements).await
    }
    async fn transition(&self, transition: &Transition, outbox: &[OutboxMessage]) -> Result<Order> {
        let pool = &self.pool;
        retrying(|| async {
            let current = load_order(pool, transition.order).await?;
            let mut tx = pool.begin().await?;
            let next = transition_in(&mut tx, &current, transition, outbox).await?;
            tx.commit().await?;
            Ok(next)
        })
        .await
    }
    async fn transitions(
        &self,
        changes: Vec<(Transition, Vec<OutboxMessage>)>,
    ) -> Vec<Result<Order>> {
        crate::change_batch::change_batch(self, changes).await
    }
}

#[cfg(test)]
mod tests {
    use super::ORDERS_PAGE;
    use crate::testing::TestDatabase;

    /// The page statement, under the generic plan the store's connections force, stays on
    /// the indexes for every filter combination and never scans the whole table.
    #[tokio::test]
    async fn the_order_page_stays_on_the_indexes_under_the_generic_plan() {
        let Some(db) = TestDatabase::create(2).await else {
            return;
        };
        let mut conn = db.store.pool.acquire().await.expect("connection");
        sqlx::query(
            "INSERT INTO orders (id, customer_id, status, version, created_at, updated_at,
                                 reserved_until, details, lines, vendor_placements, events)
             SELECT uuidv7_like, 'c' || (g % 2000),
                    (ARRAY['reserved','confirmed','failed','cancelled','expired'])[1 + g % 5],
                    1, now(), now(), now(), '{}', '[]', '[]', '[]'
               FROM generate_series(1, 50000) g,
                    LATERAL (SELECT (lpad(to_hex(g), 8, '0') || '-0000-7000-8000-'
                                     || lpad(to_hex(g), 12, '0'))::uuid AS uuidv7_like) AS id",
        )
        .execute(&mut *conn)
        .await
        .expect("orders");
        sqlx::query("ANALYZE orders")
            .execute(&mut *conn)
            .await
            .expect("analyze");
        let mode: String = sqlx::query_scalar("SHOW plan_cache_mode")
            .fetch_one(&mut *conn)
            .await
            .expect("mode");
        assert_eq!(mode, "force_generic_plan");
        let prepare =
            format!("PREPARE orders_page(text, text, bigint, bigint, bigint) AS {ORDERS_PAGE}");
        sqlx::raw_sql(sqlx::AssertSqlSafe(prepare))
            .execute(&mut *conn)
            .await
            .expect("prepare");
        for (arguments, index) in [
            ("'c42', NULL, 20, 0, 20", "orders_by_customer"),
            ("'c42', 'failed', 20, 0, 20", "orders_by_customer"),
            ("NULL, 'failed', 20, 40, 60", "orders_pkey"),
            ("NULL, NULL, 20, 100, 120", "orders_pkey"),
        ] {
            let explain = format!("EXPLAIN (FORMAT TEXT) EXECUTE orders_page({arguments})");
            let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(explain))
                .fetch_all(&mut *conn)
                .await
                .expect("explain");
            let plan = plan.join("\n");
            assert!(!plan.contains("Seq Scan"), "{arguments}:\n{plan}");
            assert!(plan.contains("Merge Append"), "{arguments}:\n{plan}");
            assert!(plan.contains(index), "{arguments}:\n{plan}");
        }
        drop(conn);
        db.finish().await;
    }
}
