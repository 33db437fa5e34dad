//! Stock sync through the HTTP client from mock vendors into the in-memory store.

use aggregator_core::prelude::*;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use aggregator_core::clock::ManualClock;
use aggregator_core::domain::{
    HealthPolicy, Message, ProductId, QueueName, StalenessLimit, SyncRequest, VendorHealth,
    VendorSku,
};
use aggregator_core::memory::{InMemoryOrderQueue, InMemoryStockStore};
use aggregator_core::service::register_vendors;
use aggregator_core::service::{Catalog, Settled, StockSync, SyncConfig, SyncConsumer};
use aggregator_core::traits::{OrderQueue, RetryPolicy, VendorClient, VendorDirectory};
use aggregator_http::{parse_vendor_list, vendor_clients};
use mock_vendors::{Faults, MockVendor, MockVendorConfig};
use time::OffsetDateTime;
use wiremock::matchers::{method, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::support::{client, quick_config, quicken, vendor};

struct Rig {
    store: Arc<InMemoryStockStore>,
    clock: ManualClock,
    sync: StockSync,
    catalog: Catalog,
}

async fn rig(urls: &[(&str, String)]) -> Rig {
    let store = Arc::new(InMemoryStockStore::new());
    let clock = ManualClock::new(OffsetDateTime::now_utc());
    let list: Vec<String> = urls.iter().map(|(id, url)| format!("{id}={url}")).collect();
    let endpoints = parse_vendor_list(&list.join(",")).expect("vendors");
    let directory = register_vendors(
        store.as_ref(),
        vendor_clients(&endpoints, quicken).expect("clients"),
    )
    .await
    .expect("registered");
    let config = SyncConfig {
        page_size: 4,
        max_pages: 100,
        health: HealthPolicy {
            down_after_failures: 3,
        },
        ..SyncConfig::default()
    };
    let sync =
        StockSync::new(store.clone(), directory, Arc::new(clock.clone()), config).expect("sync");
    let staleness = StalenessLimit::new(time::Duration::minutes(5)).expect("limit");
    let catalog = Catalog::new(store.clone(), Arc::new(clock.clone()), staleness);
    Rig {
        store,
        clock,
        sync,
        catalog,
    }
}

async fn two_vendors() -> (MockVendor, MockVendor) {
    let a = MockVendor::spawn_local(MockVendorConfig::new("VendorA"))
        .await
        .expect("VendorA");
    let b = MockVendor::spawn_local(MockVendorConfig::new("VendorB"))
        .await
        .expect("VendorB");
    (a, b)
}

async fn available(rig: &Rig, product: &str) -> u64 {
    rig.catalog
        .availability(&ProductId::new(product).expect("product"))
        .await
        .expect("availability")
        .available
}

async fn reported(rig: &Rig, sku: &str) -> i64 {
    rig.store
        .stock_for_sku(&VendorSku::new(sku).expect("sku"))
        .await
        .expect("rows")
        .first()
        .map_or(-1, |row| row.reported)
}

#[tokio::test]
async fn a_full_sync_of_two_mock_vendors_feeds_the_catalog() {
    let (a, b) = two_vendors().await;
    let rig = rig(&[("VendorA", a.base_url()), ("VendorB", b.base_url())]).await;
    for id in ["VendorA", "VendorB"] {
        let report = rig.sync.sync_vendor(&vendor(id)).await.expect("synced");
        assert_eq!(
            (report.pages, report.applied),
            (3, 10),
            "10 SKUs in pages of 4"
        );
        assert_eq!(report.vendor.health, VendorHealth::Healthy);
    }
    let expected =
        a.quantity("LAPTOP-a-001").expect("sold") + b.quantity("LAPTOP-b-001").expect("sold");
    assert_eq!(
        available(&rig, "LAPTOP-001").await,
        u64::try_from(expected).expect("positive")
    );
}

#[tokio::test]
async fn fluctuations_show_up_after_the_next_sync() {
    let (a, _b) = two_vendors().await;
    let rig = rig(&[("VendorA", a.base_url())]).await;
    rig.sync
        .sync_vendor(&vendor("VendorA"))
        .await
        .expect("synced");
    let answer = reqwest::Client::new()
        .post(format!("{}/simulate/fluctuation", a.base_url()))
        .send()
        .await
        .expect("fluctuation");
    assert!(answer.status().is_success());
    rig.sync
        .sync_vendor(&vendor("VendorA"))
        .await
        .expect("synced again");
    for item in a.items() {
        assert_eq!(
            reported(&rig, &item.sku).await,
            item.quantity,
            "{}",
            item.sku
        );
    }
}

#[tokio::test]
async fn a_vendor_outage_keeps_its_last_good_data_until_the_staleness_limit() {
    let (a, b) = two_vendors().await;
    let rig = rig(&[("VendorA", a.base_url()), ("VendorB", b.base_url())]).await;
    rig.sync
        .sync_vendor(&vendor("VendorA"))
        .await
        .expect("synced");
    rig.sync
        .sync_vendor(&vendor("VendorB"))
        .await
        .expect("synced");
    let both = available(&rig, "LAPTOP-001").await;
    let b_only = u64::try_from(b.quantity("LAPTOP-b-001").expect("sold")).expect("positive");
    a.set_faults(Faults {
        outage: true,
        ..Faults::default()
    });
    rig.clock.advance(time::Duration::minutes(1));
    let error = rig
        .sync
        .sync_vendor(&vendor("VendorA"))
        .await
        .expect_err("down");
    assert!(error.is_retryable(), "{error}");
    let vendors = rig.store.vendors().await.expect("vendors");
    let record = vendors
        .iter()
        .find(|v| v.id.as_str() == "VendorA")
        .expect("A");
    assert_eq!(record.health, VendorHealth::Degraded);
    assert_eq!(record.consecutive_failures, 1);
    assert!(
        record
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("503"))
    );
    assert_eq!(
        available(&rig, "LAPTOP-001").await,
        both,
        "last good data still counts"
    );
    rig.clock.advance(time::Duration::minutes(5));
    rig.sync
        .sync_vendor(&vendor("VendorB"))
        .await
        .expect("B stays fresh");
    assert_eq!(
        available(&rig, "LAPTOP-001").await,
        b_only,
        "A is stale now"
    );
    a.reset_faults();
    let report = rig
        .sync
        .sync_vendor(&vendor("VendorA"))
        .await
        .expect("back");
    assert_eq!(report.vendor.health, VendorHealth::Healthy);
    assert_eq!(report.vendor.consecutive_failures, 0);
    assert_eq!(available(&rig, "LAPTOP-001").await, both);
}

