//! Staying polite and safe with a remote dependency that fails: retry delays with
//! jitter, and a circuit breaker that stops calling a dependency that keeps failing.

mod backoff;
mod breaker;

pub use backoff::Backoff;
pub use breaker::{BreakerConfig, BreakerOpen, BreakerPermit, BreakerState, CircuitBreaker};
