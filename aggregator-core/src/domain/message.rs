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

/// The most orders one `ProcessOrders` message carries.
pub const MAX_ORDERS_PER_MESSAGE: usize = 256;

/// A message standing for one or more outbox messages: what [`OutboxMessage::gather`]
/// makes of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gathered {
    /// The message to write or publish.
    pub message: OutboxMessage,
    /// The ids of the outbox messages it stands for (its own among them).
    pub carries: Vec<MessageId>,
}

impl OutboxMessage {
    /// The orders this message asks the worker to forward to their vendors: one for a
    /// `ProcessOrder`, several for a `ProcessOrders`; `None` for any other message.
    pub fn orders_to_process(&self) -> Option<Vec<OrderId>> {
        if self.queue != QueueName::Orders {
            return None;
        }
        match self.message.decode::<OrderMessage>() {
            Ok(OrderMessage::ProcessOrder { order }) => Some(vec![order]),
            Ok(OrderMessage::ProcessOrders { orders }) => Some(orders),
            _ => None,
        }
    }

    /// `messages` with their orders to process (`ProcessOrder` and `ProcessOrders`)
    /// gathered into as few `ProcessOrders` messages as [`MAX_ORDERS_PER_MESSAGE`]
    /// allows, each with the id and time of the first message it gathers (a message
    /// that has nothing to gather with stays as it is), and every other message as it
    /// is. What a store that commits a batch of placements at once writes, and what the
    /// relay publishes for a claim: one message for many orders. (Were a gathered
    /// message impossible to encode, its messages would stay as they are.)
    pub fn gather(messages: Vec<Self>) -> Vec<Gathered> {
        let mut gathered = Vec::new();
        let mut work: Vec<(Self, Vec<OrderId>)> = Vec::new();
        for message in messages {
            match message.orders_to_process() {
                Some(orders) => work.push((message, orders)),
                None => gathered.push(Gathered {
                    carries: vec![message.message.id],
                    message,
                }),
            }
        }
        let mut group: Vec<(Self, Vec<OrderId>)> = Vec::new();
        let mut in_group = 0;
        for (message, orders) in work {
            if in_group > 0 && in_group + orders.len() > MAX_ORDERS_PER_MESSAGE {
                gathered.extend(Self::one_for(std::mem::take(&mut group)));
                in_group = 0;
            }
            in_group += orders.len();
            group.push((message, orders));
        }
        if !group.is_empty() {
            gathered.extend(Self::one_for(group));
        }
        gathered
    }

    /// One message for `group`: the message itself when it is alone, each as it is if
    /// the gathered one cannot be encoded.
    fn one_for(group: Vec<(Self, Vec<OrderId>)>) -> Vec<Gathered> {
        let alone = |group: Vec<(Self, Vec<OrderId>)>| {
            group
                .into_iter()
                .map(|(message, _)| Gathered {
                    carries: vec![message.message.id],
                    message,
                })
                .collect()
        };
        let Some((first, _)) = group.first() else {
            return Vec::new();
        };
        if group.len() == 1 {
            return alone(group);
        }
        let (id, created_at) = (first.message.id, first.created_at);
        let orders = group
            .iter()
            .flat_map(|(_, orders)| orders.iter().copied())
            .collect();
        let Ok(gathered) = Message::json(&OrderMessage::ProcessOrders { orders }) else {
            return alone(group);
        };
        vec![Gathered {
            message: Self {
                queue: QueueName::Orders,
                message: Message {
                    id,
                    body: gathered.body,
                },
                created_at,
            },
            carries: group
                .iter()
                .map(|(message, _)| message.message.id)
                .collect(),
        }]
    }

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

    fn process(order: OrderId) -> OutboxMessage {
        OutboxMessage {
            queue: QueueName::Orders,
            message: Message::json(&OrderMessage::ProcessOrder { order }).expect("encode"),
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn orders_to_process_are_gathered_into_messages_of_a_bounded_size() {
        let orders: Vec<OrderId> = (0..MAX_ORDERS_PER_MESSAGE + 3)
            .map(|_| OrderId::new())
            .collect();
        let mut messages: Vec<OutboxMessage> = orders.iter().map(|id| process(*id)).collect();
        let sync = OutboxMessage {
            queue: QueueName::StockSync,
            message: Message::json(&SyncRequest {
                vendor: VendorId::new("VendorA").expect("vendor"),
            })
            .expect("encode"),
            created_at: OffsetDateTime::UNIX_EPOCH,
        };
        messages.insert(2, sync.clone());
        let ids: Vec<MessageId> = messages.iter().map(|m| m.message.id).collect();
        let gathered = OutboxMessage::gather(messages);
        assert_eq!(gathered.len(), 3, "the other message, a full one, the rest");
        assert_eq!(gathered[0].message, sync);
        assert_eq!(gathered[0].carries, vec![sync.message.id]);
        let carried: Vec<Vec<OrderId>> = gathered[1..]
            .iter()
            .map(|g| g.message.orders_to_process().expect("orders"))
            .collect();
        assert_eq!(carried[0].len(), MAX_ORDERS_PER_MESSAGE);
        assert_eq!(carried.concat(), orders, "every order once, in order");
        assert_eq!(gathered[1].message.message.id, ids[0], "the first one's id");
        let every: Vec<MessageId> = gathered.iter().flat_map(|g| g.carries.clone()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        let mut every_sorted = every.clone();
        every_sorted.sort();
        assert_eq!(every_sorted, sorted, "each message carried once");

        // A lone one stays as it is; gathered ones gather again.
        let lone = process(OrderId::new());
        let again = OutboxMessage::gather(vec![lone.clone()]);
        assert_eq!(again[0].message, lone);
        let twice = OutboxMessage::gather(vec![gathered[2].message.clone(), lone.clone()]);
        assert_eq!(twice.len(), 1);
        assert_eq!(
            twice[0].message.orders_to_process().expect("orders").len(),
            4
        );
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
