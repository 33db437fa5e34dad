//! Webhook deliveries over HTTP: where they may go.

mod destination;

pub use destination::{MAX_URL_LENGTH, is_public, parse_endpoint_url, resolve_destination};
