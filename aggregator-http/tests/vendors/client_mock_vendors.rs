//! The client against real mock vendors: every fault switch, paging, idempotent orders.

use std::time::Duration;

use aggregator_core::domain::{Quantity, QuantityLimit, VendorSku};
use aggregator_core::resilience::Backoff;
use aggregator_core::traits::{VendorClient, VendorOrder, VendorOrderLine, VendorOrderOutcome};
use mock_vendors::{Faults, MockVendor, MockVendorConfig};

use super::support::{client, quick_config};

async fn vendor(skus: usize) -> MockVendor {
    MockVendor::spawn_local(MockVendorConfig::new("VendorA").with_sku_count(skus))
        .await
        .expect("mock vendor")
}

fn order(key: &str, sku: &str, quantity: i64) -> VendorOrder {
    VendorOrder {
        idempotency_key: key.into(),
        lines: vec![VendorOrderLine {
            sku: VendorSku::new(sku).expect("sku"),
            quantity: Quantity::new(quantity, QuantityLimit::default()).expect("quantity"),
        }],
    }
}

#[tokio::test]
async fn pages_walk_the_whole_catalog() {
    let mock = vendor(2_500).await;
    let vendor = client(quick_config("VendorA", &mock.base_url()));
    let mut page = 1;
    let mut seen = 0;
    loop {
        let read = vendor.stock_page(page, 1_000).await.expect("page");
        assert_eq!(read.last_page, Some(3), "2,500 rows in pages of 1,000");
        seen += read.rows.len();
        match read.next_page {
            Some(next) => page = next,
            None => break,
        }
    }
    assert_eq!((page, seen), (3, 2_500));
    let info = vendor.info().await.expect("info");
    assert_eq!((info.name.as_str(), info.sku_count), ("Vendor A", 2_500));
    vendor.health().await.expect("healthy");
}

#[tokio::test]
async fn every_fault_switch_breaks_the_client_the_way_it_should() {
    let mock = vendor(50).await;
    let vendor = client(quick_config("VendorA", &mock.base_url()));
    let cases: Vec<(Faults, &str, bool)> = vec![
        (
            Faults {
                outage: true,
                ..Faults::default()
            },
            "503",
            true,
        ),
        (
            Faults {
                error_rate: 1.0,
                ..Faults::default()
            },
            "500",
            true,
        ),
        (
            Faults {
                latency_ms: 900,
                ..Faults::default()
            },
            "timed out",
            true,
        ),
        (
            Faults {
                slow_body_ms: 2_000,
                ..Faults::default()
            },
            "timed out",
            true,
        ),
        (
            Faults {
                malformed: true,
                ..Faults::default()
            },
            "malformed",
            false,
        ),
        (
            Faults {
                bad_data: true,
                ..Faults::default()
            },
            "[0].quantity",
            false,
        ),
    ];
    for (faults, needle, retryable) in cases {
        mock.set_faults(faults);
        let error = vendor.stock_page(1, 20).await.expect_err(needle);
        let text = error.to_string();
        assert!(text.contains(needle), "{faults:?}: {text}");
        assert!(text.contains("VendorA"), "{text}");
        assert_eq!(error.is_retryable(), retryable, "{faults:?}: {text}");
        mock.reset_faults();
        assert_eq!(
            vendor
                .stock_page(1, 20)
                .await
                .expect("fine after reset")
                .rows
                .len(),
            20
        );
    }
    mock.set_faults(Faults {
        latency_ms: 100,
        ..Faults::default()
    });
    assert_eq!(
        vendor
            .stock_page(1, 5)
            .await
            .expect("slow but in time")
            .rows
            .len(),
        5
    );
}

#[tokio::test]
async fn orders_are_placed_once_refused_when_short_and_cancelled_idempotently() {
    let mock = vendor(10).await;
    mock.set_quantity("LAPTOP-a-001", 5);
    let vendor = client(quick_config("VendorA", &mock.base_url()));
    let first = vendor
        .place_order(&order("k-1", "LAPTOP-a-001", 2))
        .await
        .expect("placed");
    let again = vendor
        .place_order(&order("k-1", "LAPTOP-a-001", 2))
        .await
        .expect("replayed");
    assert_eq!(first, again, "same key, same order");
    assert!(matches!(first, VendorOrderOutcome::Accepted { .. }));
    assert_eq!(mock.quantity("LAPTOP-a-001"), Some(3));
    let short = vendor
        .place_order(&order("k-2", "LAPTOP-a-001", 4))
        .await
        .expect("answer");
    assert!(matches!(
        short,
        VendorOrderOutcome::Refused { ref short } if short[0].available == 3
    ));
    vendor.cancel_order("k-1").await.expect("cancelled");
    vendor.cancel_order("k-1").await.expect("cancelled again");
    assert_eq!(mock.quantity("LAPTOP-a-001"), Some(5), "restored once");
    let refused = vendor
        .place_order(&order("k-1", "LAPTOP-a-001", 2))
        .await
        .expect("answered");
    assert_eq!(
        refused,
        VendorOrderOutcome::KeyCancelled,
        "a cancelled key never places again"
    );
    vendor
        .cancel_order("never-sent")
        .await
        .expect("unknown key is fine");
    assert_eq!(
        vendor
            .place_order(&order("never-sent", "LAPTOP-a-001", 1))
            .await,
        Ok(VendorOrderOutcome::KeyCancelled)
    );
    assert_eq!(mock.quantity("LAPTOP-a-001"), Some(5));
}

