//! The sweeper on PostgreSQL: one order at a time, so it never deadlocks against
//! placements, and a row it cannot read does not stop it.

use aggregator_core::prelude::*;
use std::time::Duration as StdDuration;

use aggregator_core::conformance::Fixture;
use aggregator_core::domain::{OrderStatus, Quantity};
use aggregator_core::traits::{PlannedAllocation, PlannedLine};
use aggregator_postgres::testing::TestDatabase;
use time::Duration;

use super::concurrency::second_sku;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiring_many_orders_never_deadlocks_with_a_placement_locking_rows_in_order() {
    let Some(db) = TestDatabase::create(8).await else {
        return;
    };
    let store = db.store.clone();
    let fx = Fixture::new(&store, 10, 0).await;
    let (q_sku, q_product) = second_sku(&store, &fx, 10).await;
    // Due first: an order on Q; due second: an order on P. Placements lock (A, P)
    // before (A, Q); a sweeper that held Q while reaching for P would deadlock.
    let mut on_q = fx.placement(
        1,
        vec![PlannedLine {
            item: q_sku.to_string(),
            product: q_product,
            quantity: Quantity::try_from(1_u32).expect("qty"),
            allocations: vec![PlannedAllocation {
                vendor: fx.vendor_a.clone(),
                sku: q_sku.clone(),
                quantity: Quantity::try_from(1_u32).expect("qty"),
            }],
            quoted: None,
        }],
    );
    on_q.reserved_until = fx.now + Duration::minutes(1);
    let mut on_p = fx.placement(2, vec![fx.line(&fx.vendor_a, 1)]);
    on_p.reserved_until = fx.now + Duration::minutes(2);
    let on_q = store.place_order(on_q).await.expect("on Q").order;
    let on_p = store.place_order(on_p).await.expect("on P").order;

    // A "placement" in flight holds P; it will reach for Q next.
    let mut placement = store.pool().begin().await.expect("begin");
    sqlx::query("SET LOCAL deadlock_timeout = '100ms'")
        .execute(&mut *placement)
        .await
        .expect("set");
    let lock = "SELECT 1 FROM vendor_stock WHERE vendor_id = $1 AND sku = $2 FOR UPDATE";
    sqlx::query(lock)
        .bind(fx.vendor_a.as_str())
        .bind(fx.sku_a.as_str())
        .execute(&mut *placement)
        .await
        .expect("lock P");
    let sweeper = {
        let store = store.clone();
        let now = fx.now + Duration::minutes(3);
        tokio::spawn(async move { store.expire_overdue(now, 100).await })
    };
    // Let the sweeper expire the order on Q and reach the one on P (it waits for P).
    tokio::time::sleep(StdDuration::from_millis(500)).await;
    let reached = sqlx::query(lock)
        .bind(fx.vendor_a.as_str())
        .bind(q_sku.as_str())
        .execute(&mut *placement)
        .await;
    assert!(
        reached.is_ok(),
        "the placement deadlocked against the sweeper: {reached:?}"
    );
    placement.commit().await.expect("commit");
    let swept = tokio::time::timeout(StdDuration::from_secs(10), sweeper)
        .await
        .expect("the sweeper finished")
        .expect("joined")
        .expect("swept");
    assert_eq!(swept.orders, vec![on_q.id, on_p.id]);
    for id in [on_q.id, on_p.id] {
        assert_eq!(
            store.order(id).await.expect("order").status,
            OrderStatus::Expired
        );
    }
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_order_is_skipped_and_the_rest_still_expire() {
    let Some(db) = TestDatabase::create(4).await else {
        return;
    };
    let store = db.store.clone();
    let fx = Fixture::new(&store, 10, 0).await;
    let broken = fx
        .place(&store, &fx.vendor_a, 1, 1)
        .await
        .expect("placed")
        .order;
    let fine = fx
        .place(&store, &fx.vendor_a, 2, 2)
        .await
        .expect("placed")
        .order;
    sqlx::query("UPDATE orders SET lines = '\"garbage\"'::jsonb WHERE id = $1")
        .bind(broken.id.as_uuid())
        .execute(store.pool())
        .await
        .expect("corrupted");
    let swept = store
        .expire_overdue(fx.now + Duration::hours(1), 100)
        .await
        .expect("the round goes on");
    assert_eq!(swept.orders, vec![fine.id]);
    assert_eq!(
        store.order(fine.id).await.expect("order").status,
        OrderStatus::Expired
    );
    assert_eq!(
        fx.stock(&store, &fx.vendor_a).await.reserved,
        1,
        "only the readable order released its units"
    );
    db.finish().await;
}
