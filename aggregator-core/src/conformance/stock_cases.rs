//! Cases about stock arithmetic, snapshots and placement.

use futures_util::future::join_all;
use time::Duration;

use super::fixture::{Fixture, valid};
use crate::domain::{HealthPolicy, OrderId, ProductId, VendorHealth};
use crate::error::Error;
use crate::traits::StockStore;

/// A two-line order whose second line is short reserves nothing and writes no order;
/// the error names the short line and what is available.
pub async fn multi_line_placement_with_one_short_line_reserves_nothing(store: &dyn StockStore) {
    let fx = Fixture::new(store, 5, 1).await;
    let placement = fx.placement(1, vec![fx.line(&fx.vendor_a, 2), fx.line(&fx.vendor_b, 2)]);
    let id = placement.id;
    match store.place_order(placement).await {
        Err(Error::InsufficientStock { short }) => {
            assert_eq!(short.len(), 1, "only the short line is named: {short:?}");
            assert_eq!(short[0].item, fx.sku_b.to_string());
            assert_eq!((short[0].requested, short[0].available), (2, 1));
        }
        other => panic!("expected InsufficientStock, got {other:?}"),
    }
    assert_eq!(
        fx.stock(store, &fx.vendor_a).await.reserved,
        0,
        "line A was not reserved"
    );
    assert_eq!(fx.stock(store, &fx.vendor_b).await.reserved, 0);
    assert!(
        matches!(store.order(id).await, Err(Error::NotFound { .. })),
        "no order was written"
    );
}

/// 64 concurrent placements of one unit against 10 sellable: exactly 10 succeed, the
/// rest get InsufficientStock, and sellable ends at 0.
pub async fn concurrent_placements_never_oversell(store: &dyn StockStore) {
    let fx = Fixture::new(store, 10, 0).await;
    let attempts = (0..64).map(|n| fx.place(store, &fx.vendor_a, 1, n));
    let results = join_all(attempts).await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    let short = results
        .iter()
        .filter(|r| matches!(r, Err(Error::InsufficientStock { .. })))
        .count();
    assert_eq!(won, 10, "exactly the sellable units are sold");
    assert_eq!(
        short, 54,
        "every other placement is refused for stock: {results:?}"
    );
    let row = fx.stock(store, &fx.vendor_a).await;
    assert_eq!((row.reserved, row.sellable()), (10, 0));
}

/// A snapshot reporting fewer units than we hold makes sellable negative: new
/// placements fail, existing reservations stay.
pub async fn snapshot_below_reserved_blocks_new_placements_and_keeps_old_ones(
    store: &dyn StockStore,
) {
    let fx = Fixture::new(store, 5, 0).await;
    let placed = valid(fx.place(store, &fx.vendor_a, 4, 1).await, "place 4 of 5");
    fx.report(store, &fx.vendor_a, 1, fx.now + Duration::seconds(1))
        .await;
    let row = fx.stock(store, &fx.vendor_a).await;
    assert_eq!((row.reported, row.reserved, row.sellable()), (1, 4, -3));
    assert!(matches!(
        fx.place(store, &fx.vendor_a, 1, 2).await,
        Err(Error::InsufficientStock { .. })
    ));
    let order = valid(store.order(placed.order.id).await, "order");
    assert_eq!(
        order.status,
        crate::domain::OrderStatus::Reserved,
        "existing order stays"
    );
}

