//! The outbox-relay step: publish what the store wrote beside its changes.

use std::sync::Arc;

use time::Duration;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::traits::{OrderQueue, Outbox};

/// Moves outbox messages from the store to the queue. A crash between publishing and
/// marking gives a duplicate (consumers de-duplicate), never a loss.
#[derive(Debug, Clone)]
pub struct OutboxRelay {
    store: Arc<dyn Outbox>,
    queue: Arc<dyn OrderQueue>,
    clock: Arc<dyn Clock>,
    batch_size: u32,
    lease: Duration,
}

impl OutboxRelay {
    /// A relay claiming up to `batch_size` messages at a time for `lease`; refuses a zero
    /// batch or a non-positive lease.
    pub fn new(
        store: Arc<dyn Outbox>,
        queue: Arc<dyn OrderQueue>,
        clock: Arc<dyn Clock>,
        batch_size: u32,
        lease: Duration,
    ) -> Result<Self> {
        if batch_size == 0 {
            return Err(Error::invalid("batchSize", "must be at least 1"));
        }
        if lease <= Duration::ZERO {
            return Err(Error::invalid("lease", "must be positive"));
        }
        Ok(Self {
            store,
            queue,
            clock,
            batch_size,
            lease,
        })
    }

    /// Claims one batch, publishes it in order and marks what was published. Stops at
    /// the first failed publish (the rest is claimed again after the lease) and returns
    /// that error after marking what did go out. Returns how many were published.
    pub async fn run_once(&self) -> Result<usize> {
        let claimed = self
            .store
            .claim_outbox(self.clock.now(), self.lease, self.batch_size)
            .await?;
        let mut sent = Vec::with_capacity(claimed.len());
        let mut failure = None;
        for entry in &claimed {
            match self.queue.publish(entry.queue, &entry.message).await {
                Ok(()) => sent.push(entry.message.id),
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
        }
        if !sent.is_empty() {
            self.store.mark_outbox_sent(&sent).await?;
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(sent.len()),
        }
    }
}
