use aggregator_core::prelude::*;
use std::sync::Arc;

use aggregator_core::Clock;
use aggregator_core::domain::{
    IdempotencyKey, OrderMessage, OrderStatus, QueueName, QuotedPrice, StatusChange, Transition,
    VendorPlacement,
};
use aggregator_core::error::Error;
use aggregator_core::service::Scope;
use aggregator_core::traits::OrderQuery;
use time::Duration;

use super::support::{World, details, request};

fn customer_scope(customer: &str) -> Scope {
    Scope::Customer(details(customer).customer)
}

#[tokio::test]
async fn a_product_line_is_split_by_priority_and_priced_from_the_catalog() {
    let world = World::new(2, 5, 0).await;
    let placed = world
        .orders()
        .place(&request("c1", &[("LAPTOP-001", 4)]), None)
        .await
        .expect("placed");
    let order = placed.order;
    assert_eq!(order.status, OrderStatus::Reserved);
    let parts: Vec<(String, u32, i64)> = order.lines[0]
        .allocations
        .iter()
        .map(|a| {
            (
                a.sku.to_string(),
                a.quantity.get(),
                a.unit_price.minor_units(),
            )
        })
        .collect();
    assert_eq!(
        parts,
        vec![
            ("LAPTOP-a-001".into(), 2, 99_999),
            ("LAPTOP-b-001".into(), 2, 98_999)
        ]
    );
    assert_eq!(
        order.total().map(|m| m.minor_units()),
        Some(2 * 99_999 + 2 * 98_999)
    );
    assert_eq!(
        (
            world.reserved("VendorA", "LAPTOP-a-001"),
            world.reserved("VendorB", "LAPTOP-b-001")
        ),
        (2, 2)
    );

    let claimed = world
        .store
        .claim_outbox(world.clock.now(), Duration::seconds(30), 10)
        .await
        .expect("claim");
    assert_eq!(
        claimed.len(),
        1,
        "the worker's message is written with the order"
    );
    assert_eq!(claimed[0].queue, QueueName::Orders);
    assert_eq!(
        claimed[0].message.decode::<OrderMessage>(),
        Ok(OrderMessage::ProcessOrder { order: order.id })
    );
}

#[tokio::test]
async fn a_vendor_sku_line_is_pinned_to_that_vendor() {
    let world = World::new(2, 50, 0).await;
    let error = world
        .orders()
        .place(&request("c1", &[("LAPTOP-a-001", 3)]), None)
        .await
        .expect_err("short at A");
    match error {
        Error::InsufficientStock { short } => {
            assert_eq!(short.len(), 1);
            assert_eq!(
                (
                    short[0].item.as_str(),
                    short[0].requested,
                    short[0].available
                ),
                ("LAPTOP-a-001", 3, 2)
            );
        }
        other => panic!("expected InsufficientStock, got {other}"),
    }
    assert_eq!(
        world.reserved("VendorB", "LAPTOP-b-001"),
        0,
        "B was not used"
    );
}

#[tokio::test]
async fn short_orders_name_every_short_line_and_reserve_nothing() {
    let world = World::new(1, 1, 3).await;
    let error = world
        .orders()
        .place(
            &request(
                "c1",
                &[("PHONE-002", 2), ("LAPTOP-001", 3), ("PHONE-a-002", 2)],
            ),
            None,
        )
        .await
        .expect_err("short");
    let Error::InsufficientStock { short } = error else {
        panic!("expected InsufficientStock");
    };
    let named: Vec<(String, u64)> = short
        .iter()
        .map(|s| (s.item.clone(), s.available))
        .collect();
    assert_eq!(
        named,
        vec![("LAPTOP-001".into(), 2), ("PHONE-a-002".into(), 1)]
    );
    assert_eq!(world.reserved("VendorA", "PHONE-a-002"), 0);
}

