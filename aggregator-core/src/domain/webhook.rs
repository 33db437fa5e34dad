//! Webhook endpoints: where a customer (or, for every customer, an operator) wants
//! order events delivered, and how deliveries to it have been going.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{CustomerId, EventCursor, LoggedOrderEvent, OrderStatus, WebhookId};
use crate::error::{Error, Result};

/// The longest secret taken.
pub const MAX_SECRET_LENGTH: usize = 256;
/// The shortest secret taken: a guessable secret would let anyone forge deliveries.
pub const MIN_SECRET_LENGTH: usize = 16;

/// A registered endpoint. Its `Debug` output leaves the secret out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEndpoint {
    /// Its id.
    pub id: WebhookId,
    /// Whose order events it receives; `None`: every customer's (registered by an admin).
    pub customer: Option<CustomerId>,
    /// Where deliveries are posted (http or https).
    pub url: String,
    /// The key deliveries are signed with (see [`super::webhook_signature`]).
    pub secret: String,
    /// Which order statuses it wants events for (an event counts by the status it moved
    /// to); empty: every one.
    pub statuses: Vec<OrderStatus>,
    /// False once it was disabled (see `disabled_reason`); nothing is sent to it then.
    pub enabled: bool,
    /// Why it was disabled.
    pub disabled_reason: Option<String>,
    /// Deliveries that failed in a row since the last one that succeeded.
    pub consecutive_failures: u32,
    /// When it was registered (our clock).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The first position in the order event log it wants, set by the store when it
    /// registers the endpoint: every event committed after the registration lies at or
    /// after it. `None` before the store set it (then `created_at` decides).
    #[serde(skip)]
    pub starts_at: Option<EventCursor>,
}

impl std::fmt::Debug for WebhookEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookEndpoint")
            .field("id", &self.id)
            .field("customer", &self.customer)
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("statuses", &self.statuses)
            .field("enabled", &self.enabled)
            .field("disabled_reason", &self.disabled_reason)
            .field("consecutive_failures", &self.consecutive_failures)
            .field("created_at", &self.created_at)
            .field("starts_at", &self.starts_at)
            .finish()
    }
}

impl WebhookEndpoint {
    /// A new, enabled endpoint with no failures yet, registered at `created_at`.
    pub fn new(
        customer: Option<CustomerId>,
        url: impl Into<String>,
        secret: impl Into<String>,
        statuses: Vec<OrderStatus>,
        created_at: OffsetDateTime,
    ) -> Self {
        Self {
            id: WebhookId::new(),
            customer,
            url: url.into(),
            secret: secret.into(),
            statuses,
            enabled: true,
            disabled_reason: None,
            consecutive_failures: 0,
            created_at,
            starts_at: None,
        }
    }

    /// Refuses (`Invalid`, naming the field) a secret shorter than
    /// [`MIN_SECRET_LENGTH`] or longer than [`MAX_SECRET_LENGTH`] or not printable ASCII,
    /// a URL that is empty or longer than 2,048, or the same status twice. (Where the URL
    /// may point is the delivering side's check.)
    pub fn validate(&self) -> Result<()> {
        if self.url.is_empty() || self.url.len() > 2_048 {
            return Err(Error::invalid("url", "must be 1 to 2,048 characters"));
        }
        let length = self.secret.len();
        if !(MIN_SECRET_LENGTH..=MAX_SECRET_LENGTH).contains(&length)
            || !self.secret.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(Error::invalid(
                "secret",
                format!(
                    "must be {MIN_SECRET_LENGTH} to {MAX_SECRET_LENGTH} printable ASCII \
                     characters without spaces"
                ),
            ));
        }
        let mut statuses = self.statuses.clone();
        statuses.sort();
        statuses.dedup();
        if statuses.len() != self.statuses.len() {
            return Err(Error::invalid("events", "lists a status twice"));
        }
        Ok(())
    }

    /// Whether this endpoint wants `event`: it is for the event's customer (or for
    /// everyone), listens for the status the order moved to, and existed when the
    /// change happened: the event lies at or after the endpoint's start position in the
    /// log (log positions, never two hosts' clocks, decide; only an endpoint or event
    /// without a position falls back to comparing times). A disabled endpoint still
    /// wants its events: they are queued and parked in the dead-letter queue until it
    /// is enabled again.
    pub fn wants(&self, event: &LoggedOrderEvent) -> bool {
        let after_registration = match (self.starts_at, event.cursor) {
            (Some(start), Some(position)) => position >= start,
            _ => event.change.at >= self.created_at,
        };
        self.customer
            .as_ref()
            .is_none_or(|customer| customer == &event.customer_id)
            && (self.statuses.is_empty() || self.statuses.contains(&event.change.to))
            && after_registration
    }
}

/// How one delivery attempt to an endpoint ended, as the endpoint's record keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The receiver answered 2xx.
    Delivered,
    /// It did not (an error status, a timeout, a refused connection...): why.
    Failed(String),
}
