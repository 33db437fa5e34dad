//! [`InMemoryOrderQueue`]: queues, delayed retries and dead letters in process memory.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::domain::{Message, MessageId, QueueName};
use crate::error::{Error, Result};
use crate::traits::{
    DeadLetter, Delivery, DeliverySettler, OrderQueue, QueueDepth, QueuePart, RetryOutcome,
    RetryPolicy, Subscription,
};

#[derive(Debug, Clone)]
struct Envelope {
    message: Message,
    attempt: u32,
    redelivered: bool,
    last_error: Option<String>,
}

/// A message waiting out its retry delay; ordered by when it is due, then by arrival.
#[derive(Debug)]
struct Delayed {
    due: Instant,
    sequence: u64,
    envelope: Envelope,
}

impl PartialEq for Delayed {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.sequence) == (other.due, other.sequence)
    }
}
impl Eq for Delayed {}
impl PartialOrd for Delayed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Delayed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.sequence).cmp(&(other.due, other.sequence))
    }
}

#[derive(Debug, Default)]
struct Lane {
    ready: VecDeque<Envelope>,
    delayed: BinaryHeap<Reverse<Delayed>>,
    dead: VecDeque<DeadLetter>,
    sequence: u64,
}

impl Lane {
    /// Moves every delayed message that is due to the back of the ready queue.
    fn promote_due(&mut self, now: Instant) {
        while self
            .delayed
            .peek()
            .is_some_and(|Reverse(delayed)| delayed.due <= now)
        {
            if let Some(Reverse(delayed)) = self.delayed.pop() {
                self.ready.push_back(delayed.envelope);
            }
        }
    }

    fn next_due(&self) -> Option<Instant> {
        self.delayed.peek().map(|Reverse(delayed)| delayed.due)
    }
}

#[derive(Debug)]
struct Shared {
    policy: RetryPolicy,
    lanes: Mutex<HashMap<QueueName, Lane>>,
    wakers: HashMap<QueueName, Notify>,
}

impl Shared {
    fn lanes(&self) -> MutexGuard<'_, HashMap<QueueName, Lane>> {
        self.lanes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn with_lane<T>(&self, queue: QueueName, f: impl FnOnce(&mut Lane) -> T) -> T {
        let mut lanes = self.lanes();
        f(lanes.entry(queue).or_default())
    }

    fn wake(&self, queue: QueueName) {
        if let Some(waker) = self.wakers.get(&queue) {
            waker.notify_one();
        }
    }

    fn dead_letter(&self, queue: QueueName, envelope: Envelope, attempts: u32, reason: &str) {
        self.with_lane(queue, |lane| {
            lane.dead.push_back(DeadLetter {
                queue,
                message: envelope.message,
                attempts,
                reason: reason.to_owned(),
                dead_at: OffsetDateTime::now_utc(),
            });
        });
    }
}

/// An [`OrderQueue`] in process memory with real delays, redelivery of unsettled
/// messages and dead letters, under the same rules as the RabbitMQ backend. Messages do
/// not survive the process. Needs a Tokio runtime with the time driver.
#[derive(Debug, Clone)]
pub struct InMemoryOrderQueue {
    shared: Arc<Shared>,
}

impl InMemoryOrderQueue {
    /// Empty queues that retry failed messages after `policy`'s delays.
    pub fn new(policy: RetryPolicy) -> Self {
        Self {
            shared: Arc::new(Shared {
                policy,
                lanes: Mutex::new(HashMap::new()),
                wakers: QueueName::ALL
                    .into_iter()
                    .map(|queue| (queue, Notify::new()))
                    .collect(),
            }),
        }
    }

    /// Messages ready or waiting to be retried in `queue` (not counting those out for
    /// delivery or dead-lettered).
    pub fn depth(&self, queue: QueueName) -> usize {
        self.shared
            .with_lane(queue, |lane| lane.ready.len() + lane.delayed.len())
    }
}

impl Default for InMemoryOrderQueue {
    fn default() -> Self {
        Self::new(RetryPolicy::default())
    }
}

#[async_trait]
impl OrderQueue for InMemoryOrderQueue {
    async fn publish(&self, queue: QueueName, message: &Message) -> Result<()> {
        self.shared.with_lane(queue, |lane| {
            lane.ready.push_back(Envelope {
                message: message.clone(),
                attempt: 1,
                redelivered: false,
                last_error: None,
            });
        });
        self.shared.wake(queue);
        Ok(())
    }

    async fn subscribe(&self, queue: QueueName, prefetch: u16) -> Result<Box<dyn Subscription>> {
        if prefetch == 0 {
            return Err(Error::invalid("prefetch", "must be at least 1"));
        }
        Ok(Box::new(InMemorySubscription {
            shared: Arc::clone(&self.shared),
            queue,
            permits: Arc::new(Semaphore::new(usize::from(prefetch))),
        }))
    }

    async fn dead_letters(&self, queue: QueueName, limit: usize) -> Result<Vec<DeadLetter>> {
        Ok(self.shared.with_lane(queue, |lane| {
            lane.dead.iter().take(limit).cloned().collect()
        }))
    }

