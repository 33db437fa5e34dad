//! Placing a batch of orders in one transaction (group commit).
//!
//! The batch locks every stock row it touches once, in (vendor, SKU) order, reads what
//! each row can still sell, and lets the domain decide the placements in the order
//! given against those figures (as a single placement does), so an order that is short
//! fails alone while the rest take their units. The accepted ones are then written with one conditional `UPDATE` for the
//! whole batch (the same `sellable ≥ quantity` condition as a single placement, here a
//! safety net: the rows are locked) and set-based inserts, and committed once.
//! Replays, idempotency mismatches and invalid placements are answered before the
//! transaction; of two placements with one key in a batch, the later goes after the
//! commit (and so replays the earlier). If the transaction hits a constraint (an order
//! id or idempotency key written meanwhile by someone else), each placement of the
//! batch is tried alone, so one bad member never fails the others.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use aggregator_core::domain::{Demand, Order, OutboxMessage, RowKey};
use aggregator_core::traits::{OrderCommits, OrderPlacement, Placed};
use aggregator_core::{Error, Result};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::map;
use crate::order_reads::load_order;
use crate::outbox::OutboxColumns;
use crate::reserve::{lock_rows, reservation_columns, reserve_taken};
use crate::rows::json_text as json;
use crate::store::PostgresStockStore;
use crate::tx::{TxResult, retrying};

/// A checked placement waiting for the batch transaction.
struct Waiting {
    slot: usize,
    placement: OrderPlacement,
    demand: Demand,
}

/// Places `placements` as [`OrderCommits::place_order`] would one after another, with
/// one commit for all that take stock.
pub(crate) async fn place_batch(
    store: &PostgresStockStore,
    placements: Vec<OrderPlacement>,
) -> Vec<Result<Placed>> {
    let mut answers: Vec<Option<Result<Placed>>> = placements.iter().map(|_| None).collect();
    let mut waiting = Vec::with_capacity(placements.len());
    let mut later = Vec::new();
    let mut keys_in_batch = HashSet::new();
    for (slot, placement) in placements.into_iter().enumerate() {
        let checked = placement
            .details
            .validate()
            .and_then(|()| Demand::of(&placement.lines));
        match checked {
            Err(error) => answers[slot] = Some(Err(error)),
            Ok(demand) => {
                if let Some(record) = &placement.idempotency {
                    let key = (
                        placement.details.customer.to_string(),
                        record.key.to_string(),
                    );
                    if !keys_in_batch.insert(key) {
                        later.push((slot, placement));
                        continue;
                    }
                }
                waiting.push(Waiting {
                    slot,
                    placement,
                    demand,
                });
            }
        }
    }
    let waiting = answer_replays(store, waiting, &mut answers).await;
    if !waiting.is_empty() {
        match retrying(|| commit_batch(store, &waiting)).await {
            Ok(decided) => {
                for (item, decision) in waiting.iter().zip(decided) {
                    answers[item.slot] = Some(decision.map(|order| Placed {
                        order,
                        replayed: false,
                    }));
                }
            }
            Err(
                Error::Conflict { .. } | Error::Invalid { .. } | Error::InsufficientStock { .. },
            ) => {
                // Someone else wrote one of our ids or keys meanwhile, a row went away,
                // or a counter check refused the batch: let each placement find its
                // own answer.
                for item in waiting {
                    answers[item.slot] = Some(store.place_order(item.placement).await);
                }
            }
            Err(error) => {
                for item in &waiting {
                    answers[item.slot] = Some(Err(error.clone()));
                }
            }
        }
    }
    for (slot, placement) in later {
        answers[slot] = Some(store.place_order(placement).await);
    }
    answers
        .into_iter()
        .map(|answer| {
            answer.unwrap_or_else(|| Err(Error::permanent("postgres", "placement left unanswered")))
        })
        .collect()
}

