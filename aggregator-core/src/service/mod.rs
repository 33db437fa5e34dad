//! The logic that runs on top of the backend traits: placing and cancelling orders,
//! allocation, the worker's step, stock sync, the sweeper, the outbox relay and
//! webhook deliveries.

pub mod allocator;
mod batcher;
mod cached_catalog;
mod catalog;
mod commit_feed;
mod config;
mod consumer;
mod event_follower;
mod group_commit;
mod orders;
mod planning;
mod processor;
mod rate_limiter;
mod recent_reads;
mod relay;
mod runners;
mod shutdown;
mod sweeper;
mod sync;
mod sync_consumer;
mod sync_progress;
pub mod telemetry;
mod vendors;
mod webhook_delivery;
mod webhook_dispatch;

pub use batcher::BatchConfig;
pub use cached_catalog::{CacheStats, CachedCatalog};
pub use catalog::{Catalog, ProductAvailability, VendorAvailability, aggregate};
pub use commit_feed::CommitFeed;
pub use config::OrderConfig;
pub use consumer::{ConsumerConfig, DeliveryHandler, Settled, run_consumer};
pub use event_follower::{EventFollower, FollowerConfig};
pub use group_commit::GroupCommit;
pub use orders::{OrderRequest, OrderService, Scope};
pub use planning::ItemRequest;
pub use processor::{
    BatchOutcome, DEFAULT_BATCH_ORDERS_IN_FLIGHT, DEFAULT_PLACEMENT_TIMEOUT, OrderProcessor,
    ProcessOutcome, vendor_key,
};
pub use rate_limiter::{LimiterSource, RateLimiter};
pub use recent_reads::{RecentReads, Renewing};
pub use relay::OutboxRelay;
pub use runners::{WorkerConfig, run_order_worker, run_periodically, settle_order_delivery};
pub use shutdown::{ShutdownSignal, ShutdownTrigger, shutdown_pair};
pub use sweeper::{DEFAULT_CANCELLATION_REQUEUE_AFTER, Sweeper};
pub use sync::{StockSync, SyncConfig, SyncReport};
pub use sync_consumer::{SyncConsumer, run_sync_schedule};
pub use sync_progress::{SyncProgress, SyncStage, SyncStep};
pub use vendors::{register_vendors, request_syncs};
pub use webhook_delivery::{WebhookDeliverer, WebhookDelivery, WebhookOutcome, WebhookSender};
pub use webhook_dispatch::{DispatchRound, WebhookDispatcher};
