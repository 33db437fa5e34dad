//! The four backend traits and the types they speak.

mod cache;
mod order_queue;
mod stock_store;
mod vendor_client;

pub use cache::{Cache, CacheExt, RateDecision, RateLimit};
pub use order_queue::{
    DeadLetter, Delivery, DeliverySettler, OrderQueue, RetryOutcome, RetryPolicy, Subscription,
};
pub use stock_store::{
    ExpiredBatch, HoldConversion, HoldLimits, HoldPlacement, IdempotencyRecord, OrderPlacement,
    OrderQuery, Page, Placed, PlannedAllocation, PlannedLine, Reroute, StockStore,
};
pub use vendor_client::{
    StockPage, VendorClient, VendorDirectory, VendorInfo, VendorOrder, VendorOrderLine,
    VendorOrderOutcome, VendorShortSku,
};
