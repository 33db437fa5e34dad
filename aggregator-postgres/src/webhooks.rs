//! Webhook endpoints and the dispatcher's position (migrations 0009 and 0011).

use aggregator_core::domain::{
    CustomerId, DeliveryOutcome, EventCursor, OrderStatus, OutboxMessage, WebhookEndpoint,
    WebhookId,
};
use aggregator_core::traits::WebhookStore;
use aggregator_core::{Error, Result};
use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{corrupt, map};
use crate::outbox::write_outbox;
use crate::store::PostgresStockStore;

/// A `webhook_endpoints` row.
struct EndpointRow {
    id: Uuid,
    customer_id: Option<String>,
    url: String,
    secret: String,
    statuses: Vec<String>,
    enabled: bool,
    disabled_reason: Option<String>,
    consecutive_failures: i32,
    created_at: OffsetDateTime,
    starts_at_epoch: Option<i64>,
    starts_at_sequence: Option<i64>,
}

impl EndpointRow {
    fn into_endpoint(self) -> Result<WebhookEndpoint> {
        Ok(WebhookEndpoint {
            id: WebhookId::from_uuid(self.id),
            customer: self
                .customer_id
                .map(CustomerId::new)
                .transpose()
                .map_err(|e| corrupt("webhook customer", e))?,
            url: self.url,
            secret: self.secret,
            statuses: self
                .statuses
                .iter()
                .map(|s| OrderStatus::parse(s).map_err(|e| corrupt("webhook status", e)))
                .collect::<Result<_>>()?,
            enabled: self.enabled,
            disabled_reason: self.disabled_reason,
            consecutive_failures: u32::try_from(self.consecutive_failures)
                .map_err(|e| corrupt("webhook failures", e))?,
            created_at: self.created_at,
            starts_at: match (self.starts_at_epoch, self.starts_at_sequence) {
                (Some(epoch), Some(sequence)) => Some(EventCursor::new(
                    u64::try_from(epoch).map_err(|e| corrupt("webhook start", e))?,
                    u64::try_from(sequence).map_err(|e| corrupt("webhook start", e))?,
                )),
                _ => None,
            },
        })
    }
}

fn position(cursor: EventCursor) -> (i64, i64) {
    let part = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    (part(cursor.epoch()), part(cursor.sequence()))
}

