use aggregator_core::prelude::*;
use std::sync::Arc;

use aggregator_core::OrderQueue;
use aggregator_core::domain::StalenessLimit;
use aggregator_core::domain::{
    HealthPolicy, Message, MessageId, QueueName, SnapshotRow, SyncRequest, VendorHealth,
};
use aggregator_core::error::Error;
use aggregator_core::memory::InMemoryOrderQueue;
use aggregator_core::service::{
    Catalog, Settled, StockSync, SyncConfig, SyncConsumer, run_sync_schedule,
};
use aggregator_core::traits::{RetryPolicy, StockPage, VendorClient, VendorDirectory};
use time::{Duration, OffsetDateTime};

use super::support::{MockVendor, World, mock_vendor, product, sku, usd, vendor};

fn rows(skus: &[(&str, &str, i64)], as_of: OffsetDateTime) -> Vec<SnapshotRow> {
    skus.iter()
        .map(|(s, p, quantity)| SnapshotRow {
            sku: sku(s),
            product: product(p),
            quantity: *quantity,
            price: usd(100),
            as_of,
        })
        .collect()
}

fn sync(world: &World, vendors: Vec<MockVendor>, page_size: u32) -> StockSync {
    let directory: VendorDirectory = vendors
        .into_iter()
        .map(|mock| Arc::new(mock) as Arc<dyn VendorClient>)
        .collect();
    let config = SyncConfig {
        page_size,
        max_pages: 5,
        health: HealthPolicy {
            down_after_failures: 2,
        },
        ..SyncConfig::default()
    };
    StockSync::new(world.dyn_store(), directory, world.clock(), config).expect("sync")
}

#[tokio::test]
async fn a_full_sync_applies_every_page_and_zeroes_what_is_gone() {
    let world = World::new(5, 5, 7).await;
    world.clock.advance(Duration::seconds(30));
    let as_of = world.later(29);
    let mut a = mock_vendor("VendorA");
    a.expect_stock_page().returning(move |page, limit| {
        assert_eq!(limit, 1);
        Ok(match page {
            1 => StockPage {
                rows: rows(&[("LAPTOP-a-001", "LAPTOP-001", 9)], as_of),
                as_of,
                next_page: Some(2),
                last_page: None,
            },
            2 => StockPage {
                rows: rows(&[("TABLET-a-003", "TABLET-003", 4)], as_of),
                as_of,
                next_page: None,
                last_page: None,
            },
            _ => panic!("page {page} was not offered"),
        })
    });
    let report = sync(&world, vec![a], 1)
        .sync_vendor(&vendor("VendorA"))
        .await
        .expect("synced");
    assert_eq!(
        (report.pages, report.applied, report.ignored_older),
        (2, 2, 0)
    );
    assert_eq!(report.vendor.health, VendorHealth::Healthy);
    assert_eq!(report.vendor.last_good_sync, Some(world.later(30)));
    assert_eq!(world.row("VendorA", "LAPTOP-a-001").reported, 9);
    assert_eq!(world.row("VendorA", "TABLET-a-003").reported, 4);
    assert_eq!(
        world.row("VendorA", "PHONE-a-002").reported,
        0,
        "not in the feed any more"
    );
    assert_eq!(
        world.row("VendorB", "LAPTOP-b-001").reported,
        5,
        "other vendors untouched"
    );
}

