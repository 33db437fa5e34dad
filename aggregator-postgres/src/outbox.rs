//! The outbox and consumer de-duplication.

use aggregator_core::Result;
use aggregator_core::domain::{Message, MessageId, OutboxMessage, QueueName};
use aggregator_core::traits::{Outbox, OutboxBacklog};
use async_trait::async_trait;
use sqlx::PgConnection;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::error::{corrupt, map};
use crate::store::PostgresStockStore;

/// Outbox messages as columns for `UNNEST`.
#[derive(Debug, Default)]
pub(crate) struct OutboxColumns<'a> {
    pub(crate) ids: Vec<Uuid>,
    pub(crate) queues: Vec<&'static str>,
    pub(crate) bodies: Vec<&'a [u8]>,
    pub(crate) created: Vec<OffsetDateTime>,
}

impl<'a> From<&'a [OutboxMessage]> for OutboxColumns<'a> {
    fn from(messages: &'a [OutboxMessage]) -> Self {
        Self {
            ids: messages.iter().map(|m| m.message.id.as_uuid()).collect(),
            queues: messages.iter().map(|m| m.queue.as_str()).collect(),
            bodies: messages.iter().map(|m| m.message.body.as_slice()).collect(),
            created: messages.iter().map(|m| m.created_at).collect(),
        }
    }
}

/// Writes `messages` in the caller's transaction.
pub(crate) async fn write_outbox(
    tx: &mut PgConnection,
    messages: &[OutboxMessage],
) -> sqlx::Result<()> {
    if messages.is_empty() {
        return Ok(());
    }
    let columns = OutboxColumns::from(messages);
    sqlx::query!(
        r#"INSERT INTO outbox (id, queue, body, created_at)
           SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::bytea[], $4::timestamptz[])"#,
        &columns.ids,
        &columns.queues as &[&str],
        &columns.bodies as &[&[u8]],
        &columns.created,
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Claimed rows (id, queue, body, created at) as messages, oldest first.
fn messages(
    rows: impl Iterator<Item = (Uuid, String, Vec<u8>, OffsetDateTime)>,
) -> Result<Vec<OutboxMessage>> {
    let mut messages = rows
        .map(|(id, queue, body, created_at)| {
            Ok(OutboxMessage {
                queue: QueueName::parse(&queue).map_err(|e| corrupt("outbox queue", e))?,
                message: Message {
                    id: MessageId::from_uuid(id),
                    body,
                },
                created_at,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    messages.sort_by_key(|m| m.message.id);
    Ok(messages)
}

#[async_trait]
impl Outbox for PostgresStockStore {
    async fn outbox_backlog(&self) -> Result<OutboxBacklog> {
        let row = sqlx::query!(
            r#"SELECT count(*) AS "messages!", min(created_at) AS oldest FROM outbox"#
        )
        .fetch_one(self.pool())
        .await
        .map_err(map)?;
        Ok(OutboxBacklog {
            messages: u64::try_from(row.messages).unwrap_or(0),
            oldest: row.oldest,
        })
    }

    async fn claim_outbox(
        &self,
        now: OffsetDateTime,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>> {
        let pool = &self.pool;
        let rows = sqlx::query!(
            r#"UPDATE outbox SET leased_until = $2
                WHERE id IN (SELECT id FROM outbox
                              WHERE leased_until IS NULL OR leased_until <= $1
                              ORDER BY id
                              LIMIT $3
                                FOR UPDATE SKIP LOCKED)
            RETURNING id, queue, body, created_at"#,
            now,
            now + lease,
            i64::from(limit),
        )
        .fetch_all(pool)
        .await
        .map_err(map)?;
        messages(
            rows.into_iter()
                .map(|row| (row.id, row.queue, row.body, row.created_at)),
        )
    }

    async fn claim_outbox_ids(
        &self,
        ids: &[MessageId],
        now: OffsetDateTime,
        lease: Duration,
    ) -> Result<Vec<OutboxMessage>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let pool = &self.pool;
        let ids: Vec<Uuid> = ids.iter().map(MessageId::as_uuid).collect();
        // Primary-key lookups only: no walk over the outbox's dead index entries, which
        // pile up between vacuums and made every scanning claim slower.
        let rows = sqlx::query!(
            r#"UPDATE outbox SET leased_until = $3
                WHERE id IN (SELECT o.id
                               FROM (SELECT DISTINCT u.id FROM UNNEST($1::uuid[]) AS u(id)) AS k
                              CROSS JOIN LATERAL (
                                    SELECT id FROM outbox
                                     WHERE id = k.id
                                       AND (leased_until IS NULL OR leased_until <= $2)
                                       FOR UPDATE SKIP LOCKED) AS o)
            RETURNING id, queue, body, created_at"#,
            &ids,
            now,
            now + lease,
        )
        .fetch_all(pool)
        .await
        .map_err(map)?;
        messages(
            rows.into_iter()
                .map(|row| (row.id, row.queue, row.body, row.created_at)),
        )
    }

    async fn mark_outbox_sent(&self, ids: &[MessageId]) -> Result<()> {
        let pool = &self.pool;
        let ids: Vec<Uuid> = ids.iter().map(MessageId::as_uuid).collect();
        sqlx::query!("DELETE FROM outbox WHERE id = ANY($1)", &ids)
            .execute(pool)
            .await
            .map_err(map)?;
        Ok(())
    }
}
