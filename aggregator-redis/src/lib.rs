//! Redis backend for `aggregator-core`'s `Cache` (availability cache and rate limits).
//!
//! Not built yet: this crate is a placeholder in the workspace layout and exports nothing.
//! Until it lands, use `aggregator_core::memory::InMemoryCache`.