    async fn replay_dead_letters(
        &self,
        queue: QueueName,
        only: Option<MessageId>,
    ) -> Result<usize> {
        let moved = self.shared.with_lane(queue, |lane| {
            let (replay, keep): (Vec<DeadLetter>, Vec<DeadLetter>) = lane
                .dead
                .drain(..)
                .partition(|dead| only.is_none_or(|id| dead.message.id == id));
            lane.dead = keep.into();
            let moved = replay.len();
            for dead in replay {
                lane.ready.push_back(Envelope {
                    message: dead.message,
                    attempt: 1,
                    redelivered: false,
                    last_error: Some(dead.reason),
                });
            }
            moved
        });
        for _ in 0..moved {
            self.shared.wake(queue);
        }
        Ok(moved)
    }

    async fn depths(&self, queue: QueueName) -> Result<Vec<QueueDepth>> {
        let tiers = self.shared.policy.delays().len();
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        Ok(self.shared.with_lane(queue, |lane| {
            lane.promote_due(Instant::now());
            let mut retrying = vec![0_usize; tiers];
            for Reverse(delayed) in &lane.delayed {
                let tier = usize::try_from(delayed.envelope.attempt.saturating_sub(2))
                    .unwrap_or(usize::MAX);
                if let Some(slot) = retrying.get_mut(tier) {
                    *slot += 1;
                }
            }
            let mut depths = vec![QueueDepth {
                queue,
                part: QueuePart::Ready,
                messages: count(lane.ready.len()),
            }];
            depths.extend(
                (1_u32..)
                    .zip(retrying)
                    .map(|(failed_attempt, waiting)| QueueDepth {
                        queue,
                        part: QueuePart::Retry { failed_attempt },
                        messages: count(waiting),
                    }),
            );
            depths.push(QueueDepth {
                queue,
                part: QueuePart::DeadLetters,
                messages: count(lane.dead.len()),
            });
            depths
        }))
    }
}

#[derive(Debug)]
struct InMemorySubscription {
    shared: Arc<Shared>,
    queue: QueueName,
    permits: Arc<Semaphore>,
}

#[async_trait]
impl Subscription for InMemorySubscription {
    async fn next(&mut self) -> Result<Delivery> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| Error::permanent("in-memory queue", "subscription closed"))?;
        let Some(waker) = self.shared.wakers.get(&self.queue) else {
            return Err(Error::permanent("in-memory queue", "unknown queue"));
        };
        loop {
            let notified = waker.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (envelope, next_due) = self.shared.with_lane(self.queue, |lane| {
                lane.promote_due(Instant::now());
                (lane.ready.pop_front(), lane.next_due())
            });
            if let Some(envelope) = envelope {
                // Another consumer may be waiting for what is left.
                self.shared.wake(self.queue);
                return Ok(Delivery::new(
                    envelope.message.clone(),
                    envelope.attempt,
                    envelope.redelivered,
                    envelope.last_error.clone(),
                    self.shared.policy.max_attempts(),
                    Box::new(InMemorySettler {
                        shared: Arc::clone(&self.shared),
                        queue: self.queue,
                        envelope: Some(envelope),
                        _permit: permit,
                    }),
                ));
            }
            match next_due {
                Some(due) => {
                    tokio::select! {
                        () = &mut notified => {}
                        () = tokio::time::sleep_until(due) => {}
                    }
                }
                None => notified.await,
            }
        }
    }
}

#[derive(Debug)]
struct InMemorySettler {
    shared: Arc<Shared>,
    queue: QueueName,
    envelope: Option<Envelope>,
    _permit: OwnedSemaphorePermit,
}

#[async_trait]
impl DeliverySettler for InMemorySettler {
    async fn ack(mut self: Box<Self>) -> Result<()> {
        self.envelope = None;
        Ok(())
    }

    async fn retry(mut self: Box<Self>, attempt: u32, reason: &str) -> Result<RetryOutcome> {
        let Some(mut envelope) = self.envelope.take() else {
            return Err(Error::conflict("delivery already settled"));
        };
        match self.shared.policy.delay_after(attempt) {
            Some(delay) => {
                envelope.attempt = attempt + 1;
                envelope.redelivered = false;
                envelope.last_error = Some(reason.to_owned());
                let due = Instant::now() + delay;
                self.shared.with_lane(self.queue, |lane| {
                    lane.sequence += 1;
                    let sequence = lane.sequence;
                    lane.delayed.push(Reverse(Delayed {
                        due,
                        sequence,
                        envelope,
                    }));
                });
                self.shared.wake(self.queue);
                Ok(RetryOutcome::Scheduled {
                    attempt: attempt + 1,
                    delay,
                })
            }
            None => {
                self.shared
                    .dead_letter(self.queue, envelope, attempt, reason);
                Ok(RetryOutcome::DeadLettered)
            }
        }
    }

    async fn dead_letter(mut self: Box<Self>, attempt: u32, reason: &str) -> Result<()> {
        let Some(envelope) = self.envelope.take() else {
            return Err(Error::conflict("delivery already settled"));
        };
        self.shared
            .dead_letter(self.queue, envelope, attempt, reason);
        Ok(())
    }
}

impl Drop for InMemorySettler {
    fn drop(&mut self) {
        if let Some(mut envelope) = self.envelope.take() {
            envelope.redelivered = true;
            self.shared
                .with_lane(self.queue, |lane| lane.ready.push_front(envelope));
            self.shared.wake(self.queue);
        }
    }
}