/// Units a vendor confirmed stay counted until a snapshot later than the confirmation
/// (in the vendor's clock); an older snapshot is ignored.
pub async fn confirmed_units_are_not_sold_again_before_a_later_snapshot(store: &dyn StockStore) {
    let fx = Fixture::new(store, 3, 0).await;
    let placed = valid(fx.place(store, &fx.vendor_a, 2, 1).await, "place");
    let vendor_time = fx.now + Duration::seconds(10);
    let confirm = super::order_cases::confirm_transition(&placed.order, &fx, vendor_time);
    valid(store.transition(&confirm, &[]).await, "confirm");
    let row = fx.stock(store, &fx.vendor_a).await;
    assert_eq!(
        (row.reserved, row.confirmed_not_yet_reported, row.sellable()),
        (0, 2, 1)
    );

    // The vendor's report from before our confirmation still shows 3 units.
    fx.report(store, &fx.vendor_a, 3, fx.now + Duration::seconds(5))
        .await;
    let row = fx.stock(store, &fx.vendor_a).await;
    assert_eq!((row.confirmed_not_yet_reported, row.sellable()), (2, 1));
    assert!(
        matches!(
            fx.place(store, &fx.vendor_a, 2, 2).await,
            Err(Error::InsufficientStock { .. })
        ),
        "confirmed units must not be sold again"
    );

    // A report older than the applied one changes nothing.
    let outcome = valid(
        store
            .apply_snapshot(
                &fx.vendor_a,
                &[fx.row(&fx.vendor_a, 100, fx.now - Duration::seconds(1))],
                Duration::ZERO,
            )
            .await,
        "older snapshot",
    );
    assert_eq!((outcome.applied, outcome.ignored_older), (0, 1));
    assert_eq!(fx.stock(store, &fx.vendor_a).await.reported, 3);

    // A report after the confirmation includes the two units.
    fx.report(store, &fx.vendor_a, 1, fx.now + Duration::seconds(20))
        .await;
    let row = fx.stock(store, &fx.vendor_a).await;
    assert_eq!(
        (row.reported, row.confirmed_not_yet_reported, row.sellable()),
        (1, 0, 1)
    );
}

/// The vendor's clocks: a confirmation is pruned only by a report later than it by more
/// than the margin, always waits for a report applied after it (even one the applied
/// report is already later than), and a listed row is never zeroed by the end of its
/// snapshot, whatever its own `as_of`.
pub async fn confirmations_wait_for_a_report_later_by_the_margin(store: &dyn StockStore) {
    let fx = Fixture::new(store, 10, 0).await;
    let margin = Duration::seconds(5);
    let placed = valid(fx.place(store, &fx.vendor_a, 1, 1).await, "place");
    let sold_at = fx.now + Duration::seconds(10);
    let confirm = super::order_cases::confirm_transition(&placed.order, &fx, sold_at);
    valid(store.transition(&confirm, &[]).await, "confirm");
    let report = |quantity: i64, after_sale: i64| {
        vec![fx.row(
            &fx.vendor_a,
            quantity,
            sold_at + Duration::seconds(after_sale),
        )]
    };
    // The feed's clock runs 4 s ahead of the order endpoint's: a report stamped 4 s
    // after the sale was taken before it and still shows the unit.
    valid(
        store
            .apply_snapshot(&fx.vendor_a, &report(10, 4), margin)
            .await,
        "report within the margin",
    );
    let row = fx.stock(store, &fx.vendor_a).await;
    assert_eq!(
        (row.confirmed_not_yet_reported, row.sellable()),
        (1, 9),
        "not sold twice"
    );
    valid(
        store
            .apply_snapshot(&fx.vendor_a, &report(10, 5), margin)
            .await,
        "report at the margin",
    );
    assert_eq!(
        fx.stock(store, &fx.vendor_a)
            .await
            .confirmed_not_yet_reported,
        1
    );
    valid(
        store
            .apply_snapshot(&fx.vendor_a, &report(9, 6), margin)
            .await,
        "report past the margin",
    );
    let row = fx.stock(store, &fx.vendor_a).await;
    assert_eq!((row.confirmed_not_yet_reported, row.sellable()), (0, 9));

    // A confirmation that arrives after a later report was applied stays counted until
    // the next report.
    let placed = valid(fx.place(store, &fx.vendor_a, 1, 2).await, "place");
    let confirm =
        super::order_cases::confirm_transition(&placed.order, &fx, sold_at + Duration::seconds(1));
    valid(store.transition(&confirm, &[]).await, "late confirm");
    let row = fx.stock(store, &fx.vendor_a).await;
    assert_eq!((row.confirmed_not_yet_reported, row.sellable()), (1, 8));
    valid(
        store
            .apply_snapshot(&fx.vendor_a, &report(8, 60), margin)
            .await,
        "next report",
    );
    let row = fx.stock(store, &fx.vendor_a).await;
    assert_eq!((row.confirmed_not_yet_reported, row.sellable()), (0, 8));

    // A listed row whose own time is older than the snapshot's keeps its report.
    let snapshot_at = sold_at + Duration::seconds(120);
    let mut own_time = fx.row(&fx.vendor_a, 7, sold_at + Duration::seconds(90));
    own_time.quantity = 7;
    valid(
        store
            .apply_snapshot(&fx.vendor_a, &[own_time], margin)
            .await,
        "row with its own time",
    );
    valid(
        store
            .complete_snapshot(
                &fx.vendor_a,
                std::slice::from_ref(&fx.sku_a),
                snapshot_at,
                snapshot_at,
                margin,
            )
            .await,
        "complete",
    );
    let row = fx.stock(store, &fx.vendor_a).await;
    assert_eq!(
        (row.reported, row.as_of),
        (7, sold_at + Duration::seconds(90)),
        "listed, so not zeroed"
    );
}

