//! [`Batcher`]: gathers requests that arrive close together and hands them to one call
//! as a batch, answering each caller with its own result.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::{Instant, timeout_at};

use crate::error::{Error, Result};

/// How requests are gathered into batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    /// How long the first request of a batch waits for others to join it (not at all
    /// when no batch is in the store and no other request is waiting).
    pub window: Duration,
    /// The most requests in one batch; 1 turns batching off.
    pub max_batch: usize,
    /// How many batches may be in the store at once; requests keep gathering while
    /// every slot is busy.
    pub in_flight: usize,
}

impl Default for BatchConfig {
    /// Up to 256 requests gathered for at most 2 ms, 2 batches at once.
    fn default() -> Self {
        Self {
            window: Duration::from_millis(2),
            max_batch: 256,
            in_flight: 2,
        }
    }
}

impl BatchConfig {
    /// True when every request goes to the store on its own.
    pub fn is_off(&self) -> bool {
        self.max_batch <= 1
    }

    /// Refuses settings that cannot work (no batch slot, a window of a minute or more).
    pub fn validate(&self) -> Result<()> {
        if self.max_batch == 0 {
            return Err(Error::invalid("maxBatch", "must be at least 1"));
        }
        if self.in_flight == 0 {
            return Err(Error::invalid("batchesInFlight", "must be at least 1"));
        }
        if self.window >= Duration::from_secs(60) {
            return Err(Error::invalid("batchWindow", "must be under a minute"));
        }
        Ok(())
    }
}

type Waiting<Req, Resp> = (Req, oneshot::Sender<Result<Resp>>);

/// A running batcher: [`Batcher::submit`] waits at most the window, then for a free
/// slot, then for its batch's call. A request that finds no batch in the store and no
/// other request waiting does not wait the window: it goes to the store at once. The
/// gathering task stops when the batcher is dropped, after answering everything already
/// submitted.
#[derive(Debug)]
pub(crate) struct Batcher<Req, Resp> {
    requests: mpsc::UnboundedSender<Waiting<Req, Resp>>,
    name: &'static str,
}