#[tokio::test]
async fn bad_input_is_refused_with_the_field_named() {
    let world = World::new(5, 5, 5).await;
    let service = world.orders();
    let field_of = |error: Error| match error {
        Error::Invalid { field, .. } => field,
        other => panic!("expected Invalid, got {other}"),
    };
    let cases: Vec<(Vec<(&str, i64)>, &str)> = vec![
        (vec![], "items"),
        (vec![("LAPTOP-001", 0)], "items[0].quantity"),
        (vec![("LAPTOP-001", -1)], "items[0].quantity"),
        (vec![("LAPTOP-001", 1_000_000_000)], "items[0].quantity"),
        (vec![("LAPTOP-001", 1), ("NOPE-404", 1)], "items[1].sku"),
        (vec![("bad sku!", 1)], "items[0].sku"),
        (vec![("", 1)], "items[0].sku"),
    ];
    for (items, field) in cases {
        let error = service
            .place(&request("c1", &items), None)
            .await
            .expect_err("refused");
        assert_eq!(field_of(error), field, "for {items:?}");
    }
    let many: Vec<(&str, i64)> = (0..101).map(|_| ("LAPTOP-001", 1)).collect();
    assert_eq!(
        field_of(
            service
                .place(&request("c1", &many), None)
                .await
                .expect_err("too many")
        ),
        "items"
    );

    let mut bad_details = request("c1", &[("LAPTOP-001", 1)]);
    bad_details.details.payment_method = Some(" ".into());
    assert_eq!(
        field_of(service.place(&bad_details, None).await.expect_err("blank")),
        "paymentMethod"
    );
    assert_eq!(
        world.reserved("VendorA", "LAPTOP-a-001"),
        0,
        "nothing half-written"
    );
    let page = world
        .store
        .orders(&OrderQuery {
            limit: 100,
            ..OrderQuery::default()
        })
        .await
        .expect("list");
    assert_eq!(page.total, 0);
}

#[tokio::test]
async fn idempotency_keys_replay_and_refuse_other_bodies() {
    let world = World::new(3, 0, 0).await;
    let service = world.orders();
    let key = IdempotencyKey::new("retry-1").expect("key");
    let body = request("c1", &[("LAPTOP-001", 3)]);
    let first = service
        .place(&body, Some(key.clone()))
        .await
        .expect("first");
    let again = service
        .place(&body, Some(key.clone()))
        .await
        .expect("replay while sold out");
    assert!(again.replayed);
    assert_eq!(again.order.id, first.order.id);
    assert_eq!(world.reserved("VendorA", "LAPTOP-a-001"), 3);
    let other = request("c1", &[("LAPTOP-001", 2)]);
    assert!(matches!(
        service.place(&other, Some(key)).await,
        Err(Error::IdempotencyMismatch { .. })
    ));
    assert!(matches!(
        service
            .place(&other, Some(IdempotencyKey::new("retry-2").expect("key")))
            .await,
        Err(Error::InsufficientStock { .. })
    ));
}