#[async_trait]
impl WebhookStore for PostgresStockStore {
    async fn create_webhook(&self, endpoint: &WebhookEndpoint) -> Result<()> {
        endpoint.validate()?;
        let statuses: Vec<&str> = endpoint.statuses.iter().map(|s| s.as_str()).collect();
        sqlx::query!(
            // The oldest transaction running now: every event committed after this
            // registration belongs to it or a later one.
            r#"INSERT INTO webhook_endpoints (id, customer_id, url, secret, statuses, enabled,
                                              disabled_reason, consecutive_failures, created_at,
                                              starts_at_epoch, starts_at_sequence)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,
                       pg_snapshot_xmin(pg_current_snapshot())::text::int8, 0)"#,
            endpoint.id.as_uuid(),
            endpoint.customer.as_ref().map(CustomerId::as_str),
            endpoint.url,
            endpoint.secret,
            &statuses as &[&str],
            endpoint.enabled,
            endpoint.disabled_reason,
            i32::try_from(endpoint.consecutive_failures).unwrap_or(i32::MAX),
            endpoint.created_at,
        )
        .execute(self.pool())
        .await
        .map_err(map)?;
        Ok(())
    }

    async fn webhook(&self, id: WebhookId) -> Result<WebhookEndpoint> {
        sqlx::query_as!(
            EndpointRow,
            r#"SELECT id, customer_id, url, secret, statuses, enabled, disabled_reason,
                      consecutive_failures, created_at, starts_at_epoch, starts_at_sequence
                 FROM webhook_endpoints WHERE id = $1"#,
            id.as_uuid(),
        )
        .fetch_optional(self.pool())
        .await
        .map_err(map)?
        .ok_or_else(|| Error::not_found("webhook", id))?
        .into_endpoint()
    }

    async fn webhooks(&self, customer: Option<&CustomerId>) -> Result<Vec<WebhookEndpoint>> {
        let rows = match customer {
            Some(customer) => {
                sqlx::query_as!(
                    EndpointRow,
                    r#"SELECT id, customer_id, url, secret, statuses, enabled, disabled_reason,
                          consecutive_failures, created_at, starts_at_epoch, starts_at_sequence
                     FROM webhook_endpoints WHERE customer_id = $1 ORDER BY id"#,
                    customer.as_str(),
                )
                .fetch_all(self.pool())
                .await
            }
            None => {
                sqlx::query_as!(
                    EndpointRow,
                    r#"SELECT id, customer_id, url, secret, statuses, enabled, disabled_reason,
                          consecutive_failures, created_at, starts_at_epoch, starts_at_sequence
                     FROM webhook_endpoints ORDER BY id"#,
                )
                .fetch_all(self.pool())
                .await
            }
        };
        rows.map_err(map)?
            .into_iter()
            .map(EndpointRow::into_endpoint)
            .collect()
    }

    async fn delete_webhook(&self, id: WebhookId) -> Result<()> {
        let deleted = sqlx::query!("DELETE FROM webhook_endpoints WHERE id = $1", id.as_uuid())
            .execute(self.pool())
            .await
            .map_err(map)?;
        if deleted.rows_affected() == 0 {
            return Err(Error::not_found("webhook", id));
        }
        Ok(())
    }

    async fn record_delivery(
        &self,
        id: WebhookId,
        outcome: &DeliveryOutcome,
        disable_after: u32,
    ) -> Result<WebhookEndpoint> {
        let failure = match outcome {
            DeliveryOutcome::Delivered => None,
            DeliveryOutcome::Failed(reason) => Some(reason.as_str()),
        };
        sqlx::query_as!(
            EndpointRow,
            r#"UPDATE webhook_endpoints
                  SET consecutive_failures = CASE WHEN $2::text IS NULL THEN 0
                                                  ELSE consecutive_failures + 1 END,
                      enabled = enabled AND ($2::text IS NULL OR consecutive_failures + 1 < $3),
                      disabled_reason = CASE
                          WHEN enabled AND $2::text IS NOT NULL AND consecutive_failures + 1 >= $3
                          THEN (consecutive_failures + 1) || ' deliveries in a row failed; the last: ' || $2
                          ELSE disabled_reason END
                WHERE id = $1
            RETURNING id, customer_id, url, secret, statuses, enabled, disabled_reason,
                      consecutive_failures, created_at, starts_at_epoch, starts_at_sequence"#,
            id.as_uuid(),
            failure,
            i32::try_from(disable_after).unwrap_or(i32::MAX),
        )
        .fetch_optional(self.pool())
        .await
        .map_err(map)?
        .ok_or_else(|| Error::not_found("webhook", id))?
        .into_endpoint()
    }

    async fn enable_webhook(&self, id: WebhookId) -> Result<WebhookEndpoint> {
        sqlx::query_as!(
            EndpointRow,
            r#"UPDATE webhook_endpoints
                  SET enabled = true, disabled_reason = NULL, consecutive_failures = 0
                WHERE id = $1
            RETURNING id, customer_id, url, secret, statuses, enabled, disabled_reason,
                      consecutive_failures, created_at, starts_at_epoch, starts_at_sequence"#,
            id.as_uuid(),
        )
        .fetch_optional(self.pool())
        .await
        .map_err(map)?
        .ok_or_else(|| Error::not_found("webhook", id))?
        .into_endpoint()
    }

    async fn webhook_cursor(&self) -> Result<Option<EventCursor>> {
        let row = sqlx::query!("SELECT epoch, sequence FROM webhook_dispatch")
            .fetch_optional(self.pool())
            .await
            .map_err(map)?;
        row.map(|row| {
            let part = |n: i64| u64::try_from(n).map_err(|e| corrupt("webhook position", e));
            Ok(EventCursor::new(part(row.epoch)?, part(row.sequence)?))
        })
        .transpose()
    }

    async fn dispatch_webhooks(
        &self,
        from: Option<EventCursor>,
        to: EventCursor,
        deliveries: &[OutboxMessage],
    ) -> Result<()> {
        let (epoch, sequence) = position(to);
        let mut tx = self.pool().begin().await.map_err(map)?;
        let moved = match from {
            None => {
                sqlx::query!(
                    "INSERT INTO webhook_dispatch (epoch, sequence) VALUES ($1, $2)
                 ON CONFLICT (only_row) DO NOTHING",
                    epoch,
                    sequence,
                )
                .execute(&mut *tx)
                .await
            }
            Some(from) => {
                let (from_epoch, from_sequence) = position(from);
                sqlx::query!(
                    "UPDATE webhook_dispatch SET epoch = $3, sequence = $4
                      WHERE epoch = $1 AND sequence = $2",
                    from_epoch,
                    from_sequence,
                    epoch,
                    sequence,
                )
                .execute(&mut *tx)
                .await
            }
        }
        .map_err(map)?;
        if moved.rows_affected() == 0 {
            return Err(Error::conflict(
                "the webhook dispatcher's position moved meanwhile",
            ));
        }
        write_outbox(&mut tx, deliveries).await.map_err(map)?;
        tx.commit().await.map_err(map)?;
        Ok(())
    }
}
