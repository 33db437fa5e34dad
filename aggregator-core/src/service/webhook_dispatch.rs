//! The webhook dispatcher: turns the order event log into one `webhook_queue` message
//! per event and interested endpoint, written to the outbox for the relay.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::domain::{EventCursor, EventRead, Message, OutboxMessage, QueueName};
use crate::error::{Error, Result};
use crate::service::shutdown::ShutdownSignal;
use crate::service::webhook_delivery::WebhookDelivery;
use crate::traits::StockStore;

/// What one dispatch round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DispatchRound {
    /// Order events read.
    pub events: usize,
    /// Deliveries queued for them.
    pub queued: usize,
}

/// Reads the order event log from the store's dispatcher position and, in one store
/// transaction, moves the position past what it read and writes a delivery to the
/// outbox for every endpoint that wants each event; the outbox relay publishes them.
///
/// Several dispatchers may run (one beside each relay): the position moves by
/// compare-and-set, so a dispatcher that lost the race wrote nothing, and each event
/// is queued once per endpoint. The relay and the queue deliver at least once; each
/// delivery's id depends only on the event and the endpoint, so receivers drop repeats.
#[derive(Debug, Clone)]
pub struct WebhookDispatcher {
    store: Arc<dyn StockStore>,
    clock: Arc<dyn Clock>,
    batch: u32,
}

impl WebhookDispatcher {
    /// A dispatcher reading up to `batch` events per round; refuses a zero batch.
    pub fn new(store: Arc<dyn StockStore>, clock: Arc<dyn Clock>, batch: u32) -> Result<Self> {
        if batch == 0 {
            return Err(Error::invalid("webhookBatch", "must be at least 1"));
        }
        Ok(Self {
            store,
            clock,
            batch,
        })
    }

    /// One round: what it read and queued (nothing when nothing was new). While no
    /// endpoint is registered it reads nothing: an endpoint only wants the changes made
    /// after it was registered, so the log is read once there is one. The endpoints
    /// are read again after the events, so one registered meanwhile misses none of its
    /// events.
    pub async fn run_once(&self) -> Result<DispatchRound> {
        let endpoints = self.store.webhooks(None).await?;
        if endpoints.is_empty() {
            return Ok(DispatchRound::default());
        }
        let from = self.store.webhook_cursor().await?;
        let events = match self
            .store
            .order_events_after(from, None, self.batch)
            .await?
        {
            EventRead::Events(events) => events,
            EventRead::Gone { resume_from } => {
                // Events were pruned before they were dispatched (the dispatcher was
                // off longer than the retention): say so loudly and go on.
                tracing::error!(
                    ?from,
                    ?resume_from,
                    "order events were pruned before webhook dispatch; their deliveries are lost"
                );
                let to = resume_from.unwrap_or(EventCursor::new(0, 0));
                self.store.dispatch_webhooks(from, to, &[]).await?;
                return Ok(DispatchRound::default());
            }
        };
        let Some(last) = events.last().and_then(|event| event.cursor) else {
            return Ok(DispatchRound::default());
        };
        // Read again after the events: an endpoint registered since the first read
        // wants the events after its start position, some of which may be among these
        // (the position is about to move past them). One registered after this read
        // starts past every event just read.
        let endpoints = self.store.webhooks(None).await?;
        let now = self.clock.now();
        let mut deliveries = Vec::new();
        for event in &events {
            for endpoint in endpoints.iter().filter(|endpoint| endpoint.wants(event)) {
                let delivery = WebhookDelivery::new(endpoint.id, event.clone());
                deliveries.push(OutboxMessage {
                    queue: QueueName::Webhooks,
                    message: Message::json(&delivery)?,
                    created_at: now,
                });
            }
        }
        match self.store.dispatch_webhooks(from, last, &deliveries).await {
            Ok(()) => Ok(DispatchRound {
                events: events.len(),
                queued: deliveries.len(),
            }),
            // Another dispatcher queued these events first.
            Err(Error::Conflict { .. }) => Ok(DispatchRound::default()),
            Err(error) => Err(error),
        }
    }

    /// Runs rounds until `shutdown`: straight on after a full batch, otherwise after
    /// `idle`. A failed round is logged and retried after `idle`.
    pub async fn run(&self, idle: Duration, shutdown: ShutdownSignal) -> Result<()> {
        let stop = shutdown.wait();
        tokio::pin!(stop);
        loop {
            let wait = match self.run_once().await {
                Ok(round) if round.events >= self.batch as usize => Duration::ZERO,
                Ok(_) => idle,
                Err(error) => {
                    tracing::warn!(%error, "webhook dispatch failed; trying again");
                    idle
                }
            };
            tokio::select! {
                () = &mut stop => return Ok(()),
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}
