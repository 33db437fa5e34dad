//! The HTTP routes of one mock vendor.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use serde::Deserialize;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;

use crate::catalog::CURRENCY;
use crate::error::VendorError;
use crate::fault_layer::apply_faults;
use crate::faults::FaultUpdate;
use crate::state::{PlacedLine, Placement, VendorState, vendor_now};

/// Rows per page when the client does not say.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// The most rows a page may ask for.
pub const MAX_PAGE_SIZE: usize = 10_000;
/// The most lines one order may have.
const MAX_LINES: usize = 100;
/// The most units one line may ask for.
const MAX_LINE_QUANTITY: i64 = 1_000_000;

type Shared = State<Arc<VendorState>>;

/// The whole router of one vendor: its API (under the fault switches) and the
/// `/simulate/...` controls (never faulted).
pub(crate) fn router(state: Arc<VendorState>) -> Router {
    let api = Router::new()
        .route("/health", get(health))
        .route("/info", get(info))
        .route("/stock", get(stock))
        .route("/orders", post(place_order))
        .route("/orders/{id}", get(order))
        .route("/orders/{id}/cancel", post(cancel_order))
        .route_layer(middleware::from_fn_with_state(state.clone(), apply_faults));
    let controls = Router::new()
        .route("/simulate/fluctuation", post(fluctuate))
        .route("/simulate/fault", get(faults).post(set_faults))
        .route("/simulate/reset", post(reset_faults))
        .route("/simulate/stock", post(set_stock))
        .route("/simulate/orders", get(all_orders));
    api.merge(controls)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

async fn not_found() -> VendorError {
    VendorError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

async fn method_not_allowed() -> VendorError {
    VendorError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method",
    )
}

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

async fn health(State(state): Shared) -> Json<Value> {
    Json(json!({ "status": "ok", "vendor": state.config.id, "time": rfc3339(vendor_now()) }))
}

async fn info(State(state): Shared) -> Json<Value> {
    Json(json!({
        "vendorId": state.config.id,
        "name": state.config.name,
        "skuCount": state.sku_count(),
        "orders": state.order_count(),
        "faults": state.faults(),
    }))
}

/// Reads a positive whole number from the query, or its default.
fn query_number(
    query: &HashMap<String, String>,
    field: &'static str,
    default: usize,
    max: usize,
) -> Result<usize, VendorError> {
    let Some(text) = query.get(field) else {
        return Ok(default);
    };
    match text.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(VendorError::bad_field(
            field,
            format!("{field} must be a whole number from 1 to {max}, got {text:?}"),
        )),
    }
}

