//! [`RedisCache`]: the cache and rate limiter on Redis.

use std::fmt;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use aggregator_core::traits::{Cache, RateDecision, RateGrant, RateLimit};
use aggregator_core::{Error, Result};
use async_trait::async_trait;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};
use tokio::time::{Instant, timeout};

use crate::config::RedisConfig;

const COMPONENT: &str = "redis";

/// Counts ARGV[2] calls in the key's fixed window (started by the first call, lasting
/// ARGV[1] ms) and returns the count after them and the window's remaining
/// milliseconds. Atomic, since Redis runs a script as one step.
const RATE_LIMIT_SCRIPT: &str = r"
local count = redis.call('INCRBY', KEYS[1], ARGV[2])
local ttl = redis.call('PTTL', KEYS[1])
if count == tonumber(ARGV[2]) or ttl < 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
    ttl = tonumber(ARGV[1])
end
return {count, ttl}
";

/// Takes a slot: drops the slots of KEYS[1] (a sorted set of tokens scored by when they
/// run out, in the server's clock) that ran out, and adds ARGV[3] for ARGV[2] ms if
/// fewer than ARGV[1] are held. Answers 1 when it took one. Atomic, since Redis runs a
/// script as one step; the server's clock, so every client agrees on expiry.
const TAKE_SLOT_SCRIPT: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return 1
end
return 0
";

/// A [`Cache`] on Redis.
///
/// Every call is bounded by the configured timeout, connecting included, and any
/// failure is a retryable `Unavailable`: callers go on without the cache. While Redis
/// is down, calls fail at once (no connection attempt more often than
/// `reconnect_after`); once it is back, the next attempt reconnects without a restart.
pub struct RedisCache {
    client: Client,
    config: RedisConfig,
    connection: Mutex<Option<Link>>,
    failed_at: Mutex<Option<Instant>>,
    connecting: tokio::sync::Mutex<()>,
    rate_limit: redis::Script,
    take_slot: redis::Script,
}

impl fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCache")
            .field("config", &self.config)
            .field("connected", &self.current().is_some())
            .finish()
    }
}

impl RedisCache {
    /// A cache as `config` says. Checks the URL but does not connect: the first call
    /// does, so a process starts even while Redis is down.
    pub fn new(config: RedisConfig) -> Result<Self> {
        let client = if config.cluster {
            let nodes: Vec<&str> = config
                .url
                .expose()
                .split(',')
                .map(str::trim)
                .filter(|node| !node.is_empty())
                .collect();
            if nodes.is_empty() {
                return Err(Error::invalid("redisUrl", "names no cluster node"));
            }
            let cluster = ClusterClient::builder(nodes)
                .connection_timeout(config.timeout)
                .response_timeout(config.timeout)
                // A slot moved (resharding, failover, a cluster still forming) costs a
                // redirect and a slot-map refresh each; the call's timeout bounds them.
                .retries(4)
                .min_retry_wait(10)
                .max_retry_wait(100)
                .build()
                .map_err(|_| {
                    Error::invalid("redisUrl", "is not a comma-separated list of redis:// URLs")
                })?;
            Client::Cluster(Box::new(cluster))
        } else {
            Client::Single(Box::new(redis::Client::open(config.url.expose()).map_err(
                |_| Error::invalid("redisUrl", "is not a valid redis:// URL"),
            )?))
        };
        Ok(Self {
            client,
            config,
            connection: Mutex::new(None),
            failed_at: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
            rate_limit: redis::Script::new(RATE_LIMIT_SCRIPT),
            take_slot: redis::Script::new(TAKE_SLOT_SCRIPT),
        })
    }

    /// The settings in force.
    pub fn config(&self) -> &RedisConfig {
        &self.config
    }

    /// Whether Redis answers a `PING` within the timeout, for `/health`.
    pub async fn ping(&self) -> Result<()> {
        self.run(|mut connection| async move {
            redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await
        })
        .await
        .map(|_| ())
    }

