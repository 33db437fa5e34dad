//! The order event log: rows the `orders` triggers write (migration 0008), read in
//! (transaction id, sequence) order.

use aggregator_core::Result;
use aggregator_core::domain::{
    CustomerId, EventCursor, EventRead, LoggedOrderEvent, OrderEvent, OrderId, OrderStatus,
};
use aggregator_core::traits::OrderEventLog;
use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{corrupt, map};
use crate::store::PostgresStockStore;

/// An `order_events` row.
struct EventRow {
    epoch: i64,
    sequence: i64,
    order_id: Uuid,
    customer_id: String,
    from_status: Option<String>,
    to_status: String,
    reason: String,
    at: OffsetDateTime,
    version: i64,
}

impl EventRow {
    fn into_event(self) -> Result<LoggedOrderEvent> {
        let position = |n: i64| u64::try_from(n).map_err(|e| corrupt("event position", e));
        let status = |text: &str| OrderStatus::parse(text).map_err(|e| corrupt("event status", e));
        Ok(LoggedOrderEvent::new(
            EventCursor::new(position(self.epoch)?, position(self.sequence)?),
            OrderId::from_uuid(self.order_id),
            CustomerId::new(self.customer_id).map_err(|e| corrupt("event customer", e))?,
            OrderEvent {
                from: self.from_status.as_deref().map(status).transpose()?,
                to: status(&self.to_status)?,
                reason: self.reason,
                at: self.at,
                version: self.version,
            },
        ))
    }
}

/// A stored position part as a cursor's.
fn position(n: i64) -> Result<u64> {
    u64::try_from(n).map_err(|e| corrupt("event position", e))
}

/// A cursor's parts as the `int8` columns compare them (positions past `i64::MAX` are
/// never given, so they read as the largest).
fn parts(cursor: EventCursor) -> (i64, i64) {
    let part = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    (part(cursor.epoch()), part(cursor.sequence()))
}

impl PostgresStockStore {
    /// Whether `after` is a position this log can go on from: not before the newest
    /// pruned event, and not past the newest event. Answers the pruned position too.
    async fn check_position(&self, after: EventCursor) -> Result<(bool, Option<EventCursor>)> {
        let (epoch, sequence) = parts(after);
        let row = sqlx::query!(
            r#"SELECT (SELECT tx::text::int8 FROM order_events_pruned) AS floor_epoch,
                      (SELECT sequence FROM order_events_pruned) AS floor_sequence,
                      (SELECT tx::text::int8 FROM order_events ORDER BY tx DESC, sequence DESC LIMIT 1) AS head_epoch,
                      (SELECT sequence FROM order_events ORDER BY tx DESC, sequence DESC LIMIT 1) AS head_sequence"#
        )
        .fetch_one(self.pool())
        .await
        .map_err(map)?;
        let floor = match (row.floor_epoch, row.floor_sequence) {
            (Some(e), Some(s)) => Some((e, s)),
            _ => None,
        };
        let head = match (row.head_epoch, row.head_sequence) {
            (Some(e), Some(s)) => Some((e, s)),
            _ => None,
        };
        let lowest = floor.unwrap_or((0, 0));
        let highest = head.max(floor).unwrap_or((0, 0));
        let known = (epoch, sequence) >= lowest && (epoch, sequence) <= highest;
        let floor = floor
            .map(|(e, s)| -> Result<EventCursor> {
                let position = |n: i64| u64::try_from(n).map_err(|e| corrupt("event position", e));
                Ok(EventCursor::new(position(e)?, position(s)?))
            })
            .transpose()?;
        Ok((known, floor))
    }
}

