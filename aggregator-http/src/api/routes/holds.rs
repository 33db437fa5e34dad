//! Explicit stock holds: create with a time to live, extend, turn into an order,
//! release.

use aggregator_core::domain::{HoldId, OrderDetails};
use aggregator_core::service::ItemRequest;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use time::Duration;

use crate::api::extract::{ApiJson, Caller, OptionalJson};
use crate::api::problem::{ApiError, Problem};
use crate::api::requests::{ExtendBody, HoldBody, HoldOrderBody};
use crate::api::routes::orders::{address, email};
use crate::api::state::ApiState;
use crate::api::views::{Answer, HoldData, PlacedView};

fn hold_id(text: &str) -> Result<HoldId, ApiError> {
    text.parse::<HoldId>()
        .map_err(|_| ApiError::invalid("id", format!("{text:?} is not a hold id (a UUID)")))
}

fn ttl(seconds: i64) -> Result<Duration, ApiError> {
    if seconds < 1 {
        return Err(ApiError::invalid("ttlSeconds", "must be at least 1"));
    }
    Ok(Duration::seconds(seconds))
}

/// Holds units for a customer for `ttlSeconds` (all items or none).
#[utoipa::path(post, path = "/api/holds", tag = "holds",
    request_body = HoldBody,
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "Makes a retry safe")),
    responses(
        (status = 201, description = "Held", body = Answer<HoldData>),
        (status = 400, description = "Invalid request", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not enough stock", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn create_hold(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<HoldBody>,
) -> Result<(StatusCode, Json<Answer<HoldData>>), ApiError> {
    let customer = caller.customer(body.customer_id.as_deref())?;
    let ttl = ttl(body.ttl_seconds)?;
    let items: Vec<ItemRequest> = body
        .items
        .into_iter()
        .map(|i| ItemRequest {
            item: i.sku,
            quantity: i.quantity,
            unit_price: None,
        })
        .collect();
    let hold = state
        .inner
        .orders
        .create_hold(customer, &items, ttl)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Answer::new(HoldData::from(&hold))),
    ))
}

/// One hold.
#[utoipa::path(get, path = "/api/holds/{id}", tag = "holds",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "The hold id (UUID)")),
    responses(
        (status = 200, description = "The hold", body = Answer<HoldData>),
        (status = 404, description = "No such hold", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_hold(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Answer<HoldData>>, ApiError> {
    let hold = state
        .inner
        .orders
        .hold(hold_id(&id)?, &caller.scope())
        .await?;
    Ok(Json(Answer::new(HoldData::from(&hold))))
}

/// Makes an active hold last `ttlSeconds` from now.
#[utoipa::path(post, path = "/api/holds/{id}/extend", tag = "holds",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "The hold id (UUID)")),
    request_body = ExtendBody,
    responses(
        (status = 200, description = "Extended", body = Answer<HoldData>),
        (status = 404, description = "No such hold", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The hold is no longer active", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn extend_hold(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ExtendBody>,
) -> Result<Json<Answer<HoldData>>, ApiError> {
    let id = hold_id(&id)?;
    let hold = state
        .inner
        .orders
        .extend_hold(id, ttl(body.ttl_seconds)?, &caller.scope())
        .await
        .map_err(|e| ApiError::from(e).rename_fields(&[("ttl", "ttlSeconds")]))?;
    Ok(Json(Answer::new(HoldData::from(&hold))))
}

/// Turns an active hold into an order that takes over its units.
#[utoipa::path(post, path = "/api/holds/{id}/order", tag = "holds",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "The hold id (UUID)")),
    request_body(content = Option<HoldOrderBody>, description = "The order's details"),
    responses(
        (status = 201, description = "Ordered", body = PlacedView),
        (status = 200, description = "The hold was already ordered: that order", body = PlacedView),
        (status = 404, description = "No such hold", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The hold is no longer active", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn order_hold(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<HoldOrderBody>,
) -> Result<(StatusCode, Json<PlacedView>), ApiError> {
    let id = hold_id(&id)?;
    let hold = state.inner.orders.hold(id, &caller.scope()).await?;
    let details = OrderDetails {
        customer: hold.customer.clone(),
        email: email(body.customer_email)?,
        shipping_address: address(body.shipping_address),
        payment_method: body.payment_method,
        notes: body.notes,
    };
    let placed = state.inner.orders.order_from_hold(id, details).await?;
    Ok(PlacedView::answer(&placed))
}

/// Gives a hold's units back (idempotent).
#[utoipa::path(delete, path = "/api/holds/{id}", tag = "holds",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "The hold id (UUID)")),
    responses(
        (status = 200, description = "Released", body = Answer<HoldData>),
        (status = 404, description = "No such hold", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn release_hold(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Answer<HoldData>>, ApiError> {
    let hold = state
        .inner
        .orders
        .release_hold(hold_id(&id)?, &caller.scope())
        .await?;
    Ok(Json(Answer::new(HoldData::from(&hold))))
}
