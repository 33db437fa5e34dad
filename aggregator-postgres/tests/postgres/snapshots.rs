use aggregator_core::prelude::*;
use std::sync::Arc;

use aggregator_core::conformance::Fixture;
use aggregator_core::domain::{ProductId, Quantity, SnapshotRow, VendorSku};
use aggregator_core::error::Error;
use aggregator_core::traits::{PlannedAllocation, PlannedLine};
use time::Duration;

use aggregator_postgres::testing::TestDatabase;

fn rows(fx: &Fixture, count: usize, quantity: i64, offset: Duration) -> Vec<SnapshotRow> {
    let price = fx.row(&fx.vendor_a, 0, fx.now).price;
    (0..count)
        .map(|n| SnapshotRow {
            sku: VendorSku::new(format!("S{n:06}-{}", fx.tag)).expect("sku"),
            product: ProductId::new(format!("P{n:06}-{}", fx.tag)).expect("product"),
            quantity,
            price,
            as_of: fx.now + offset,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_sku_snapshot_while_orders_are_placed() {
    let Some(db) = TestDatabase::create(10).await else {
        return;
    };
    let store = Arc::new(db.store.clone());
    let fx = Arc::new(Fixture::new(store.as_ref(), 0, 0).await);
    // The first 1,000 SKUs exist before the big snapshot, with 5 units each.
    let first = rows(&fx, 1_000, 5, Duration::ZERO);
    store
        .apply_snapshot(&fx.vendor_a, &first, time::Duration::ZERO)
        .await
        .expect("first snapshot");
    let placer = {
        let (store, fx, first) = (store.clone(), Arc::clone(&fx), first.clone());
        tokio::spawn(async move {
            let mut placed = 0_i64;
            for n in 0..300_usize {
                let row = &first[n % first.len()];
                let one = Quantity::try_from(1).expect("qty");
                let line = PlannedLine {
                    item: row.sku.to_string(),
                    product: row.product.clone(),
                    quantity: one,
                    allocations: vec![PlannedAllocation {
                        vendor: fx.vendor_a.clone(),
                        sku: row.sku.clone(),
                        quantity: one,
                    }],
                    quoted: None,
                };
                match store.place_order(fx.placement(1, vec![line])).await {
                    Ok(_) => placed += 1,
                    Err(Error::InsufficientStock { .. }) => {}
                    Err(other) => panic!("placement failed: {other}"),
                }
            }
            placed
        })
    };
    let big = rows(&fx, 100_000, 3, Duration::seconds(1));
    for page in big.chunks(10_000) {
        store
            .apply_snapshot(&fx.vendor_a, page, time::Duration::ZERO)
            .await
            .expect("page applied");
    }
    let placed = placer.await.expect("placer");
    assert!(placed > 0, "some placements went through");
    let reserved: i64 =
        sqlx::query_scalar("SELECT COALESCE(sum(reserved), 0)::int8 FROM vendor_stock")
            .fetch_one(store.pool())
            .await
            .expect("sum");
    let held: i64 = sqlx::query_scalar("SELECT COALESCE(sum(quantity), 0)::int8 FROM reservations")
        .fetch_one(store.pool())
        .await
        .expect("sum");
    assert_eq!(reserved, placed, "no reservation lost");
    assert_eq!(held, placed, "reserved equals the sum of reservations");
    let rows_now: i64 =
        sqlx::query_scalar("SELECT count(*) FROM vendor_stock WHERE vendor_id = $1")
            .bind(fx.vendor_a.as_str())
            .fetch_one(store.pool())
            .await
            .expect("count");
    assert_eq!(
        rows_now, 100_001,
        "every SKU written (plus the fixture's own)"
    );
    db.finish().await;
}

#[tokio::test]
async fn bad_snapshots_are_refused_whole() {
    let Some(db) = TestDatabase::create(4).await else {
        return;
    };
    let fx = Fixture::new(&db.store, 5, 5).await;
    let mut page = rows(&fx, 10, 2, Duration::seconds(1));
    page[7].quantity = -1;
    match db
        .store
        .apply_snapshot(&fx.vendor_a, &page, time::Duration::ZERO)
        .await
    {
        Err(Error::Invalid { field, .. }) => {
            assert!(field.contains(page[7].sku.as_str()), "{field}")
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    let written: i64 = sqlx::query_scalar("SELECT count(*) FROM vendor_stock WHERE sku LIKE 'S%'")
        .fetch_one(db.store.pool())
        .await
        .expect("count");
    assert_eq!(written, 0, "nothing half-written");
    let unknown = aggregator_core::domain::VendorId::new("nobody").expect("id");
    assert!(matches!(
        db.store
            .apply_snapshot(
                &unknown,
                &rows(&fx, 1, 1, Duration::ZERO),
                time::Duration::ZERO
            )
            .await,
        Err(Error::NotFound { .. })
    ));
    db.finish().await;
}
