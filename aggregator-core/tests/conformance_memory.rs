//! The conformance suite against the in-memory backends, directly and as trait objects
//! (the queue and cache also through `Arc` and `Box`).

use std::sync::Arc;
use std::time::Duration;

use aggregator_core::conformance;
use aggregator_core::memory::{InMemoryCache, InMemoryOrderQueue, InMemoryStockStore};
use aggregator_core::service::{BatchConfig, GroupCommit};
use aggregator_core::traits::{RetryPolicy, StoreRoles};
use aggregator_core::{Cache, OrderQueue, StockStore};

fn short_policy() -> RetryPolicy {
    RetryPolicy::new(vec![
        Duration::from_millis(50),
        Duration::from_millis(100),
        Duration::from_millis(200),
    ])
    .expect("valid policy")
}

#[tokio::test]
async fn stock_store_suite_direct() {
    conformance::stock_store_suite(&InMemoryStockStore::new()).await;
}

#[tokio::test]
async fn stock_store_suite_through_a_trait_object() {
    let store: Arc<dyn StockStore> = Arc::new(InMemoryStockStore::new());
    conformance::stock_store_suite(store.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_store_suite_through_group_commit() {
    let store: Arc<dyn StockStore> = Arc::new(InMemoryStockStore::new());
    // Group commit takes the placements and status changes; every other role is the
    // store's own.
    let roles = StoreRoles::of(store);
    let batched = GroupCommit::new(
        roles.commits.clone(),
        BatchConfig {
            window: Duration::from_millis(1),
            max_batch: 64,
            in_flight: 2,
        },
    )
    .expect("valid batching");
    let store = StoreRoles {
        commits: Arc::new(batched),
        ..roles
    };
    conformance::stock_store_suite(&store).await;
}

#[tokio::test]
async fn order_queue_suite_direct() {
    let policy = short_policy();
    conformance::order_queue_suite(&InMemoryOrderQueue::new(policy.clone()), &policy).await;
}

#[tokio::test]
async fn order_queue_suite_through_arc_and_box() {
    let policy = short_policy();
    let arc: Arc<dyn OrderQueue> = Arc::new(InMemoryOrderQueue::new(policy.clone()));
    conformance::order_queue_suite(&arc, &policy).await;
    let boxed: Box<dyn OrderQueue> = Box::new(InMemoryOrderQueue::new(policy.clone()));
    conformance::order_queue_suite(&boxed, &policy).await;
}

#[tokio::test]
async fn cache_suite_direct() {
    conformance::cache_suite(&InMemoryCache::new()).await;
}

#[tokio::test]
async fn cache_suite_through_arc_and_box() {
    let arc: Arc<dyn Cache> = Arc::new(InMemoryCache::new());
    conformance::cache_suite(&arc).await;
    let boxed: Box<dyn Cache> = Box::new(InMemoryCache::new());
    conformance::cache_suite(&boxed).await;
}
