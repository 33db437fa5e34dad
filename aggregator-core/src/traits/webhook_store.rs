//! [`WebhookStore`]: the store's role of keeping webhook endpoints, how deliveries to
//! them went, and how far the dispatcher has read the order event log.

use std::fmt::Debug;

use async_trait::async_trait;

use crate::domain::{
    CustomerId, DeliveryOutcome, EventCursor, OutboxMessage, WebhookEndpoint, WebhookId,
};
use crate::error::Result;

/// Registered webhook endpoints and the dispatcher's place in the order event log.
///
/// What every implementation guarantees: an endpoint is stored as validated; failures
/// count in a row and disable the endpoint exactly when they reach the limit given;
/// the dispatcher's position only moves by compare-and-set, together with the outbox
/// messages of what it read, so two dispatchers never both queue the same events.
#[async_trait]
pub trait WebhookStore: Send + Sync + Debug + 'static {
    /// Registers `endpoint`; refuses an invalid one (`Invalid`, see
    /// [`WebhookEndpoint::validate`]) or a taken id (`Conflict`). The store sets its
    /// start position in the order event log ([`WebhookEndpoint::starts_at`]) so that
    /// every event committed after the registration lies at or after it (it may also
    /// let through a few committed just before).
    async fn create_webhook(&self, endpoint: &WebhookEndpoint) -> Result<()>;

    /// One endpoint (`NotFound` if there is none).
    async fn webhook(&self, id: WebhookId) -> Result<WebhookEndpoint>;

    /// The endpoints, oldest first: `customer`'s own when given (not the ones for every
    /// customer), otherwise all.
    async fn webhooks(&self, customer: Option<&CustomerId>) -> Result<Vec<WebhookEndpoint>>;

    /// Removes an endpoint (`NotFound` if there is none); nothing more is sent to it.
    async fn delete_webhook(&self, id: WebhookId) -> Result<()>;

    /// Counts one delivery's outcome: a success forgets the failures in a row; a failure
    /// adds one, and the `disable_after`-th in a row disables the endpoint, keeping the
    /// failure's reason. Answers the endpoint as it is now (`NotFound` if it was
    /// removed).
    async fn record_delivery(
        &self,
        id: WebhookId,
        outcome: &DeliveryOutcome,
        disable_after: u32,
    ) -> Result<WebhookEndpoint>;

    /// Enables an endpoint again, its failures forgotten (`NotFound` if there is none).
    async fn enable_webhook(&self, id: WebhookId) -> Result<WebhookEndpoint>;

    /// How far the webhook dispatcher has read the order event log (`None`: not yet).
    async fn webhook_cursor(&self) -> Result<Option<EventCursor>>;

    /// Atomically moves the dispatcher's position from `from` to `to` and writes
    /// `deliveries` to the outbox (for the relay to publish); `Conflict`, with nothing
    /// written, if the position is no longer at `from` (another dispatcher moved it
    /// first).
    async fn dispatch_webhooks(
        &self,
        from: Option<EventCursor>,
        to: EventCursor,
        deliveries: &[OutboxMessage],
    ) -> Result<()>;
}
