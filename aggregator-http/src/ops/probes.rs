//! How a process tells whether the queue, the cache and a read replica are up, for
//! `/health` and `/health/ready`. Backends that can say more (a ping, a connection
//! flag) plug in here.

use std::fmt;
use std::sync::Arc;

use aggregator_core::error::Result;
use futures_util::future::BoxFuture;

/// A health check of one component: `Ok` when it answers.
pub type Probe = Arc<dyn Fn() -> BoxFuture<'static, Result<()>> + Send + Sync>;

/// Where a read replica's reads go now: `Ok` with how far behind it is while it answers
/// reads, `Err` with why the primary answers them instead.
pub type ReplicaProbe = Arc<dyn Fn() -> std::result::Result<String, String> + Send + Sync>;

/// How to tell whether the queue and the cache are up (the store is checked by reading
/// its vendor list). Backends that can say more (a ping, a connection flag) plug in
/// here; the defaults report them up.
#[derive(Clone)]
pub struct HealthProbes {
    /// The queue's check.
    pub queue: Probe,
    /// The cache's check.
    pub cache: Probe,
    /// The read replica's state, when one is configured.
    pub replica: Option<ReplicaProbe>,
}

impl Default for HealthProbes {
    fn default() -> Self {
        let up: Probe = Arc::new(|| Box::pin(async { Ok(()) }));
        Self {
            queue: up.clone(),
            cache: up,
            replica: None,
        }
    }
}

impl fmt::Debug for HealthProbes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HealthProbes")
    }
}
