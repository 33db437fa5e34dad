//! Placing, reading and cancelling orders: the seed's endpoints.

use aggregator_core::domain::{Email, OrderDetails, OrderId, QuotedPrice, ShippingAddress};
use aggregator_core::error::Error;
use aggregator_core::service::{ItemRequest, OrderRequest};
use aggregator_core::traits::OrderQuery;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use crate::api::extract::{ApiJson, Caller, IdempotencyHeader, ListQuery, OptionalJson};
use crate::api::problem::{ApiError, Problem};
use crate::api::requests::{AddressBody, CancelBody, OrderBody, SimpleOrderBody};
use crate::api::state::ApiState;
use crate::api::views::{Answer, OrderData, OrderPage, OrderView, Pagination, PlacedView};

pub(crate) fn address(body: Option<AddressBody>) -> Option<ShippingAddress> {
    body.map(|a| ShippingAddress {
        street: a.street,
        city: a.city,
        state: a.state,
        zip_code: a.zip_code,
        country: a.country,
    })
}

pub(crate) fn email(text: Option<String>) -> Result<Option<Email>, ApiError> {
    text.map(|e| {
        Email::new(e).map_err(|e| ApiError::from(e).rename_fields(&[("email", "customerEmail")]))
    })
    .transpose()
}

/// Places `request` once it has a place among the orders in flight (see
/// `ApiConfig::max_orders_in_flight`; none within the wait: 503 `overloaded`).
async fn place(
    state: &ApiState,
    request: OrderRequest,
    key: IdempotencyHeader,
) -> Result<(StatusCode, Json<PlacedView>), ApiError> {
    let _place = state
        .inner
        .admission
        .enter()
        .await
        .ok_or_else(|| crate::api::admission::overloaded(state))?;
    let placed = state.inner.orders.place(&request, key.0).await?;
    Ok(PlacedView::answer(&placed))
}

