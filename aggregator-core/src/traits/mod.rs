//! The four backend traits (the store as the sum of its roles) and the types they speak.

mod cache;
mod catalog_reads;
mod hold_store;
mod order_commits;
mod order_event_log;
mod order_listing;
mod order_queue;
mod order_store;
mod outbox;
mod stock_store;
mod store_roles;
mod vendor_client;
mod vendor_ledger;
mod webhook_store;

pub use cache::{Cache, CacheExt, RateDecision, RateGrant, RateLimit};
pub use catalog_reads::CatalogReads;
pub use hold_store::HoldStore;
pub use order_commits::OrderCommits;
pub use order_event_log::OrderEventLog;
pub use order_listing::OrderListing;
pub use order_queue::{
    DeadLetter, Delivery, DeliverySettler, OrderQueue, QueueDepth, QueuePart, RetryOutcome,
    RetryPolicy, Subscription,
};
pub use order_store::OrderStore;
pub use outbox::{Outbox, OutboxBacklog};
pub use stock_store::{
    CancellationBacklog, ExpiredBatch, HoldConversion, HoldLimits, HoldPlacement,
    IdempotencyRecord, OrderPlacement, OrderQuery, Page, Placed, PlannedAllocation, PlannedLine,
    Reroute, StockStore,
};
pub use store_roles::StoreRoles;
pub use vendor_client::{
    CancelOutcome, StockPage, VendorClient, VendorDirectory, VendorInfo, VendorOrder,
    VendorOrderLine, VendorOrderOutcome, VendorShortSku,
};
pub use vendor_ledger::VendorLedger;
pub use webhook_store::WebhookStore;
