//! The stock model (`aggregator_core::conformance::StockModel`) against PostgreSQL:
//! random sequences of place / cancel / confirm / fail / expire / sync / vendor
//! cancellations, each case on a database of its own, with the store and the model
//! compared after every step and `reserved` compared with the reservation rows.
//!
//! A short run by default (CI); a long one with, for example,
//! `AGGREGATOR_MODEL_CASES=500 AGGREGATOR_MODEL_STEPS=200 cargo test -p aggregator-postgres --release --test postgres model`
//! (`AGGREGATOR_MODEL_SEED` picks the first case's seed; a failure prints the seed of
//! its case, which reproduces it alone with `AGGREGATOR_MODEL_CASES=1`).

use std::sync::Arc;

use aggregator_core::conformance::{ModelStep, StockModel};
use aggregator_postgres::testing::TestDatabase;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_matches_the_stock_model() {
    let cases = setting("AGGREGATOR_MODEL_CASES", 6);
    let steps = setting("AGGREGATOR_MODEL_STEPS", 40);
    let first_seed = setting("AGGREGATOR_MODEL_SEED", 0x5EED);
    let mut total_steps = 0;
    for case in 0..cases {
        let Some(db) = TestDatabase::create(4).await else {
            return;
        };
        let seed = first_seed.wrapping_add(case);
        let mut rng = seed;
        let initial = [
            i64::try_from(seed % 12).unwrap_or(0),
            i64::try_from(seed / 12 % 12).unwrap_or(0),
            i64::try_from(seed / 144 % 12).unwrap_or(0),
        ];
        eprintln!("model case {case}: seed {seed}");
        let store = Arc::new(db.store.clone());
        let mut model = StockModel::new(store.clone(), initial).await;
        model.check().await;
        for _ in 0..steps {
            let step = ModelStep::random(&mut rng);
            model.apply(&step).await;
            model.check().await;
            let rows: Vec<(String, i64, i64)> = sqlx::query_as(
                "SELECT s.sku, s.reserved, COALESCE(sum(r.quantity), 0)::int8
                   FROM vendor_stock s
                   LEFT JOIN reservations r ON r.vendor_id = s.vendor_id AND r.sku = s.sku
                  GROUP BY s.vendor_id, s.sku, s.reserved",
            )
            .fetch_all(store.pool())
            .await
            .expect("rows");
            for (sku, reserved, held) in rows {
                assert_eq!(
                    reserved, held,
                    "seed {seed}: reserved equals the reservation rows on {sku} after {step:?}"
                );
            }
            total_steps += 1;
        }
        db.finish().await;
    }
    eprintln!("model: {cases} cases, {total_steps} steps agreed");
}
