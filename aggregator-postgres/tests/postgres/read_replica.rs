//! Reads through a real streaming replica that `scripts/pg-replica.sh` starts for the
//! test on a spare port (pg_basebackup of the local server) and stops at its end.

use std::time::Duration;

use aggregator_core::conformance::Fixture;
use aggregator_core::prelude::*;
use aggregator_core::traits::{CatalogReads, OrderListing, OrderQuery};
use aggregator_postgres::testing::{LocalReplica, TestDatabase};
use aggregator_postgres::{ReadReplicaConfig, ReplicaReads, ReplicaState};

async fn eventually(what: &str, reads: &ReplicaReads, wanted: fn(&ReplicaState) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let state = reads.state();
        if wanted(&state) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: still {state}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn listed(reads: &dyn OrderListing) -> u64 {
    reads
        .orders(&OrderQuery {
            limit: 10,
            ..OrderQuery::default()
        })
        .await
        .expect("list")
        .total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_come_from_the_replica_while_it_keeps_up_and_from_the_primary_otherwise() {
    let Some(db) = TestDatabase::create(8).await else {
        return;
    };
    let database = db.name().to_owned();
    let store = db.store.clone();
    let fx = Fixture::new(&store, 10, 0).await;
    let Some(replica) = LocalReplica::start() else {
        return;
    };
    let mut config = ReadReplicaConfig::new(replica.url(&database));
    config.max_lag = Duration::from_secs(1);
    config.check_every = Duration::from_millis(100);
    let reads = ReplicaReads::start(store.pool().clone(), &config).expect("config");

    eventually("the replica catches up", &reads, ReplicaState::is_serving).await;
    let vendors = reads.vendors().await.expect("vendors from the replica");
    assert!(vendors.iter().any(|v| v.id == fx.vendor_a), "{vendors:?}");
    assert_eq!(listed(&reads).await, 0);

    // Replay stops: an order placed now is on the primary only. Within the lag limit
    // the replica still answers, without it.
    replica.run(&database, "SELECT pg_wal_replay_pause()").await;
    store
        .place_order(fx.placement(1, vec![fx.line(&fx.vendor_a, 1)]))
        .await
        .expect("placed on the primary");
    assert_eq!(listed(&store).await, 1, "the primary has it");
    assert_eq!(
        listed(&reads).await,
        0,
        "the replica answered (it has not replayed the order yet)"
    );

    // Past the limit the primary answers, and the state says why.
    eventually("the replica is set aside", &reads, |s| {
        matches!(s, ReplicaState::Lagging { .. })
    })
    .await;
    assert_eq!(listed(&reads).await, 1, "the primary answers while it lags");
    let stock = reads
        .stock_for_product(&fx.product)
        .await
        .expect("stock from the primary");
    assert_eq!(stock.iter().map(|row| row.reserved).sum::<i64>(), 1);

    // Replay resumes: the replica catches up and answers again, with the order.
    replica
        .run(&database, "SELECT pg_wal_replay_resume()")
        .await;
    eventually("the replica serves again", &reads, ReplicaState::is_serving).await;
    assert_eq!(listed(&reads).await, 1);

    // The replica goes away: reads go on, from the primary.
    drop(replica);
    assert_eq!(listed(&reads).await, 1, "a failed replica read falls back");
    eventually("the replica is reported down", &reads, |s| {
        matches!(s, ReplicaState::Down { .. })
    })
    .await;
    assert_eq!(listed(&reads).await, 1);
    assert!(
        reads
            .state()
            .to_string()
            .contains("reads go to the primary"),
        "{}",
        reads.state()
    );
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_given_as_its_own_replica_is_never_read_as_one() {
    let Some(db) = TestDatabase::create(4).await else {
        return;
    };
    let mut config = ReadReplicaConfig::new(db.config().url.expose().to_owned());
    config.check_every = Duration::from_millis(50);
    let reads = ReplicaReads::start(db.store.pool().clone(), &config).expect("config");
    eventually("the check has run", &reads, |s| {
        !matches!(s, ReplicaState::Unchecked)
    })
    .await;
    assert!(
        reads.state().to_string().contains("not a standby"),
        "{}",
        reads.state()
    );
    let mut zero = config.clone();
    zero.max_lag = Duration::ZERO;
    assert!(ReplicaReads::start(db.store.pool().clone(), &zero).is_err());
    db.finish().await;
}
