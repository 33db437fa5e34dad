//! Mock vendor servers for tests, demos and benchmarks.
//!
//! Not built yet: this crate is a placeholder in the workspace layout and exports nothing.