/// A page with one bad row (negative quantity, or a SKU listed twice) is refused whole;
/// a page for an unknown vendor is refused.
pub async fn snapshot_pages_are_validated_whole(store: &dyn StockStore) {
    let fx = Fixture::new(store, 5, 5).await;
    let later = fx.now + Duration::seconds(1);
    let mut bad = fx.row(&fx.vendor_a, -1, later);
    bad.sku = valid(
        crate::domain::VendorSku::new(format!("other-{}", fx.tag)),
        "sku",
    );
    let page = vec![fx.row(&fx.vendor_a, 50, later), bad];
    assert!(matches!(
        store
            .apply_snapshot(&fx.vendor_a, &page, Duration::ZERO)
            .await,
        Err(Error::Invalid { .. })
    ));
    assert_eq!(
        fx.stock(store, &fx.vendor_a).await.reported,
        5,
        "nothing half-applied"
    );

    let twice = vec![
        fx.row(&fx.vendor_a, 6, later),
        fx.row(&fx.vendor_a, 7, later),
    ];
    assert!(matches!(
        store
            .apply_snapshot(&fx.vendor_a, &twice, Duration::ZERO)
            .await,
        Err(Error::Invalid { .. })
    ));
    assert_eq!(fx.stock(store, &fx.vendor_a).await.reported, 5);

    let unknown = valid(
        crate::domain::VendorId::new(format!("nobody-{}", fx.tag)),
        "id",
    );
    assert!(matches!(
        store
            .apply_snapshot(&unknown, &[fx.row(&fx.vendor_a, 1, later)], Duration::ZERO)
            .await,
        Err(Error::NotFound { .. })
    ));
}

/// One page can update held rows, add new SKUs and skip rows the store holds a later
/// report of, all at once; the outcome counts each kind and the rows say so.
pub async fn a_snapshot_page_updates_adds_and_skips_older_rows_at_once(store: &dyn StockStore) {
    let fx = Fixture::new(store, 5, 5).await;
    let sku = |name: &str| {
        valid(
            crate::domain::VendorSku::new(format!("{name}-{}", fx.tag)),
            "sku",
        )
    };
    let row = |name: &str, quantity: i64, as_of| {
        let mut row = fx.row(&fx.vendor_a, quantity, as_of);
        row.sku = sku(name);
        row
    };
    let held_later = fx.now + Duration::seconds(20);
    valid(
        store
            .apply_snapshot(&fx.vendor_a, &[row("held", 3, held_later)], Duration::ZERO)
            .await,
        "first report of the held SKU",
    );
    let report = fx.now + Duration::seconds(10);
    let mut page = vec![
        row("new", 8, report),
        row("held", 1, report),
        fx.row(&fx.vendor_a, 9, report),
    ];
    page.reverse();
    let outcome = valid(
        store
            .apply_snapshot(&fx.vendor_a, &page, Duration::ZERO)
            .await,
        "mixed page",
    );
    assert_eq!(
        (outcome.applied, outcome.ignored_older),
        (2, 1),
        "the product's row updated, the new SKU added, the held one skipped"
    );
    let reported = |rows: Vec<crate::domain::VendorStock>| {
        rows.into_iter()
            .find(|r| r.vendor == fx.vendor_a)
            .map(|r| (r.reported, r.as_of))
    };
    assert_eq!(
        reported(valid(store.stock_for_sku(&sku("new")).await, "new")),
        Some((8, report))
    );
    assert_eq!(
        reported(valid(store.stock_for_sku(&sku("held")).await, "held")),
        Some((3, held_later)),
        "a later report is kept"
    );
    let product = fx.stock(store, &fx.vendor_a).await;
    assert_eq!((product.reported, product.as_of), (9, report));
}

