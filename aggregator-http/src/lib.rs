//! The HTTP API (axum router over `aggregator-core`'s services).
//!
//! Not built yet: this crate is a placeholder in the workspace layout and exports nothing.
