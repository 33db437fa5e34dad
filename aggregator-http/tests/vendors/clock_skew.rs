//! A vendor whose stock feed and order endpoint run on clocks apart, and one whose feed
//! runs far ahead of ours: never a unit told "success" that the vendor then refuses.

use aggregator_core::prelude::*;
use std::sync::Arc;

use aggregator_core::clock::SystemClock;
use aggregator_core::domain::{CustomerId, OrderDetails, OrderMessage, StalenessLimit};
use aggregator_core::error::Error;
use aggregator_core::memory::{InMemoryOrderQueue, InMemoryStockStore};
use aggregator_core::service::register_vendors;
use aggregator_core::service::{
    ItemRequest, OrderConfig, OrderProcessor, OrderRequest, OrderService, ProcessOutcome,
    StockSync, SyncConfig,
};
use aggregator_http::{parse_vendor_list, vendor_clients};
use mock_vendors::{Faults, MockVendor, MockVendorConfig};

use super::support::{quicken, vendor};

/// One vendor with 10 laptops; the sync, ordering and worker steps over it with the
/// default clock rules (5 s tolerance, 5 s margin).
struct OneVendor {
    store: Arc<InMemoryStockStore>,
    orders: OrderService,
    processor: OrderProcessor,
    sync: StockSync,
    vendor: MockVendor,
}

async fn one_vendor() -> OneVendor {
    let vendor = MockVendor::spawn_local(MockVendorConfig::new("VendorA"))
        .await
        .expect("VendorA");
    assert!(vendor.set_quantity("LAPTOP-a-001", 10));
    let store = Arc::new(InMemoryStockStore::new());
    let endpoints = parse_vendor_list(&format!("VendorA={}", vendor.base_url())).expect("list");
    let directory = register_vendors(
        store.as_ref(),
        vendor_clients(&endpoints, quicken).expect("clients"),
    )
    .await
    .expect("registered");
    let clock = Arc::new(SystemClock);
    let sync = StockSync::new(
        store.clone(),
        directory.clone(),
        clock.clone(),
        SyncConfig::default(),
    )
    .expect("sync");
    let orders = OrderService::new(
        store.clone(),
        store.clone(),
        store.clone(),
        clock.clone(),
        OrderConfig::default(),
    )
    .expect("orders");
    let processor = OrderProcessor::new(
        store.clone(),
        store.clone(),
        directory,
        Arc::new(InMemoryOrderQueue::default()),
        clock,
        StalenessLimit::default(),
    );
    OneVendor {
        store,
        orders,
        processor,
        sync,
        vendor,
    }
}

fn one_laptop(n: usize) -> OrderRequest {
    OrderRequest {
        details: OrderDetails {
            customer: CustomerId::new(format!("skew-{n}")).expect("customer"),
            email: None,
            shipping_address: None,
            payment_method: None,
            notes: None,
        },
        items: vec![ItemRequest {
            item: "LAPTOP-001".into(),
            quantity: 1,
            unit_price: None,
        }],
    }
}

/// Twenty one-unit orders, each placed right after a sync (whose outcome is returned
/// alongside) and then forwarded to the vendor. Answers how many were told "success".
async fn race(shop: &OneVendor) -> (usize, Vec<Option<Error>>) {
    let mut told_success = 0;
    let mut syncs = Vec::new();
    for n in 0..20 {
        syncs.push(shop.sync.sync_vendor(&vendor("VendorA")).await.err());
        let Ok(placed) = shop.orders.place(&one_laptop(n), None).await else {
            continue;
        };
        told_success += 1;
        let outcome = shop
            .processor
            .handle(&OrderMessage::ProcessOrder {
                order: placed.order.id,
            })
            .await
            .expect("processed");
        assert!(
            matches!(outcome, ProcessOutcome::Confirmed(_)),
            "order {n} was told success and then {outcome:?}"
        );
    }
    (told_success, syncs)
}

#[tokio::test]
async fn a_feed_clock_5_s_ahead_of_the_order_endpoint_sells_each_unit_once() {
    let shop = one_vendor().await;
    shop.vendor.set_faults(Faults {
        feed_clock_offset_ms: 4_500,
        ..Faults::default()
    });
    let (first, syncs) = race(&shop).await;
    assert!(syncs.iter().all(Option::is_none), "{syncs:?}");
    assert!(first <= 10, "{first} told success for 10 units");
    // Syncs within the margin after a sale keep counting it (a few units wait); once
    // the margin has passed, a sync frees them and the rest sells, once.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    shop.sync
        .sync_vendor(&vendor("VendorA"))
        .await
        .expect("synced");
    let left = shop.vendor.quantity("LAPTOP-a-001").expect("sku");
    assert_eq!(
        left,
        10 - i64::try_from(first).expect("count"),
        "sold once each"
    );
    let row = shop
        .store
        .stock_for_sku(&aggregator_core::domain::VendorSku::new("LAPTOP-a-001").expect("sku"))
        .await
        .expect("row")
        .remove(0);
    assert_eq!(
        (row.confirmed_not_yet_reported, row.sellable()),
        (0, left),
        "the rest is sellable again"
    );
}

#[tokio::test]
async fn a_feed_clock_an_hour_ahead_is_refused_and_sells_each_unit_once() {
    let shop = one_vendor().await;
    shop.sync
        .sync_vendor(&vendor("VendorA"))
        .await
        .expect("a good first sync");
    shop.vendor.set_faults(Faults {
        feed_clock_offset_ms: 3_600_000,
        ..Faults::default()
    });
    let (told_success, syncs) = race(&shop).await;
    assert!(
        syncs.iter().all(|e| e
            .as_ref()
            .is_some_and(|e| e.to_string().contains("ahead of our clock"))),
        "{syncs:?}"
    );
    assert_eq!(told_success, 10);
    assert_eq!(shop.vendor.quantity("LAPTOP-a-001"), Some(0));
}

#[tokio::test]
async fn a_feed_clock_behind_the_order_endpoint_sells_each_unit_once() {
    let shop = one_vendor().await;
    shop.vendor.set_faults(Faults {
        feed_clock_offset_ms: -5_000,
        ..Faults::default()
    });
    let (told_success, _) = race(&shop).await;
    assert!(
        told_success <= 10,
        "{told_success} told success for 10 units"
    );
}
