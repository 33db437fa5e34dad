//! Operations for admin keys: on-demand stock sync, dead-letter inspection and replay.

use aggregator_core::domain::{MessageId, QueueName, VendorId};
use aggregator_core::service::request_syncs;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::extract::{Caller, ListQuery, OptionalJson};
use crate::api::problem::{ApiError, Problem};
use crate::api::requests::{ReplayBody, StockSyncBody};
use crate::api::state::ApiState;
use crate::api::views::{Answer, rfc3339};

/// Sync requests queued.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SyncQueued {
    /// The vendors whose sync was queued on `stock_sync_queue`.
    queued: Vec<String>,
}

/// Queues a stock sync of every vendor (or of one) on `stock_sync_queue`.
#[utoipa::path(post, path = "/api/ops/stock-sync", tag = "operations",
    request_body(content = Option<StockSyncBody>, description = "Leave out `vendor` to sync every vendor"),
    responses(
        (status = 202, description = "Queued", body = Answer<SyncQueued>),
        (status = 403, description = "Needs an admin key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such vendor", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn stock_sync(
    State(state): State<ApiState>,
    caller: Caller,
    OptionalJson(body): OptionalJson<StockSyncBody>,
) -> Result<(StatusCode, Json<Answer<SyncQueued>>), ApiError> {
    caller.require_admin()?;
    let known: Vec<VendorId> = state
        .inner
        .store
        .vendors()
        .await?
        .into_iter()
        .map(|v| v.id)
        .collect();
    let targets = match body.vendor {
        Some(id) => {
            let id = VendorId::new(&id)
                .map_err(|e| ApiError::from(e).rename_fields(&[("vendorId", "vendor")]))?;
            if !known.contains(&id) {
                return Err(ApiError::not_found(format!("no vendor {id}")));
            }
            vec![id]
        }
        None => known,
    };
    let queued = request_syncs(state.inner.queue.as_ref(), targets)
        .await?
        .into_iter()
        .map(|(vendor, _)| vendor.to_string())
        .collect();
    Ok((
        StatusCode::ACCEPTED,
        Json(Answer::new(SyncQueued { queued })),
    ))
}

/// A message in a dead-letter queue.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeadLetterView {
    /// The message id.
    message_id: String,
    /// Attempts it had.
    attempts: u32,
    /// Why the last one failed.
    reason: String,
    /// When it was dead-lettered.
    dead_at: String,
    /// The message body (JSON when it is JSON, else text).
    #[schema(value_type = Object)]
    body: serde_json::Value,
}

/// Dead letters of a queue.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeadLetterList {
    /// The queue.
    queue: String,
    /// Oldest first, at most `limit`.
    dead_letters: Vec<DeadLetterView>,
}

fn queue(text: &str) -> Result<QueueName, ApiError> {
    QueueName::parse(text).map_err(ApiError::from)
}

/// Lists dead letters of `order_queue`, `stock_sync_queue` or `webhook_queue`, oldest first, leaving them
/// in place.
#[utoipa::path(get, path = "/api/ops/dlq/{queue}", tag = "operations",
    params(
        ("queue" = String, Path, pattern = "^(order_queue|stock_sync_queue|webhook_queue)$", description = "order_queue, stock_sync_queue or webhook_queue"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "1 to 100, default 20"),
    ),
    responses(
        (status = 200, description = "Dead letters", body = Answer<DeadLetterList>),
        (status = 400, description = "Unknown queue", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs an admin key", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn dead_letters(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    query: ListQuery,
) -> Result<Json<Answer<DeadLetterList>>, ApiError> {
    caller.require_admin()?;
    let queue = queue(&name)?;
    let letters = state
        .inner
        .queue
        .dead_letters(queue, query.limit as usize)
        .await?;
    Ok(Json(Answer::new(DeadLetterList {
        queue: queue.as_str().to_owned(),
        dead_letters: letters
            .into_iter()
            .map(|letter| DeadLetterView {
                message_id: letter.message.id.to_string(),
                attempts: letter.attempts,
                reason: letter.reason,
                dead_at: rfc3339(letter.dead_at),
                body: serde_json::from_slice(&letter.message.body).unwrap_or_else(|_| {
                    serde_json::Value::String(
                        String::from_utf8_lossy(&letter.message.body).into_owned(),
                    )
                }),
            })
            .collect(),
    })))
}

/// Dead letters moved back.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Replayed {
    /// How many messages went back to the queue as first attempts.
    replayed: usize,
}

/// Moves dead letters (all, or one by message id) back to their queue.
#[utoipa::path(post, path = "/api/ops/dlq/{queue}/replay", tag = "operations",
    params(("queue" = String, Path, pattern = "^(order_queue|stock_sync_queue|webhook_queue)$", description = "order_queue, stock_sync_queue or webhook_queue")),
    request_body(content = Option<ReplayBody>, description = "Leave out `messageId` to replay all"),
    responses(
        (status = 200, description = "Replayed", body = Answer<Replayed>),
        (status = 400, description = "Unknown queue or bad message id", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs an admin key", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn replay(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    OptionalJson(body): OptionalJson<ReplayBody>,
) -> Result<Json<Answer<Replayed>>, ApiError> {
    caller.require_admin()?;
    let queue = queue(&name)?;
    let only = body
        .message_id
        .map(|id| {
            id.parse::<MessageId>().map_err(|_| {
                ApiError::invalid("messageId", format!("{id:?} is not a message id (a UUID)"))
            })
        })
        .transpose()?;
    let replayed = state.inner.queue.replay_dead_letters(queue, only).await?;
    Ok(Json(Answer::new(Replayed { replayed })))
}