/// Answers the placements whose idempotency key is already taken (a replay, or
/// `IdempotencyMismatch`) and returns the others.
async fn answer_replays(
    store: &PostgresStockStore,
    waiting: Vec<Waiting>,
    answers: &mut [Option<Result<Placed>>],
) -> Vec<Waiting> {
    let mut customers = Vec::new();
    let mut keys = Vec::new();
    for item in &waiting {
        if let Some(record) = &item.placement.idempotency {
            customers.push(item.placement.details.customer.to_string());
            keys.push(record.key.to_string());
        }
    }
    if keys.is_empty() {
        return waiting;
    }
    let found = sqlx::query!(
        // One primary-key lookup per key, whatever the generic plan thinks of the table.
        r#"SELECT i.customer_id AS "customer_id!", i.key AS "key!",
                  i.fingerprint AS "fingerprint!", i.order_id AS "order_id!"
             FROM UNNEST($1::text[], $2::text[]) AS k(customer_id, key)
            CROSS JOIN LATERAL (
                  SELECT * FROM idempotency_keys i
                   WHERE i.customer_id = k.customer_id AND i.key = k.key) AS i"#,
        &customers,
        &keys,
    )
    .fetch_all(&store.pool)
    .await;
    let found = match found {
        Ok(found) => found,
        Err(error) => {
            let error = map(error);
            let (keyed, rest): (Vec<_>, Vec<_>) = waiting
                .into_iter()
                .partition(|item| item.placement.idempotency.is_some());
            for item in keyed {
                answers[item.slot] = Some(Err(error.clone()));
            }
            return rest;
        }
    };
    let known: HashMap<(String, String), (String, Uuid)> = found
        .into_iter()
        .map(|row| ((row.customer_id, row.key), (row.fingerprint, row.order_id)))
        .collect();
    let mut rest = Vec::with_capacity(waiting.len());
    for item in waiting {
        let Some(record) = &item.placement.idempotency else {
            rest.push(item);
            continue;
        };
        let key = (
            item.placement.details.customer.to_string(),
            record.key.to_string(),
        );
        match known.get(&key) {
            None => rest.push(item),
            Some((fingerprint, _)) if *fingerprint != record.fingerprint => {
                answers[item.slot] = Some(Err(Error::IdempotencyMismatch {
                    key: record.key.to_string(),
                }));
            }
            Some((_, order)) => {
                let order = load_order(
                    &store.pool,
                    aggregator_core::domain::OrderId::from_uuid(*order),
                )
                .await;
                answers[item.slot] = Some(order.map(|order| Placed {
                    order,
                    replayed: true,
                }));
            }
        }
    }
    rest
}

/// One attempt at the batch transaction: each placement's order, or why it cannot be
/// placed, in the order given.
async fn commit_batch(
    store: &PostgresStockStore,
    waiting: &[Waiting],
) -> TxResult<Vec<Result<Order>>> {
    let mut tx = store.pool.begin().await?;
    let keys: BTreeSet<&RowKey> = waiting
        .iter()
        .flat_map(|item| item.demand.rows().map(|(key, _)| key))
        .collect();
    let mut rows = lock_rows(&mut tx, keys.into_iter()).await?;
    let mut decided = Vec::with_capacity(waiting.len());
    let mut taken: BTreeMap<RowKey, i64> = BTreeMap::new();
    let mut accepted = Vec::new();
    for item in waiting {
        let placement = &item.placement;
        // Decided in turn on the same rows: each sees what the ones before it took.
        match rows.reserve(&placement.lines, &item.demand, placement.fresh_since) {
            Ok(lines) => {
                for (key, units) in item.demand.rows() {
                    *taken.entry(key.clone()).or_default() += units;
                }
                let order = Order::new_reserved(
                    placement.id,
                    placement.details.clone(),
                    lines,
                    placement.at,
                    placement.reserved_until,
                    None,
                    "placed: stock reserved",
                );
                accepted.push((order.clone(), item));
                decided.push(Ok(order));
            }
            Err(refused) => decided.push(Err(refused)),
        }
    }
    if accepted.is_empty() {
        tx.rollback().await?;
        return Ok(decided);
    }
    reserve_taken(&mut tx, &taken).await?;
    let numbers = insert_orders(&mut tx, &accepted).await?;
    tx.commit().await?;
    for order in decided.iter_mut().flatten() {
        order.number = numbers.get(&order.id.as_uuid()).copied();
    }
    Ok(decided)
}

