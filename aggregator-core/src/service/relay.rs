//! The outbox-relay step: publish what the store wrote beside its changes.

use std::sync::Arc;

use futures_util::future::join_all;
use time::Duration;

use super::commit_feed::CommitFeed;
use super::shutdown::ShutdownSignal;
use crate::clock::Clock;
use crate::domain::{MessageId, OutboxMessage};
use crate::error::{Error, Result};
use crate::traits::{OrderQueue, Outbox};

/// How long a woken relay waits for more commits before its round.
const WAKE_GATHER: std::time::Duration = std::time::Duration::from_millis(5);

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

    /// Claims one batch, publishes all of it at once (the broker's confirms overlap
    /// instead of costing a round trip each; the orders to process go as one
    /// `ProcessOrders` message, see [`OutboxMessage::gather`]) and marks what the broker
    /// confirmed.
    /// Messages whose publish failed stay in the outbox and are claimed again after the
    /// lease; the first such error is returned after marking the rest. Returns how many
    /// were published. Messages of one batch may reach the queue in any order (every
    /// consumer is idempotent and none depends on the order of messages).
    pub async fn run_once(&self) -> Result<usize> {
        let claimed = self
            .store
            .claim_outbox(self.clock.now(), self.lease, self.batch_size)
            .await?;
        self.publish(&claimed).await
    }

    /// Like [`OutboxRelay::run_once`] for the messages among `ids` that are still
    /// waiting (claimed by id, in batches of the relay's size); returns how many were
    /// published, or the first error after trying every batch.
    pub async fn run_for(&self, ids: &[MessageId]) -> Result<usize> {
        let mut published = 0;
        let mut failure = None;
        for chunk in ids.chunks(self.batch_size as usize) {
            let round = async {
                let claimed = self
                    .store
                    .claim_outbox_ids(chunk, self.clock.now(), self.lease)
                    .await?;
                self.publish(&claimed).await
            };
            match round.await {
                Ok(count) => published += count,
                Err(error) => {
                    failure.get_or_insert(error);
                }
            }
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(published),
        }
    }

    /// Publishes claimed messages at once and marks what the broker confirmed.
    async fn publish(&self, claimed: &[OutboxMessage]) -> Result<usize> {
        let outgoing = OutboxMessage::gather(claimed.to_vec());
        let outcomes = join_all(
            outgoing
                .iter()
                .map(|out| self.queue.publish(out.message.queue, &out.message.message)),
        )
        .await;
        let mut sent = Vec::with_capacity(claimed.len());
        let mut failure = None;
        for (out, outcome) in outgoing.into_iter().zip(outcomes) {
            match outcome {
                Ok(()) => sent.extend(out.carries),
                Err(error) => {
                    failure.get_or_insert(error);
                }
            }
        }
        if !sent.is_empty() {
            self.store.mark_outbox_sent(&sent).await?;
            super::telemetry::outbox_published(sent.len());
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(sent.len()),
        }
    }

    /// Runs the relay until `shutdown`: a round over the whole outbox every `interval`
    /// (a full batch is followed by another round straight away, so a backlog drains at
    /// the speed of the store and the broker rather than one batch per interval), and,
    /// whenever a commit of this process hands messages to `feed`, a round for just
    /// those, found by id.
    pub async fn run(
        &self,
        interval: std::time::Duration,
        feed: Arc<CommitFeed>,
        shutdown: ShutdownSignal,
    ) -> Result<()> {
        if interval.is_zero() {
            return Err(Error::invalid(
                "interval",
                "outbox relay: must be above zero",
            ));
        }
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stop = shutdown.wait();
        tokio::pin!(stop);
        loop {
            let scan = tokio::select! {
                () = &mut stop => return Ok(()),
                _ = ticks.tick() => true,
                () = feed.notified() => {
                    // Let the commits of the next moment join this round: one claim
                    // for many of them rather than one each.
                    tokio::time::sleep(WAKE_GATHER.min(interval)).await;
                    false
                }
            };
            loop {
                // What this process committed first, by id, so that a scan finds only
                // what the feed did not hand over (other processes' messages, lapsed
                // leases, ids beyond the feed's capacity) and does not keep finding
                // full batches of what was committed while it ran.
                if let Err(error) = self.run_for(&feed.take()).await {
                    tracing::warn!(%error, "outbox relay round failed");
                }
                if !scan {
                    break;
                }
                match self.run_once().await {
                    Ok(published) if published >= self.batch_size as usize => continue,
                    Ok(_) => break,
                    Err(error) => {
                        tracing::warn!(%error, "outbox relay round failed");
                        break;
                    }
                }
            }
        }
    }
}
