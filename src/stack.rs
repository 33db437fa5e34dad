//! The running system ([`crate::app::App::start`] starts it): the API, order workers,
//! outbox relay, sweeper, stock-sync schedule and consumer, each a task watching one
//! shutdown signal.

use std::net::SocketAddr;
use std::time::Duration;

use aggregator_core::error::{Error, Result};
use aggregator_core::service::{ShutdownSignal, ShutdownTrigger, run_periodically};
use tokio::task::JoinSet;

use crate::backends::Backends;

/// Which parts run in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    /// The HTTP API.
    pub api: bool,
    /// Order workers (as many as the settings say).
    pub worker: bool,
    /// The outbox relay (safe to run in several processes: claims are leased).
    pub relay: bool,
    /// The sweeper of overdue reservations and holds.
    pub sweeper: bool,
    /// The stock-sync schedule and the `stock_sync_queue` consumer.
    pub sync: bool,
}

impl Roles {
    /// Everything in one process.
    pub const ALL: Self = Self {
        api: true,
        worker: true,
        relay: true,
        sweeper: true,
        sync: true,
    };

    /// Nothing; switch on what is wanted.
    pub const NONE: Self = Self {
        api: false,
        worker: false,
        relay: false,
        sweeper: false,
        sync: false,
    };
}

/// A started system.
#[derive(Debug)]
pub struct RunningStack {
    /// Where the API listens, if it runs here.
    pub api_addr: Option<SocketAddr>,
    /// Where the ops listener serves `/metrics` and health, if the settings ask for one.
    pub ops_addr: Option<SocketAddr>,
    /// The backends it runs on.
    pub backends: Backends,
    pub(crate) trigger: ShutdownTrigger,
    pub(crate) tasks: JoinSet<(String, Result<()>)>,
    pub(crate) grace: Duration,
}

pub(crate) fn spawn_periodic<F, Fut, T>(
    tasks: &mut JoinSet<(String, Result<()>)>,
    name: &'static str,
    interval: Duration,
    signal: ShutdownSignal,
    job: F,
) where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T>> + Send,
    T: std::fmt::Debug + Send,
{
    tasks.spawn(async move {
        (
            name.to_owned(),
            run_periodically(name, interval, signal, job).await,
        )
    });
}

impl RunningStack {
    /// Asks every part to stop, then waits for them: in-flight requests and messages
    /// finish within the grace period; whatever is left is abandoned (messages go back
    /// to the queue unacknowledged). Answers the first error a part ended with.
    pub async fn shutdown(mut self) -> Result<()> {
        self.trigger.trigger();
        let mut first_error = None;
        let all = async {
            while let Some(joined) = self.tasks.join_next().await {
                match joined {
                    Ok((name, Err(error))) => {
                        tracing::error!(part = %name, %error, "stopped with an error");
                        first_error.get_or_insert(error);
                    }
                    Ok((name, Ok(()))) => tracing::info!(part = %name, "stopped"),
                    Err(error) => tracing::error!(%error, "a part panicked"),
                }
            }
        };
        // The workers keep their own grace; this bound only guards against a part that
        // never returns.
        if tokio::time::timeout(self.grace + Duration::from_secs(5), all)
            .await
            .is_err()
        {
            tracing::warn!("some parts did not stop in time; abandoning them");
            self.tasks.abort_all();
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Waits until `stop` completes or a part stops by itself, then shuts everything
    /// down. A part that stopped by itself (with an error or not) makes this an error,
    /// so a supervisor sees the process fail.
    pub async fn run_until(mut self, stop: impl std::future::Future<Output = ()>) -> Result<()> {
        let early = tokio::select! {
            () = stop => None,
            Some(joined) = self.tasks.join_next() => Some(joined),
        };
        let stopped = self.shutdown().await;
        match early {
            None => stopped,
            Some(Ok((name, Err(error)))) => {
                tracing::error!(part = %name, %error, "a part failed; everything was stopped");
                Err(error)
            }
            Some(Ok((name, Ok(())))) => Err(Error::transient(name, "stopped by itself")),
            Some(Err(join)) => Err(Error::transient(
                "stack",
                format!("a part panicked: {join}"),
            )),
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM. The handlers are installed when this is
/// called, not when it is first awaited: call it before starting anything, so a signal
/// that arrives while the system starts is not lost (or fatal).
pub fn termination_signal() -> impl std::future::Future<Output = ()> + Send {
    #[cfg(unix)]
    let handlers = {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(term), Ok(interrupt)) => Some((term, interrupt)),
            _ => None,
        }
    };
    async move {
        #[cfg(unix)]
        if let Some((mut term, mut interrupt)) = handlers {
            tokio::select! {
                _ = term.recv() => {}
                _ = interrupt.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
