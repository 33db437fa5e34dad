//! [`OrderCommits`]: the store's role of placing orders and changing their status, the
//! two writes a busy system gathers into batches (see `service::GroupCommit`).

use std::fmt::Debug;

use async_trait::async_trait;

use crate::domain::{Order, OutboxMessage, Transition};
use crate::error::Result;
use crate::traits::{OrderPlacement, Placed};

/// Placing orders and changing their status, each one atomic step with the outbox
/// messages it writes. Part of [`crate::traits::OrderStore`], whose guarantees it keeps;
/// a decorator that gathers these writes (group commit) wraps this role alone.
#[async_trait]
pub trait OrderCommits: Send + Sync + Debug + 'static {
    /// Places an order: reserves every planned allocation, prices it from the catalog
    /// and writes the order (status `reserved`), all at once. A short line makes the
    /// whole placement fail with `InsufficientStock` naming each short line.
    async fn place_order(&self, placement: OrderPlacement) -> Result<Placed>;

    /// Places several orders, deciding each as [`OrderCommits::place_order`] would in the
    /// order given (an earlier one takes its units first) and answering each on its
    /// own: a short, invalid or replayed placement does not affect the others. A store
    /// may commit them together (one transaction for the batch); the default places
    /// them one after another. A store that commits them together writes their
    /// outbox messages gathered as [`crate::domain::OutboxMessage::gather`] does: the
    /// accepted placements' orders to process as one `ProcessOrders` message, under the
    /// id of the first (the other placements' message ids are then never written).
    async fn place_orders(&self, placements: Vec<OrderPlacement>) -> Vec<Result<Placed>> {
        let mut answers = Vec::with_capacity(placements.len());
        for placement in placements {
            answers.push(self.place_order(placement).await);
        }
        answers
    }

    /// Changes an order's status (compare-and-set on its version), moving stock as the
    /// change requires, and writes `outbox` in the same atomic step.
    async fn transition(&self, transition: &Transition, outbox: &[OutboxMessage]) -> Result<Order>;

    /// Applies several status changes, each as [`OrderCommits::transition`] would (its own
    /// compare-and-set, its own answer), in the order given. A store may commit them
    /// together; the default applies them one after another.
    async fn transitions(
        &self,
        changes: Vec<(Transition, Vec<OutboxMessage>)>,
    ) -> Vec<Result<Order>> {
        let mut answers = Vec::with_capacity(changes.len());
        for (transition, outbox) in changes {
            answers.push(self.transition(&transition, &outbox).await);
        }
        answers
    }
}
