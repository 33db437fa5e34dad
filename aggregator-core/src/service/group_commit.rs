//! [`GroupCommit`]: the store's [`OrderCommits`] role with placements and status changes
//! gathered over a short window and committed as one batch each, so that a busy system
//! pays for one commit per batch instead of one per order. It wraps that role alone; the
//! composition root hands it out in the store's place for that role
//! ([`crate::traits::StoreRoles`]).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use super::batcher::{BatchConfig, Batcher};
use super::commit_feed::CommitFeed;
use crate::domain::{MessageId, Order, OutboxMessage, Transition};
use crate::error::Result;
use crate::traits::{OrderCommits, OrderPlacement, Placed};

type Change = (Transition, Vec<OutboxMessage>);

/// Wraps a store's [`OrderCommits`]: [`OrderCommits::place_order`] and
/// [`OrderCommits::transition`] calls that arrive within the configured window go to the
/// store together, as one [`OrderCommits::place_orders`] or
/// [`OrderCommits::transitions`] call. Each caller still gets its own answer, exactly the one the
/// store would have given it alone at that point in the batch, so the store's rules
/// (and its conformance suite) hold unchanged. A call waits at most the window, then
/// for one of the batch slots, then for its batch.
pub struct GroupCommit<S: ?Sized> {
    store: Arc<S>,
    config: BatchConfig,
    placements: Option<Batcher<OrderPlacement, Placed>>,
    changes: Option<Batcher<Change, Order>>,
    committed: Option<Arc<CommitFeed>>,
}

impl<S: ?Sized> fmt::Debug for GroupCommit<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupCommit")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<S: OrderCommits + ?Sized> GroupCommit<S> {
    /// Gathers `store`'s placements and status changes per `config` (batching is off,
    /// every call going straight through, when `config.max_batch` is 1). Must be called
    /// within a Tokio runtime; the gathering stops when this is dropped.
    pub fn new(store: Arc<S>, config: BatchConfig) -> Result<Self> {
        config.validate()?;
        if config.is_off() {
            return Ok(Self {
                store,
                config,
                placements: None,
                changes: None,
                committed: None,
            });
        }
        let placing = store.clone();
        let placements = Batcher::start("placement batcher", config, move |batch| {
            let store = placing.clone();
            async move { store.place_orders(batch).await }
        });
        let changing = store.clone();
        let changes = Batcher::start("status change batcher", config, move |batch| {
            let store = changing.clone();
            async move { store.transitions(batch).await }
        });
        Ok(Self {
            store,
            config,
            placements: Some(placements),
            changes: Some(changes),
            committed: None,
        })
    }

    /// Hands the ids of the outbox messages of every placement and status change that
    /// committed to `committed`: the outbox relay of this process takes them from there,
    /// so it publishes at once, finding each message by its id, instead of scanning the
    /// outbox at its next tick.
    pub fn with_commit_feed(mut self, committed: Arc<CommitFeed>) -> Self {
        self.committed = Some(committed);
        self
    }

    fn hand_over(&self, written: bool, outbox: impl Iterator<Item = MessageId>) {
        if let (true, Some(committed)) = (written, &self.committed) {
            committed.committed(outbox);
        }
    }

    /// How calls are gathered.
    pub fn config(&self) -> BatchConfig {
        self.config
    }
}

#[async_trait]
impl<S: OrderCommits + ?Sized> OrderCommits for GroupCommit<S> {
    async fn place_order(&self, placement: OrderPlacement) -> Result<Placed> {
        let outbox: Vec<MessageId> = placement.outbox.iter().map(|m| m.message.id).collect();
        let outcome = match &self.placements {
            Some(batcher) => batcher.submit(placement).await,
            None => self.store.place_order(placement).await,
        };
        // A replay wrote nothing: its messages are the first placement's.
        let written = outcome.as_ref().is_ok_and(|placed| !placed.replayed);
        self.hand_over(written, outbox.into_iter());
        outcome
    }

    async fn place_orders(&self, placements: Vec<OrderPlacement>) -> Vec<Result<Placed>> {
        self.store.place_orders(placements).await
    }

    async fn transition(&self, transition: &Transition, outbox: &[OutboxMessage]) -> Result<Order> {
        let outcome = match &self.changes {
            Some(batcher) => batcher.submit((transition.clone(), outbox.to_vec())).await,
            None => self.store.transition(transition, outbox).await,
        };
        self.hand_over(outcome.is_ok(), outbox.iter().map(|m| m.message.id));
        outcome
    }

    async fn transitions(&self, changes: Vec<Change>) -> Vec<Result<Order>> {
        self.store.transitions(changes).await
    }
}