    /// Counts `calls` calls in `key`'s rate-limit window: the count after them and the
    /// time until the window resets.
    async fn count_calls(
        &self,
        key: &str,
        limit: RateLimit,
        calls: u32,
    ) -> Result<(u64, Duration)> {
        let key = self.key(&format!("ratelimit:{key}"));
        let window = u64::try_from(limit.window.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let script = &self.rate_limit;
        let (count, left): (u64, i64) = self
            .run(|mut connection| async move {
                script
                    .key(&key)
                    .arg(window)
                    .arg(calls)
                    .invoke_async(&mut connection)
                    .await
            })
            .await?;
        Ok((
            count,
            Duration::from_millis(u64::try_from(left).unwrap_or(0)),
        ))
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.config.key_prefix)
    }

    fn current(&self) -> Option<Link> {
        self.connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The shared connection, opening it if there is none (one attempt at a time, and
    /// none within `reconnect_after` of a failed one).
    async fn connection(&self) -> Result<Link> {
        if let Some(connection) = self.current() {
            return Ok(connection);
        }
        let _one_at_a_time = self.connecting.lock().await;
        if let Some(connection) = self.current() {
            return Ok(connection);
        }
        let failed_at = *self.failed_at.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(at) = failed_at
            && at.elapsed() < self.config.reconnect_after
        {
            return Err(Error::transient(COMPONENT, "down; not retrying yet"));
        }
        let attempt = async {
            match &self.client {
                Client::Single(client) => {
                    let settings = ConnectionManagerConfig::new()
                        .set_connection_timeout(Some(self.config.timeout))
                        .set_response_timeout(Some(self.config.timeout))
                        .set_number_of_retries(1)
                        .set_max_delay(self.config.reconnect_after);
                    ConnectionManager::new_with_config((**client).clone(), settings)
                        .await
                        .map(Link::Single)
                }
                Client::Cluster(client) => client
                    .get_async_connection()
                    .await
                    .map(|c| Link::Cluster(Box::new(c))),
            }
        };
        match timeout(self.config.timeout, attempt).await {
            Ok(Ok(connection)) => {
                *self.connection.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(connection.clone());
                *self.failed_at.lock().unwrap_or_else(|p| p.into_inner()) = None;
                tracing::info!("connected to redis");
                Ok(connection)
            }
            Ok(Err(error)) => {
                self.mark_down();
                Err(Error::transient(
                    COMPONENT,
                    format!("cannot connect: {}", error.kind_name()),
                ))
            }
            Err(_) => {
                self.mark_down();
                Err(Error::transient(COMPONENT, "connecting timed out"))
            }
        }
    }

    /// Runs one command on the shared connection within the timeout.
    async fn run<T, F, Fut>(&self, command: F) -> Result<T>
    where
        F: FnOnce(Link) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let started = Instant::now();
        let connection = self.connection().await?;
        let left = self.config.timeout.saturating_sub(started.elapsed());
        match timeout(left.max(Duration::from_millis(1)), command(connection)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => {
                if error.is_io_error() || error.is_connection_dropped() || error.is_timeout() {
                    self.mark_down();
                }
                Err(Error::transient(
                    COMPONENT,
                    format!("command failed: {}", error.kind_name()),
                ))
            }
            Err(_) => {
                self.mark_down();
                Err(Error::transient(COMPONENT, "command timed out"))
            }
        }
    }

    /// Drops the connection after it failed, so that calls fail at once until the next
    /// attempt is due (a down Redis then costs requests nothing, not a timeout each).
    fn mark_down(&self) {
        *self
            .connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
        *self.failed_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }
}

/// How to connect: to one Redis, or to a cluster.
enum Client {
    Single(Box<redis::Client>),
    Cluster(Box<ClusterClient>),
}

/// The shared connection: one that reconnects by itself to a single Redis, or one
/// that routes each command to the cluster node owning its key's slot (and follows the
/// cluster's slot moves).
#[derive(Clone)]
enum Link {
    Single(ConnectionManager),
    Cluster(Box<ClusterConnection>),
}

impl ConnectionLike for Link {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(connection) => connection.req_packed_command(cmd),
            Self::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(connection) => connection.req_packed_commands(pipeline, offset, count),
            Self::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(connection) => connection.get_db(),
            Self::Cluster(connection) => connection.get_db(),
        }
    }
}

