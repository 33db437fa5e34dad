//! `/api/webhooks`: registering where order events are delivered.

use aggregator_core::domain::{CustomerId, OrderStatus, WebhookEndpoint, WebhookId};
use aggregator_core::error::Error;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::api::extract::{ApiJson, Caller};
use crate::api::middleware::KeptWithout;
use crate::api::problem::{ApiError, Problem};
use crate::api::state::ApiState;
use crate::api::views::Answer;
use crate::webhooks::{parse_endpoint_url, resolve_destination};

/// `POST /api/webhooks`.
#[derive(Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct WebhookBody {
    /// Where deliveries are posted (http or https; public addresses only unless the
    /// operator allows private ones).
    #[schema(example = "https://shop.example.com/hooks/orders", max_length = 2048)]
    url: String,
    /// The signing secret (16 to 256 printable characters); one is made when left out,
    /// and shown only in this answer.
    #[schema(min_length = 16, max_length = 256)]
    secret: Option<String>,
    /// Event types wanted (`order.reserved`, `order.confirmed`, `order.failed`,
    /// `order.cancelled`, `order.expired`); all when left out or empty.
    #[serde(default)]
    events: Vec<String>,
    /// Whose events: a client key's own customer (or left out); an admin key may name a
    /// customer, or leave it out for every customer's.
    customer_id: Option<String>,
}

impl std::fmt::Debug for WebhookBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookBody")
            .field("url", &self.url)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("events", &self.events)
            .field("customer_id", &self.customer_id)
            .finish()
    }
}

/// A registered endpoint (its secret only in the answer that created it).
#[derive(Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WebhookView {
    id: String,
    /// Absent: every customer's events.
    customer_id: Option<String>,
    url: String,
    /// Event types delivered; empty: all.
    events: Vec<String>,
    /// False once disabled: nothing is sent until it is enabled again.
    enabled: bool,
    /// Why it was disabled.
    disabled_reason: Option<String>,
    /// Deliveries that failed in a row.
    consecutive_failures: u32,
    /// RFC 3339.
    created_at: String,
    /// Only when just created.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

impl std::fmt::Debug for WebhookView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookView")
            .field("id", &self.id)
            .field("customer_id", &self.customer_id)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("enabled", &self.enabled)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl WebhookView {
    fn from_endpoint(endpoint: &WebhookEndpoint, with_secret: bool) -> Self {
        Self {
            id: endpoint.id.to_string(),
            customer_id: endpoint.customer.as_ref().map(ToString::to_string),
            url: endpoint.url.clone(),
            events: endpoint
                .statuses
                .iter()
                .map(|s| format!("order.{}", s.as_str()))
                .collect(),
            enabled: endpoint.enabled,
            disabled_reason: endpoint.disabled_reason.clone(),
            consecutive_failures: endpoint.consecutive_failures,
            created_at: endpoint
                .created_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            secret: with_secret.then(|| endpoint.secret.clone()),
        }
    }
}

fn statuses(events: &[String]) -> Result<Vec<OrderStatus>, ApiError> {
    events
        .iter()
        .enumerate()
        .map(|(i, event)| {
            event
                .strip_prefix("order.")
                .and_then(|status| OrderStatus::parse(status).ok())
                .ok_or_else(|| {
                    ApiError::invalid(
                        format!("events[{i}]"),
                        "must be order.reserved, order.confirmed, order.failed, \
                         order.cancelled or order.expired",
                    )
                })
        })
        .collect()
}

