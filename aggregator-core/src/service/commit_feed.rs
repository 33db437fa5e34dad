//! [`CommitFeed`]: the outbox messages this process just committed, for its relay.

use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::domain::MessageId;

/// Ids of the outbox messages committed in this process, and a wake-up for the relay
/// that publishes them. The feed is a shortcut, never the only way a message is found:
/// it holds at most its capacity of ids (more are dropped) and nothing survives the
/// process, so the relay's periodic scan of the outbox still finds every message that
/// was not handed over here.
#[derive(Debug)]
pub struct CommitFeed {
    ids: Mutex<Vec<MessageId>>,
    capacity: usize,
    wake: Notify,
}

impl CommitFeed {
    /// Ids kept by [`CommitFeed::default`]: a few seconds of the busiest intake measured.
    pub const DEFAULT_CAPACITY: usize = 100_000;

    /// A feed holding at most `capacity` ids until they are taken.
    pub fn new(capacity: usize) -> Self {
        Self {
            ids: Mutex::new(Vec::new()),
            capacity,
            wake: Notify::new(),
        }
    }

    fn held(&self) -> MutexGuard<'_, Vec<MessageId>> {
        // The list stays valid whatever a panicking holder did: ids are only pushed or
        // taken whole.
        self.ids
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Hands over the ids of messages that were just committed and wakes the relay.
    /// Ids beyond the capacity are dropped (the relay's scan finds their messages).
    pub fn committed(&self, ids: impl IntoIterator<Item = MessageId>) {
        {
            let mut held = self.held();
            let room = self.capacity.saturating_sub(held.len());
            held.extend(ids.into_iter().take(room));
        }
        self.wake.notify_one();
    }

    /// Takes every id handed over so far.
    pub fn take(&self) -> Vec<MessageId> {
        std::mem::take(&mut *self.held())
    }

    /// Waits until something is committed after the last wake-up (at once if it
    /// already was).
    pub async fn notified(&self) {
        self.wake.notified().await;
    }
}

impl Default for CommitFeed {
    /// A feed of [`CommitFeed::DEFAULT_CAPACITY`] ids.
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hands_over_ids_once_wakes_the_relay_and_drops_beyond_capacity() {
        let feed = CommitFeed::new(3);
        let ids: Vec<MessageId> = (0..5).map(|_| MessageId::new()).collect();
        feed.committed(ids[..2].iter().copied());
        // The wake-up was stored: waiting now returns at once.
        feed.notified().await;
        feed.committed(ids[2..].iter().copied());
        assert_eq!(
            feed.take(),
            ids[..3].to_vec(),
            "capacity 3: the rest dropped"
        );
        assert!(feed.take().is_empty(), "taken ids are gone");
        feed.committed(ids[3..].iter().copied());
        assert_eq!(feed.take(), ids[3..].to_vec(), "room again after a take");
    }
}