/// Places a one-line order (the seed's `POST /order`).
#[utoipa::path(post, path = "/order", tag = "orders",
    request_body = SimpleOrderBody,
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "Makes a retry safe: same key and body, same answer")),
    responses(
        (status = 201, description = "Reserved", body = PlacedView),
        (status = 200, description = "A replay of the same Idempotency-Key", body = PlacedView),
        (status = 400, description = "Invalid request", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not enough stock", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Idempotency-Key reused", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn place_simple(
    State(state): State<ApiState>,
    caller: Caller,
    key: IdempotencyHeader,
    ApiJson(body): ApiJson<SimpleOrderBody>,
) -> Result<(StatusCode, Json<PlacedView>), ApiError> {
    let renames = [
        ("items[0].sku", "productId"),
        ("items[0].quantity", "quantity"),
        ("items[0]", "productId"),
    ];
    let customer = caller
        .customer(body.customer_id.as_deref())
        .map_err(|e| e.rename_fields(&renames))?;
    let request = OrderRequest {
        details: OrderDetails {
            customer,
            email: None,
            shipping_address: None,
            payment_method: None,
            notes: None,
        },
        items: vec![ItemRequest {
            item: body.product_id,
            quantity: body.quantity,
            unit_price: None,
        }],
    };
    place(&state, request, key)
        .await
        .map_err(|e| e.rename_fields(&renames))
}

/// Places an order (the seed's `POST /api/orders`).
#[utoipa::path(post, path = "/api/orders", tag = "orders",
    request_body = OrderBody,
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "Makes a retry safe: same key and body, same answer")),
    responses(
        (status = 201, description = "Reserved", body = PlacedView),
        (status = 200, description = "A replay of the same Idempotency-Key", body = PlacedView),
        (status = 400, description = "Invalid request", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not enough stock, or a quoted unitPrice that is not the catalog's", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Idempotency-Key reused with another body", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn place_order(
    State(state): State<ApiState>,
    caller: Caller,
    key: IdempotencyHeader,
    ApiJson(body): ApiJson<OrderBody>,
) -> Result<(StatusCode, Json<PlacedView>), ApiError> {
    let customer = caller.customer(body.customer_id.as_deref())?;
    let items = body
        .items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let unit_price = item
                .unit_price
                .map(QuotedPrice::from_f64)
                .transpose()
                .map_err(|e| e.within(&format!("items[{index}]")))?;
            Ok(ItemRequest {
                item: item.sku,
                quantity: item.quantity,
                unit_price,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let request = OrderRequest {
        details: OrderDetails {
            customer,
            email: email(body.customer_email)?,
            shipping_address: address(body.shipping_address),
            payment_method: body.payment_method,
            notes: body.notes,
        },
        items,
    };
    place(&state, request, key).await
}

/// Lists orders, newest first (a client key sees only its own).
#[utoipa::path(get, path = "/api/orders", tag = "orders",
    params(
        ("page" = Option<u64>, Query, minimum = 1, maximum = 1000000, description = "From 1"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "1 to 100, default 20"),
        ("status" = Option<String>, Query, pattern = "^(pending|reserved|confirmed|failed|cancelled|expired)$", description = "pending, reserved, confirmed, failed, cancelled or expired"),
    ),
    responses(
        (status = 200, description = "A page of orders", body = Answer<OrderPage>),
        (status = 400, description = "Bad page, limit or status", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list_orders(
    State(state): State<ApiState>,
    caller: Caller,
    query: ListQuery,
) -> Result<Json<Answer<OrderPage>>, ApiError> {
    let status = query
        .params
        .get("status")
        .map(|s| aggregator_core::domain::OrderStatus::parse(s))
        .transpose()?;
    let order_query = OrderQuery {
        customer: None,
        status,
        offset: query.offset(),
        limit: query.limit,
    };
    let page = state
        .inner
        .orders
        .list(&order_query, &caller.scope())
        .await?;
    Ok(Json(Answer::new(OrderPage {
        orders: page.items.iter().map(OrderView::from).collect(),
        pagination: Pagination::new(query.page, query.limit, page.total),
    })))
}

pub(crate) fn order_id(text: &str) -> Result<OrderId, ApiError> {
    text.parse::<OrderId>()
        .map_err(|_| ApiError::invalid("id", format!("{text:?} is not an order id (a UUID)")))
}

/// One order (a client key sees only its own; another's is 404).
#[utoipa::path(get, path = "/api/orders/{id}", tag = "orders",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "The order id (UUID)")),
    responses(
        (status = 200, description = "The order", body = Answer<OrderData>),
        (status = 400, description = "Not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_order(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Answer<OrderData>>, ApiError> {
    let order = state
        .inner
        .orders
        .get(order_id(&id)?, &caller.scope())
        .await?;
    Ok(Json(Answer::new(OrderData {
        order: OrderView::from(&order),
    })))
}

/// Cancels an order: its units go back; a confirmed order is cancelled at its vendors.
/// Cancelling a cancelled order answers it again.
#[utoipa::path(post, path = "/api/orders/{id}/cancel", tag = "orders",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "The order id (UUID)")),
    request_body(content = Option<CancelBody>, description = "Optional reason"),
    responses(
        (status = 200, description = "Cancelled", body = Answer<OrderData>),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Failed or expired orders cannot be cancelled", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn cancel_order(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<CancelBody>,
) -> Result<Json<Answer<OrderData>>, ApiError> {
    let id = order_id(&id)?;
    let reason = body
        .reason
        .unwrap_or_else(|| "cancelled by the client".to_owned());
    aggregator_core::domain::check_free_text("reason", &reason, 500, false)?;
    let order = state
        .inner
        .orders
        .cancel(id, &reason, &caller.scope())
        .await?;
    Ok(Json(Answer::new(OrderData {
        order: OrderView::from(&order),
    })))
}