#[tokio::test]
async fn a_failing_page_applies_nothing_and_degrades_then_downs_the_vendor() {
    let world = World::new(5, 5, 0).await;
    world.clock.advance(Duration::seconds(10));
    let as_of = world.later(10);
    let mut a = mock_vendor("VendorA");
    a.expect_stock_page().returning(move |page, _| match page {
        1 => Ok(StockPage {
            rows: rows(&[("LAPTOP-a-001", "LAPTOP-001", 1)], as_of),
            as_of,
            next_page: Some(2),
            last_page: None,
        }),
        _ => Err(Error::transient("vendor VendorA", "connection reset")),
    });
    let syncer = sync(&world, vec![a], 100);
    let error = syncer
        .sync_vendor(&vendor("VendorA"))
        .await
        .expect_err("fails");
    assert!(error.is_retryable(), "the queue retries it");
    assert_eq!(
        world.row("VendorA", "LAPTOP-a-001").reported,
        5,
        "page 1 was not applied"
    );
    let vendors = world.store.vendors().await.expect("vendors");
    let a = vendors
        .iter()
        .find(|v| v.id.as_str() == "VendorA")
        .expect("A");
    assert_eq!(
        (a.health, a.consecutive_failures),
        (VendorHealth::Degraded, 1)
    );
    assert!(
        a.last_error
            .as_deref()
            .is_some_and(|e| e.contains("connection reset"))
    );
    syncer
        .sync_vendor(&vendor("VendorA"))
        .await
        .expect_err("fails again");
    let vendors = world.store.vendors().await.expect("vendors");
    let a = vendors
        .iter()
        .find(|v| v.id.as_str() == "VendorA")
        .expect("A");
    assert_eq!(a.health, VendorHealth::Down);
    assert_eq!(
        a.last_good_sync,
        Some(world.start),
        "last good data is still served"
    );

    // Down but within the staleness limit: still counted. Past it: not.
    let catalog = Catalog::new(world.dyn_store(), world.clock(), StalenessLimit::DEFAULT);
    let laptops = catalog
        .availability(&product("LAPTOP-001"))
        .await
        .expect("availability");
    assert_eq!(laptops.available, 10);
    world.clock.advance(Duration::minutes(6));
    let laptops = catalog
        .availability(&product("LAPTOP-001"))
        .await
        .expect("availability");
    assert_eq!(laptops.available, 0, "every vendor is stale now");
    assert!(laptops.vendors.iter().all(|v| !v.fresh));
}

#[tokio::test]
async fn bad_vendor_data_is_refused_whole() {
    let world = World::new(5, 5, 0).await;
    world.clock.advance(Duration::seconds(10));
    let as_of = world.later(10);
    let mut a = mock_vendor("VendorA");
    a.expect_stock_page().returning(move |_, _| {
        Ok(StockPage {
            rows: rows(
                &[
                    ("LAPTOP-a-001", "LAPTOP-001", 3),
                    ("PHONE-a-002", "PHONE-002", -4),
                ],
                as_of,
            ),
            as_of,
            next_page: None,
            last_page: None,
        })
    });
    let error = sync(&world, vec![a], 100)
        .sync_vendor(&vendor("VendorA"))
        .await
        .expect_err("refused");
    assert!(
        !error.is_retryable(),
        "bad data does not get better by retrying"
    );
    assert!(
        error.to_string().contains("VendorA"),
        "names the vendor: {error}"
    );
    assert!(
        error.to_string().contains("PHONE-a-002"),
        "names the field: {error}"
    );
    assert_eq!(world.row("VendorA", "LAPTOP-a-001").reported, 5);
}