/// A fresh secret: 64 hex characters from the operating system's randomness.
fn new_secret() -> String {
    format!(
        "whsec_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

fn webhook_id(text: &str) -> Result<WebhookId, ApiError> {
    Ok(text.parse::<WebhookId>()?)
}

/// The endpoint, if this caller may see it (a client only its customer's own; any
/// other answers 404, as if it did not exist).
async fn visible(
    state: &ApiState,
    caller: &Caller,
    id: WebhookId,
) -> Result<WebhookEndpoint, ApiError> {
    let endpoint = state.inner.store.webhook(id).await?;
    match caller {
        Caller::Client(own) if endpoint.customer.as_ref() != Some(own) => {
            Err(Error::not_found("webhook", id).into())
        }
        _ => Ok(endpoint),
    }
}

/// Registers a webhook endpoint for order events.
///
/// Deliveries are `POST`s of the event as JSON with `Webhook-Id` (the same on every
/// retry: drop repeats by it), `Webhook-Timestamp` (Unix seconds) and
/// `Webhook-Signature` (`v1=` and the hex HMAC-SHA256 of `<timestamp>.<body>` under the
/// secret). They are retried through the queue's delays, then dead-lettered in
/// `webhook_queue.dlq` (replayable); an endpoint failing many times in a row is
/// disabled with the reason. Events of one order carry its `version`: a receiver keeps
/// the highest, since retries can reorder them.
#[utoipa::path(post, path = "/api/webhooks", tag = "events",
    request_body = WebhookBody,
    responses(
        (status = 201, description = "Registered (with its secret, shown this once)", body = Answer<WebhookView>),
        (status = 400, description = "Invalid, a host that does not resolve, or a destination inside the network", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A client key naming another customer", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn create_webhook(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<WebhookBody>,
) -> Result<
    (
        StatusCode,
        Extension<KeptWithout>,
        Json<Answer<WebhookView>>,
    ),
    ApiError,
> {
    let customer = match (&caller, body.customer_id.as_deref()) {
        (Caller::Client(_), given) => Some(caller.customer(given)?),
        (_, Some(given)) => Some(CustomerId::new(given)?),
        (_, None) => None,
    };
    let url = parse_endpoint_url(&body.url)?;
    // A name that does not resolve now is refused as input; at delivery time the same
    // failure is retried, since names can come back.
    match resolve_destination(&url, state.inner.config.webhook_allow_private).await {
        Ok(_) => {}
        Err(Error::Unavailable { .. }) => {
            return Err(ApiError::invalid(
                "url",
                format!(
                    "{} does not resolve to an address from here",
                    url.host_str().unwrap_or_default()
                ),
            ));
        }
        Err(error) => return Err(error.into()),
    }
    let now = OffsetDateTime::now_utc();
    // Microseconds, as PostgreSQL keeps them, so a read-back shows the same time.
    let created_at = now
        .replace_nanosecond(now.microsecond() * 1_000)
        .unwrap_or(now);
    let endpoint = WebhookEndpoint::new(
        customer,
        body.url,
        body.secret.unwrap_or_else(new_secret),
        statuses(&body.events)?,
        created_at,
    );
    state
        .inner
        .store
        .create_webhook(&endpoint)
        .await
        .map_err(|e| ApiError::from(e).rename_fields(&[("statuses", "events")]))?;
    Ok((
        StatusCode::CREATED,
        // The copy kept for an Idempotency-Key replay leaves the secret out.
        Extension(KeptWithout::WebhookSecret(endpoint.id)),
        Json(Answer::new(WebhookView::from_endpoint(&endpoint, true))),
    ))
}

/// The caller's webhook endpoints (an admin's: every one).
#[utoipa::path(get, path = "/api/webhooks", tag = "events",
    responses((status = 200, description = "The endpoints, oldest first", body = Answer<Vec<WebhookView>>)))]
pub(crate) async fn list_webhooks(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<Json<Answer<Vec<WebhookView>>>, ApiError> {
    let customer = match &caller {
        Caller::Client(own) => Some(own),
        _ => None,
    };
    let endpoints = state.inner.store.webhooks(customer).await?;
    Ok(Json(Answer::new(
        endpoints
            .iter()
            .map(|e| WebhookView::from_endpoint(e, false))
            .collect(),
    )))
}

/// One webhook endpoint, with how its deliveries have gone.
#[utoipa::path(get, path = "/api/webhooks/{id}", tag = "events",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "The webhook id (UUID)")),
    responses(
        (status = 200, description = "The endpoint", body = Answer<WebhookView>),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_webhook(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Answer<WebhookView>>, ApiError> {
    let endpoint = visible(&state, &caller, webhook_id(&id)?).await?;
    Ok(Json(Answer::new(WebhookView::from_endpoint(
        &endpoint, false,
    ))))
}

/// Removes a webhook endpoint; nothing more is sent to it.
#[utoipa::path(delete, path = "/api/webhooks/{id}", tag = "events",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "The webhook id (UUID)")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn delete_webhook(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let endpoint = visible(&state, &caller, webhook_id(&id)?).await?;
    state.inner.store.delete_webhook(endpoint.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Enables a disabled webhook endpoint again (its failures forgotten); replay its
/// dead letters from `webhook_queue` to deliver what it missed.
#[utoipa::path(post, path = "/api/webhooks/{id}/enable", tag = "events",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "The webhook id (UUID)")),
    responses(
        (status = 200, description = "Enabled", body = Answer<WebhookView>),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn enable_webhook(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Answer<WebhookView>>, ApiError> {
    let endpoint = visible(&state, &caller, webhook_id(&id)?).await?;
    let endpoint = state.inner.store.enable_webhook(endpoint.id).await?;
    Ok(Json(Answer::new(WebhookView::from_endpoint(
        &endpoint, false,
    ))))
}
