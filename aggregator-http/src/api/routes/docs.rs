//! `/docs`: Swagger UI rendering `/openapi.json`, served from the binary itself.
//!
//! The page's scripts and styles are built into the binary (no CDN), and every answer
//! under `/docs` carries a content security policy that lets the page load nothing from
//! anywhere but this server: operators paste admin keys into it.

use axum::Router;
use axum::http::HeaderValue;
use axum::http::header::CONTENT_SECURITY_POLICY;
use axum::response::Response;
use utoipa_swagger_ui::{Config, SwaggerUi};

/// Where the page lives (`/docs` redirects to `/docs/`).
pub(crate) const PATH: &str = crate::api::public_paths::DOCS;

/// Only this server: scripts, styles (Swagger UI sets some inline), images (and the
/// inline `data:` icons), and the `/openapi.json` it fetches. No validator badge either.
const POLICY: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
                      script-src 'self'; connect-src 'self'; frame-ancestors 'none'; \
                      base-uri 'none'; form-action 'self'";

/// The Swagger UI routes, reading the description at `/openapi.json`.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let ui = SwaggerUi::new(PATH).config(Config::from("/openapi.json").validator_url("none"));
    Router::from(ui).layer(axum::middleware::map_response(with_policy))
}

async fn with_policy(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    response
}
