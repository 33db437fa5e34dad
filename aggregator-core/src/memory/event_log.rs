//! The in-memory order event log: what [`crate::traits::OrderEventLog`] promises, kept
//! under the store's one lock so that an event is logged atomically with its change.

use std::collections::VecDeque;

use time::OffsetDateTime;

use crate::domain::{CustomerId, EventCursor, EventRead, LoggedOrderEvent, Order};

/// The logged events, oldest first, numbered from 1 (epoch 0).
#[derive(Debug, Default)]
pub(super) struct EventLogState {
    events: VecDeque<LoggedOrderEvent>,
    last_sequence: u64,
    /// The newest pruned event's position: positions before it are gone.
    pruned_through: Option<EventCursor>,
}

impl EventLogState {
    /// Logs the events of `order` newer than `before_version` (every event of a new
    /// order: pass 0), in version order.
    pub(super) fn record(&mut self, before_version: i64, order: &Order) {
        for change in order.events.iter().filter(|e| e.version > before_version) {
            self.last_sequence += 1;
            self.events.push_back(LoggedOrderEvent::new(
                EventCursor::new(0, self.last_sequence),
                order.id,
                order.details.customer.clone(),
                change.clone(),
            ));
        }
    }

    /// The newest event's position, if one was ever logged.
    pub(super) fn head(&self) -> Option<EventCursor> {
        (self.last_sequence > 0).then(|| EventCursor::new(0, self.last_sequence))
    }

    /// Where the next event logged will be.
    pub(super) fn next_position(&self) -> EventCursor {
        EventCursor::new(0, self.last_sequence + 1)
    }

    pub(super) fn read(
        &self,
        after: Option<EventCursor>,
        customer: Option<&CustomerId>,
        limit: u32,
    ) -> EventRead {
        let origin = EventCursor::new(0, 0);
        let floor = self.pruned_through.unwrap_or(origin);
        let head = EventCursor::new(0, self.last_sequence);
        let from = after.unwrap_or(floor);
        if from < floor || from > head.max(floor) {
            return EventRead::Gone {
                resume_from: self.pruned_through,
            };
        }
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let first = self
            .events
            .partition_point(|event| event.cursor.is_some_and(|at| at <= from));
        let events = self
            .events
            .iter()
            .skip(first)
            .filter(|event| customer.is_none_or(|c| c == &event.customer_id))
            .take(limit)
            .cloned()
            .collect();
        EventRead::Events(events)
    }

    pub(super) fn prune(&mut self, before: OffsetDateTime, limit: u32) -> u64 {
        let mut pruned = 0;
        while pruned < u64::from(limit) {
            match self.events.front() {
                Some(event) if event.change.at < before => {
                    self.pruned_through = event.cursor;
                    self.events.pop_front();
                    pruned += 1;
                }
                _ => break,
            }
        }
        pruned
    }
}
