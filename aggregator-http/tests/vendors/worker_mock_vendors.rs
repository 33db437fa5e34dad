//! The worker's step placing real orders at mock vendors through the HTTP client.

use aggregator_core::prelude::*;
use std::sync::Arc;

use aggregator_core::clock::SystemClock;
use aggregator_core::domain::{
    CustomerId, OrderDetails, OrderMessage, OrderStatus, StalenessLimit, VendorSku,
};
use aggregator_core::memory::{InMemoryOrderQueue, InMemoryStockStore};
use aggregator_core::service::register_vendors;
use aggregator_core::service::{
    ItemRequest, OrderConfig, OrderProcessor, OrderRequest, OrderService, ProcessOutcome,
    StockSync, SyncConfig,
};
use aggregator_http::{parse_vendor_list, vendor_clients};
use mock_vendors::{MockVendor, MockVendorConfig};

use super::support::{quicken, vendor};

struct Shop {
    store: Arc<InMemoryStockStore>,
    orders: OrderService,
    processor: OrderProcessor,
    sync: StockSync,
    a: MockVendor,
    b: MockVendor,
}

async fn shop() -> Shop {
    let a = MockVendor::spawn_local(MockVendorConfig::new("VendorA"))
        .await
        .expect("VendorA");
    let b = MockVendor::spawn_local(MockVendorConfig::new("VendorB"))
        .await
        .expect("VendorB");
    let store = Arc::new(InMemoryStockStore::new());
    let list = format!("VendorA={},VendorB={}", a.base_url(), b.base_url());
    let endpoints = parse_vendor_list(&list).expect("vendors");
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
        SyncConfig {
            // A mock vendor stamps its feed and its orders from one clock: no margin
            // is needed between them, and the next sync settles a confirmation.
            confirmation_margin: time::Duration::ZERO,
            ..SyncConfig::default()
        },
    )
    .expect("sync");
    for id in ["VendorA", "VendorB"] {
        sync.sync_vendor(&vendor(id)).await.expect("synced");
    }
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
    Shop {
        store,
        orders,
        processor,
        sync,
        a,
        b,
    }
}

fn request(item: &str, quantity: i64) -> OrderRequest {
    OrderRequest {
        details: OrderDetails {
            customer: CustomerId::new("worker-test").expect("customer"),
            email: None,
            shipping_address: None,
            payment_method: None,
            notes: None,
        },
        items: vec![ItemRequest::new(item, quantity)],
    }
}

async fn row(shop: &Shop, sku: &str) -> aggregator_core::domain::VendorStock {
    shop.store
        .stock_for_sku(&VendorSku::new(sku).expect("sku"))
        .await
        .expect("rows")
        .remove(0)
}

#[tokio::test]
async fn a_confirmed_order_is_placed_at_the_vendor_and_the_next_sync_settles_the_count() {
    let shop = shop().await;
    let before = shop.a.quantity("LAPTOP-a-001").expect("sold");
    let placed = shop
        .orders
        .place(&request("LAPTOP-a-001", 2), None)
        .await
        .expect("reserved");
    let outcome = shop
        .processor
        .handle(&OrderMessage::ProcessOrder {
            order: placed.order.id,
        })
        .await
        .expect("processed");
    let ProcessOutcome::Confirmed(order) = outcome else {
        panic!("expected confirmation, got {outcome:?}");
    };
    assert_eq!(order.status, OrderStatus::Confirmed);
    assert_eq!(
        shop.a.quantity("LAPTOP-a-001"),
        Some(before - 2),
        "placed at the vendor"
    );
    assert_eq!(shop.a.orders_placed(), 1);
    let pending = row(&shop, "LAPTOP-a-001").await;
    assert_eq!(
        (pending.reserved, pending.confirmed_not_yet_reported),
        (0, 2)
    );
    assert_eq!(
        pending.sellable(),
        before - 2,
        "not sold twice before the next sync"
    );
    // A redelivery repeats the placement under the same key: nothing changes twice.
    let again = shop
        .processor
        .handle(&OrderMessage::ProcessOrder {
            order: placed.order.id,
        })
        .await
        .expect("redelivery");
    assert!(matches!(
        again,
        ProcessOutcome::AlreadySettled(OrderStatus::Confirmed)
    ));
    assert_eq!(shop.a.quantity("LAPTOP-a-001"), Some(before - 2));
    shop.sync
        .sync_vendor(&vendor("VendorA"))
        .await
        .expect("synced");
    let settled = row(&shop, "LAPTOP-a-001").await;
    assert_eq!(
        (settled.reported, settled.confirmed_not_yet_reported),
        (before - 2, 0),
        "the vendor's later report includes our units"
    );
}

#[tokio::test]
async fn a_vendor_that_refuses_gets_the_line_rerouted_to_the_other_vendor() {
    let shop = shop().await;
    let at_b = shop.b.quantity("LAPTOP-b-001").expect("sold");
    let placed = shop
        .orders
        .place(&request("LAPTOP-001", 3), None)
        .await
        .expect("reserved");
    let first = &placed.order.lines[0].allocations[0];
    assert_eq!(first.vendor.as_str(), "VendorA", "priority 1 first");
    // VendorA sold out behind our back.
    assert!(shop.a.set_quantity("LAPTOP-a-001", 0));
    let outcome = shop
        .processor
        .handle(&OrderMessage::ProcessOrder {
            order: placed.order.id,
        })
        .await
        .expect("processed");
    let ProcessOutcome::Confirmed(order) = outcome else {
        panic!("expected a re-routed confirmation, got {outcome:?}");
    };
    let vendors: Vec<&str> = order.lines[0]
        .allocations
        .iter()
        .map(|a| a.vendor.as_str())
        .collect();
    assert_eq!(vendors, ["VendorB"]);
    assert_eq!(shop.b.quantity("LAPTOP-b-001"), Some(at_b - 3));
    assert_eq!(shop.a.orders_placed(), 0, "VendorA placed nothing");
    assert_eq!(
        row(&shop, "LAPTOP-a-001").await.reserved,
        0,
        "A's units released"
    );
}