impl<Req, Resp> Batcher<Req, Resp>
where
    Req: Send + 'static,
    Resp: Send + 'static,
{
    /// Starts gathering on the current Tokio runtime; `call` answers one batch, one
    /// result per request in the order given.
    pub(crate) fn start<F, Fut>(name: &'static str, config: BatchConfig, call: F) -> Self
    where
        F: Fn(Vec<Req>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<Result<Resp>>> + Send + 'static,
    {
        let (requests, incoming) = mpsc::unbounded_channel();
        tokio::spawn(gather(incoming, config, Arc::new(call), name));
        Self { requests, name }
    }

    /// Hands `request` to the next batch and waits for its own answer.
    pub(crate) async fn submit(&self, request: Req) -> Result<Resp> {
        let (answer, answered) = oneshot::channel();
        self.requests
            .send((request, answer))
            .map_err(|_| stopped(self.name))?;
        answered.await.map_err(|_| stopped(self.name))?
    }
}

fn stopped(name: &'static str) -> Error {
    Error::transient(name, "the batcher stopped before answering")
}

async fn gather<Req, Resp, F, Fut>(
    mut incoming: mpsc::UnboundedReceiver<Waiting<Req, Resp>>,
    config: BatchConfig,
    call: Arc<F>,
    name: &'static str,
) where
    Req: Send + 'static,
    Resp: Send + 'static,
    F: Fn(Vec<Req>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Vec<Result<Resp>>> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(config.in_flight.max(1)));
    let max = config.max_batch.max(1);
    let mut open = true;
    while open {
        let Some(first) = incoming.recv().await else {
            break;
        };
        let mut batch = vec![first];
        // Nothing in the store and nobody else waiting: there is nothing to batch
        // with, so the request goes at once instead of waiting out the window.
        let idle = slots.available_permits() == config.in_flight.max(1);
        while batch.len() < max {
            match incoming.try_recv() {
                Ok(next) => batch.push(next),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        let alone = idle && batch.len() == 1;
        let deadline = Instant::now() + config.window;
        while open && !alone && batch.len() < max {
            match timeout_at(deadline, incoming.recv()).await {
                Ok(Some(next)) => batch.push(next),
                Ok(None) => {
                    open = false;
                    break;
                }
                Err(_) => break,
            }
        }
        // Wait for a free slot, and let whatever arrives meanwhile join this batch.
        let slot = loop {
            tokio::select! {
                biased;
                slot = slots.clone().acquire_owned() => break slot,
                next = incoming.recv(), if open && batch.len() < max => match next {
                    Some(next) => batch.push(next),
                    None => open = false,
                },
            }
        };
        let Ok(slot) = slot else {
            break;
        };
        super::telemetry::batch_gathered(name, batch.len());
        let call = call.clone();
        tokio::spawn(async move {
            let (requests, answers): (Vec<Req>, Vec<_>) = batch.into_iter().unzip();
            let count = requests.len();
            let mut results = call(requests).await.into_iter();
            for answer in answers {
                let result = results.next().unwrap_or_else(|| {
                    Err(Error::permanent(
                        name,
                        format!("a batch of {count} got fewer answers than requests"),
                    ))
                });
                // A caller that went away no longer needs its answer.
                let _ = answer.send(result);
            }
            drop(slot);
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    type Calls = Arc<Mutex<Vec<Vec<u32>>>>;

    /// A batcher whose calls are logged and take `store_time` each.
    fn recording(config: BatchConfig, store_time: Duration) -> (Arc<Batcher<u32, u32>>, Calls) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let batcher = Batcher::start("test", config, move |batch: Vec<u32>| {
            let log = log.clone();
            async move {
                log.lock().expect("log").push(batch.clone());
                tokio::time::sleep(store_time).await;
                batch
                    .into_iter()
                    .map(|n| {
                        if n == 13 {
                            Err(Error::conflict("unlucky"))
                        } else {
                            Ok(n * 2)
                        }
                    })
                    .collect()
            }
        });
        (Arc::new(batcher), seen)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_within_the_window_share_one_call_and_get_their_own_answers() {
        // Each call takes a while, as a store's does: the requests that arrive while
        // one is in the store gather for the next.
        let (batcher, seen) = recording(
            BatchConfig {
                window: Duration::from_millis(200),
                max_batch: 64,
                in_flight: 1,
            },
            Duration::from_millis(20),
        );
        let mut tasks = Vec::new();
        for n in 0..20u32 {
            let batcher = batcher.clone();
            tasks.push(tokio::spawn(async move { (n, batcher.submit(n).await) }));
        }
        for task in tasks {
            let (n, answer) = task.await.expect("task");
            if n == 13 {
                assert!(matches!(answer, Err(Error::Conflict { .. })), "{answer:?}");
            } else {
                assert_eq!(answer.expect("answer"), n * 2);
            }
        }
        let seen = seen.lock().expect("log");
        assert_eq!(seen.iter().map(Vec::len).sum::<usize>(), 20);
        assert!(
            seen.len() < 20,
            "20 requests within 200 ms took {} calls",
            seen.len()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_request_on_an_idle_batcher_does_not_wait_the_window() {
        let (batcher, seen) = recording(
            BatchConfig {
                window: Duration::from_secs(30),
                max_batch: 64,
                in_flight: 2,
            },
            Duration::ZERO,
        );
        for n in [1u32, 2] {
            let started = Instant::now();
            assert_eq!(batcher.submit(n).await.expect("answer"), n * 2);
            assert_eq!(
                started.elapsed(),
                Duration::ZERO,
                "request {n} waited for nobody"
            );
        }
        assert_eq!(*seen.lock().expect("log"), vec![vec![1], vec![2]]);
    }

    #[tokio::test(start_paused = true)]
    async fn requests_arriving_while_a_batch_is_in_the_store_wait_the_window_together() {
        let seen: Calls = Arc::new(Mutex::new(Vec::new()));
        let gate = Arc::new(Semaphore::new(0));
        let (log, held) = (seen.clone(), gate.clone());
        let batcher = Arc::new(Batcher::start(
            "gated",
            BatchConfig {
                window: Duration::from_millis(100),
                max_batch: 64,
                in_flight: 2,
            },
            move |batch: Vec<u32>| {
                let (log, held) = (log.clone(), held.clone());
                async move {
                    log.lock().expect("log").push(batch.clone());
                    if batch.contains(&1) {
                        // The first batch stays in the store until the test lets it go.
                        held.acquire().await.expect("gate").forget();
                    }
                    batch.into_iter().map(Ok).collect()
                }
            },
        ));
        let first = tokio::spawn({
            let batcher = batcher.clone();
            async move { batcher.submit(1).await }
        });
        // Let the first request reach the store (it goes at once: nothing to wait for).
        while seen.lock().expect("log").is_empty() {
            tokio::task::yield_now().await;
        }
        let started = Instant::now();
        let later: Vec<_> = [2u32, 3]
            .into_iter()
            .map(|n| {
                let batcher = batcher.clone();
                tokio::spawn(async move { batcher.submit(n).await })
            })
            .collect();
        for task in later {
            task.await.expect("task").expect("answer");
        }
        assert!(
            started.elapsed() >= Duration::from_millis(100),
            "with a batch in the store, later requests gather for the window"
        );
        gate.add_permits(1);
        assert_eq!(first.await.expect("task").expect("answer"), 1);
        assert_eq!(*seen.lock().expect("log"), vec![vec![1], vec![2, 3]]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_never_exceeds_its_maximum() {
        let (batcher, seen) = recording(
            BatchConfig {
                window: Duration::from_millis(50),
                max_batch: 3,
                in_flight: 2,
            },
            Duration::from_millis(5),
        );
        let mut tasks = Vec::new();
        for n in 0..10u32 {
            let batcher = batcher.clone();
            tasks.push(tokio::spawn(async move { batcher.submit(n).await }));
        }
        for task in tasks {
            task.await.expect("task").expect("answer");
        }
        let seen = seen.lock().expect("log");
        assert!(seen.iter().all(|batch| batch.len() <= 3), "{seen:?}");
        assert_eq!(seen.iter().map(Vec::len).sum::<usize>(), 10);
    }

    #[tokio::test]
    async fn a_call_that_answers_too_few_fails_the_rest_instead_of_hanging() {
        let batcher = Batcher::start(
            "short",
            BatchConfig {
                window: Duration::from_millis(20),
                max_batch: 8,
                in_flight: 1,
            },
            |_batch: Vec<u32>| async move { Vec::<Result<u32>>::new() },
        );
        let answer = batcher.submit(1).await;
        assert!(
            matches!(answer, Err(Error::Unavailable { .. })),
            "{answer:?}"
        );
    }

    #[test]
    fn unusable_settings_are_refused() {
        let zero = BatchConfig {
            max_batch: 0,
            ..BatchConfig::default()
        };
        assert!(zero.validate().is_err());
        let no_slot = BatchConfig {
            in_flight: 0,
            ..BatchConfig::default()
        };
        assert!(no_slot.validate().is_err());
        assert!(BatchConfig::default().validate().is_ok());
        assert!(
            BatchConfig {
                max_batch: 1,
                ..BatchConfig::default()
            }
            .is_off()
        );
    }
}
