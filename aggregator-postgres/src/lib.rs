//! PostgreSQL backend for `aggregator-core`'s `StockStore`.
//!
//! Not built yet: this crate is a placeholder in the workspace layout and exports nothing.
//! Until it lands, use `aggregator_core::memory::InMemoryStockStore`.
