//! [`HttpWebhookSender`]: posts signed deliveries over HTTP, only to allowed
//! destinations, with a bounded time and a bounded answer.

use std::time::Duration;

use aggregator_core::domain::WebhookEndpoint;
use aggregator_core::domain::webhook_signature::{
    ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign,
};
use aggregator_core::error::{Error, Result};
use aggregator_core::service::WebhookSender;
use async_trait::async_trait;
use reqwest::redirect::Policy;
use time::OffsetDateTime;

use super::destination::{parse_endpoint_url, resolve_destination};

/// At most this much of a receiver's answer is read (to quote it in a failure).
pub const MAX_ANSWER_BYTES: usize = 1_024;

/// How webhook deliveries go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookSenderConfig {
    /// How long one delivery may take, connecting included.
    pub timeout: Duration,
    /// Whether loopback and private addresses are allowed (an operator setting, for
    /// receivers inside the same network; off by default).
    pub allow_private: bool,
}

impl Default for WebhookSenderConfig {
    /// 5 s per delivery, public addresses only.
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            allow_private: false,
        }
    }
}

/// Posts each delivery as JSON with the `Webhook-Id`, `Webhook-Timestamp` and
/// `Webhook-Signature` headers (see
/// [`aggregator_core::domain::webhook_signature`]), following no redirects and through
/// no proxy (whatever `HTTP_PROXY` says), to the
/// addresses the destination check resolved (so a name cannot turn private between the
/// check and the connection). A 2xx answer is a delivery; anything else fails it with
/// the status and the start of the answer.
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpWebhookSender {
    config: WebhookSenderConfig,
}

impl HttpWebhookSender {
    /// A sender with `config`.
    pub fn new(config: WebhookSenderConfig) -> Self {
        Self { config }
    }
}

#[async_trait]
impl WebhookSender for HttpWebhookSender {
    async fn send(&self, endpoint: &WebhookEndpoint, delivery_id: &str, body: &[u8]) -> Result<()> {
        let url = parse_endpoint_url(&endpoint.url)?;
        let addresses = resolve_destination(&url, self.config.allow_private).await?;
        let host = url.host_str().unwrap_or_default().to_owned();
        let what = format!("webhook {}", endpoint.id);
        // No proxy: a proxy would resolve the name itself, around the address check.
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(Policy::none())
            .timeout(self.config.timeout)
            .connect_timeout(self.config.timeout)
            .resolve_to_addrs(&host, &addresses)
            .user_agent(concat!(
                "order-aggregator-webhooks/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| Error::permanent(what.clone(), e.to_string()))?;
        let timestamp = OffsetDateTime::now_utc().unix_timestamp();
        let signature = sign(endpoint.secret.as_bytes(), timestamp, body);
        let mut answer = client
            .post(url)
            .header("content-type", "application/json")
            .header(ID_HEADER, delivery_id)
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| Error::transient(what.clone(), describe(e)))?;
        let status = answer.status();
        if status.is_success() {
            return Ok(());
        }
        let mut quoted = Vec::new();
        while quoted.len() < MAX_ANSWER_BYTES {
            match answer.chunk().await {
                Ok(Some(chunk)) => quoted.extend_from_slice(&chunk),
                _ => break,
            }
        }
        quoted.truncate(MAX_ANSWER_BYTES);
        let text = String::from_utf8_lossy(&quoted);
        Err(Error::transient(
            what,
            format!("the receiver answered {status}: {}", text.trim()),
        ))
    }
}

/// The error without the URL (the endpoint is named by id; its URL may carry a token).
fn describe(error: reqwest::Error) -> String {
    if error.is_timeout() {
        "no answer in time".to_owned()
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else {
        error.without_url().to_string()
    }
}
