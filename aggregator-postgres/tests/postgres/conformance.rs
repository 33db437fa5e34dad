use aggregator_core::StockStore;
use aggregator_core::conformance;
use aggregator_core::service::{BatchConfig, GroupCommit};
use aggregator_core::traits::StoreRoles;
use std::sync::Arc;
use std::time::Duration;

use aggregator_postgres::testing::TestDatabase;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_stock_store_suite_passes() {
    let Some(db) = TestDatabase::create(10).await else {
        return;
    };
    conformance::stock_store_suite(&db.store).await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_suite_passes_through_a_trait_object_too() {
    let Some(db) = TestDatabase::create(10).await else {
        return;
    };
    let store: Arc<dyn StockStore> = Arc::new(db.store.clone());
    conformance::concurrent_placements_never_oversell(store.as_ref()).await;
    conformance::cancel_racing_confirm_has_one_winner(store.as_ref()).await;
    conformance::expiry_releases_exactly_once(store.as_ref()).await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_suite_passes_through_group_commit() {
    let Some(db) = TestDatabase::create(10).await else {
        return;
    };
    let store: Arc<dyn StockStore> = Arc::new(db.store.clone());
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
    db.finish().await;
}

#[tokio::test]
async fn migrations_can_run_again() {
    let Some(db) = TestDatabase::create(2).await else {
        return;
    };
    db.store.migrate().await.expect("second run is a no-op");
    db.store.ping().await.expect("ping");
    db.finish().await;
}
