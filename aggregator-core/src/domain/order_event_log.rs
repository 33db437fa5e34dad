//! The order event log's entries and positions: every status change of every order, in
//! the order readers may take them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{CustomerId, OrderEvent, OrderId};
use crate::error::{Error, Result};

/// A position in the order event log: a reader holding it has seen every event up to
/// and including the one there. Clients see it as text (`"<epoch>-<sequence>"`, the SSE
/// event id they send back as `Last-Event-ID`) and must treat it as opaque; positions of
/// one store compare in log order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventCursor {
    epoch: u64,
    sequence: u64,
}

impl EventCursor {
    /// The position with these two parts (what a store encodes its log order in).
    pub fn new(epoch: u64, sequence: u64) -> Self {
        Self { epoch, sequence }
    }

    /// The first part: in PostgreSQL the writing transaction's id, in memory zero.
    pub fn epoch(self) -> u64 {
        self.epoch
    }

    /// The second part: the event's number within the log.
    pub fn sequence(self) -> u64 {
        self.sequence
    }
}

impl fmt::Display for EventCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.epoch, self.sequence)
    }
}

impl FromStr for EventCursor {
    type Err = Error;

    /// Reads `"<epoch>-<sequence>"`; anything else is `Invalid` (field `lastEventId`).
    fn from_str(text: &str) -> Result<Self> {
        let bad = || {
            Error::invalid(
                "lastEventId",
                format!(
                    "{text:?} is not an event id this server gave (expected <number>-<number>)"
                ),
            )
        };
        let (epoch, sequence) = text.split_once('-').ok_or_else(bad)?;
        let number = |part: &str| {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            part.parse::<u64>().map_err(|_| bad())
        };
        Ok(Self::new(number(epoch)?, number(sequence)?))
    }
}

/// One status change of one order, as the log hands it out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggedOrderEvent {
    /// The event's stable id: the same whichever reader or delivery carries it
    /// (`"<order id>:v<version>"`, as one version of an order has one change).
    pub id: String,
    /// Where it sits in the log.
    #[serde(skip)]
    pub cursor: Option<EventCursor>,
    /// The order.
    pub order_id: OrderId,
    /// The order's customer.
    pub customer_id: CustomerId,
    /// The change: from and to status, reason, time and the order's version after it.
    #[serde(flatten)]
    pub change: OrderEvent,
}

impl LoggedOrderEvent {
    /// The entry for `change` of `order` (of `customer`), at `cursor`.
    pub fn new(
        cursor: EventCursor,
        order_id: OrderId,
        customer_id: CustomerId,
        change: OrderEvent,
    ) -> Self {
        Self {
            id: format!("{order_id}:v{}", change.version),
            cursor: Some(cursor),
            order_id,
            customer_id,
            change,
        }
    }
}

/// What a read of the log found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventRead {
    /// The events after the asked position, oldest first (none: nothing new yet); the
    /// next read starts after the last one's cursor.
    Events(Vec<LoggedOrderEvent>),
    /// The asked position is not in the log (it was pruned, or was never given by this
    /// store): the reader has missed events, must re-read the orders' state, and may
    /// go on from `resume_from` (`None`: from the log's start).
    Gone {
        /// Where to go on from.
        resume_from: Option<EventCursor>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_read_back_what_they_print_and_refuse_anything_else() {
        let cursor = EventCursor::new(7_412, 31);
        assert_eq!(cursor.to_string(), "7412-31");
        assert_eq!("7412-31".parse::<EventCursor>().ok(), Some(cursor));
        for bad in [
            "",
            "7412",
            "-31",
            "7412-",
            "a-1",
            "1-+2",
            "1-2-3",
            "99999999999999999999-1",
        ] {
            let error = bad.parse::<EventCursor>().expect_err(bad);
            assert!(error.to_string().contains("lastEventId"), "{error}");
        }
        assert!(
            EventCursor::new(1, 9) < EventCursor::new(2, 1),
            "epoch first"
        );
    }
}
