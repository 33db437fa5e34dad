//! Cases about what a placement is charged and what its idempotency key answers.

use time::Duration;

use super::fixture::{Fixture, qty, valid};
use crate::domain::{Currency, IdempotencyKey, Money, QuotedPrice, SnapshotRow};
use crate::error::Error;
use crate::traits::{IdempotencyRecord, PlannedAllocation, PlannedLine, Reroute, StockStore};

fn quote(text: &str) -> QuotedPrice {
    valid(QuotedPrice::parse(text), "quote")
}

/// Reports `vendor`'s SKU of the fixture at `price_minor` cents (same units), later
/// than anything before.
async fn reprice(store: &dyn StockStore, fx: &Fixture, vendor_a: bool, price_minor: i64) {
    let vendor = if vendor_a { &fx.vendor_a } else { &fx.vendor_b };
    let current = fx.stock(store, vendor).await;
    let row = SnapshotRow {
        price: valid(Money::new(price_minor, Currency::USD), "price"),
        ..fx.row(
            vendor,
            current.reported,
            current.as_of + Duration::seconds(1),
        )
    };
    valid(
        store.apply_snapshot(vendor, &[row], Duration::ZERO).await,
        "reprice",
    );
}

fn quoted_line(fx: &Fixture, vendor_a: bool, units: u32, price: &str) -> PlannedLine {
    let vendor = if vendor_a { &fx.vendor_a } else { &fx.vendor_b };
    PlannedLine {
        quoted: Some(quote(price)),
        ..fx.line(vendor, units)
    }
}

/// A quoted line is charged exactly its quote: a row at another price refuses the whole
/// placement (`PriceMismatch` naming the row's price, nothing reserved), alone or in a
/// batch where the others go on.
pub async fn a_quoted_line_is_charged_its_quote_or_refused(store: &dyn StockStore) {
    let fx = Fixture::new(store, 5, 5).await;
    reprice(store, &fx, false, 1_200).await;
    let at_a = fx.placement(1, vec![quoted_line(&fx, true, 1, "10.00")]);
    let placed = valid(store.place_order(at_a).await, "quote matches A");
    assert_eq!(
        placed.order.lines[0].allocations[0]
            .unit_price
            .minor_units(),
        1_000
    );
    assert_eq!(
        placed.order.lines[0].quoted_unit_price,
        Some(quote("10.00"))
    );

    // Line 0 is fine at A; line 1 quotes A's price on B's row.
    let wrong = fx.placement(
        2,
        vec![
            fx.line(&fx.vendor_a, 1),
            quoted_line(&fx, false, 1, "10.00"),
        ],
    );
    match store.place_order(wrong).await {
        Err(Error::PriceMismatch { field, catalog, .. }) => {
            assert_eq!(field, "items[1].unitPrice");
            assert_eq!(catalog.len(), 1);
            assert_eq!(catalog[0].minor_units(), 1_200, "names the row's price");
        }
        other => panic!("a quote B's row does not match must be refused: {other:?}"),
    }
    assert_eq!(
        fx.stock(store, &fx.vendor_a).await.reserved,
        1,
        "nothing more at A"
    );
    assert_eq!(
        fx.stock(store, &fx.vendor_b).await.reserved,
        0,
        "nothing at B"
    );

    let answers = store
        .place_orders(vec![
            fx.placement(3, vec![quoted_line(&fx, true, 1, "10.00")]),
            fx.placement(4, vec![quoted_line(&fx, false, 1, "10.00")]),
            fx.placement(5, vec![quoted_line(&fx, false, 2, "12.00")]),
        ])
        .await;
    assert!(answers[0].is_ok(), "{:?}", answers[0]);
    assert!(
        matches!(answers[1], Err(Error::PriceMismatch { .. })),
        "{:?}",
        answers[1]
    );
    let at_b = valid(answers[2].clone(), "quote matches B");
    assert_eq!(
        at_b.order.lines[0].allocations[0].unit_price.minor_units(),
        1_200
    );
    assert_eq!(fx.stock(store, &fx.vendor_a).await.reserved, 2);
    assert_eq!(fx.stock(store, &fx.vendor_b).await.reserved, 2);
}

/// A quoted line re-routed to a row at another price is refused without changing
/// anything; at its price it moves and is still charged the quote.
pub async fn a_quoted_line_moves_only_to_rows_at_its_quote(store: &dyn StockStore) {
    let fx = Fixture::new(store, 5, 5).await;
    reprice(store, &fx, false, 1_200).await;
    let placed = valid(
        store
            .place_order(fx.placement(1, vec![quoted_line(&fx, true, 2, "10.00")]))
            .await,
        "place",
    );
    let reroute = |version: i64| Reroute {
        order: placed.order.id,
        expected_version: version,
        vendor: fx.vendor_a.clone(),
        sku: fx.sku_a.clone(),
        replacement: vec![PlannedAllocation {
            vendor: fx.vendor_b.clone(),
            sku: fx.sku_b.clone(),
            quantity: qty(2),
        }],
        reason: "vendor A is short".into(),
        at: fx.now,
        fresh_since: fx.now - Duration::minutes(5),
    };
    assert!(
        matches!(
            store.reroute(&reroute(1)).await,
            Err(Error::PriceMismatch { .. })
        ),
        "B's row is at another price"
    );
    let unchanged = valid(store.order(placed.order.id).await, "order");
    assert_eq!(unchanged.version, 1);
    assert_eq!(fx.stock(store, &fx.vendor_a).await.reserved, 2);
    assert_eq!(fx.stock(store, &fx.vendor_b).await.reserved, 0);

    reprice(store, &fx, false, 1_000).await;
    let moved = valid(store.reroute(&reroute(1)).await, "B at the quote");
    let allocation = &moved.lines[0].allocations[0];
    assert_eq!(allocation.vendor, fx.vendor_b);
    assert_eq!(allocation.unit_price.minor_units(), 1_000);
    assert_eq!(fx.stock(store, &fx.vendor_b).await.reserved, 2);
}

/// `placed_under_key` answers nothing for an unused key, the order (as a replay) for
/// the request that used it, and `IdempotencyMismatch` for another request; keys are
/// per customer.
pub async fn placed_under_key_answers_what_a_key_stands_for(store: &dyn StockStore) {
    let fx = Fixture::new(store, 5, 0).await;
    let record = |fingerprint: &str| IdempotencyRecord {
        key: valid(IdempotencyKey::new(format!("lookup-{}", fx.tag)), "key"),
        fingerprint: fingerprint.to_owned(),
    };
    let customer = fx.details(1).customer;
    assert!(
        valid(
            store.placed_under_key(&customer, &record("same")).await,
            "unused"
        )
        .is_none(),
        "nothing placed under the key yet"
    );
    let mut placement = fx.placement(1, vec![fx.line(&fx.vendor_a, 1)]);
    placement.idempotency = Some(record("same"));
    let placed = valid(store.place_order(placement).await, "place");
    let found = valid(
        store.placed_under_key(&customer, &record("same")).await,
        "lookup",
    );
    let found = found.unwrap_or_else(|| panic!("the key stands for the order"));
    assert!(found.replayed);
    assert_eq!(found.order.id, placed.order.id);
    assert!(matches!(
        store.placed_under_key(&customer, &record("other")).await,
        Err(Error::IdempotencyMismatch { .. })
    ));
    let someone_else = fx.details(2).customer;
    assert!(
        valid(
            store.placed_under_key(&someone_else, &record("same")).await,
            "other customer"
        )
        .is_none(),
        "keys are per customer"
    );
}
