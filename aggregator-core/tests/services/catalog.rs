use aggregator_core::domain::StalenessLimit;
use aggregator_core::error::Error;
use aggregator_core::service::Catalog;

use super::support::{World, product, request};

#[tokio::test]
async fn availability_sums_fresh_vendors_net_of_reservations() {
    let world = World::new(4, 6, 2).await;
    world
        .orders()
        .place(&request("c1", &[("LAPTOP-001", 5)]), None)
        .await
        .expect("placed");
    let catalog = Catalog::new(world.dyn_store(), world.clock(), StalenessLimit::DEFAULT);
    let laptops = catalog
        .availability(&product("LAPTOP-001"))
        .await
        .expect("laptops");
    assert_eq!(laptops.available, 5);
    assert_eq!(laptops.vendors.len(), 2);
    let a = laptops
        .vendors
        .iter()
        .find(|v| v.vendor.as_str() == "VendorA")
        .expect("A");
    assert_eq!(
        (a.reported, a.reserved, a.sellable, a.fresh),
        (4, 4, 0, true)
    );
    assert!(matches!(
        catalog.availability(&product("NOPE-1")).await,
        Err(Error::NotFound { .. })
    ));
    let page = catalog.products(0, 10).await.expect("products");
    assert_eq!(page.total, 2);
    let ids: Vec<String> = page.items.iter().map(|p| p.product.to_string()).collect();
    assert_eq!(ids, vec!["LAPTOP-001", "PHONE-002"]);
    let second = catalog.products(1, 10).await.expect("page 2");
    assert_eq!(second.items.len(), 1);
}
