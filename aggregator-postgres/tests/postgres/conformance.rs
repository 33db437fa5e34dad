use aggregator_core::StockStore;
use aggregator_core::conformance;
use std::sync::Arc;

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

#[tokio::test]
async fn migrations_can_run_again() {
    let Some(db) = TestDatabase::create(2).await else {
        return;
    };
    db.store.migrate().await.expect("second run is a no-op");
    db.store.ping().await.expect("ping");
    db.finish().await;
}
