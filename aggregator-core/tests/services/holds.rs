use aggregator_core::domain::{HoldStatus, OrderStatus};
use aggregator_core::error::Error;
use aggregator_core::service::{ItemRequest, Scope};
use time::Duration;

use super::support::{World, details};

fn items(list: &[(&str, i64)]) -> Vec<ItemRequest> {
    list.iter()
        .map(|(item, quantity)| ItemRequest {
            item: (*item).to_owned(),
            quantity: *quantity,
            unit_price: None,
        })
        .collect()
}

#[tokio::test]
async fn a_hold_becomes_an_order_once() {
    let world = World::new(3, 0, 0).await;
    let service = world.orders();
    let customer = details("c1").customer;
    let hold = service
        .create_hold(
            customer.clone(),
            &items(&[("LAPTOP-001", 2)]),
            Duration::minutes(5),
        )
        .await
        .expect("hold");
    assert_eq!(world.reserved("VendorA", "LAPTOP-a-001"), 2);
    assert!(matches!(
        service
            .create_hold(
                customer.clone(),
                &items(&[("LAPTOP-001", 2)]),
                Duration::minutes(5)
            )
            .await,
        Err(Error::InsufficientStock { .. })
    ));
    let placed = service
        .order_from_hold(hold.id, details("c1"))
        .await
        .expect("order");
    assert!(!placed.replayed);
    assert_eq!(placed.order.status, OrderStatus::Reserved);
    assert_eq!(
        world.reserved("VendorA", "LAPTOP-a-001"),
        2,
        "the order took over the units"
    );
    let again = service
        .order_from_hold(hold.id, details("c1"))
        .await
        .expect("replay");
    assert!(again.replayed);
    assert_eq!(again.order.id, placed.order.id);
    assert!(matches!(
        service.order_from_hold(hold.id, details("c2")).await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn holds_extend_within_bounds_and_release() {
    let world = World::new(3, 0, 0).await;
    let service = world.orders();
    let customer = details("c1").customer;
    for bad in [Duration::ZERO, Duration::seconds(-5), Duration::hours(2)] {
        assert!(matches!(
            service.create_hold(customer.clone(), &items(&[("LAPTOP-001", 1)]), bad).await,
            Err(Error::Invalid { field, .. }) if field == "ttl"
        ));
    }
    let hold = service
        .create_hold(
            customer.clone(),
            &items(&[("LAPTOP-001", 1)]),
            Duration::minutes(1),
        )
        .await
        .expect("hold");
    world.clock.advance(Duration::seconds(30));
    let extended = service
        .extend_hold(hold.id, Duration::minutes(10), &Scope::All)
        .await
        .expect("extend");
    assert_eq!(extended.expires_at, world.later(30) + Duration::minutes(10));
    assert!(matches!(
        service
            .release_hold(hold.id, &Scope::Customer(details("c2").customer))
            .await,
        Err(Error::NotFound { .. })
    ));
    let released = service
        .release_hold(hold.id, &Scope::All)
        .await
        .expect("release");
    assert_eq!(released.status, HoldStatus::Released);
    assert_eq!(world.reserved("VendorA", "LAPTOP-a-001"), 0);
    assert!(matches!(
        service.order_from_hold(hold.id, details("c1")).await,
        Err(Error::Conflict { .. })
    ));
}

#[tokio::test]
async fn extensions_never_take_a_hold_past_its_lifetime() {
    let world = World::new(3, 0, 0).await;
    let service = world.orders();
    let customer = details("c1").customer;
    let hold = service
        .create_hold(
            customer,
            &items(&[("LAPTOP-001", 1)]),
            Duration::minutes(50),
        )
        .await
        .expect("hold");
    // Every extension is within the per-extension maximum (an hour), but together they
    // would hold the unit forever; the lifetime (an hour from creation) stops them.
    for _ in 0..4 {
        world.clock.advance(Duration::minutes(10));
        service
            .extend_hold(hold.id, Duration::minutes(15), &Scope::All)
            .await
            .expect("within the lifetime");
    }
    world.clock.advance(Duration::minutes(10));
    let refused = service
        .extend_hold(hold.id, Duration::minutes(15), &Scope::All)
        .await;
    assert!(
        matches!(refused, Err(Error::Invalid { ref field, ref reason }) if field == "ttl" && reason.contains("from its creation")),
        "{refused:?}"
    );
    let hold = service.hold(hold.id, &Scope::All).await.expect("hold");
    assert!(hold.expires_at <= hold.created_at + Duration::hours(1));
}

#[tokio::test]
async fn one_customer_cannot_hold_everything() {
    let world = World::new(500, 0, 0).await;
    let service = world.orders();
    let greedy = details("greedy").customer;
    // The default limit is 100 units at once.
    let refused = service
        .create_hold(
            greedy.clone(),
            &items(&[("LAPTOP-001", 101)]),
            Duration::minutes(5),
        )
        .await;
    assert!(
        matches!(refused, Err(Error::Conflict { .. })),
        "{refused:?}"
    );
    for _ in 0..2 {
        service
            .create_hold(
                greedy.clone(),
                &items(&[("LAPTOP-001", 50)]),
                Duration::minutes(5),
            )
            .await
            .expect("up to the limit");
    }
    assert!(matches!(
        service
            .create_hold(greedy, &items(&[("LAPTOP-001", 1)]), Duration::minutes(5))
            .await,
        Err(Error::Conflict { .. })
    ));
    assert_eq!(world.reserved("VendorA", "LAPTOP-a-001"), 100);
    service
        .create_hold(
            details("other").customer,
            &items(&[("LAPTOP-001", 1)]),
            Duration::minutes(5),
        )
        .await
        .expect("another customer still can");
}