/// Completing a snapshot zeroes SKUs it did not list and makes the vendor healthy;
/// failures degrade it and then take it down, keeping its stock.
pub async fn complete_snapshot_zeroes_missing_skus_and_tracks_health(store: &dyn StockStore) {
    let fx = Fixture::new(store, 5, 5).await;
    let policy = HealthPolicy {
        down_after_failures: 2,
    };
    let vendor = valid(
        store
            .record_sync_failure(&fx.vendor_a, "timeout", policy)
            .await,
        "fail 1",
    );
    assert_eq!(
        (vendor.health, vendor.consecutive_failures),
        (VendorHealth::Degraded, 1)
    );
    assert_eq!(vendor.last_error.as_deref(), Some("timeout"));
    let vendor = valid(
        store
            .record_sync_failure(&fx.vendor_a, "timeout", policy)
            .await,
        "fail 2",
    );
    assert_eq!(vendor.health, VendorHealth::Down);
    assert_eq!(
        fx.stock(store, &fx.vendor_a).await.reported,
        5,
        "last good data is kept"
    );

    let later = fx.now + Duration::seconds(30);
    let vendor = valid(
        store
            .complete_snapshot(&fx.vendor_a, &[], later, later, Duration::ZERO)
            .await,
        "complete",
    );
    assert_eq!(
        (vendor.health, vendor.consecutive_failures),
        (VendorHealth::Healthy, 0)
    );
    assert_eq!(vendor.last_good_sync, Some(later));
    assert_eq!(vendor.last_error, None);
    let row = fx.stock(store, &fx.vendor_a).await;
    assert_eq!(
        (row.reported, row.as_of),
        (0, later),
        "a SKU the snapshot did not list has none"
    );
    assert_eq!(
        fx.stock(store, &fx.vendor_b).await.reported,
        5,
        "other vendors untouched"
    );
    let unknown = valid(
        crate::domain::VendorId::new(format!("nobody-{}", fx.tag)),
        "id",
    );
    assert!(matches!(
        store
            .complete_snapshot(&unknown, &[], later, later, Duration::ZERO)
            .await,
        Err(Error::NotFound { .. })
    ));
}

/// A vendor whose last good sync is older than `fresh_since` cannot be reserved from.
pub async fn stale_vendors_cannot_be_reserved_from(store: &dyn StockStore) {
    let fx = Fixture::new(store, 5, 0).await;
    let mut placement = fx.placement(1, vec![fx.line(&fx.vendor_a, 1)]);
    placement.fresh_since = fx.now + Duration::seconds(1);
    match store.place_order(placement).await {
        Err(Error::InsufficientStock { short }) => assert_eq!(short[0].available, 0),
        other => panic!("a stale vendor was reserved from: {other:?}"),
    }
    assert_eq!(fx.stock(store, &fx.vendor_a).await.reserved, 0);
}

/// Vendors, stock by product and SKU, and the product list read back what was written.
pub async fn catalog_reads(store: &dyn StockStore) {
    let fx = Fixture::new(store, 4, 6).await;
    let vendors = valid(store.vendors().await, "vendors");
    let a = vendors
        .iter()
        .find(|v| v.id == fx.vendor_a)
        .expect("vendor A listed");
    assert_eq!((a.priority, a.last_good_sync), (1, Some(fx.now)));
    let rows = valid(
        store.stock_for_product(&fx.product).await,
        "stock for product",
    );
    let mut reported: Vec<i64> = rows.iter().map(|row| row.reported).collect();
    reported.sort_unstable();
    assert_eq!(reported, vec![4, 6]);
    let unknown = valid(ProductId::new(format!("none-{}", fx.tag)), "product");
    assert!(valid(store.stock_for_product(&unknown).await, "unknown product").is_empty());
    let mut seen = false;
    let mut offset = 0;
    loop {
        let page = valid(store.products(offset, 100).await, "products");
        seen |= page.items.contains(&fx.product);
        if page.items.is_empty() || seen {
            break;
        }
        offset += page.items.len() as u64;
    }
    assert!(seen, "the product is listed");
    assert!(matches!(
        store.order(OrderId::new()).await,
        Err(Error::NotFound { .. })
    ));
}
