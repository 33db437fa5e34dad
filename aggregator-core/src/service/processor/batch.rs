//! Handling a `ProcessOrders` message: each of its orders as its own `ProcessOrder`
//! would be, several at once; an order that cannot be settled within the batch goes on
//! alone, as its own message, so that one vendor's outage or one bad order never holds
//! back (or retries, or dead-letters) the others.

use std::collections::{HashMap, HashSet};

use std::sync::Arc;

use futures_util::future::join_all;
use tokio::sync::Semaphore;

use super::{OrderProcessor, ProcessOutcome};
use crate::domain::{Message, Order, OrderId, OrderMessage, QueueName};
use crate::error::{Error, Result};

/// How many orders of one batch are read together and forwarded to their vendors at
/// once.
const ORDERS_AT_ONCE: usize = 64;

/// How many orders of batch messages a processor and its clones (one process's
/// workers) hold at once unless set otherwise: see
/// [`OrderProcessor::with_batch_orders_in_flight`].
pub const DEFAULT_BATCH_ORDERS_IN_FLIGHT: usize = 1_024;

/// The bound on batch orders in flight, shared by a processor's clones.
#[derive(Debug, Clone)]
pub(super) struct BatchOrders {
    permits: Arc<Semaphore>,
    capacity: usize,
}

impl BatchOrders {
    /// At most `capacity` orders at once.
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(capacity)),
            capacity,
        }
    }
}

/// What became of the orders of one `ProcessOrders` message, each order in exactly one
/// list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Confirmed by this handling.
    pub confirmed: Vec<OrderId>,
    /// Failed by this handling, their units released.
    pub failed: Vec<OrderId>,
    /// Had already left `reserved` (a redelivery, or a cancel or expiry came first).
    pub already_settled: Vec<OrderId>,
    /// Could not be settled here (a vendor away, the store busy, an unknown order), each
    /// with why: each is now a `ProcessOrder` message of its own on `order_queue`, with
    /// its own retries and give-up.
    pub went_alone: Vec<(OrderId, String)>,
}

impl BatchOutcome {
    /// How many orders the batch held.
    pub fn orders(&self) -> usize {
        self.confirmed.len()
            + self.failed.len()
            + self.already_settled.len()
            + self.went_alone.len()
    }
}

impl OrderProcessor {
    /// Handles `orders` (a duplicate id once) as many `ProcessOrder`s would, in chunks of
    /// [`ORDERS_AT_ONCE`]: each chunk first takes its share of the processor's bound on
    /// batch orders in flight (see [`OrderProcessor::with_batch_orders_in_flight`]),
    /// then reads its orders together and handles them at once; then publishes one
    /// `ProcessOrder` for each that ended in an error. An error (retryable) means one of
    /// those could not be published; handling the batch again repeats nothing a vendor
    /// or the store would take twice.
    pub(super) async fn process_batch(&self, orders: &[OrderId]) -> Result<BatchOutcome> {
        let mut seen = HashSet::with_capacity(orders.len());
        let unique: Vec<OrderId> = orders
            .iter()
            .copied()
            .filter(|id| seen.insert(*id))
            .collect();
        let chunk_size = ORDERS_AT_ONCE.min(self.batch_orders.capacity).max(1);
        let mut outcome = BatchOutcome::default();
        for chunk in unique.chunks(chunk_size) {
            let _in_flight = self
                .batch_orders
                .permits
                .acquire_many(u32::try_from(chunk.len()).unwrap_or(u32::MAX))
                .await
                .map_err(|_| Error::transient("worker", "shutting down"))?;
            for (id, handled) in self.process_chunk(chunk).await {
                match handled {
                    Ok(ProcessOutcome::Confirmed(_)) => outcome.confirmed.push(id),
                    Ok(ProcessOutcome::Failed(_)) => outcome.failed.push(id),
                    Ok(_) => outcome.already_settled.push(id),
                    Err(error) => outcome.went_alone.push((id, error.to_string())),
                }
            }
        }
        let alone: Vec<OrderId> = outcome.went_alone.iter().map(|(id, _)| *id).collect();
        self.send_alone(&alone).await?;
        for (id, reason) in &outcome.went_alone {
            tracing::warn!(order = %id, reason, "order of a batch goes on alone");
        }
        Ok(outcome)
    }

    /// Reads `chunk`'s orders together, then handles each at once; an order the read did
    /// not bring (none by that id, or the read failed) is read again on its own.
    async fn process_chunk(&self, chunk: &[OrderId]) -> Vec<(OrderId, Result<ProcessOutcome>)> {
        let mut read: HashMap<OrderId, Order> = match self.store.orders_by_id(chunk).await {
            Ok(orders) => orders.into_iter().map(|order| (order.id, order)).collect(),
            Err(error) => {
                tracing::warn!(%error, "reading a batch's orders failed; reading each alone");
                HashMap::new()
            }
        };
        let read_at = tokio::time::Instant::now();
        join_all(chunk.iter().map(|id| {
            let order = read.remove(id);
            async move {
                let outcome = match order {
                    Some(order) => self.process_read(order, read_at).await,
                    None => self.process(*id).await,
                };
                (*id, outcome)
            }
        }))
        .await
    }

    /// Publishes one `ProcessOrder` message on `order_queue` for each of `orders`, all at
    /// once; returns the first error once every publish has ended (the others may have
    /// been published: a duplicate is harmless, a loss is not).
    pub(crate) async fn send_alone(&self, orders: &[OrderId]) -> Result<()> {
        let messages = orders
            .iter()
            .map(|order| Message::json(&OrderMessage::ProcessOrder { order: *order }))
            .collect::<Result<Vec<_>>>()?;
        let published = join_all(
            messages
                .iter()
                .map(|message| self.queue.publish(QueueName::Orders, message)),
        )
        .await;
        published.into_iter().collect()
    }
}