/// Writes the accepted orders, their reservations, outbox messages (their orders to
/// process as one message) and idempotency records, each kind in one set-based
/// statement; answers the number the database gave each order, by id.
async fn insert_orders(
    tx: &mut PgConnection,
    accepted: &[(Order, &Waiting)],
) -> TxResult<HashMap<Uuid, u64>> {
    let mut ids = Vec::with_capacity(accepted.len());
    let mut customers = Vec::with_capacity(accepted.len());
    let mut created = Vec::with_capacity(accepted.len());
    let mut until = Vec::with_capacity(accepted.len());
    let mut details = Vec::with_capacity(accepted.len());
    let mut lines = Vec::with_capacity(accepted.len());
    let mut events = Vec::with_capacity(accepted.len());
    let mut held_owner = Vec::new();
    let mut held_vendor = Vec::new();
    let mut held_sku = Vec::new();
    let mut held_quantity = Vec::new();
    let mut held_until = Vec::new();
    let mut messages = Vec::new();
    let mut key_customer = Vec::new();
    let mut key = Vec::new();
    let mut key_fingerprint = Vec::new();
    let mut key_order = Vec::new();
    let mut key_at = Vec::new();
    for (order, item) in accepted {
        let id = order.id.as_uuid();
        ids.push(id);
        customers.push(order.details.customer.as_str());
        created.push(order.created_at);
        until.push(order.reserved_until);
        details.push(json(&order.details)?);
        lines.push(json(&order.lines)?);
        events.push(json(&order.events)?);
        let held = reservation_columns(&order.lines);
        for ((vendor, sku), quantity) in
            held.vendors.into_iter().zip(held.skus).zip(held.quantities)
        {
            held_owner.push(id);
            held_vendor.push(vendor);
            held_sku.push(sku);
            held_quantity.push(quantity);
            held_until.push(order.reserved_until);
        }
        messages.extend(item.placement.outbox.iter().cloned());
        if let Some(record) = &item.placement.idempotency {
            key_customer.push(order.details.customer.as_str());
            key.push(record.key.as_str());
            key_fingerprint.push(record.fingerprint.as_str());
            key_order.push(id);
            key_at.push(order.created_at);
        }
    }
    // The batch's orders to process as one message (see `OrderCommits::place_orders`).
    let messages: Vec<OutboxMessage> = OutboxMessage::gather(messages)
        .into_iter()
        .map(|gathered| gathered.message)
        .collect();
    let outbox = OutboxColumns::from(messages.as_slice());
    let written = sqlx::query!(
        r#"WITH placed AS (
               INSERT INTO orders (id, customer_id, status, version, created_at, updated_at,
                                   reserved_until, failure_reason, from_hold, details, lines,
                                   vendor_placements, events)
               SELECT o.id, o.customer_id, 'reserved', 1, o.created_at, o.created_at,
                      o.reserved_until, NULL, NULL, o.details::jsonb, o.lines::jsonb,
                      '[]'::jsonb, o.events::jsonb
                 FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[],
                             $5::text[], $6::text[], $7::text[])
                      AS o(id, customer_id, created_at, reserved_until, details, lines, events)
               RETURNING id, number),
           held AS (
               INSERT INTO reservations (owner_kind, owner_id, vendor_id, sku, quantity, expires_at)
               SELECT 'order', r.owner_id, r.vendor_id, r.sku, r.quantity, r.expires_at
                 FROM UNNEST($8::uuid[], $9::text[], $10::text[], $11::int8[], $12::timestamptz[])
                      AS r(owner_id, vendor_id, sku, quantity, expires_at)),
           queued AS (
               INSERT INTO outbox (id, queue, body, created_at)
               SELECT * FROM UNNEST($13::uuid[], $14::text[], $15::bytea[], $16::timestamptz[])),
           remembered AS (
               INSERT INTO idempotency_keys (customer_id, key, fingerprint, order_id, created_at)
               SELECT * FROM UNNEST($17::text[], $18::text[], $19::text[], $20::uuid[], $21::timestamptz[]))
           SELECT COALESCE(array_agg(id), '{}') AS "ids!", COALESCE(array_agg(number), '{}') AS "numbers!"
             FROM placed"#,
        &ids,
        &customers as &[&str],
        &created,
        &until,
        &details,
        &lines,
        &events,
        &held_owner,
        &held_vendor,
        &held_sku,
        &held_quantity,
        &held_until,
        &outbox.ids,
        &outbox.queues as &[&str],
        &outbox.bodies as &[&[u8]],
        &outbox.created,
        &key_customer as &[&str],
        &key as &[&str],
        &key_fingerprint as &[&str],
        &key_order,
        &key_at,
    )
    .fetch_one(&mut *tx)
    .await?;
    Ok(written
        .ids
        .into_iter()
        .zip(written.numbers)
        .filter_map(|(id, number)| Some((id, u64::try_from(number).ok()?)))
        .collect())
}

