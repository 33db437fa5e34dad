//! What travels through the queues and the outbox.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::{MessageId, OrderId, VendorId, VendorKey};
use crate::error::{Error, Result};

/// The queues the system uses; each has a dead-letter twin named `<name>.dlq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum QueueName {
    /// `order_queue`: orders to forward to vendors, and compensations.
    Orders,
    /// `stock_sync_queue`: one message per vendor to sync.
    StockSync,
    /// `webhook_queue`: one message per order event and webhook endpoint to deliver to.
    Webhooks,
}

impl QueueName {
    /// Every queue.
    pub const ALL: [Self; 3] = [Self::Orders, Self::StockSync, Self::Webhooks];

    /// The queue's name on the broker.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Orders => "order_queue",
            Self::StockSync => "stock_sync_queue",
            Self::Webhooks => "webhook_queue",
        }
    }

    /// The dead-letter queue's name on the broker.
    pub fn dead_letter_name(self) -> &'static str {
        match self {
            Self::Orders => "order_queue.dlq",
            Self::StockSync => "stock_sync_queue.dlq",
            Self::Webhooks => "webhook_queue.dlq",
        }
    }

    /// Parses a queue's name; anything else is `Invalid`.
    pub fn parse(text: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|queue| queue.as_str() == text)
            .ok_or_else(|| {
                Error::invalid(
                    "queue",
                    format!("{text:?} is not order_queue, stock_sync_queue or webhook_queue"),
                )
            })
    }
}

/// A message with its id; the body is JSON of an [`OrderMessage`] or [`SyncRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// Unique id; consumers de-duplicate by it.
    pub id: MessageId,
    /// The payload.
    pub body: Vec<u8>,
}

impl Message {
    /// A message with a new id carrying `payload` as JSON.
    pub fn json<T: Serialize>(payload: &T) -> Result<Self> {
        let body = serde_json::to_vec(payload)
            .map_err(|e| Error::invalid("message", format!("cannot encode: {e}")))?;
        Ok(Self {
            id: MessageId::new(),
            body,
        })
    }

    /// Decodes the body; a malformed body is `Invalid` (dead-letter it, do not retry).
    pub fn decode<T: for<'de> Deserialize<'de>>(&self) -> Result<T> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::invalid("message.body", format!("malformed: {e}")))
    }
}

/// Work for the order worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum OrderMessage {
    /// Forward a reserved order to its vendors and confirm it.
    ProcessOrder {
        /// The order.
        order: OrderId,
    },
    /// Forward each of several reserved orders to its vendors and confirm it, as one
    /// `ProcessOrder` each would (what the relay publishes for a batch of committed
    /// placements: one broker message instead of one per order). An order that cannot
    /// be settled within the batch goes on alone, as its own `ProcessOrder` message with
    /// its own retries.
    ProcessOrders {
        /// The orders, each at most once.
        orders: Vec<OrderId>,
    },
    /// Cancel our order at one vendor (after a client cancel or as compensation).
    CancelAtVendor {
        /// Our order.
        order: OrderId,
        /// The vendor to tell.
        vendor: VendorId,
        /// The idempotency key the order was placed with at that vendor.
        idempotency_key: String,
        /// When the change that killed the key committed (our clock); a vendor that
        /// says it never saw the key is believed only once no placement under it can
        /// still land (see `OrderProcessor::with_placement_timeout`). Missing in
        /// messages written before it existed.
        #[serde(default, with = "time::serde::rfc3339::option")]
        killed_at: Option<OffsetDateTime>,
    },
}

/// Work for the stock-sync consumer: sync one vendor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncRequest {
    /// The vendor to sync.
    pub vendor: VendorId,
}

/// A message written in the same transaction as the change that caused it, waiting for
/// the relay to publish it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxMessage {
    /// Where it goes.
    pub queue: QueueName,
    /// The message itself.
    pub message: Message,
    /// When it was written, in our clock.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl OutboxMessage {
    /// One `CancelAtVendor` message on `order_queue` per key: what a change that makes
    /// `keys` dead writes beside itself, so the cancellations survive any crash after
    /// the change commits.
    pub fn vendor_cancellations(
        order: OrderId,
        keys: &[VendorKey],
        at: OffsetDateTime,
    ) -> Result<Vec<Self>> {
        keys.iter()
            .map(|dead| Self::vendor_cancellation(order, dead, at, at))
            .collect()
    }

    /// The `CancelAtVendor` message on `order_queue` for one key killed at `killed_at`,
    /// written at `now` (a pending cancellation queued again carries its first time).
    pub fn vendor_cancellation(
        order: OrderId,
        dead: &VendorKey,
        killed_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Self> {
        Ok(Self {
            queue: QueueName::Orders,
            message: Message::json(&OrderMessage::CancelAtVendor {
                order,
                vendor: dead.vendor.clone(),
                idempotency_key: dead.key.clone(),
                killed_at: Some(killed_at),
            })?,
            created_at: now,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_match_the_seed() {
        assert_eq!(QueueName::Orders.as_str(), "order_queue");
        assert_eq!(
            QueueName::StockSync.dead_letter_name(),
            "stock_sync_queue.dlq"
        );
        assert_eq!(
            QueueName::parse("stock_sync_queue"),
            Ok(QueueName::StockSync)
        );
        assert!(QueueName::parse("other").is_err());
    }

    #[test]
    fn messages_round_trip_and_refuse_garbage() {
        let payload = OrderMessage::ProcessOrder {
            order: OrderId::new(),
        };
        let message = Message::json(&payload).expect("encode");
        assert_eq!(message.decode::<OrderMessage>(), Ok(payload));
        let garbage = Message {
            id: MessageId::new(),
            body: b"{not json".to_vec(),
        };
        assert!(matches!(
            garbage.decode::<OrderMessage>(),
            Err(Error::Invalid { .. })
        ));
    }
}
