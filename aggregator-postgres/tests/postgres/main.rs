//! Tests against a real PostgreSQL, one fresh database per test. They read
//! `DATABASE_URL`; without it they print one line and pass, unless
//! `AGGREGATOR_REQUIRE_SERVICES=1`, then they fail.

mod concurrency;
mod conformance;
mod errors;
mod model;
mod read_replica;
mod services;
mod snapshots;
mod sweeper;
