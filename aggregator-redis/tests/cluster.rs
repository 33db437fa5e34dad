//! RedisCache on a Redis Cluster: three local nodes that `scripts/redis-cluster.sh`
//! starts on spare ports for this test and stops at its end. Runs where the Redis
//! tests run (`REDIS_URL` set, or `AGGREGATOR_REQUIRE_SERVICES=1`), since it needs the
//! same `redis-server`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use aggregator_core::conformance::{self, service_url};
use aggregator_core::traits::{Cache, RateLimit};
use aggregator_redis::{RedisCache, RedisConfig};
use futures_util::future::join_all;

/// The three nodes, stopped (by the PIDs the script recorded) when dropped.
struct LocalCluster {
    dir: PathBuf,
    ports: [u16; 3],
}

impl LocalCluster {
    fn script() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/redis-cluster.sh")
    }

    fn start() -> Self {
        let base = free_ports();
        let dir = std::env::temp_dir().join(format!("redis-cluster-{}-{base}", std::process::id()));
        let started = Command::new("bash")
            .arg(Self::script())
            .arg("start")
            .arg(&dir)
            .arg(base.to_string())
            .status()
            .expect("run scripts/redis-cluster.sh");
        let cluster = Self {
            dir,
            ports: [base, base + 1, base + 2],
        };
        assert!(started.success(), "the local cluster did not start");
        cluster
    }

    fn url(&self) -> String {
        self.ports
            .iter()
            .map(|port| format!("redis://127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// How many keys each node holds.
    fn keys_per_node(&self) -> Vec<u64> {
        self.ports
            .iter()
            .map(|port| {
                let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("url");
                let mut connection = client.get_connection().expect("node answers");
                redis::cmd("DBSIZE").query(&mut connection).expect("dbsize")
            })
            .collect()
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(Self::script())
            .arg("stop")
            .arg(&self.dir)
            .status();
    }
}

/// A base port whose three ports, and their cluster-bus ports (+10000), are free now,
/// and that no other test of this process has been given (tests run at once).
fn free_ports() -> u16 {
    static GIVEN: AtomicU16 = AtomicU16::new(0);
    let start = 20_000
        + u16::try_from(std::process::id() % 2_000).unwrap_or(0) * 10
        + GIVEN.fetch_add(100, Ordering::SeqCst);
    (start..45_000)
        .step_by(7)
        .find(|base| {
            (0..3).all(|offset| {
                TcpListener::bind(("127.0.0.1", base + offset)).is_ok()
                    && TcpListener::bind(("127.0.0.1", base + offset + 10_000)).is_ok()
            })
        })
        .expect("three free ports")
}

fn cache(cluster: &LocalCluster) -> RedisCache {
    let mut config = RedisConfig::new(cluster.url());
    config.cluster = true;
    config.key_prefix = format!("test:{}:", uuid::Uuid::now_v7().simple());
    RedisCache::new(config).expect("valid config")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_suite_passes_on_a_three_node_cluster_and_keys_spread_over_it() {
    if service_url("REDIS_URL").is_none() {
        return;
    }
    let cluster = LocalCluster::start();
    let cache = cache(&cluster);
    cache.ping().await.expect("the cluster answers");
    conformance::cache_suite(&cache).await;
    let shared: Arc<dyn Cache> = Arc::new(cache);
    conformance::rate_limit_is_exact_under_concurrency(&shared).await;

    // Keys land on every node, and one call deletes keys of many slots.
    let keys: Vec<String> = (0..60)
        .map(|n| format!("availability:product:P{n}"))
        .collect();
    for key in &keys {
        shared
            .set(key, b"1", Duration::from_secs(60))
            .await
            .expect("set");
    }
    let spread = cluster.keys_per_node();
    assert!(
        spread.iter().all(|&n| n > 0),
        "every node holds some keys: {spread:?}"
    );
    shared
        .delete_many(&keys)
        .await
        .expect("delete across slots");
    for key in &keys {
        assert_eq!(shared.get(key).await.expect("get"), None, "{key} deleted");
    }

    // The rate limit is one key: exact across callers on a cluster too.
    let limit = RateLimit {
        max_requests: 10,
        window: Duration::from_secs(5),
    };
    let second = self::cache(&cluster);
    let decisions = join_all((0..30).map(|_| second.rate_limit("api-key-1", limit))).await;
    let allowed = decisions
        .into_iter()
        .filter(|d| d.as_ref().expect("decision").allowed)
        .count();
    assert_eq!(allowed, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_that_is_gone_fails_fast_and_retryably() {
    if service_url("REDIS_URL").is_none() {
        return;
    }
    let cluster = LocalCluster::start();
    let cache = cache(&cluster);
    cache
        .set("k", b"v", Duration::from_secs(60))
        .await
        .expect("set");
    drop(cluster);
    let started = std::time::Instant::now();
    let failed = cache.get("k").await;
    assert!(
        matches!(failed, Err(ref e) if e.is_retryable()),
        "a gone cluster is a retryable Unavailable: {failed:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "bounded by the timeout: {:?}",
        started.elapsed()
    );
}

#[test]
fn a_cluster_url_list_without_nodes_is_refused() {
    let mut config = RedisConfig::new(" , ");
    config.cluster = true;
    let refused = RedisCache::new(config);
    assert!(refused.is_err());
}
