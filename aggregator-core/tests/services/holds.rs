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
