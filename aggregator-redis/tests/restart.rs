//! Redis shut down and started again in the middle of a test: the cache fails fast
//! while it is down and recovers by itself. Its own test binary, so no other Redis test
//! runs meanwhile. Needs `REDIS_URL` pointing at the local server on port 6379 (the one
//! this machine starts as in `.ci/run`).

use std::process::Command;
use std::time::{Duration, Instant};

use aggregator_core::conformance::service_url;
use aggregator_core::traits::Cache;
use aggregator_redis::{RedisCache, RedisConfig};

/// Starts the local Redis again however the test ends.
struct RestartOnDrop;

impl Drop for RestartOnDrop {
    fn drop(&mut self) {
        start_redis();
    }
}

fn start_redis() {
    if Command::new("redis-cli")
        .args(["-p", "6379", "ping"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return;
    }
    let _ = std::fs::create_dir_all("/var/lib/redis");
    let _ = std::fs::create_dir_all("/var/log/redis");
    let status = Command::new("redis-server")
        .args([
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "-::1",
            "--port",
            "6379",
        ])
        .args([
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            "/var/lib/redis",
        ])
        .args(["--logfile", "/var/log/redis/ci.log"])
        .status()
        .expect("redis-server runs");
    assert!(status.success(), "redis-server started");
    for _ in 0..100 {
        if Command::new("redis-cli")
            .args(["-p", "6379", "ping"])
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("redis did not come back on port 6379");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_recovers_after_a_redis_restart() {
    let Some(url) = service_url("REDIS_URL") else {
        return;
    };
    if !url.contains("127.0.0.1:6379") && !url.contains("localhost:6379") {
        aggregator_core::conformance::skip_unless_required(
            aggregator_core::conformance::REQUIRE_SERVICES,
            "REDIS_URL is not the local server on port 6379, which this test restarts",
        );
        return;
    }
    let mut config = RedisConfig::new(url);
    config.key_prefix = format!("test:{}:", uuid::Uuid::now_v7().simple());
    config.timeout = Duration::from_millis(200);
    config.reconnect_after = Duration::from_millis(200);
    let cache = RedisCache::new(config).expect("config");
    cache
        .set("before", b"1", Duration::from_secs(60))
        .await
        .expect("works before");

    let _restart = RestartOnDrop;
    let shutdown = Command::new("redis-cli")
        .args(["-p", "6379", "shutdown", "nosave"])
        .output()
        .expect("redis-cli runs");
    assert!(
        !Command::new("redis-cli")
            .args(["-p", "6379", "ping"])
            .output()
            .is_ok_and(|o| o.status.success()),
        "redis is down: {shutdown:?}"
    );

    // The first call finds Redis gone (within the timeout); the next ones, until the
    // next connection attempt is due, fail at once.
    let first = cache.get("before").await.expect_err("down");
    assert!(first.is_retryable(), "{first:?}");
    let started = Instant::now();
    assert!(cache.get("before").await.is_err());
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "a known-down Redis cost {:?}",
        started.elapsed()
    );
    for _ in 0..5 {
        let started = Instant::now();
        let error = cache.get("before").await.expect_err("down");
        assert!(error.is_retryable(), "{error:?}");
        assert!(cache.ping().await.is_err());
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "failing took {:?}",
            started.elapsed()
        );
    }

    start_redis();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if cache
            .set("after", b"2", Duration::from_secs(60))
            .await
            .is_ok()
        {
            break;
        }
        assert!(Instant::now() < deadline, "the cache did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        cache.get("after").await.expect("works after"),
        Some(b"2".to_vec())
    );
    cache.ping().await.expect("ping after");
}
