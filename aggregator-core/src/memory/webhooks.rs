//! Webhook endpoints and the dispatcher's position, for [`super::InMemoryStockStore`].

use async_trait::async_trait;

use super::InMemoryStockStore;
use crate::domain::{
    CustomerId, DeliveryOutcome, EventCursor, OutboxMessage, WebhookEndpoint, WebhookId,
};
use crate::error::{Error, Result};
use crate::traits::WebhookStore;

/// The endpoints in registration order (the dispatcher's position lives with the
/// outbox, in the store's state, so that both move together).
#[derive(Debug, Default)]
pub(super) struct WebhookState {
    endpoints: Vec<WebhookEndpoint>,
}

impl WebhookState {
    fn get_mut(&mut self, id: WebhookId) -> Result<&mut WebhookEndpoint> {
        self.endpoints
            .iter_mut()
            .find(|endpoint| endpoint.id == id)
            .ok_or_else(|| Error::not_found("webhook", id))
    }
}

#[async_trait]
impl WebhookStore for InMemoryStockStore {
    async fn create_webhook(&self, endpoint: &WebhookEndpoint) -> Result<()> {
        endpoint.validate()?;
        // Read before the endpoint is visible: an event logged in between is let
        // through (one extra, never one missed).
        let starts_at = self.state().event_log.next_position();
        let mut state = self.webhook_state();
        if state.endpoints.iter().any(|held| held.id == endpoint.id) {
            return Err(Error::conflict(format!(
                "webhook {} is already registered",
                endpoint.id
            )));
        }
        state.endpoints.push(WebhookEndpoint {
            starts_at: Some(starts_at),
            ..endpoint.clone()
        });
        Ok(())
    }

    async fn webhook(&self, id: WebhookId) -> Result<WebhookEndpoint> {
        self.webhook_state()
            .get_mut(id)
            .map(|endpoint| endpoint.clone())
    }

    async fn webhooks(&self, customer: Option<&CustomerId>) -> Result<Vec<WebhookEndpoint>> {
        Ok(self
            .webhook_state()
            .endpoints
            .iter()
            .filter(|endpoint| customer.is_none() || endpoint.customer.as_ref() == customer)
            .cloned()
            .collect())
    }

    async fn delete_webhook(&self, id: WebhookId) -> Result<()> {
        let mut state = self.webhook_state();
        let before = state.endpoints.len();
        state.endpoints.retain(|endpoint| endpoint.id != id);
        if state.endpoints.len() == before {
            return Err(Error::not_found("webhook", id));
        }
        Ok(())
    }

    async fn record_delivery(
        &self,
        id: WebhookId,
        outcome: &DeliveryOutcome,
        disable_after: u32,
    ) -> Result<WebhookEndpoint> {
        let mut state = self.webhook_state();
        let endpoint = state.get_mut(id)?;
        match outcome {
            DeliveryOutcome::Delivered => endpoint.consecutive_failures = 0,
            DeliveryOutcome::Failed(reason) => {
                endpoint.consecutive_failures = endpoint.consecutive_failures.saturating_add(1);
                if endpoint.enabled && endpoint.consecutive_failures >= disable_after {
                    endpoint.enabled = false;
                    endpoint.disabled_reason = Some(format!(
                        "{} deliveries in a row failed; the last: {reason}",
                        endpoint.consecutive_failures
                    ));
                }
            }
        }
        Ok(endpoint.clone())
    }

    async fn enable_webhook(&self, id: WebhookId) -> Result<WebhookEndpoint> {
        let mut state = self.webhook_state();
        let endpoint = state.get_mut(id)?;
        endpoint.enabled = true;
        endpoint.disabled_reason = None;
        endpoint.consecutive_failures = 0;
        Ok(endpoint.clone())
    }

    async fn webhook_cursor(&self) -> Result<Option<EventCursor>> {
        Ok(self.state().webhook_cursor())
    }

    async fn dispatch_webhooks(
        &self,
        from: Option<EventCursor>,
        to: EventCursor,
        deliveries: &[OutboxMessage],
    ) -> Result<()> {
        self.state()
            .dispatch_webhooks(from, to, deliveries.to_vec())
    }
}
