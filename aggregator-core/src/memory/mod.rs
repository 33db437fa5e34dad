//! In-memory backends: the same rules as the real ones, for tests, demos and
//! single-process embedding.

mod cache;
mod event_log;
mod order_queue;
mod stock_state;
mod stock_store;
mod webhooks;

pub use cache::InMemoryCache;
pub use order_queue::InMemoryOrderQueue;
pub use stock_store::InMemoryStockStore;