#[async_trait]
impl OrderEventLog for PostgresStockStore {
    async fn order_events_after(
        &self,
        after: Option<EventCursor>,
        customer: Option<&CustomerId>,
        limit: u32,
    ) -> Result<EventRead> {
        let from = match after {
            Some(cursor) => {
                let (known, floor) = self.check_position(cursor).await?;
                if !known {
                    return Ok(EventRead::Gone { resume_from: floor });
                }
                parts(cursor)
            }
            None => (0, 0),
        };
        let limit = i64::from(limit);
        let rows = match customer {
            Some(customer) => sqlx::query_as!(
                EventRow,
                r#"SELECT tx::text::int8 AS "epoch!", sequence, order_id, customer_id, from_status,
                          to_status, reason, at, version
                     FROM order_events
                    WHERE customer_id = $3
                      AND (tx, sequence) > ($1::int8::text::xid8, $2)
                      AND tx < pg_snapshot_xmin(pg_current_snapshot())
                    ORDER BY tx, sequence
                    LIMIT $4"#,
                from.0,
                from.1,
                customer.as_str(),
                limit,
            )
            .fetch_all(self.pool())
            .await
            .map_err(map)?,
            None => sqlx::query_as!(
                EventRow,
                r#"SELECT tx::text::int8 AS "epoch!", sequence, order_id, customer_id, from_status,
                          to_status, reason, at, version
                     FROM order_events
                    WHERE (tx, sequence) > ($1::int8::text::xid8, $2)
                      AND tx < pg_snapshot_xmin(pg_current_snapshot())
                    ORDER BY tx, sequence
                    LIMIT $3"#,
                from.0,
                from.1,
                limit,
            )
            .fetch_all(self.pool())
            .await
            .map_err(map)?,
        };
        // A prune that committed between the position check and the read may have
        // forgotten events right after `from`: the read would skip them unseen.
        if let Some(asked) = after {
            let (_, floor) = self.check_position(asked).await?;
            if floor.is_some_and(|floor| floor > asked) {
                return Ok(EventRead::Gone { resume_from: floor });
            }
        }
        let events = rows
            .into_iter()
            .map(EventRow::into_event)
            .collect::<Result<Vec<_>>>()?;
        Ok(EventRead::Events(events))
    }

    async fn order_events_head(&self) -> Result<Option<EventCursor>> {
        // Readers read only transactions older than every running one; any event that
        // commits later belongs to a running (or later) transaction, so lies after this.
        let head = sqlx::query!(
            r#"SELECT tx::text::int8 AS "epoch!", sequence
                 FROM order_events
                WHERE tx < pg_snapshot_xmin(pg_current_snapshot())
                ORDER BY tx DESC, sequence DESC
                LIMIT 1"#
        )
        .fetch_optional(self.pool())
        .await
        .map_err(map)?;
        head.map(|row| {
            Ok(EventCursor::new(
                position(row.epoch)?,
                position(row.sequence)?,
            ))
        })
        .transpose()
    }

    async fn prune_order_events(&self, before: OffsetDateTime, limit: u32) -> Result<u64> {
        let row = sqlx::query!(
            r#"WITH candidates AS (
                   SELECT tx, sequence,
                          bool_and(at < $1) OVER (ORDER BY tx, sequence) AS all_older
                     FROM (SELECT tx, sequence, at FROM order_events
                            WHERE tx < pg_snapshot_xmin(pg_current_snapshot())
                            ORDER BY tx, sequence LIMIT $2) first),
               pruned AS (
                   DELETE FROM order_events e USING candidates c
                    WHERE e.tx = c.tx AND e.sequence = c.sequence AND c.all_older
                RETURNING e.tx, e.sequence),
               newest AS (
                   SELECT tx, sequence FROM pruned ORDER BY tx DESC, sequence DESC LIMIT 1),
               moved AS (
                   INSERT INTO order_events_pruned (tx, sequence) SELECT tx, sequence FROM newest
                   ON CONFLICT (only_row) DO UPDATE SET tx = EXCLUDED.tx, sequence = EXCLUDED.sequence
                   RETURNING 1)
               SELECT count(*) AS "pruned!" FROM pruned"#,
            before,
            i64::from(limit),
        )
        .fetch_one(self.pool())
        .await
        .map_err(map)?;
        Ok(u64::try_from(row.pruned).unwrap_or(0))
    }
}