#[tokio::test]
async fn an_order_whose_answer_was_lost_is_placed_once_under_retry() {
    let mock = vendor(10).await;
    mock.set_quantity("LAPTOP-a-001", 10);
    // Every answer comes after the client gave up, but the vendor did the work.
    mock.set_faults(Faults {
        latency_ms: 800,
        ..Faults::default()
    });
    let mut config = quick_config("VendorA", &mock.base_url());
    config.request_timeout = Duration::from_millis(300);
    config.backoff =
        Backoff::new(8, Duration::from_millis(100), Duration::from_millis(200)).expect("backoff");
    let vendor = client(config);
    let healer = async {
        while mock.order("k-lost").is_none() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        mock.reset_faults();
    };
    let lost = order("k-lost", "LAPTOP-a-001", 3);
    let (outcome, ()) = tokio::join!(vendor.place_order(&lost), healer);
    let outcome = outcome.expect("a retry gets the answer");
    let VendorOrderOutcome::Accepted {
        vendor_order_id, ..
    } = outcome
    else {
        panic!("expected acceptance, got {outcome:?}");
    };
    let record = mock.order("k-lost").expect("recorded");
    assert_eq!(record.order_id.as_deref(), Some(vendor_order_id.as_str()));
    assert_eq!(mock.quantity("LAPTOP-a-001"), Some(7), "placed once");
    assert_eq!(mock.orders_placed(), 1);
}

/// A vendor refusing cancellations (`422`) is a retryable error, never a final one; a
/// vendor that keeps no record of unknown keys answers `404`, which the client reports
/// as an unknown key (placements under it still land there); "already cancelled" is
/// done.
#[tokio::test]
async fn cancellation_refusals_are_retryable_and_unknown_keys_are_told_apart() {
    use aggregator_core::traits::CancelOutcome;
    let mock = vendor(10).await;
    mock.set_quantity("LAPTOP-a-001", 5);
    let vendor = client(quick_config("VendorA", &mock.base_url()));
    vendor
        .place_order(&order("k-1", "LAPTOP-a-001", 2))
        .await
        .expect("placed");
    mock.set_faults(Faults {
        cancel_refusal_status: 422,
        ..Faults::default()
    });
    let refused = vendor.cancel_order("k-1").await.expect_err("refused");
    assert!(refused.is_retryable(), "{refused}");
    assert!(refused.to_string().contains("422"), "{refused}");
    assert_eq!(mock.quantity("LAPTOP-a-001"), Some(3), "nothing cancelled");

    mock.set_faults(Faults {
        forget_unknown_cancels: true,
        ..Faults::default()
    });
    assert_eq!(
        vendor.cancel_order("never-sent").await,
        Ok(CancelOutcome::UnknownKey)
    );
    assert!(
        matches!(
            vendor
                .place_order(&order("never-sent", "LAPTOP-a-001", 1))
                .await,
            Ok(VendorOrderOutcome::Accepted { .. })
        ),
        "such a vendor still takes a late placement under the key"
    );
    assert_eq!(
        vendor.cancel_order("k-1").await,
        Ok(CancelOutcome::Cancelled)
    );
    assert_eq!(
        vendor.cancel_order("k-1").await,
        Ok(CancelOutcome::Cancelled),
        "already cancelled is done"
    );
}

/// A vendor answering `429` with `Retry-After`: the client waits that long before its
/// next try (every request to the vendor does), instead of trying again at once.
#[tokio::test]
async fn retry_after_is_honoured() {
    let mock = vendor(10).await;
    mock.set_faults(Faults {
        rate_limit_per_sec: 1,
        ..Faults::default()
    });
    let vendor = client(quick_config("VendorA", &mock.base_url()));
    vendor.health().await.expect("the second's one request");
    let started = std::time::Instant::now();
    vendor
        .health()
        .await
        .expect("answered after waiting out the Retry-After");
    assert_eq!(mock.refused_for_rate(), 1, "refused once, then waited");
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "it waited for the next second: {:?}",
        started.elapsed()
    );
}

/// With limits below the vendor's own, a burst of requests from two clients sharing
/// one cache (two processes) stays within them: the vendor never refuses one, and never
/// sees more than its limit in a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_sharing_a_budget_keep_within_the_vendors_limit() {
    use aggregator_core::resilience::VendorLimits;
    use std::sync::Arc;
    let mock = vendor(10).await;
    mock.set_faults(Faults {
        rate_limit_per_sec: 50,
        ..Faults::default()
    });
    let cache: Arc<dyn aggregator_core::Cache> =
        Arc::new(aggregator_core::memory::InMemoryCache::new());
    let shared = |cache: &Arc<dyn aggregator_core::Cache>| {
        let mut config = quick_config("VendorA", &mock.base_url());
        config.limits = VendorLimits {
            per_second: 45,
            in_flight: 4,
        };
        Arc::new(
            client(config)
                .sharing_budget_through(cache.clone())
                .expect("shared"),
        )
    };
    let (one, two) = (shared(&cache), shared(&cache));
    let calls: Vec<_> = (0..120)
        .map(|n| {
            let vendor = if n % 2 == 0 { one.clone() } else { two.clone() };
            tokio::spawn(async move { vendor.health().await })
        })
        .collect();
    for call in calls {
        call.await.expect("joined").expect("answered");
    }
    assert_eq!(mock.refused_for_rate(), 0, "never over the vendor's limit");
    assert!(
        mock.busiest_second() <= 50,
        "{:?}",
        mock.arrivals_per_second()
    );
}