#[tokio::test]
async fn one_bad_page_rejects_the_whole_snapshot() {
    let server = MockServer::start().await;
    let row = |sku: &str, quantity: i64| {
        serde_json::json!([{"sku": sku, "productId": "LAPTOP-001", "quantity": quantity,
            "price": {"minorUnits": 100, "currency": "USD"}}])
    };
    // The vendor's times lie a minute and half a minute back (a feed ahead of our clock
    // would be refused).
    let stamp = |back: i64| {
        (time::OffsetDateTime::now_utc() - time::Duration::seconds(back))
            .format(&time::format_description::well_known::Rfc3339)
            .expect("time")
    };
    let (first_at, second_at) = (stamp(60), stamp(30));
    let page = |n: &str, body: serde_json::Value| {
        Mock::given(method("GET"))
            .and(query_param("page", n))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("x-total-count", "2")
                    .insert_header("x-as-of", first_at.as_str())
                    .set_body_json(body),
            )
    };
    page("1", row("LAPTOP-q-001", 5)).mount(&server).await;
    page("2", row("LAPTOP-q-002", 6))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let rig = rig(&[("VendorQ", server.uri())]).await;
    let config = SyncConfig {
        page_size: 1,
        ..SyncConfig::default()
    };
    let mut directory = VendorDirectory::new();
    directory
        .insert(Arc::new(client(quick_config("VendorQ", &server.uri()))) as Arc<dyn VendorClient>);
    let sync = StockSync::new(
        rig.store.clone(),
        directory,
        Arc::new(rig.clock.clone()),
        config,
    )
    .expect("sync");
    sync.sync_vendor(&vendor("VendorQ"))
        .await
        .expect("first snapshot");
    assert_eq!(reported(&rig, "LAPTOP-q-001").await, 5);
    server.reset().await;
    let later = |n: &str, body: serde_json::Value| {
        Mock::given(method("GET"))
            .and(query_param("page", n))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("x-total-count", "2")
                    .insert_header("x-as-of", second_at.as_str())
                    .set_body_json(body),
            )
    };
    later("1", row("LAPTOP-q-001", 50)).mount(&server).await;
    later("2", row("LAPTOP-q-002", -1)).mount(&server).await;
    let error = sync
        .sync_vendor(&vendor("VendorQ"))
        .await
        .expect_err("bad page 2");
    assert!(error.to_string().contains("[0].quantity"), "{error}");
    assert_eq!(
        reported(&rig, "LAPTOP-q-001").await,
        5,
        "page 1 of the bad snapshot not applied"
    );
    assert_eq!(reported(&rig, "LAPTOP-q-002").await, 6);
}

#[tokio::test]
async fn a_sync_that_fails_retries_through_the_queue_until_the_vendor_is_back() {
    let (a, _b) = two_vendors().await;
    let rig = rig(&[("VendorA", a.base_url())]).await;
    a.set_faults(Faults {
        outage: true,
        ..Faults::default()
    });
    let queue = InMemoryOrderQueue::new(
        RetryPolicy::new(vec![
            StdDuration::from_millis(20),
            StdDuration::from_millis(40),
        ])
        .expect("policy"),
    );
    let message = Message::json(&SyncRequest {
        vendor: vendor("VendorA"),
    })
    .expect("message");
    queue
        .publish(QueueName::StockSync, &message)
        .await
        .expect("queued");
    let consumer = SyncConsumer::new(rig.sync.clone());
    let mut subscription = queue
        .subscribe(QueueName::StockSync, 1)
        .await
        .expect("subscribe");
    let first = consumer
        .settle(subscription.next().await.expect("delivery"))
        .await
        .expect("settled");
    assert!(
        matches!(first, Settled::Retrying { attempt: 2, .. }),
        "{first:?}"
    );
    a.reset_faults();
    let second = consumer
        .settle(subscription.next().await.expect("redelivery"))
        .await
        .expect("settled");
    assert!(matches!(second, Settled::Done(_)), "{second:?}");
    assert!(
        queue
            .dead_letters(QueueName::StockSync, 10)
            .await
            .expect("dlq")
            .is_empty()
    );
    a.set_faults(Faults {
        outage: true,
        ..Faults::default()
    });
    queue
        .publish(QueueName::StockSync, &message)
        .await
        .expect("queued");
    let mut last = None;
    for _ in 0..3 {
        let delivery = subscription.next().await.expect("delivery");
        last = Some(consumer.settle(delivery).await.expect("settled"));
    }
    assert!(
        matches!(last, Some(Settled::DeadLettered { .. })),
        "{last:?}"
    );
    let dead = queue
        .dead_letters(QueueName::StockSync, 10)
        .await
        .expect("dlq");
    assert_eq!(dead.len(), 1);
    assert!(dead[0].reason.contains("VendorA"), "{}", dead[0].reason);
}