/// What a `RedisError` is, without its message (which may echo a URL).
trait KindName {
    fn kind_name(&self) -> String;
}

impl KindName for redis::RedisError {
    fn kind_name(&self) -> String {
        format!("{:?}", self.kind())
    }
}

#[async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let key = self.key(key);
        self.run(|mut connection| async move {
            redis::cmd("GET")
                .arg(&key)
                .query_async::<Option<Vec<u8>>>(&mut connection)
                .await
        })
        .await
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<()> {
        let key = self.key(key);
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        self.run(|mut connection| async move {
            redis::cmd("SET")
                .arg(&key)
                .arg(value)
                .arg("PX")
                .arg(millis)
                .query_async::<()>(&mut connection)
                .await
        })
        .await
    }

    async fn set_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool> {
        let key = self.key(key);
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let stored: Option<String> = self
            .run(|mut connection| async move {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(value)
                    .arg("PX")
                    .arg(millis)
                    .arg("NX")
                    .query_async::<Option<String>>(&mut connection)
                    .await
            })
            .await?;
        Ok(stored.is_some())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let key = self.key(key);
        self.run(|mut connection| async move {
            redis::cmd("DEL")
                .arg(&key)
                .query_async::<()>(&mut connection)
                .await
        })
        .await
    }

    async fn delete_many(&self, keys: &[String]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = keys.iter().map(|key| self.key(key)).collect();
        self.run(|mut connection| async move {
            redis::cmd("DEL")
                .arg(&keys)
                .query_async::<()>(&mut connection)
                .await
        })
        .await
    }

    async fn rate_limit(&self, key: &str, limit: RateLimit) -> Result<RateDecision> {
        let (count, retry_after) = self.count_calls(key, limit, 1).await?;
        let used = u32::try_from(count).unwrap_or(u32::MAX);
        Ok(RateDecision {
            allowed: used <= limit.max_requests,
            remaining: limit.max_requests.saturating_sub(used),
            retry_after,
        })
    }

    async fn rate_limit_calls(&self, key: &str, limit: RateLimit, calls: u32) -> Result<RateGrant> {
        let (count, retry_after) = self.count_calls(key, limit, calls).await?;
        let before = count.saturating_sub(u64::from(calls));
        let granted = u64::from(limit.max_requests)
            .saturating_sub(before)
            .min(u64::from(calls));
        Ok(RateGrant {
            granted: u32::try_from(granted).unwrap_or(calls),
            retry_after,
        })
    }

    async fn take_slot(&self, key: &str, max: u32, ttl: Duration) -> Result<Option<String>> {
        let key = self.key(&format!("slots:{key}"));
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let token = uuid::Uuid::new_v4().simple().to_string();
        let script = &self.take_slot;
        let taken: i64 = self
            .run(|mut connection| {
                let token = token.clone();
                async move {
                    script
                        .key(&key)
                        .arg(max)
                        .arg(millis)
                        .arg(token)
                        .invoke_async(&mut connection)
                        .await
                }
            })
            .await?;
        Ok((taken == 1).then_some(token))
    }

    async fn give_back_slot(&self, key: &str, token: &str) -> Result<()> {
        let key = self.key(&format!("slots:{key}"));
        self.run(|mut connection| async move {
            redis::cmd("ZREM")
                .arg(&key)
                .arg(token)
                .query_async::<()>(&mut connection)
                .await
        })
        .await
    }
}
