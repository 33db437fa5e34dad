//! RabbitMQ backend for `aggregator-core`'s [`OrderQueue`](aggregator_core::OrderQueue):
//! durable queues with publisher confirms, retries through per-attempt delay queues,
//! dead letters that can be listed and replayed, and reconnection after a drop.
//!
//! ```no_run
//! # async fn run() -> aggregator_core::Result<()> {
//! use aggregator_rabbitmq::{RabbitConfig, RabbitQueue};
//! let queue = RabbitQueue::connect(RabbitConfig::new("amqp://guest:guest@127.0.0.1:5672/%2f")).await?;
//! # Ok(()) }
//! ```

mod config;
mod connect;
mod headers;
mod link;
mod queue;
mod subscription;

pub use config::{DEFAULT_DELIVERY_LIMIT, RabbitConfig};
pub use queue::RabbitQueue;
