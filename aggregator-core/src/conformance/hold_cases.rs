//! Cases about explicit stock holds.

use futures_util::future::join;
use time::Duration;

use super::fixture::{Fixture, valid};
use crate::domain::{HoldId, HoldStatus, OrderId, OrderStatus};
use crate::error::Error;
use crate::traits::{HoldConversion, HoldLimits, HoldPlacement, StockStore};

fn hold_placement(fx: &Fixture, units: u32, ttl: Duration) -> HoldPlacement {
    HoldPlacement {
        id: HoldId::new(),
        customer: fx.details(1).customer,
        lines: vec![fx.line(&fx.vendor_a, units)],
        at: fx.now,
        expires_at: fx.now + ttl,
        fresh_since: fx.now - Duration::minutes(5),
        limits: HoldLimits::default(),
    }
}

/// A hold takes units; it can be extended, turned into an order that keeps the same
/// units (only by its customer), and not released afterwards.
pub async fn holds_reserve_extend_convert_and_release(store: &dyn StockStore) {
    let fx = Fixture::new(store, 5, 0).await;
    let hold = valid(
        store
            .place_hold(hold_placement(&fx, 3, Duration::minutes(1)))
            .await,
        "hold",
    );
    assert_eq!(hold.status, HoldStatus::Active);
    assert_eq!(fx.stock(store, &fx.vendor_a).await.reserved, 3);
    assert!(matches!(
        store
            .place_hold(hold_placement(&fx, 3, Duration::minutes(1)))
            .await,
        Err(Error::InsufficientStock { .. })
    ));

    let later = fx.now + Duration::minutes(10);
    let extended = valid(store.extend_hold(hold.id, later, fx.now).await, "extend");
    assert_eq!(extended.expires_at, later);
    assert!(matches!(
        store
            .extend_hold(hold.id, fx.now - Duration::seconds(1), fx.now)
            .await,
        Err(Error::Invalid { .. })
    ));

    let conversion = |customer: u32| HoldConversion {
        hold: hold.id,
        order: OrderId::new(),
        details: fx.details(customer),
        at: fx.now + Duration::minutes(2),
        reserved_until: fx.now + Duration::minutes(17),
        outbox: Vec::new(),
    };
    assert!(
        matches!(
            store.convert_hold(conversion(2)).await,
            Err(Error::NotFound { .. })
        ),
        "another customer's hold looks missing"
    );
    let placed = valid(store.convert_hold(conversion(1)).await, "convert");
    assert_eq!(placed.order.status, OrderStatus::Reserved);
    assert!(
        placed.order.number.is_some(),
        "an order from a hold is numbered too"
    );
    assert_eq!(
        valid(store.order(placed.order.id).await, "read").number,
        placed.order.number
    );
    assert_eq!(placed.order.from_hold, Some(hold.id));
    assert_eq!(placed.order.lines[0].quantity.get(), 3);
    assert_eq!(
        fx.stock(store, &fx.vendor_a).await.reserved,
        3,
        "units move, not doubled"
    );
    let converted = valid(store.hold(hold.id).await, "hold");
    assert_eq!(
        (converted.status, converted.order),
        (HoldStatus::Converted, Some(placed.order.id))
    );
    assert!(matches!(
        store.convert_hold(conversion(1)).await,
        Err(Error::Conflict { .. })
    ));
    assert!(matches!(
        store.release_hold(hold.id, fx.now).await,
        Err(Error::Conflict { .. })
    ));
    assert!(matches!(
        store.hold(HoldId::new()).await,
        Err(Error::NotFound { .. })
    ));

    // The order's own deadline now applies, not the hold's.
    let swept = valid(
        store
            .expire_overdue(fx.now + Duration::minutes(11), 100)
            .await,
        "sweep",
    );
    assert!(!swept.orders.contains(&placed.order.id));
    assert!(!swept.holds.contains(&hold.id));
}

/// Releasing a hold gives its units back once, even when two releases race; an expired
/// hold gives them back once too and can no longer be extended or converted.
pub async fn holds_expire_and_release_once(store: &dyn StockStore) {
    let fx = Fixture::new(store, 5, 0).await;
    let first = valid(
        store
            .place_hold(hold_placement(&fx, 2, Duration::minutes(1)))
            .await,
        "hold",
    );
    let (a, b) = join(
        store.release_hold(first.id, fx.now),
        store.release_hold(first.id, fx.now),
    )
    .await;
    assert_eq!(valid(a, "release").status, HoldStatus::Released);
    assert_eq!(valid(b, "release again").status, HoldStatus::Released);
    assert_eq!(
        fx.stock(store, &fx.vendor_a).await.reserved,
        0,
        "released once"
    );

    let second = valid(
        store
            .place_hold(hold_placement(&fx, 4, Duration::seconds(5)))
            .await,
        "hold",
    );
    let at = fx.now + Duration::seconds(6);
    let (x, y) = join(store.expire_overdue(at, 100), store.expire_overdue(at, 100)).await;
    let expired = valid(x, "sweep")
        .holds
        .iter()
        .chain(&valid(y, "sweep").holds)
        .filter(|id| **id == second.id)
        .count();
    assert_eq!(expired, 1, "expired by exactly one sweeper");
    assert_eq!(fx.stock(store, &fx.vendor_a).await.reserved, 0);
    assert_eq!(
        valid(store.hold(second.id).await, "hold").status,
        HoldStatus::Expired
    );
    assert_eq!(
        valid(store.release_hold(second.id, at).await, "release expired").status,
        HoldStatus::Expired
    );
    assert!(matches!(
        store
            .extend_hold(second.id, at + Duration::minutes(1), at)
            .await,
        Err(Error::Conflict { .. })
    ));
    assert_eq!(
        fx.stock(store, &fx.vendor_a).await.reserved,
        0,
        "still released once"
    );
}

/// A customer cannot pass its hold limits, not even with placements racing each other;
/// released holds free their share, and other customers have their own.
pub async fn holds_are_capped_per_customer(store: &dyn StockStore) {
    let fx = Fixture::new(store, 100, 0).await;
    let limits = HoldLimits {
        max_active: 3,
        max_units: 5,
    };
    let capped = |units: u32| {
        let mut placement = hold_placement(&fx, units, Duration::minutes(10));
        placement.limits = limits;
        placement
    };
    // Ten racing holds of one unit: exactly three get through (the count limit).
    let racers = (0..10).map(|_| store.place_hold(capped(1)));
    let results = futures_util::future::join_all(racers).await;
    let held: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(held.len(), 3, "three active holds at most");
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| matches!(e, Error::Conflict { .. })),
        "{results:?}"
    );
    assert_eq!(fx.stock(store, &fx.vendor_a).await.reserved, 3);
    // Releasing one frees a place; units still count: 2 held + 4 passes 5.
    valid(store.release_hold(held[0].id, fx.now).await, "release");
    assert!(matches!(
        store.place_hold(capped(4)).await,
        Err(Error::Conflict { .. })
    ));
    let hold = valid(store.place_hold(capped(3)).await, "up to the unit limit");
    assert_eq!(hold.status, HoldStatus::Active);
    assert!(
        matches!(
            store.place_hold(capped(1)).await,
            Err(Error::Conflict { .. })
        ),
        "three active again"
    );
    assert_eq!(fx.stock(store, &fx.vendor_a).await.reserved, 5);
    // Another customer has limits of its own.
    let mut other = capped(1);
    other.customer = fx.details(2).customer;
    valid(store.place_hold(other).await, "another customer");
}
