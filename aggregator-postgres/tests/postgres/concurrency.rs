use aggregator_core::prelude::*;
use std::sync::Arc;

use aggregator_core::StockStore;
use aggregator_core::conformance::Fixture;
use aggregator_core::domain::{ProductId, Quantity, SnapshotRow, VendorSku};
use aggregator_core::domain::{StatusChange, Transition};
use aggregator_core::error::Error;
use aggregator_core::traits::{PlannedAllocation, PlannedLine};

use aggregator_postgres::testing::TestDatabase;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_racers_for_fifty_units_through_twenty_connections() {
    let Some(db) = TestDatabase::create(20).await else {
        return;
    };
    let store = Arc::new(db.store.clone());
    let fx = Arc::new(Fixture::new(store.as_ref(), 50, 0).await);
    let tasks: Vec<_> = (0..200)
        .map(|n| {
            let (store, fx) = (store.clone(), Arc::clone(&fx));
            tokio::spawn(async move { fx.place(store.as_ref(), &fx.vendor_a, 1, n).await })
        })
        .collect();
    let (mut won, mut short) = (0, 0);
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => won += 1,
            Err(Error::InsufficientStock { .. }) => short += 1,
            Err(other) => panic!("unexpected error reached a caller: {other}"),
        }
    }
    assert_eq!((won, short), (50, 150));
    let row = fx.stock(store.as_ref(), &fx.vendor_a).await;
    assert_eq!((row.reserved, row.sellable()), (50, 0));
    db.finish().await;
}

/// A second product at vendor A, so that one order can name two rows of one vendor.
pub(crate) async fn second_sku(
    store: &dyn StockStore,
    fx: &Fixture,
    units: i64,
) -> (VendorSku, ProductId) {
    let sku = VendorSku::new(format!("Q-a-{}", fx.tag)).expect("sku");
    let product = ProductId::new(format!("Q-{}", fx.tag)).expect("product");
    let row = SnapshotRow {
        sku: sku.clone(),
        product: product.clone(),
        quantity: units,
        price: fx.row(&fx.vendor_a, 0, fx.now).price,
        as_of: fx.now,
    };
    store
        .apply_snapshot(&fx.vendor_a, &[row], time::Duration::ZERO)
        .await
        .expect("snapshot");
    (sku, product)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opposite_two_line_orders_never_deadlock() {
    let Some(db) = TestDatabase::create(20).await else {
        return;
    };
    let store = Arc::new(db.store.clone());
    let fx = Arc::new(Fixture::new(store.as_ref(), 1_000, 1_000).await);
    let (sku_q, product_q) = second_sku(store.as_ref(), &fx, 1_000).await;
    let other_line = PlannedLine {
        item: sku_q.to_string(),
        product: product_q,
        quantity: Quantity::try_from(1).expect("qty"),
        allocations: vec![PlannedAllocation {
            vendor: fx.vendor_a.clone(),
            sku: sku_q,
            quantity: Quantity::try_from(1).expect("qty"),
        }],
        quoted: None,
    };
    let tasks: Vec<_> = (0..100)
        .map(|n| {
            let (store, fx, other_line) = (store.clone(), Arc::clone(&fx), other_line.clone());
            tokio::spawn(async move {
                let first = fx.line(&fx.vendor_a, 1);
                let lines = if n % 2 == 0 {
                    vec![first, other_line]
                } else {
                    vec![other_line, first]
                };
                let placed = store.place_order(fx.placement(n, lines)).await?;
                // Release them again, half of them concurrently with placements.
                let cancel = Transition {
                    order: placed.order.id,
                    expected_version: placed.order.version,
                    change: StatusChange::Cancel,
                    reason: "test".into(),
                    at: fx.now,
                };
                store.transition(&cancel, &[]).await
            })
        })
        .collect();
    for task in tasks {
        if let Err(error) = task.await.expect("task") {
            panic!("an error reached a caller: {error}");
        }
    }
    assert_eq!(fx.stock(store.as_ref(), &fx.vendor_a).await.reserved, 0);
    db.finish().await;
}

/// The deadlocks PostgreSQL broke in this test's database so far (its statistics are
/// flushed within a second, so this waits for them first).
async fn deadlocks(store: &aggregator_postgres::PostgresStockStore) -> i64 {
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    sqlx::query_scalar::<_, i64>(
        "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(store.pool())
    .await
    .expect("deadlocks")
}

/// Re-routes racing cancels and expiries of the same orders: every statement that takes
/// an order row and stock rows takes the order row first, so none deadlocks (PostgreSQL
/// would break one after a second and abort a whole batch of changes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reroutes_racing_cancels_and_expiries_never_deadlock() {
    let Some(db) = TestDatabase::create(20).await else {
        return;
    };
    let store = Arc::new(db.store.clone());
    let fx = Arc::new(Fixture::new(store.as_ref(), 1_000, 1_000).await);
    let before = deadlocks(&db.store).await;
    for round in 0..3_u32 {
        let mut tasks = Vec::new();
        for n in 0..40_u32 {
            let placed = fx
                .place(store.as_ref(), &fx.vendor_a, 2, round * 100 + n)
                .await
                .expect("placed");
            let order = placed.order;
            let (store_a, fx_a, order_a) = (store.clone(), Arc::clone(&fx), order.clone());
            tasks.push(tokio::spawn(async move {
                let reroute = aggregator_core::traits::Reroute {
                    order: order_a.id,
                    expected_version: order_a.version,
                    vendor: fx_a.vendor_a.clone(),
                    sku: fx_a.sku_a.clone(),
                    replacement: vec![PlannedAllocation {
                        vendor: fx_a.vendor_b.clone(),
                        sku: fx_a.sku_b.clone(),
                        quantity: Quantity::try_from(2).expect("qty"),
                    }],
                    reason: "race".into(),
                    at: fx_a.now,
                    fresh_since: fx_a.fresh_since(),
                };
                match store_a.reroute(&reroute).await {
                    Ok(_) | Err(Error::Conflict { .. }) => Ok(()),
                    Err(other) => Err(other),
                }
            }));
            let (store_b, fx_b) = (store.clone(), Arc::clone(&fx));
            tasks.push(tokio::spawn(async move {
                let change = if n % 2 == 0 {
                    StatusChange::Cancel
                } else {
                    StatusChange::Expire
                };
                let transition = Transition {
                    order: order.id,
                    expected_version: order.version,
                    change,
                    reason: "race".into(),
                    at: fx_b.now,
                };
                // A batch of changes, as the group commit of the API and sweeper sends.
                let answers = store_b.transitions(vec![(transition, Vec::new())]).await;
                match answers.into_iter().next() {
                    Some(Ok(_) | Err(Error::Conflict { .. })) => Ok(()),
                    Some(Err(other)) => Err(other),
                    None => Ok(()),
                }
            }));
        }
        for task in tasks {
            if let Err(error) = task.await.expect("task") {
                panic!("an error reached a caller: {error}");
            }
        }
    }
    assert_eq!(
        deadlocks(&db.store).await - before,
        0,
        "re-routes and status changes deadlocked"
    );
    assert_eq!(fx.stock(store.as_ref(), &fx.vendor_a).await.reserved, 0);
    db.finish().await;
}
