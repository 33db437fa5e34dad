//! The HTTP API: an axum router over [`ApiState`], with its OpenAPI description.
//!
//! JSON in camelCase as in the seed; every error is `application/problem+json` (see
//! [`Problem`]); every request gets an `X-Request-Id`; bodies over the limit get 413,
//! requests past the timeout 503, callers past their rate limit 429 with `Retry-After`.

mod access_log;
mod admission;
mod config;
mod drain;
mod extract;
mod health_report;
mod middleware;
mod problem;
mod public_paths;
mod request_id;
pub mod requests;
mod routes;
mod state;
mod stream_slots;
pub mod views;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use crate::ops::{HealthProbes, Probe, ReplicaProbe};
pub use config::{ApiConfig, ApiKeys, Role, check_bind};
pub use drain::{DRAIN_BYTES, DRAIN_TIME};
pub use problem::{ApiError, FieldProblem, PROBLEM_BASE, Problem, ShortItem};
pub use state::{ApiServices, ApiState};

use routes::{catalog, console, docs, events, health, holds, ops, orders, webhooks};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Order Aggregator API",
        description = "One catalog over many vendors' stock; orders that never oversell. Errors are application/problem+json.",
    ),
    tags(
        (name = "orders", description = "The seed's order endpoints"),
        (name = "catalog", description = "Products, availability and vendors"),
        (name = "holds", description = "Explicit stock holds"),
        (name = "events", description = "Order status changes as they happen: a stream, and webhooks"),
        (name = "operations", description = "Admin keys only"),
        (name = "health", description = "Health, metrics and docs"),
    ),
    // The data of the event stream's events and the body of webhook deliveries.
    components(schemas(events::OrderEventView, events::ResetView))
)]
struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "apiKey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

/// Answers any endpoint may give, added where an operation does not list them.
struct CommonResponses;

/// A problem+json answer described by `description`.
fn problem_response(
    description: &str,
) -> utoipa::openapi::RefOr<utoipa::openapi::response::Response> {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
        .into()
}

impl utoipa::Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let common = [
            ("400", "Invalid request (the problem names each bad field)"),
            ("401", "An API key is needed, or the key is not valid"),
            ("403", "Not allowed with this API key"),
            (
                "413",
                "The body is larger than the limit (64 KiB by default)",
            ),
            ("415", "The body is not JSON"),
            ("429", "Too many requests; see Retry-After"),
            (
                "503",
                "A dependency is unavailable, the request timed out, or (placements) the server has as many orders in flight as it takes; see Retry-After",
            ),
        ];
        // Every POST takes an Idempotency-Key (the placements in the store, the others
        // in the replay middleware), so every POST can answer these two.
        let keyed = [
            (
                "409",
                "A request with this Idempotency-Key is still running; see Retry-After",
            ),
            (
                "422",
                "This Idempotency-Key was used with a different request",
            ),
        ];
        for item in openapi.paths.paths.values_mut() {
            if let Some(post) = item.post.as_mut() {
                for (status, description) in keyed {
                    post.responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| problem_response(description));
                }
            }
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                for (status, description) in common {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| problem_response(description));
                }
            }
        }
    }
}

fn documented() -> OpenApiRouter<ApiState> {
    answered_by_the_store().merge(answers_kept_by_key())
}

/// The operations whose repeats need no kept answer: reads, and the placements, which
/// are idempotent in the store itself (durably, under the order's key).
fn answered_by_the_store() -> OpenApiRouter<ApiState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(orders::place_simple))
        .routes(routes!(orders::place_order, orders::list_orders))
        .routes(routes!(orders::get_order))
        .routes(routes!(catalog::list_products))
        .routes(routes!(catalog::get_product))
        .routes(routes!(catalog::list_vendors))
        .routes(routes!(holds::get_hold, holds::release_hold))
        .routes(routes!(events::events))
        .routes(routes!(webhooks::get_webhook, webhooks::delete_webhook))
        .routes(routes!(ops::dead_letters))
        .routes(routes!(health::health))
        .routes(routes!(health::live))
        .routes(routes!(health::ready))
        .routes(routes!(routes::metrics::metrics))
}

/// The POSTs whose answer is kept under the caller's `Idempotency-Key`
/// ([`middleware::idempotent_replay`] is attached to exactly these routes).
fn answers_kept_by_key() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(orders::cancel_order))
        .routes(routes!(holds::create_hold))
        .routes(routes!(holds::extend_hold))
        .routes(routes!(holds::order_hold))
        .routes(routes!(webhooks::create_webhook, webhooks::list_webhooks))
        .routes(routes!(webhooks::enable_webhook))
        .routes(routes!(ops::stock_sync))
        .routes(routes!(ops::replay))
}

/// The router and its OpenAPI description, with security schemes and the common
/// answers added to every operation.
fn split(routes: OpenApiRouter<ApiState>) -> (Router<ApiState>, utoipa::openapi::OpenApi) {
    use utoipa::Modify;
    let (router, mut api) = routes.split_for_parts();
    Security.modify(&mut api);
    CommonResponses.modify(&mut api);
    (router, api)
}

/// The OpenAPI description of every endpoint, as served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    split(documented()).1
}

async fn no_route() -> ApiError {
    ApiError::not_found("no such endpoint; see /docs")
}

async fn wrong_method() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        "this endpoint does not take that method; see /docs",
    )
}

/// The whole API as an axum router.
pub fn router(state: ApiState) -> Router {
    let keyed = answers_kept_by_key().route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        middleware::idempotent_replay,
    ));
    let (router, api) = split(answered_by_the_store().merge(keyed));
    let api = Arc::new(api);
    let body_limit = state.config().body_limit;
    router
        .route(
            "/openapi.json",
            get(move || {
                let api = api.clone();
                async move { Json(api.as_ref().clone()).into_response() }
            }),
        )
        .merge(docs::routes())
        .merge(console::routes())
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::authenticate,
        ))
        // Before anything else a placement costs (the key check, the rate limit's
        // round trip): a refusal for load must be cheap.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            admission::admit_placement,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::metrics_and_timeout,
        ))
        .layer(axum::middleware::from_fn(access_log::log_access))
        .layer(axum::middleware::from_fn(request_id::request_id))
        .layer(axum::middleware::from_fn(drain::drain_unread_body))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(method, path)` of every operation an OpenAPI description holds.
    fn operations(api: &utoipa::openapi::OpenApi) -> Vec<(String, String)> {
        let json = serde_json::to_value(api).expect("json");
        let mut found = Vec::new();
        for (path, item) in json["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("item").keys() {
                found.push((method.to_uppercase(), path.clone()));
            }
        }
        found.sort();
        found
    }

    #[test]
    fn every_post_but_the_placements_keeps_its_answer_by_key() {
        let (_, keyed) = answers_kept_by_key().split_for_parts();
        let keyed: Vec<_> = operations(&keyed)
            .into_iter()
            .filter(|(method, _)| method == "POST")
            .collect();
        let expected: Vec<_> = operations(&openapi())
            .into_iter()
            .filter(|(method, path)| method == "POST" && path != "/order" && path != "/api/orders")
            .collect();
        assert_eq!(keyed, expected);
        assert!(keyed.len() >= 8, "{keyed:?}");
    }
}