#[tokio::test]
async fn stale_vendors_stop_counting() {
    let world = World::new(3, 3, 0).await;
    world.clock.advance(Duration::minutes(4));
    world
        .report(
            "VendorB",
            &[("LAPTOP-b-001", "LAPTOP-001", 3, 98_999)],
            world.later(240),
        )
        .await;
    world
        .store
        .complete_snapshot(
            &super::support::vendor("VendorB"),
            &[],
            world.later(240),
            world.later(240),
            time::Duration::ZERO,
        )
        .await
        .expect("sync B");
    world.clock.advance(Duration::minutes(2));
    let error = world
        .orders()
        .place(&request("c1", &[("LAPTOP-001", 4)]), None)
        .await
        .expect_err("A is stale");
    let Error::InsufficientStock { short } = error else {
        panic!("expected InsufficientStock");
    };
    assert_eq!(short[0].available, 3, "only B counts");
    let placed = world
        .orders()
        .place(&request("c1", &[("LAPTOP-001", 3)]), None)
        .await
        .expect("B serves");
    assert!(
        placed.order.lines[0]
            .allocations
            .iter()
            .all(|a| a.vendor.as_str() == "VendorB")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_checkouts_never_oversell_across_vendors() {
    let world = World::new(4, 6, 0).await;
    let service = Arc::new(world.orders());
    let tasks: Vec<_> = (0..64)
        .map(|n| {
            let service = Arc::clone(&service);
            tokio::spawn(async move {
                service
                    .place(&request(&format!("c{n}"), &[("LAPTOP-001", 1)]), None)
                    .await
            })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => won += 1,
            Err(Error::InsufficientStock { .. }) => {}
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    assert_eq!(won, 10);
    assert_eq!(world.row("VendorA", "LAPTOP-a-001").sellable(), 0);
    assert_eq!(world.row("VendorB", "LAPTOP-b-001").sellable(), 0);
}

#[tokio::test]
async fn cancel_releases_once_and_respects_scope() {
    let world = World::new(5, 0, 0).await;
    let service = world.orders();
    let placed = service
        .place(&request("c1", &[("LAPTOP-001", 2)]), None)
        .await
        .expect("placed");
    let id = placed.order.id;
    assert!(
        matches!(
            service.cancel(id, "mine now", &customer_scope("c2")).await,
            Err(Error::NotFound { .. })
        ),
        "another customer's order looks missing"
    );
    assert!(matches!(
        service.get(id, &customer_scope("c2")).await,
        Err(Error::NotFound { .. })
    ));
    let cancelled = service
        .cancel(id, "changed my mind", &customer_scope("c1"))
        .await
        .expect("cancel");
    assert_eq!(cancelled.status, OrderStatus::Cancelled);
    assert_eq!(cancelled.failure_reason.as_deref(), Some("changed my mind"));
    let again = service
        .cancel(id, "again", &Scope::All)
        .await
        .expect("idempotent");
    assert_eq!(again.version, cancelled.version);
    assert_eq!(world.reserved("VendorA", "LAPTOP-a-001"), 0);
    assert!(matches!(
        service.cancel(id, &"x".repeat(501), &Scope::All).await,
        Err(Error::Invalid { .. })
    ));

    let mine = service
        .list(
            &OrderQuery {
                limit: 10,
                ..OrderQuery::default()
            },
            &customer_scope("c2"),
        )
        .await
        .expect("list");
    assert_eq!(mine.total, 0, "scope filters lists");
    let all = service
        .list(
            &OrderQuery {
                limit: 10,
                ..OrderQuery::default()
            },
            &Scope::All,
        )
        .await
        .expect("list");
    assert_eq!(all.total, 1);
}

#[tokio::test]
async fn cancelling_a_confirmed_order_queues_vendor_cancellations() {
    let world = World::new(5, 0, 0).await;
    let service = world.orders();
    let placed = service
        .place(&request("c1", &[("LAPTOP-001", 2)]), None)
        .await
        .expect("placed");
    // Drain the placement's outbox message.
    let first = world
        .store
        .claim_outbox(world.clock.now(), Duration::seconds(30), 10)
        .await
        .expect("claim");
    world
        .store
        .mark_outbox_sent(&first.iter().map(|m| m.message.id).collect::<Vec<_>>())
        .await
        .expect("mark");
    let confirm = Transition {
        order: placed.order.id,
        expected_version: placed.order.version,
        change: StatusChange::Confirm {
            placements: vec![VendorPlacement {
                vendor: super::support::vendor("VendorA"),
                vendor_order_id: "A-77".into(),
                idempotency_key: placed.order.vendor_key(&super::support::vendor("VendorA")),
                confirmed_at: world.later(1),
            }],
        },
        reason: "accepted".into(),
        at: world.later(1),
    };
    world
        .store
        .transition(&confirm, &[])
        .await
        .expect("confirm");
    let cancelled = service
        .cancel(placed.order.id, "", &Scope::All)
        .await
        .expect("cancel");
    assert_eq!(cancelled.status, OrderStatus::Cancelled);
    assert_eq!(
        cancelled.failure_reason.as_deref(),
        Some("cancelled by the client")
    );
    let queued = world
        .store
        .claim_outbox(world.clock.now(), Duration::seconds(30), 10)
        .await
        .expect("claim");
    assert_eq!(queued.len(), 1);
    assert_eq!(
        queued[0].message.decode::<OrderMessage>(),
        Ok(OrderMessage::CancelAtVendor {
            order: placed.order.id,
            vendor: super::support::vendor("VendorA"),
            idempotency_key: placed.order.vendor_key(&super::support::vendor("VendorA")),
            killed_at: Some(world.clock.now()),
        })
    );
}

#[tokio::test]
async fn failed_orders_cannot_be_cancelled() {
    let world = World::new(5, 0, 0).await;
    let service = world.orders();
    let placed = service
        .place(&request("c1", &[("LAPTOP-001", 1)]), None)
        .await
        .expect("placed");
    let fail = Transition {
        order: placed.order.id,
        expected_version: 1,
        change: StatusChange::Fail,
        reason: "vendor refused".into(),
        at: world.later(1),
    };
    world.store.transition(&fail, &[]).await.expect("fail");
    assert!(matches!(
        service.cancel(placed.order.id, "", &Scope::All).await,
        Err(Error::Conflict { .. })
    ));
}

#[tokio::test]
async fn a_quoted_price_must_be_a_current_catalog_price_and_nothing_is_reserved_otherwise() {
    let world = World::new(5, 5, 5).await;
    let orders = world.orders();
    let quoted = |item: &str, price: &str| {
        let mut request = request("c1", &[(item, 1), ("PHONE-002", 1)]);
        request.items[0].unit_price = Some(QuotedPrice::parse(price).expect("price"));
        request
    };
    let refused = orders
        .place(&quoted("LAPTOP-a-001", "989.99"), None)
        .await
        .expect_err("VendorB's price is not VendorA's SKU's");
    match refused {
        Error::PriceMismatch {
            field,
            item,
            quoted,
            catalog,
        } => {
            assert_eq!(field, "items[0].unitPrice");
            assert_eq!(item, "LAPTOP-a-001");
            assert_eq!(quoted, "989.99");
            assert_eq!(catalog.len(), 1);
            assert_eq!(catalog[0].decimal(), "999.99");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        world.reserved("VendorA", "PHONE-a-002"),
        0,
        "no line reserved"
    );
    // Cents more precise than the currency's minor unit never match.
    assert!(matches!(
        orders.place(&quoted("LAPTOP-a-001", "999.991"), None).await,
        Err(Error::PriceMismatch { .. })
    ));
    // A product matches any fresh vendor's price; the order is priced by the catalog.
    let placed = orders
        .place(&quoted("LAPTOP-001", "989.990"), None)
        .await
        .expect("a current price of the product");
    assert_eq!(placed.order.status, OrderStatus::Reserved);
    orders
        .place(&quoted("LAPTOP-a-001", "999.99"), None)
        .await
        .expect("the SKU's own price");
    // A stale vendor's price is no longer current.
    world.clock.advance(Duration::days(2));
    assert!(
        orders
            .place(&quoted("LAPTOP-001", "989.99"), None)
            .await
            .is_err()
    );
}

fn remembering(world: &World) -> aggregator_core::service::OrderService {
    world
        .orders()
        .with_recent_reads(std::time::Duration::from_secs(3600))
}

#[tokio::test]
async fn a_plan_from_remembered_reads_that_the_store_refuses_is_made_again_from_fresh_reads() {
    let world = World::new(3, 0, 0).await;
    let orders = remembering(&world);
    orders
        .place(&request("c1", &[("LAPTOP-001", 1)]), None)
        .await
        .expect("placed; the rows are remembered with 2 left at A");
    // A sells out at the vendor and B gets 2; the remembered rows still say A has 2.
    world
        .report(
            "VendorA",
            &[("LAPTOP-a-001", "LAPTOP-001", 1, 99_999)],
            world.later(1),
        )
        .await;
    world
        .report(
            "VendorB",
            &[("LAPTOP-b-001", "LAPTOP-001", 2, 98_999)],
            world.later(1),
        )
        .await;
    let placed = orders
        .place(&request("c2", &[("LAPTOP-001", 2)]), None)
        .await
        .expect("planned again from the store: B has the units");
    assert_eq!(
        placed.order.lines[0].allocations[0].sku.as_str(),
        "LAPTOP-b-001"
    );
    match orders
        .place(&request("c3", &[("LAPTOP-001", 1)]), None)
        .await
    {
        Err(Error::InsufficientStock { short }) => {
            assert_eq!(
                short[0].available, 0,
                "the short answer comes from fresh reads"
            );
        }
        other => panic!("expected short stock, got {other:?}"),
    }
}

#[tokio::test]
async fn a_short_plan_from_remembered_reads_is_checked_with_fresh_reads_first() {
    let world = World::new(0, 0, 0).await;
    let orders = remembering(&world);
    assert!(matches!(
        orders
            .place(&request("c1", &[("LAPTOP-001", 1)]), None)
            .await,
        Err(Error::InsufficientStock { .. })
    ));
    world
        .report(
            "VendorA",
            &[("LAPTOP-a-001", "LAPTOP-001", 4, 99_999)],
            world.later(1),
        )
        .await;
    let placed = orders
        .place(&request("c2", &[("LAPTOP-001", 2)]), None)
        .await
        .expect("the remembered rows said 0, the store has 4");
    assert_eq!(placed.order.lines[0].quantity.get(), 2);
    assert_eq!(world.reserved("VendorA", "LAPTOP-a-001"), 2);
}

#[tokio::test]
async fn a_quoted_price_is_checked_against_current_prices_not_remembered_ones() {
    let world = World::new(5, 0, 0).await;
    let orders = remembering(&world);
    orders
        .place(&request("c1", &[("LAPTOP-001", 1)]), None)
        .await
        .expect("placed; the rows are remembered at 999.99");
    // VendorA raises the price; the remembered rows still say 999.99.
    world
        .report(
            "VendorA",
            &[("LAPTOP-a-001", "LAPTOP-001", 5, 109_999)],
            world.later(1),
        )
        .await;
    let mut old_quote = request("c2", &[("LAPTOP-001", 1)]);
    old_quote.items[0].unit_price = Some(QuotedPrice::parse("999.99").expect("price"));
    match orders.place(&old_quote, None).await {
        Err(Error::PriceMismatch { catalog, .. }) => {
            let prices: Vec<String> = catalog.iter().map(|price| price.decimal()).collect();
            assert!(prices.contains(&"1099.99".to_owned()), "{prices:?}");
            assert!(!prices.contains(&"999.99".to_owned()), "{prices:?}");
        }
        other => panic!("the old quote must be refused, not charged anew: {other:?}"),
    }
    let mut new_quote = request("c3", &[("LAPTOP-001", 1)]);
    new_quote.items[0].unit_price = Some(QuotedPrice::parse("1099.99").expect("price"));
    let placed = orders.place(&new_quote, None).await.expect("current quote");
    assert_eq!(
        placed.order.lines[0].allocations[0].unit_price.decimal(),
        "1099.99"
    );
}

/// The same keyed request, sent again after the catalog moved on: answered from the store
/// (the first order), never re-planned, price-checked or freshness-checked.
#[tokio::test]
async fn a_keyed_retry_is_answered_from_the_store_whatever_the_catalog_says_now() {
    let world = World::new(5, 5, 0).await;
    let orders = world.orders();
    let key = IdempotencyKey::new("price-moves").expect("key");
    let mut body = request("c1", &[("LAPTOP-001", 1)]);
    body.items[0].unit_price = Some(QuotedPrice::parse("999.99").expect("price"));
    let first = orders.place(&body, Some(key.clone())).await.expect("first");
    // VendorA's price moves: the quote no longer matches any fresh row.
    world
        .report(
            "VendorA",
            &[("LAPTOP-a-001", "LAPTOP-001", 5, 109_999)],
            world.later(1),
        )
        .await;
    let again = orders
        .place(&body, Some(key.clone()))
        .await
        .expect("the retry gets the first answer, not price-mismatch");
    assert!(again.replayed);
    assert_eq!(again.order.id, first.order.id);
    // Every vendor goes stale: planning would say unavailable or short.
    world.clock.advance(Duration::days(2));
    let stale = orders
        .place(&body, Some(key.clone()))
        .await
        .expect("the retry gets the first answer while every vendor is stale");
    assert_eq!(stale.order.id, first.order.id);
    // Another body under the key is still refused.
    let other = request("c1", &[("LAPTOP-001", 2)]);
    assert!(matches!(
        orders.place(&other, Some(key)).await,
        Err(Error::IdempotencyMismatch { .. })
    ));
    assert_eq!(
        world.reserved("VendorA", "LAPTOP-a-001"),
        1,
        "one order only"
    );
}

/// A quote that only the lower-priority vendor's price matches: the line goes there and
/// is charged the quote, never the other vendor's price.
#[tokio::test]
async fn a_quoted_line_is_allocated_only_to_rows_at_the_quoted_price() {
    let world = World::new(5, 3, 0).await;
    let orders = world.orders();
    let mut quoted_b = request("c1", &[("LAPTOP-001", 2)]);
    quoted_b.items[0].unit_price = Some(QuotedPrice::parse("989.99").expect("price"));
    let placed = orders.place(&quoted_b, None).await.expect("B's price");
    let parts: Vec<(String, String)> = placed.order.lines[0]
        .allocations
        .iter()
        .map(|a| (a.vendor.to_string(), a.unit_price.decimal()))
        .collect();
    assert_eq!(parts, vec![("VendorB".to_owned(), "989.99".to_owned())]);
    assert_eq!(world.reserved("VendorA", "LAPTOP-a-001"), 0);
    // Two more at B's price: only one is left there, and A's units are not at that
    // price, so the line is short rather than split across prices.
    match orders.place(&quoted_b, None).await {
        Err(Error::InsufficientStock { short }) => {
            assert_eq!((short[0].requested, short[0].available), (2, 1));
        }
        other => panic!("expected short at the quoted price: {other:?}"),
    }
    // Unquoted, the same line goes by priority to A and is charged A's price.
    let unquoted = orders
        .place(&request("c2", &[("LAPTOP-001", 2)]), None)
        .await
        .expect("unquoted");
    assert_eq!(
        unquoted.order.lines[0].allocations[0].vendor.as_str(),
        "VendorA"
    );
}
