//! Order Aggregator: one crate to depend on.
//!
//! This facade re-exports [`aggregator_core`] (domain types, the four backend traits, the
//! ordering logic and the in-memory backends) and, behind features, the backend crates:
//!
//! | feature        | crate                  |
//! |----------------|------------------------|
//! | `postgres`     | `aggregator-postgres`  |
//! | `rabbitmq`     | `aggregator-rabbitmq`  |
//! | `redis`        | `aggregator-redis`     |
//! | `http`         | `aggregator-http`      |
//! | `mock-vendors` | `mock-vendors`         |

pub use aggregator_core;

#[cfg(feature = "runtime")]
pub mod app;
#[cfg(feature = "runtime")]
pub mod backends;
#[cfg(all(test, feature = "runtime"))]
mod container_files;
#[cfg(test)]
mod docs_check;
#[cfg(feature = "runtime")]
pub mod logging;
#[cfg(feature = "runtime")]
pub mod settings;
#[cfg(feature = "runtime")]
pub mod stack;
#[cfg(feature = "runtime")]
pub mod stock_sync_cli;
#[cfg(feature = "runtime")]
pub mod sync_progress_view;

#[cfg(feature = "http")]
pub use aggregator_http;
#[cfg(feature = "postgres")]
pub use aggregator_postgres;
#[cfg(feature = "rabbitmq")]
pub use aggregator_rabbitmq;
#[cfg(feature = "redis")]
pub use aggregator_redis;
#[cfg(feature = "mock-vendors")]
pub use mock_vendors;

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme_examples {}
