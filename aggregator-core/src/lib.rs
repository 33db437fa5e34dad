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
//!
//! # Clocks
//!
//! Two vendor clocks are compared and ours only bounds them (the rules are in
//! [`domain::StockLedger`]'s module): a report prunes a confirmation only when its
//! `as_of` (the vendor's stock feed clock) is later than the confirmation (its order
//! endpoint's clock) by more than the confirmation margin, and a feed stamped further
//! ahead of our clock than the clock tolerance is refused whole
//! ([`service::SyncConfig`]). What is assumed: a vendor's feed runs at most the
//! tolerance ahead of our clock, and at most the margin ahead of its own order endpoint.
//!
//! # Vendor orders never outlive ours
//!
//! Every vendor effect an order may cause is placed under a key of the order's version;
//! every change that kills a version's keys writes their cancellations in the same atomic
//! step, and the units under them stay counted until the vendor confirms the
//! cancellation ([`service::OrderProcessor`]'s module has the whole argument).

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
pub use redact::{RedactedUrl, redact_url};
pub use traits::{Cache, OrderQueue, StockStore, VendorClient};

/// The traits a caller needs in scope to call a backend's methods:
/// `use aggregator_core::prelude::*;`.
pub mod prelude {
    pub use crate::traits::{
        Cache, CacheExt, CatalogReads, HoldStore, OrderCommits, OrderEventLog, OrderListing,
        OrderQueue, OrderStore, Outbox, StockStore, VendorClient, VendorLedger, WebhookStore,
    };
}
