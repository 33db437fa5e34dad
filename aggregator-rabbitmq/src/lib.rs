//! RabbitMQ backend for `aggregator-core`'s `OrderQueue`, and the outbox relay's publisher.
//!
//! Not built yet: this crate is a placeholder in the workspace layout and exports nothing.
//! Until it lands, use `aggregator_core::memory::InMemoryOrderQueue`.
