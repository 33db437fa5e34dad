//! One reader of the order event log per process, fanning out to every follower of it
//! (the event streams): however many streams are open, the store is asked once per
//! poll, and a stream reads the store itself only to catch up from a position older
//! than what the reader keeps.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

use crate::domain::{CustomerId, EventCursor, EventRead, LoggedOrderEvent};
use crate::error::{Error, Result};
use crate::service::ShutdownSignal;
use crate::traits::OrderEventLog;

/// How the shared reader runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerConfig {
    /// How long the reader waits before asking again when nothing was new.
    pub poll: Duration,
    /// Events asked per read.
    pub batch: u32,
    /// The newest events kept for followers; one further behind reads the store.
    pub capacity: usize,
}

impl Default for FollowerConfig {
    /// Every 250 ms, 1,000 a read, the newest 10,000 kept.
    fn default() -> Self {
        Self {
            poll: Duration::from_millis(250),
            batch: 1_000,
            capacity: 10_000,
        }
    }
}

/// What the shared reader holds.
#[derive(Debug, Default)]
struct Kept {
    /// False until the reader has found where the log ends.
    started: bool,
    /// The position just before the first kept event: a follower at or after it is
    /// served from `events`. (`None`: the log's very start.)
    floor: Option<EventCursor>,
    /// The newest events, in log order.
    events: VecDeque<LoggedOrderEvent>,
}

impl Kept {
    /// Where the reader has read to.
    fn head(&self) -> Option<EventCursor> {
        self.events
            .back()
            .and_then(|event| event.cursor)
            .or(self.floor)
    }
}

/// The shared reader and what it keeps. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EventFollower {
    log: Arc<dyn OrderEventLog>,
    config: FollowerConfig,
    kept: Arc<Mutex<Kept>>,
    news: watch::Sender<u64>,
    running: Arc<std::sync::atomic::AtomicBool>,
}

impl EventFollower {
    /// A follower of `log`; refuses a zero batch, capacity or poll interval. Nothing is
    /// read until [`EventFollower::start`].
    pub fn new(log: Arc<dyn OrderEventLog>, config: FollowerConfig) -> Result<Self> {
        if config.batch == 0 || config.capacity == 0 || config.poll.is_zero() {
            return Err(Error::invalid(
                "eventFollower",
                "batch, capacity and poll interval must be above zero",
            ));
        }
        Ok(Self::build(log, config))
    }

    /// A follower of `log` with [`FollowerConfig::default`].
    pub fn with_defaults(log: Arc<dyn OrderEventLog>) -> Self {
        Self::build(log, FollowerConfig::default())
    }

    fn build(log: Arc<dyn OrderEventLog>, config: FollowerConfig) -> Self {
        Self {
            log,
            config,
            kept: Arc::new(Mutex::new(Kept::default())),
            news: watch::channel(0).0,
            running: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        }
    }

    fn kept(&self) -> MutexGuard<'_, Kept> {
        self.kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts the shared reader (once; later calls do nothing) until `shutdown`.
    pub fn start(&self, shutdown: ShutdownSignal) {
        if self.running.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let follower = self.clone();
        tokio::spawn(async move {
            let stop = shutdown.clone().wait();
            tokio::pin!(stop);
            loop {
                let wait = match follower.read_once().await {
                    Ok(true) => Duration::ZERO,
                    Ok(false) => follower.config.poll,
                    Err(error) => {
                        tracing::warn!(%error, "reading the order event log failed; trying again");
                        follower.config.poll
                    }
                };
                tokio::select! {
                    () = &mut stop => break,
                    () = tokio::time::sleep(wait) => {}
                }
            }
            follower
                .running
                .store(false, std::sync::atomic::Ordering::SeqCst);
        });
    }

    /// One read of the log by the shared reader; true when it read a full batch.
    async fn read_once(&self) -> Result<bool> {
        let (started, head) = {
            let kept = self.kept();
            (kept.started, kept.head())
        };
        if !started {
            let end = self.log.order_events_head().await?;
            let mut kept = self.kept();
            kept.started = true;
            kept.floor = end;
            return Ok(false);
        }
        match self
            .log
            .order_events_after(head, None, self.config.batch)
            .await?
        {
            EventRead::Events(events) => {
                let full = events.len() >= self.config.batch as usize;
                if events.is_empty() {
                    return Ok(false);
                }
                {
                    let mut kept = self.kept();
                    kept.events.extend(events);
                    while kept.events.len() > self.config.capacity {
                        if let Some(dropped) = kept.events.pop_front() {
                            kept.floor = dropped.cursor.or(kept.floor);
                        }
                    }
                }
                self.news.send_modify(|n| *n = n.wrapping_add(1));
                Ok(full)
            }
            EventRead::Gone { resume_from } => {
                // Pruned under the reader (it was stopped longer than the retention):
                // start over from where the log goes on; followers behind read Gone
                // from the store themselves.
                let mut kept = self.kept();
                kept.events.clear();
                kept.floor = resume_from;
                Ok(false)
            }
        }
    }

    /// Up to `limit` events after `after` (only `customer`'s when given), as
    /// [`OrderEventLog::order_events_after`] answers, and the position to read on from
    /// (past events of other customers the answer left out). Served from what the
    /// shared reader keeps when it covers `after`, from the store otherwise.
    pub async fn read(
        &self,
        after: Option<EventCursor>,
        customer: Option<&CustomerId>,
        limit: u32,
    ) -> Result<(EventRead, Option<EventCursor>)> {
        {
            let kept = self.kept();
            if kept.started && self.running.load(std::sync::atomic::Ordering::SeqCst) {
                let covered = match (after, kept.floor) {
                    (_, None) => true,
                    (None, Some(_)) => false,
                    (Some(at), Some(floor)) => at >= floor,
                };
                if covered && after <= kept.head() {
                    let mut scanned = after;
                    let mut events = Vec::new();
                    for event in kept.events.iter().filter(|e| e.cursor > after) {
                        if events.len() >= limit as usize {
                            break;
                        }
                        scanned = event.cursor;
                        if customer.is_none_or(|c| c == &event.customer_id) {
                            events.push(event.clone());
                        }
                    }
                    return Ok((EventRead::Events(events), scanned));
                }
            }
        }
        let read = self.log.order_events_after(after, customer, limit).await?;
        let scanned = match &read {
            EventRead::Events(events) => events.last().and_then(|e| e.cursor).or(after),
            EventRead::Gone { resume_from } => *resume_from,
        };
        Ok((read, scanned))
    }

    /// Waits until the shared reader reads something new, at most `longest`.
    pub async fn wait_for_news(&self, longest: Duration) {
        let mut news = self.news.subscribe();
        let _ = tokio::time::timeout(longest, news.changed()).await;
    }
}
