//! The heart of Order Aggregator: domain types, the four backend traits, the reservation
//! and ordering logic, and in-memory backends.
//!
//! * [`domain`]: validated identifiers, quantities, money, vendors, stock, orders, holds.
//! * [`traits`]: [`StockStore`], [`OrderQueue`], [`Cache`] and [`VendorClient`], which the
//!   backend crates implement.
//! * [`service`]: what runs on top of them: placing and cancelling orders, allocation
//!   across vendors, the worker's processing step, stock sync, the sweeper and the outbox
//!   relay.
//! * [`memory`]: in-memory backends that follow exactly the rules the real ones do.
//! * `conformance` (feature `conformance`): the cases every backend must pass.
//!
//! Nothing here oversells: a reservation commits only if
//! `reported − reserved − confirmed_not_yet_reported ≥ quantity` at commit, and the store
//! decides that, never a number read earlier.

pub mod clock;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod domain;
pub mod error;
pub mod memory;
mod redact;
pub mod resilience;
pub mod service;
pub mod traits;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, Result, ShortLine};
pub use redact::redact_url;
pub use traits::{Cache, OrderQueue, StockStore, VendorClient};
