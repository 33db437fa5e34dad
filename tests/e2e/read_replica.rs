//! `DATABASE_READ_URL` end to end: the settings reach the backends, the API's reads
//! keep answering, and `/health` tells whether the replica serves them. On the local
//! PostgreSQL and a streaming replica of it that the test starts (pg_basebackup).

use std::time::Duration;

use aggregator_postgres::testing::{LocalReplica, TestDatabase};
use order_aggregator::app::App;
use order_aggregator::settings::Settings;
use order_aggregator::stack::Roles;
use serde_json::Value;

use super::support::{eventually, get_json, vendors};

/// Waits until `/health` shows the replica as `replica` (and, if given, the whole
/// system as `overall`).
async fn until_replica(http: &reqwest::Client, base: &str, replica: &str, overall: Option<&str>) {
    let what = format!("the replica {replica}");
    eventually(&what, Duration::from_secs(20), || async {
        let health: Value = get_json(http, &format!("{base}/health")).await;
        let shown = health["components"]["replica"]["status"].as_str() == Some(replica);
        let whole = overall.is_none_or(|o| health["status"].as_str() == Some(o));
        (shown && whole).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_named_by_database_read_url_serves_reads_and_health_says_when_it_does_not() {
    let Some(db) = TestDatabase::create(8).await else {
        return;
    };
    let (a, b) = vendors().await;
    let Some(replica) = LocalReplica::start() else {
        return;
    };
    let vendors_setting = format!("VendorA={},VendorB={}", a.base_url(), b.base_url());
    let primary = db.config().url.expose().to_owned();
    let read = replica.url(db.name());
    let env = move |name: &str| match name {
        "DATABASE_URL" => Some(primary.clone()),
        "DATABASE_READ_URL" => Some(read.clone()),
        "AGGREGATOR_READ_REPLICA_MAX_LAG_MS" => Some("1000".into()),
        "AGGREGATOR_VENDORS" => Some(vendors_setting.clone()),
        "AGGREGATOR_API_ADDR" => Some("127.0.0.1:0".into()),
        "AGGREGATOR_LOG_DIR" => Some("none".into()),
        "AGGREGATOR_SYNC_INTERVAL_SECS" => Some("1".into()),
        _ => None,
    };
    let settings = Settings::parse(Vec::new(), env).expect("settings");
    let running = App::build(settings)
        .await
        .expect("app")
        .start(Roles {
            api: true,
            sync: true,
            ..Roles::NONE
        })
        .await
        .expect("started");
    let base = format!("http://{}", running.api_addr.expect("api"));
    let http = reqwest::Client::new();

    until_replica(&http, &base, "up", None).await;
    let listed = get_json(&http, &format!("{base}/api/orders")).await;
    assert!(
        listed["data"].is_object() || listed["data"].is_array(),
        "{listed}"
    );

    // Replay stops while the sync keeps writing: past the lag limit the replica is
    // bypassed, the system degraded but answering.
    replica.run(db.name(), "SELECT pg_wal_replay_pause()").await;
    until_replica(&http, &base, "bypassed", Some("degraded")).await;
    let product = get_json(&http, &format!("{base}/api/products/LAPTOP-001")).await;
    assert_eq!(product["success"], true, "the primary answers: {product}");

    replica
        .run(db.name(), "SELECT pg_wal_replay_resume()")
        .await;
    until_replica(&http, &base, "up", None).await;
    running.shutdown().await.expect("shutdown");
    drop(replica);
    db.finish().await;
}