async fn stock(
    State(state): Shared,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, VendorError> {
    let Query(query) = query?;
    let page = query_number(&query, "page", 1, u32::MAX as usize)?;
    let limit = query_number(&query, "limit", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
    let read = state.page(page, limit);
    let as_of = rfc3339(read.as_of);
    let bad_data = state.faults().bad_data;
    let rows: Vec<Value> = read
        .items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let quantity = if bad_data && i == 0 {
                -5
            } else {
                item.quantity
            };
            json!({
                "sku": item.sku,
                "productId": item.product,
                "quantity": quantity,
                "price": { "minorUnits": item.price_minor, "currency": CURRENCY },
                "asOf": as_of,
            })
        })
        .collect();
    let total_pages = read.total.div_ceil(limit).max(1);
    let mut links = Vec::new();
    if page < total_pages {
        links.push(format!(
            "</stock?page={}&limit={limit}>; rel=\"next\"",
            page + 1
        ));
    }
    links.push(format!(
        "</stock?page={total_pages}&limit={limit}>; rel=\"last\""
    ));
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("x-total-count", read.total.to_string()),
        ("x-as-of", as_of),
        ("link", links.join(", ")),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    Ok((headers, Json(rows)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OrderBody {
    idempotency_key: Option<String>,
    #[serde(alias = "items")]
    lines: Vec<LineBody>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LineBody {
    sku: String,
    quantity: i64,
}

/// The idempotency key from the header or the body (they must agree if both are sent).
fn idempotency_key(headers: &HeaderMap, body: Option<&str>) -> Result<String, VendorError> {
    let header = match headers.get("idempotency-key") {
        Some(value) => Some(value.to_str().map_err(|_| {
            VendorError::bad_field("Idempotency-Key", "the header must be printable ASCII")
        })?),
        None => None,
    };
    let key = match (header, body) {
        (Some(h), Some(b)) if h != b => {
            return Err(VendorError::bad_field(
                "idempotencyKey",
                "the Idempotency-Key header and the body's idempotencyKey differ",
            ));
        }
        (Some(key), _) | (None, Some(key)) => key,
        (None, None) => {
            return Err(VendorError::bad_field(
                "Idempotency-Key",
                "an Idempotency-Key header is required",
            ));
        }
    };
    if key.is_empty() || key.len() > 255 || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(VendorError::bad_field(
            "Idempotency-Key",
            "must be 1 to 255 printable ASCII characters without spaces",
        ));
    }
    Ok(key.to_owned())
}

fn validated_lines(lines: Vec<LineBody>) -> Result<Vec<PlacedLine>, VendorError> {
    if lines.is_empty() || lines.len() > MAX_LINES {
        return Err(VendorError::bad_field(
            "lines",
            format!("an order needs 1 to {MAX_LINES} lines"),
        ));
    }
    let mut seen = HashSet::new();
    lines
        .into_iter()
        .enumerate()
        .map(|(i, line)| {
            if line.sku.is_empty() || line.sku.len() > 64 {
                return Err(VendorError::bad_field(
                    "sku",
                    format!("lines[{i}].sku must have 1 to 64 characters"),
                ));
            }
            if !(1..=MAX_LINE_QUANTITY).contains(&line.quantity) {
                return Err(VendorError::bad_field(
                    "quantity",
                    format!(
                        "lines[{i}].quantity must be from 1 to {MAX_LINE_QUANTITY}, got {}",
                        line.quantity
                    ),
                ));
            }
            if !seen.insert(line.sku.clone()) {
                return Err(VendorError::bad_field(
                    "sku",
                    format!("lines[{i}].sku {} appears twice", line.sku),
                ));
            }
            Ok(PlacedLine {
                sku: line.sku,
                quantity: line.quantity,
            })
        })
        .collect()
}

async fn place_order(
    State(state): Shared,
    headers: HeaderMap,
    body: Result<Json<OrderBody>, JsonRejection>,
) -> Result<Response, VendorError> {
    let Json(body) = body?;
    let key = idempotency_key(&headers, body.idempotency_key.as_deref())?;
    let lines = validated_lines(body.lines)?;
    match state.place(&key, lines) {
        Placement::Created(record) => Ok((StatusCode::CREATED, Json(record)).into_response()),
        Placement::Replayed(record) => Ok((
            StatusCode::OK,
            [(
                header::HeaderName::from_static("idempotent-replayed"),
                HeaderValue::from_static("true"),
            )],
            Json(record),
        )
            .into_response()),
        Placement::Short(short) => {
            let names: Vec<&str> = short.iter().map(|s| s.sku.as_str()).collect();
            Err(VendorError::new(
                StatusCode::CONFLICT,
                "insufficient_stock",
                format!("not enough stock for {}", names.join(", ")),
            )
            .with("short", json!(short)))
        }
        Placement::KeyReused => Err(VendorError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            format!("key {key} was already used for an order with other lines"),
        )),
        Placement::Cancelled(record) => Err(VendorError::new(
            StatusCode::CONFLICT,
            "order_cancelled",
            format!("the order under key {key} was cancelled and cannot be placed again"),
        )
        .with("order", json!(record))),
    }
}

async fn order(State(state): Shared, Path(id): Path<String>) -> Result<Response, VendorError> {
    state
        .order(&id)
        .map(|record| Json(record).into_response())
        .ok_or_else(|| {
            VendorError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no order with id or key {id}"),
            )
        })
}

async fn cancel_order(State(state): Shared, Path(id): Path<String>) -> Response {
    let faults = state.faults();
    if faults.cancel_latency_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(faults.cancel_latency_ms)).await;
    }
    if faults.cancel_refusal_status != 0 {
        let status = StatusCode::from_u16(faults.cancel_refusal_status)
            .unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
        return VendorError::new(
            status,
            "cancellation_refused",
            format!("cancellations are refused for now (key or id {id})"),
        )
        .into_response();
    }
    if faults.forget_unknown_cancels {
        return match state.cancel_if_known(&id) {
            Some(record) => Json(record).into_response(),
            None => VendorError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no order with id or key {id}"),
            )
            .into_response(),
        };
    }
    Json(state.cancel(&id)).into_response()
}

async fn fluctuate(State(state): Shared) -> Json<Value> {
    let changes = state.fluctuate();
    Json(json!({
        "changed": changes.len(),
        "asOf": rfc3339(vendor_now()),
        "changes": changes.iter().take(20).collect::<Vec<_>>(),
    }))
}

/// Every order record this vendor keeps (live, cancelled, and keys cancelled before
/// any placement), for audits from outside the process.
async fn all_orders(State(state): Shared) -> Json<Value> {
    Json(json!({ "orders": state.all_orders() }))
}

async fn faults(State(state): Shared) -> Json<Value> {
    Json(json!(state.faults()))
}

async fn set_faults(
    State(state): Shared,
    body: Result<Json<FaultUpdate>, JsonRejection>,
) -> Result<Json<Value>, VendorError> {
    let Json(update) = body?;
    let faults = state
        .faults()
        .updated(update)
        .map_err(|(field, reason)| VendorError::bad_field(field, format!("{field}: {reason}")))?;
    state.set_faults(faults);
    tracing::info!(vendor = %state.config.id, ?faults, "fault switches changed");
    Ok(Json(json!(faults)))
}

async fn reset_faults(State(state): Shared) -> Json<Value> {
    state.set_faults(Default::default());
    Json(json!(state.faults()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetStock {
    sku: String,
    quantity: i64,
}

async fn set_stock(
    State(state): Shared,
    body: Result<Json<SetStock>, JsonRejection>,
) -> Result<Json<Value>, VendorError> {
    let Json(body) = body?;
    if !(0..=MAX_LINE_QUANTITY).contains(&body.quantity) {
        return Err(VendorError::bad_field(
            "quantity",
            format!("quantity must be from 0 to {MAX_LINE_QUANTITY}"),
        ));
    }
    if !state.set_quantity(&body.sku, body.quantity) {
        return Err(VendorError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("this vendor does not sell {}", body.sku),
        ));
    }
    Ok(Json(json!({ "sku": body.sku, "quantity": body.quantity })))
}
