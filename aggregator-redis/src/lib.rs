//! Redis backend for `aggregator-core`'s [`Cache`](aggregator_core::Cache): the
//! availability cache and the per-key rate limiter, shared by every API server.
//!
//! The cache is only ever a read path; nothing that decides a placement reads it. Every
//! call is bounded by a short timeout and fails with a retryable `Unavailable` when
//! Redis is slow or down, so callers fall back to the store (and to an in-process rate
//! limiter, see `aggregator_core::service::RateLimiter`) and keep serving. When Redis
//! comes back, the next call reconnects.
//!
//! ```no_run
//! # fn run() -> aggregator_core::Result<()> {
//! use aggregator_redis::{RedisCache, RedisConfig};
//! let cache = RedisCache::new(RedisConfig::new("redis://127.0.0.1:6379"))?;
//! # Ok(()) }
//! ```

mod cache;
mod config;

pub use cache::RedisCache;
pub use config::RedisConfig;