#[cfg(test)]
mod tests {
    use crate::testing::TestDatabase;

    /// The batch's row lock, under the generic plan the store's connections force and
    /// with table statistics that do not know the rows yet (as after a sync before any
    /// ANALYZE), finds each row by its whole key: a plan that looked rows up by vendor
    /// alone and filtered by SKU once cost 20 times as much.
    #[tokio::test]
    async fn the_batch_lock_finds_each_row_by_its_whole_key_under_the_generic_plan() {
        let Some(db) = TestDatabase::create(2).await else {
            return;
        };
        // The statement exactly as the query macro compiled it.
        let lock = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.sqlx"))
            .expect(".sqlx")
            .filter_map(|entry| std::fs::read_to_string(entry.expect("entry").path()).ok())
            .filter_map(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .filter_map(|data| data["query"].as_str().map(str::to_owned))
            .find(|query| {
                query.contains("CROSS JOIN LATERAL")
                    && query.contains("FOR UPDATE")
                    && query.contains("last_good_sync")
            })
            .expect("the batch lock statement in .sqlx");
        let mut conn = db.store.pool.acquire().await.expect("connection");
        sqlx::raw_sql(
            "INSERT INTO vendors (id, name, base_url, priority)
                  SELECT 'V' || v, 'v', 'http://v', v FROM generate_series(1, 3) v;
             INSERT INTO vendor_stock (vendor_id, sku, product_id, reported, as_of, price_minor, currency)
                  SELECT 'V' || v, 'SKU-' || s, 'P-' || s, 10, now(), 100, 'USD'
                    FROM generate_series(1, 3) v, generate_series(1, 3000) s;",
        )
        .execute(&mut *conn)
        .await
        .expect("rows");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "PREPARE batch_lock(text[], text[]) AS {lock}"
        )))
        .execute(&mut *conn)
        .await
        .expect("prepare");
        let plan: Vec<String> = sqlx::query_scalar(
            "EXPLAIN EXECUTE batch_lock(ARRAY['V1', 'V2'], ARRAY['SKU-7', 'SKU-9'])",
        )
        .fetch_all(&mut *conn)
        .await
        .expect("explain");
        let plan = plan.join("\n");
        assert!(
            plan.lines().any(|line| line.contains("Index Cond")
                && line.contains("vendor_id =")
                && line.contains("sku =")),
            "{plan}"
        );
        assert!(!plan.contains("Join Filter"), "{plan}");
        assert!(!plan.contains("Seq Scan on vendor_stock"), "{plan}");
        drop(conn);
        db.finish().await;
    }
}
