//! Random sequences of place / cancel / confirm / fail / expire / sync / vendor
//! cancellations against the in-memory store and a plain model of the stock arithmetic
//! (`aggregator_core::conformance::StockModel`). After every step the two must agree,
//! `reserved` must equal the sum of active reservations, and no placement may succeed
//! beyond what was sellable. PostgreSQL runs the same model in its own tests.

use std::sync::Arc;

use aggregator_core::conformance::{ModelStep, StockModel};
use aggregator_core::memory::InMemoryStockStore;
use proptest::prelude::*;

/// Proptest cases per run; each is a sequence of up to `MAX_STEPS` steps.
const CASES: u32 = 512;
const MAX_STEPS: usize = 40;
/// The model's stock rows.
const ROWS: usize = 3;

fn step() -> impl Strategy<Value = ModelStep> {
    prop_oneof![
        4 => prop::collection::vec((0..ROWS, 1..6_u32), 1..3).prop_map(ModelStep::Place),
        1 => any::<usize>().prop_map(ModelStep::Cancel),
        2 => (any::<usize>(), 0..100_i64).prop_map(|(o, t)| ModelStep::Confirm(o, t)),
        1 => any::<usize>().prop_map(ModelStep::Fail),
        1 => (1..15_i64).prop_map(ModelStep::Advance),
        2 => (0..ROWS, 0..15_i64, 0..100_i64).prop_map(|(k, q, t)| ModelStep::Sync(k, q, t)),
        1 => any::<usize>().prop_map(ModelStep::VendorCancels),
    ]
}

/// `reserved` of every row equals the sum of the active reservations on it.
fn reservations_add_up(store: &InMemoryStockStore) {
    let active = store.active_reservations();
    for row in ["LAPTOP-a-001", "PHONE-a-002", "LAPTOP-b-001"] {
        let rows = active.iter().filter(|r| r.sku.as_str() == row);
        let held: i64 = rows.map(|r| r.quantity.as_i64()).sum();
        let vendor = if row.contains("-b-") {
            "VendorB"
        } else {
            "VendorA"
        };
        let stock = store
            .stock(
                &aggregator_core::domain::VendorId::new(vendor).expect("vendor"),
                &aggregator_core::domain::VendorSku::new(row).expect("sku"),
            )
            .expect("row");
        assert_eq!(
            stock.reserved, held,
            "reserved equals the sum of active reservations on {row}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    #[test]
    fn store_matches_the_model(
        initial in [0..12_i64, 0..12_i64, 0..12_i64],
        steps in prop::collection::vec(step(), 1..MAX_STEPS),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let store = Arc::new(InMemoryStockStore::new());
            let mut model = StockModel::new(store.clone(), initial).await;
            model.check().await;
            for step in &steps {
                model.apply(step).await;
                model.check().await;
                reservations_add_up(&store);
            }
        });
    }
}
