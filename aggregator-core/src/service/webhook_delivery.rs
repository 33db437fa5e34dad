//! Webhook deliveries: the `webhook_queue` message, the body a receiver gets, and the
//! consumer that posts it and settles the message.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::{DeliveryOutcome, LoggedOrderEvent, QueueName, WebhookEndpoint, WebhookId};
use crate::error::{Error, Result};
use crate::service::consumer::{ConsumerConfig, DeliveryHandler, Settled, run_consumer};
use crate::service::shutdown::ShutdownSignal;
use crate::traits::{Delivery, OrderQueue, RetryOutcome, WebhookStore};

/// One order event to deliver to one endpoint: a `webhook_queue` message's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDelivery {
    /// The same for every attempt and every dispatch of this event to this endpoint
    /// (`<event id>@<endpoint id>`), sent as `Webhook-Id`: receivers drop repeats by it.
    pub delivery_id: String,
    /// Where to.
    pub endpoint: WebhookId,
    /// What.
    pub event: LoggedOrderEvent,
}

impl WebhookDelivery {
    /// The delivery of `event` to `endpoint`.
    pub fn new(endpoint: WebhookId, event: LoggedOrderEvent) -> Self {
        Self {
            delivery_id: format!("{}@{endpoint}", event.id),
            endpoint,
            event,
        }
    }

    /// The JSON body posted: the event with its `type` (`order.<status it moved to>`).
    pub fn body(&self) -> Result<Vec<u8>> {
        #[derive(Serialize)]
        struct Body<'a> {
            #[serde(rename = "type")]
            kind: String,
            #[serde(flatten)]
            event: &'a LoggedOrderEvent,
        }
        serde_json::to_vec(&Body {
            kind: format!("order.{}", self.event.change.to.as_str()),
            event: &self.event,
        })
        .map_err(|e| Error::invalid("webhook", format!("cannot encode the body: {e}")))
    }
}

/// Posts a delivery's body to an endpoint, signed with its secret; `Ok` only when the
/// receiver answered 2xx. `aggregator_http::webhooks::HttpWebhookSender` is the one over
/// HTTP (with the SSRF guard, a timeout and a bounded answer).
#[async_trait]
pub trait WebhookSender: Send + Sync + Debug + 'static {
    /// Sends `body` as delivery `delivery_id` to `endpoint`.
    async fn send(&self, endpoint: &WebhookEndpoint, delivery_id: &str, body: &[u8]) -> Result<()>;
}

/// What a handled webhook delivery came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// The receiver took it.
    Delivered,
    /// The endpoint was removed: nothing to deliver to, the message is dropped.
    Dropped,
}

/// Takes deliveries off `webhook_queue`, posts them, counts each outcome on the
/// endpoint (disabling it after `disable_after` failures in a row), and settles the
/// message: acknowledged once delivered, retried through the queue's delays otherwise,
/// dead-lettered after the last attempt.
#[derive(Debug, Clone)]
pub struct WebhookDeliverer {
    store: Arc<dyn WebhookStore>,
    sender: Arc<dyn WebhookSender>,
    disable_after: u32,
}

impl WebhookDeliverer {
    /// A deliverer; refuses a zero `disable_after`.
    pub fn new(
        store: Arc<dyn WebhookStore>,
        sender: Arc<dyn WebhookSender>,
        disable_after: u32,
    ) -> Result<Self> {
        if disable_after == 0 {
            return Err(Error::invalid("webhookDisableAfter", "must be at least 1"));
        }
        Ok(Self {
            store,
            sender,
            disable_after,
        })
    }

    /// Runs one delivery and settles it. An error means it could not be settled; the
    /// queue then hands it back.
    pub async fn settle(&self, delivery: Delivery) -> Result<Settled<WebhookOutcome>> {
        let message: WebhookDelivery = match delivery.message.decode() {
            Ok(message) => message,
            Err(error) => return dead_letter(delivery, error.to_string()).await,
        };
        let endpoint = match self.store.webhook(message.endpoint).await {
            Ok(endpoint) => endpoint,
            Err(Error::NotFound { .. }) => {
                delivery.ack().await?;
                return Ok(Settled::Done(WebhookOutcome::Dropped));
            }
            Err(error) => return retry(delivery, error.to_string()).await,
        };
        if !endpoint.enabled {
            let reason = format!(
                "webhook {} is disabled ({}); replay once it is enabled again",
                endpoint.id,
                endpoint
                    .disabled_reason
                    .as_deref()
                    .unwrap_or("no reason kept")
            );
            return dead_letter(delivery, reason).await;
        }
        let body = match message.body() {
            Ok(body) => body,
            Err(error) => return dead_letter(delivery, error.to_string()).await,
        };
        let sent = self
            .sender
            .send(&endpoint, &message.delivery_id, &body)
            .await;
        let outcome = match &sent {
            Ok(()) => DeliveryOutcome::Delivered,
            Err(error) => DeliveryOutcome::Failed(error.to_string()),
        };
        if let Err(error) = self
            .store
            .record_delivery(endpoint.id, &outcome, self.disable_after)
            .await
        {
            tracing::warn!(%error, webhook = %endpoint.id, "could not record a delivery's outcome");
        }
        match sent {
            Ok(()) => {
                delivery.ack().await?;
                Ok(Settled::Done(WebhookOutcome::Delivered))
            }
            // A destination the guard refuses will not become allowed by waiting.
            Err(error @ Error::Invalid { .. }) => dead_letter(delivery, error.to_string()).await,
            Err(error) => retry(delivery, error.to_string()).await,
        }
    }

    /// Consumes `webhook_queue`, `config.concurrency` deliveries at once, until
    /// `shutdown`; deliveries in flight then get `config.grace` to finish (see
    /// [`run_consumer`]).
    pub async fn run(
        self,
        queue: Arc<dyn OrderQueue>,
        config: ConsumerConfig,
        shutdown: ShutdownSignal,
    ) -> Result<()> {
        run_consumer(Arc::new(self), queue, config, shutdown).await
    }
}

#[async_trait]
impl DeliveryHandler for WebhookDeliverer {
    type Done = WebhookOutcome;

    fn queue(&self) -> QueueName {
        QueueName::Webhooks
    }

    async fn settle(&self, delivery: Delivery) -> Result<Settled<WebhookOutcome>> {
        WebhookDeliverer::settle(self, delivery).await
    }

    fn report(&self, settled: &Result<Settled<WebhookOutcome>>) {
        match settled {
            Ok(Settled::Done(WebhookOutcome::Delivered)) => tracing::debug!("webhook delivered"),
            Ok(other) => tracing::warn!(?other, "webhook not delivered"),
            Err(error) => tracing::warn!(%error, "webhook delivery left unsettled"),
        }
    }
}

async fn dead_letter(delivery: Delivery, reason: String) -> Result<Settled<WebhookOutcome>> {
    delivery.dead_letter(&reason).await?;
    Ok(Settled::DeadLettered { reason })
}

async fn retry(delivery: Delivery, reason: String) -> Result<Settled<WebhookOutcome>> {
    match delivery.retry(&reason).await? {
        RetryOutcome::Scheduled { attempt, delay } => Ok(Settled::Retrying {
            attempt,
            delay,
            reason,
        }),
        RetryOutcome::DeadLettered => Ok(Settled::DeadLettered { reason }),
    }
}
