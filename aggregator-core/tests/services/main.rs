//! Tests of the core services (orders, holds, worker step, sync, sweeper, relay,
//! catalog) over the in-memory backends, with vendors mocked by mockall.

mod batches;
mod cached;
mod catalog;
mod consumer;
mod holds;
mod orders;
mod processor;
mod rate_limits;
mod relay;
mod runners;
mod support;
mod sweeper;
mod sync;
mod sync_paging;
mod webhooks;
