//! Webhook deliveries over HTTP: where they may go, and how they are sent.

mod destination;
mod sender;

pub use destination::{MAX_URL_LENGTH, is_public, parse_endpoint_url, resolve_destination};
pub use sender::{HttpWebhookSender, MAX_ANSWER_BYTES, WebhookSenderConfig};
