//! A 100,000-SKU vendor synced into PostgreSQL over HTTP while orders race for stock.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use aggregator_core::clock::SystemClock;
use aggregator_core::domain::{CustomerId, OrderDetails};
use aggregator_core::error::Error;
use aggregator_core::service::register_vendors;
use aggregator_core::service::{
    ItemRequest, OrderConfig, OrderRequest, OrderService, StockSync, SyncConfig,
};
use aggregator_core::traits::StockStore;
use aggregator_http::{parse_vendor_list, vendor_clients};
use aggregator_postgres::testing::TestDatabase;
use mock_vendors::{MockVendor, MockVendorConfig};

const SKUS: usize = 100_000;

async fn rows(db: &TestDatabase, vendor: &str) -> HashMap<String, (i64, i64)> {
    let rows: Vec<(String, i64, i64)> =
        sqlx::query_as("SELECT sku, reported, reserved FROM vendor_stock WHERE vendor_id = $1")
            .bind(vendor)
            .fetch_all(db.store.pool())
            .await
            .expect("rows");
    rows.into_iter()
        .map(|(sku, reported, reserved)| (sku, (reported, reserved)))
        .collect()
}

fn order_for(racer: usize, n: usize, item: &str) -> OrderRequest {
    OrderRequest {
        details: OrderDetails {
            customer: CustomerId::new(format!("racer-{racer}-{n}")).expect("customer"),
            email: None,
            shipping_address: None,
            payment_method: None,
            notes: None,
        },
        items: vec![ItemRequest {
            item: item.into(),
            quantity: 1,
            unit_price: None,
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_size_sync_lands_whole_while_orders_race_and_nothing_is_oversold() {
    let Some(db) = TestDatabase::create(10).await else {
        return;
    };
    let a = MockVendor::spawn_local(MockVendorConfig::new("VendorA").with_sku_count(SKUS))
        .await
        .expect("VendorA");
    let b = MockVendor::spawn_local(MockVendorConfig::new("VendorB"))
        .await
        .expect("VendorB");
    let store: Arc<dyn StockStore> = Arc::new(db.store.clone());
    let endpoints = parse_vendor_list(&format!(
        "VendorA={},VendorB={}",
        a.base_url(),
        b.base_url()
    ))
    .expect("vendors");
    let directory = register_vendors(
        store.as_ref(),
        vendor_clients(&endpoints, |_| {}).expect("clients"),
    )
    .await
    .expect("registered");
    let sync = StockSync::new(
        store.clone(),
        directory,
        Arc::new(SystemClock),
        SyncConfig::default(),
    )
    .expect("sync");
    let started = Instant::now();
    let first = sync
        .sync_vendor(&a.id().parse().expect("id"))
        .await
        .expect("first full sync");
    eprintln!(
        "first sync of {SKUS} SKUs: {:.2} s (debug build; the benchmark has release figures)",
        started.elapsed().as_secs_f64()
    );
    assert_eq!((first.pages, first.applied), (100, SKUS));
    sync.sync_vendor(&b.id().parse().expect("id"))
        .await
        .expect("VendorB");

    // The vendor's stock moves, then a second full sync runs while 120 orders race.
    let before_a = a.quantity("LAPTOP-a-001").expect("sold");
    let laptops_b = b.quantity("LAPTOP-b-001").expect("sold");
    assert!(a.set_quantity("LAPTOP-a-001", 30));
    for item in a.items().iter().skip(10).step_by(97) {
        a.set_quantity(&item.sku, item.quantity + 3);
    }
    let orders = OrderService::new(
        store.clone(),
        store.clone(),
        store.clone(),
        Arc::new(SystemClock),
        OrderConfig::default(),
    )
    .expect("orders");
    let syncing = Arc::new(AtomicBool::new(true));
    // Four racers place one-unit orders until the sync is over: laptops (scarce, split
    // over both vendors) and generated products whose rows the sync is rewriting.
    let racers: Vec<_> = (0..4)
        .map(|racer| {
            let orders = orders.clone();
            let syncing = syncing.clone();
            tokio::spawn(async move {
                let mut results = Vec::new();
                let mut n = 0usize;
                while syncing.load(Ordering::SeqCst) || n < 30 {
                    let item = if n.is_multiple_of(2) {
                        "LAPTOP-001".to_owned()
                    } else {
                        format!(
                            "ITEM-{:06}",
                            11 + (racer * 7_919 + n * 104_729) % (SKUS - 10)
                        )
                    };
                    results.push((
                        item.clone(),
                        orders.place(&order_for(racer, n, &item), None).await,
                    ));
                    n += 1;
                }
                results
            })
        })
        .collect();
    let second = sync
        .sync_vendor(&a.id().parse().expect("id"))
        .await
        .expect("second full sync");
    syncing.store(false, Ordering::SeqCst);
    assert_eq!(second.applied + second.ignored_older, SKUS);
    let mut placed_laptops = 0i64;
    let mut placed = 0usize;
    let mut per_sku: HashMap<String, i64> = HashMap::new();
    for racer in racers {
        for (item, result) in racer.await.expect("joined") {
            match result {
                Ok(order) => {
                    placed += 1;
                    if item == "LAPTOP-001" {
                        placed_laptops += 1;
                    }
                    for line in &order.order.lines {
                        for allocation in &line.allocations {
                            *per_sku.entry(allocation.sku.to_string()).or_default() +=
                                i64::from(allocation.quantity.get());
                        }
                    }
                }
                Err(Error::InsufficientStock { .. }) => {}
                Err(other) => panic!("an order for {item} failed for another reason: {other}"),
            }
        }
    }
    eprintln!("{placed} orders placed during and around the second sync");
    let ceiling = before_a.max(30) + laptops_b;
    assert!(
        placed_laptops <= ceiling,
        "{placed_laptops} laptops placed with at most {ceiling} units ever there"
    );
    assert!(placed_laptops > 0 && placed > 0);

    // Every one of the 100,000 rows equals the vendor's figure; the sync left every
    // reservation alone.
    let stored = rows(&db, "VendorA").await;
    assert_eq!(stored.len(), SKUS);
    let mut mismatched = 0;
    for item in a.items() {
        let (reported, reserved) = stored[&item.sku];
        if reported != item.quantity {
            mismatched += 1;
        }
        assert_eq!(
            reserved,
            per_sku.get(&item.sku).copied().unwrap_or(0),
            "{}",
            item.sku
        );
    }
    assert_eq!(
        mismatched, 0,
        "rows that differ from the vendor after the sync"
    );
    let stored_b = rows(&db, "VendorB").await;
    assert_eq!(
        stored_b["LAPTOP-b-001"].1,
        per_sku.get("LAPTOP-b-001").copied().unwrap_or(0)
    );
    for (sku, (reported, reserved)) in stored.iter().chain(stored_b.iter()) {
        // LAPTOP-a-001 alone was lowered under its reservations: it may go negative.
        assert!(
            sku == "LAPTOP-a-001" || reserved <= reported,
            "{sku}: {reserved} reserved of {reported}"
        );
    }
    db.finish().await;
}
