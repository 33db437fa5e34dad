//! Staying polite and safe with a remote dependency that fails: retry delays with
//! jitter, a circuit breaker that stops calling a dependency that keeps failing, and a
//! budget that keeps our requests within what a vendor allows.

mod backoff;
mod breaker;
mod budget;

pub use backoff::Backoff;
pub use breaker::{BreakerConfig, BreakerOpen, BreakerPermit, BreakerState, CircuitBreaker};
pub use budget::{BudgetPermit, VendorBudget, VendorLimits};
