//! Embeds `aggregator-core` with its in-memory backends and runs the race the seed's
//! Node system lost: 200 concurrent orders for a product with 15 units spread over two
//! vendors. Exactly 15 succeed; every other order is told, at once, that stock is short.
//!
//! Run with `cargo run --example in_memory_checkout`.

use aggregator_core::prelude::*;
use std::sync::Arc;

use aggregator_core::domain::{
    Currency, CustomerId, Money, OrderDetails, ProductId, SnapshotRow, Vendor, VendorId, VendorSku,
};
use aggregator_core::memory::InMemoryStockStore;
use aggregator_core::service::{
    Catalog, ItemRequest, OrderConfig, OrderRequest, OrderService, Scope,
};
use aggregator_core::{Clock, Error, SystemClock};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let store = Arc::new(InMemoryStockStore::new());
    let clock = Arc::new(SystemClock);
    let now = clock.now();

    // Two vendors carry the canonical LAPTOP-001 under their own SKUs: 9 + 6 units.
    for (vendor, name, sku, units, cents, priority) in [
        ("VendorA", "Vendor A", "LAPTOP-a-001", 9, 99_999, 1),
        ("VendorB", "Vendor B", "LAPTOP-b-001", 6, 98_999, 2),
    ] {
        let id = VendorId::new(vendor)?;
        store
            .upsert_vendor(&Vendor::new(
                id.clone(),
                name,
                "http://127.0.0.1:3001",
                priority,
            )?)
            .await?;
        let row = SnapshotRow {
            sku: VendorSku::new(sku)?,
            product: ProductId::new("LAPTOP-001")?,
            quantity: units,
            price: Money::new(cents, Currency::USD)?,
            as_of: now,
        };
        store
            .apply_snapshot(&id, &[row], time::Duration::ZERO)
            .await?;
        store
            .complete_snapshot(&id, &[], now, now, time::Duration::ZERO)
            .await?;
    }

    let orders = Arc::new(OrderService::new(
        store.clone(),
        store.clone(),
        store.clone(),
        clock.clone(),
        OrderConfig::default(),
    )?);
    let race: Vec<_> = (0..200)
        .map(|n| {
            let orders = Arc::clone(&orders);
            tokio::spawn(async move {
                let request = OrderRequest {
                    details: OrderDetails {
                        customer: CustomerId::new(format!("race-{n}"))?,
                        email: None,
                        shipping_address: None,
                        payment_method: None,
                        notes: None,
                    },
                    items: vec![ItemRequest {
                        item: "LAPTOP-001".into(),
                        quantity: 1,
                        unit_price: None,
                    }],
                };
                orders.place(&request, None).await
            })
        })
        .collect();

    let (mut placed, mut short) = (Vec::new(), 0);
    for task in race {
        match task.await {
            Ok(Ok(answer)) => placed.push(answer.order),
            Ok(Err(Error::InsufficientStock { .. })) => short += 1,
            Ok(Err(other)) => return Err(other),
            Err(join) => return Err(Error::permanent("example", join.to_string())),
        }
    }
    println!(
        "200 concurrent orders for 15 laptops: {} placed, {short} refused for stock",
        placed.len()
    );

    if let Some(first) = placed.first() {
        let cancelled = orders
            .cancel(first.id, "changed my mind", &Scope::All)
            .await?;
        println!(
            "cancelled order {} ({}), its unit is sellable again",
            cancelled.id,
            cancelled.status.as_str()
        );
    }

    let catalog = Catalog::new(store.clone(), clock, OrderConfig::default().staleness);
    let laptops = catalog.availability(&ProductId::new("LAPTOP-001")?).await?;
    println!("LAPTOP-001 available now: {}", laptops.available);
    for vendor in &laptops.vendors {
        println!(
            "  {} {}: reported {}, reserved {}, sellable {}",
            vendor.vendor, vendor.sku, vendor.reported, vendor.reserved, vendor.sellable
        );
    }
    Ok(())
}