#[tokio::test]
async fn endless_or_backward_paging_is_refused() {
    let world = World::new(5, 5, 0).await;
    world.clock.advance(Duration::seconds(10));
    let as_of = world.later(10);
    let mut a = mock_vendor("VendorA");
    a.expect_stock_page().returning(move |page, _| {
        Ok(StockPage {
            rows: vec![],
            as_of,
            next_page: Some(page + 1),
            last_page: None,
        })
    });
    let error = sync(&world, vec![a], 100)
        .sync_vendor(&vendor("VendorA"))
        .await
        .expect_err("endless");
    assert!(error.to_string().contains("more than 5 pages"), "{error}");
    let mut b = mock_vendor("VendorB");
    b.expect_stock_page().returning(move |_, _| {
        Ok(StockPage {
            rows: vec![],
            as_of,
            next_page: Some(1),
            last_page: None,
        })
    });
    let error = sync(&world, vec![b], 100)
        .sync_vendor(&vendor("VendorB"))
        .await
        .expect_err("loop");
    assert!(error.to_string().contains("points back"), "{error}");
    assert!(matches!(
        sync(&world, vec![], 100)
            .sync_vendor(&vendor("Nobody"))
            .await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn request_all_queues_one_message_per_vendor() {
    let world = World::new(1, 1, 0).await;
    let queue = InMemoryOrderQueue::default();
    let syncer = sync(
        &world,
        vec![mock_vendor("VendorA"), mock_vendor("VendorB")],
        100,
    );
    assert_eq!(syncer.request_all(&queue).await.expect("queued"), 2);
    let mut subscription = queue
        .subscribe(QueueName::StockSync, 10)
        .await
        .expect("subscribe");
    let mut vendors = Vec::new();
    for _ in 0..2 {
        let delivery = subscription.next().await.expect("delivery");
        vendors.push(
            delivery
                .message
                .decode::<SyncRequest>()
                .expect("decodes")
                .vendor
                .to_string(),
        );
        delivery.ack().await.expect("ack");
    }
    assert_eq!(vendors, vec!["VendorA", "VendorB"]);
    assert!(
        StockSync::new(
            world.dyn_store(),
            VendorDirectory::new(),
            world.clock(),
            SyncConfig {
                page_size: 0,
                ..SyncConfig::default()
            }
        )
        .is_err()
    );
}

#[tokio::test]
async fn a_sku_listed_twice_in_one_feed_is_refused_whole() {
    let world = World::new(5, 5, 0).await;
    world.clock.advance(Duration::seconds(10));
    let as_of = world.later(10);
    let mut a = mock_vendor("VendorA");
    a.expect_stock_page().returning(move |page, _| {
        Ok(StockPage {
            rows: rows(&[("LAPTOP-a-001", "LAPTOP-001", page as i64)], as_of),
            as_of,
            next_page: (page == 1).then_some(2),
            last_page: None,
        })
    });
    let error = sync(&world, vec![a], 1)
        .sync_vendor(&vendor("VendorA"))
        .await
        .expect_err("duplicate");
    assert!(error.to_string().contains("LAPTOP-a-001 twice"), "{error}");
    assert_eq!(world.row("VendorA", "LAPTOP-a-001").reported, 5);
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy::new(vec![
        std::time::Duration::from_millis(20),
        std::time::Duration::from_millis(40),
    ])
    .expect("policy")
}

async fn publish_sync(queue: &InMemoryOrderQueue, vendor_id: &str) {
    let message = Message::json(&SyncRequest {
        vendor: vendor(vendor_id),
    })
    .expect("message");
    queue
        .publish(QueueName::StockSync, &message)
        .await
        .expect("publish");
}

#[tokio::test]
async fn the_consumer_acks_a_good_sync_and_retries_a_failing_one_into_the_dead_letters() {
    let world = World::new(5, 5, 0).await;
    let as_of = world.later(1);
    let mut a = mock_vendor("VendorA");
    a.expect_stock_page().returning(move |_, _| {
        Ok(StockPage {
            rows: rows(&[("LAPTOP-a-001", "LAPTOP-001", 8)], as_of),
            as_of,
            next_page: None,
            last_page: None,
        })
    });
    let mut b = mock_vendor("VendorB");
    b.expect_stock_page()
        .times(3)
        .returning(|_, _| Err(Error::transient("vendor VendorB", "connection refused")));
    let consumer = SyncConsumer::new(sync(&world, vec![a, b], 100));
    let queue = InMemoryOrderQueue::new(fast_retries());
    publish_sync(&queue, "VendorA").await;
    publish_sync(&queue, "VendorB").await;
    let mut subscription = queue
        .subscribe(QueueName::StockSync, 1)
        .await
        .expect("subscribe");
    let mut outcomes = Vec::new();
    for _ in 0..4 {
        let delivery = subscription.next().await.expect("delivery");
        outcomes.push(consumer.settle(delivery).await.expect("settled"));
    }
    assert!(matches!(&outcomes[0], Settled::Done(report) if report.applied == 1));
    assert!(matches!(&outcomes[1], Settled::Retrying { attempt: 2, .. }));
    assert!(matches!(&outcomes[2], Settled::Retrying { attempt: 3, .. }));
    assert!(
        matches!(&outcomes[3], Settled::DeadLettered { reason } if reason.contains("connection refused"))
    );
    assert_eq!(world.row("VendorA", "LAPTOP-a-001").reported, 8);
    let dead = queue
        .dead_letters(QueueName::StockSync, 10)
        .await
        .expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 3);
    let vendors = world.dyn_store().vendors().await.expect("vendors");
    let b = vendors
        .iter()
        .find(|v| v.id.as_str() == "VendorB")
        .expect("VendorB");
    assert_eq!(b.consecutive_failures, 3);
    assert_eq!(b.health, VendorHealth::Down);
}

#[tokio::test]
async fn the_consumer_dead_letters_malformed_requests_and_unknown_vendors_at_once() {
    let world = World::new(5, 5, 0).await;
    let consumer = SyncConsumer::new(sync(&world, vec![], 100));
    let queue = InMemoryOrderQueue::new(fast_retries());
    publish_sync(&queue, "Nobody").await;
    let garbage = Message {
        id: MessageId::new(),
        body: b"{not json".to_vec(),
    };
    queue
        .publish(QueueName::StockSync, &garbage)
        .await
        .expect("publish");
    let mut subscription = queue
        .subscribe(QueueName::StockSync, 2)
        .await
        .expect("subscribe");
    for needle in ["Nobody", "malformed"] {
        let delivery = subscription.next().await.expect("delivery");
        let settled = consumer.settle(delivery).await.expect("settled");
        assert!(
            matches!(&settled, Settled::DeadLettered { reason } if reason.contains(needle)),
            "{settled:?}"
        );
    }
    let dead = queue
        .dead_letters(QueueName::StockSync, 10)
        .await
        .expect("dead letters");
    assert_eq!(dead.len(), 2);
    assert!(dead.iter().all(|d| d.attempts == 1));
}

#[tokio::test]
async fn the_schedule_queues_a_round_at_once_and_stops_when_told() {
    let world = World::new(1, 1, 0).await;
    let queue = InMemoryOrderQueue::default();
    let syncer = sync(
        &world,
        vec![mock_vendor("VendorA"), mock_vendor("VendorB")],
        100,
    );
    run_sync_schedule(
        &syncer,
        &queue,
        std::time::Duration::from_secs(3600),
        tokio::time::sleep(std::time::Duration::from_millis(100)),
    )
    .await
    .expect("ran");
    let mut subscription = queue
        .subscribe(QueueName::StockSync, 10)
        .await
        .expect("subscribe");
    let mut queued = 0;
    while let Ok(Ok(delivery)) =
        tokio::time::timeout(std::time::Duration::from_millis(50), subscription.next()).await
    {
        queued += 1;
        delivery.ack().await.expect("ack");
    }
    assert_eq!(queued, 2, "one round: one request per vendor");
    let zero = run_sync_schedule(&syncer, &queue, std::time::Duration::ZERO, async {}).await;
    assert!(matches!(zero, Err(Error::Invalid { .. })));
}

#[tokio::test]
async fn the_consumer_loop_syncs_what_is_queued_and_stops_when_told() {
    let world = World::new(5, 5, 0).await;
    let as_of = world.later(1);
    let mut a = mock_vendor("VendorA");
    a.expect_stock_page().returning(move |_, _| {
        Ok(StockPage {
            rows: rows(&[("LAPTOP-a-001", "LAPTOP-001", 2)], as_of),
            as_of,
            next_page: None,
            last_page: None,
        })
    });
    let consumer = SyncConsumer::new(sync(&world, vec![a], 100));
    let queue = InMemoryOrderQueue::default();
    publish_sync(&queue, "VendorA").await;
    let store = world.dyn_store();
    let synced = async {
        for _ in 0..200 {
            let rows = store
                .stock_for_sku(&sku("LAPTOP-a-001"))
                .await
                .expect("rows");
            if rows.iter().any(|r| r.reported == 2) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the loop never synced");
    };
    let (trigger, signal) = aggregator_core::service::shutdown_pair();
    let queue: std::sync::Arc<dyn aggregator_core::traits::OrderQueue> = std::sync::Arc::new(queue);
    let running = tokio::spawn(consumer.run(
        queue,
        aggregator_core::service::ConsumerConfig {
            concurrency: 1,
            grace: std::time::Duration::from_secs(5),
        },
        signal,
    ));
    synced.await;
    trigger.trigger();
    running.await.expect("joined").expect("ran");
    assert_eq!(world.row("VendorA", "LAPTOP-a-001").reported, 2);
}

/// Syncs VendorA from one page reporting 50 laptops and 40 phones, everything stamped
/// `as_of`.
async fn sync_both_rows_of_a(
    world: &World,
    as_of: OffsetDateTime,
) -> aggregator_core::Result<aggregator_core::service::SyncReport> {
    let feed = rows(
        &[
            ("LAPTOP-a-001", "LAPTOP-001", 50),
            ("PHONE-a-002", "PHONE-002", 40),
        ],
        as_of,
    );
    sync(world, vec![one_page("VendorA", feed, as_of)], 10)
        .sync_vendor(&vendor("VendorA"))
        .await
}

/// A vendor answering one page of `rows` stamped `page_as_of`.
fn one_page(id: &str, rows: Vec<SnapshotRow>, page_as_of: OffsetDateTime) -> MockVendor {
    let mut mock = mock_vendor(id);
    mock.expect_stock_page().returning(move |_, _| {
        Ok(StockPage {
            rows: rows.clone(),
            as_of: page_as_of,
            next_page: None,
            last_page: None,
        })
    });
    mock
}

#[tokio::test]
async fn a_feed_ahead_of_our_clock_beyond_the_tolerance_is_refused_whole() {
    let world = World::new(5, 5, 7).await;
    world.clock.advance(Duration::seconds(30));
    let now = world.later(30);
    let before = world.store.vendors().await.expect("vendors");
    let last_good = before
        .iter()
        .find(|v| v.id.as_str() == "VendorA")
        .and_then(|v| v.last_good_sync);
    // The page's own time is ahead; then only one row's time is.
    let ahead = now + Duration::seconds(6);
    let cases = [
        (
            rows(&[("LAPTOP-a-001", "LAPTOP-001", 50)], now),
            ahead,
            "page 1",
        ),
        (
            vec![
                rows(&[("PHONE-a-002", "PHONE-002", 40)], now).remove(0),
                rows(&[("LAPTOP-a-001", "LAPTOP-001", 50)], ahead).remove(0),
            ],
            now,
            "SKU LAPTOP-a-001",
        ),
    ];
    for (feed, page_as_of, named) in cases {
        let error = sync(&world, vec![one_page("VendorA", feed, page_as_of)], 10)
            .sync_vendor(&vendor("VendorA"))
            .await
            .expect_err("refused");
        let text = error.to_string();
        assert!(
            text.contains("VendorA") && text.contains(named) && text.contains("ahead of our clock"),
            "{text}"
        );
        assert_eq!(
            world.row("VendorA", "LAPTOP-a-001").reported,
            5,
            "nothing applied"
        );
        assert_eq!(
            world.row("VendorA", "PHONE-a-002").reported,
            7,
            "nothing applied"
        );
        let vendor = world
            .store
            .vendors()
            .await
            .expect("vendors")
            .into_iter()
            .find(|v| v.id.as_str() == "VendorA")
            .expect("vendor");
        assert_eq!(vendor.last_good_sync, last_good, "not fresh");
        assert_ne!(vendor.health, VendorHealth::Healthy);
        assert!(
            vendor
                .last_error
                .is_some_and(|e| e.contains("ahead of our clock"))
        );
    }
    // Within the tolerance it applies.
    let within = now + Duration::seconds(5);
    let report = sync_both_rows_of_a(&world, within)
        .await
        .expect("within the tolerance");
    assert_eq!(report.applied, 2);
}

#[tokio::test]
async fn a_snapshot_whose_rows_are_all_older_than_what_we_hold_does_not_make_the_vendor_fresh() {
    let world = World::new(5, 5, 7).await;
    world.clock.advance(Duration::seconds(30));
    let last_good = Some(world.start);
    let older = world.start - Duration::seconds(10);
    let error = sync_both_rows_of_a(&world, older)
        .await
        .expect_err("not applied");
    assert!(
        error.to_string().contains("older than what we hold"),
        "{error}"
    );
    let vendor = world
        .store
        .vendors()
        .await
        .expect("vendors")
        .into_iter()
        .find(|v| v.id.as_str() == "VendorA")
        .expect("vendor");
    assert_eq!(
        vendor.last_good_sync, last_good,
        "last good sync did not move"
    );
    assert_eq!(vendor.consecutive_failures, 1);
    assert_eq!(world.row("VendorA", "LAPTOP-a-001").reported, 5);
}

#[tokio::test]
async fn a_listed_row_whose_own_time_is_older_than_the_page_keeps_its_count() {
    let world = World::new(5, 5, 7).await;
    world.clock.advance(Duration::seconds(30));
    let page_as_of = world.later(30);
    let row_as_of = world.later(20);
    let feed = vec![
        rows(&[("LAPTOP-a-001", "LAPTOP-001", 9)], row_as_of).remove(0),
        rows(&[("PHONE-a-002", "PHONE-002", 3)], page_as_of).remove(0),
    ];
    sync(&world, vec![one_page("VendorA", feed, page_as_of)], 10)
        .sync_vendor(&vendor("VendorA"))
        .await
        .expect("synced");
    let row = world.row("VendorA", "LAPTOP-a-001");
    assert_eq!(
        (row.reported, row.as_of),
        (9, row_as_of),
        "listed, so kept with its own time"
    );
    assert_eq!(world.row("VendorA", "PHONE-a-002").reported, 3);
}
