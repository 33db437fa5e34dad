//! The `stock-sync` binary as an operator runs it.

use std::process::Output;

use aggregator_core::conformance::service_url;
use aggregator_core::domain::{QueueName, SyncRequest};
use aggregator_core::traits::OrderQueue;
use aggregator_postgres::testing::TestDatabase;
use aggregator_rabbitmq::{RabbitConfig, RabbitQueue};
use mock_vendors::Faults;

use super::support::{seed_vendors, vendor_list};

/// Runs `stock-sync` with `args` and only the given settings in its environment.
async fn stock_sync(args: &[&str], env: &[(&str, String)]) -> (i32, String, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_stock-sync"));
    command.args(args);
    // No log files unless a test asks for them.
    command.env("AGGREGATOR_LOG_DIR", "none");
    for name in [
        "DATABASE_URL",
        "AMQP_URL",
        "AGGREGATOR_VENDORS",
        "AGGREGATOR_QUEUE_PREFIX",
        "AGGREGATOR_LOG_FORMAT",
        "AGGREGATOR_LOG_KEEP_DAYS",
        "AGGREGATOR_SYNC_PROGRESS",
        "RUST_LOG",
    ] {
        command.env_remove(name);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().await.expect("stock-sync runs");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

#[tokio::test]
async fn all_vendor_and_aggregate_work_against_the_in_memory_store() {
    let (a, b) = seed_vendors().await;
    let env = [("AGGREGATOR_VENDORS", vendor_list(&[&a, &b]))];
    let (code, out, err) = stock_sync(&["all"], &env).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("VendorA: synced 10 SKU(s)"), "{out}");
    assert!(out.contains("VendorB: synced 10 SKU(s)"), "{out}");
    let (code, out, _) = stock_sync(&["vendor", "VendorB"], &env).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("VendorB: synced") && !out.contains("VendorA"),
        "{out}"
    );
    let (code, out, _) = stock_sync(&["aggregate"], &env).await;
    assert_eq!(code, 0, "{out}");
    let laptops =
        a.quantity("LAPTOP-a-001").expect("sold") + b.quantity("LAPTOP-b-001").expect("sold");
    assert!(
        out.contains(&format!("LAPTOP-001\tavailable {laptops}\t")),
        "{out}"
    );
    assert!(out.contains("10 product(s)"), "{out}");
}

#[tokio::test]
async fn stock_sync_logs_as_the_servers_do_with_its_console_lines_on_stderr() {
    let (a, b) = seed_vendors().await;
    b.set_faults(Faults {
        outage: true,
        ..Faults::default()
    });
    let logs = std::env::temp_dir().join(format!(
        "aggregator-stock-sync-logs-{}-{}",
        std::process::id(),
        uuid::Uuid::now_v7()
    ));
    // Ten days of old files, of which --log-keep-days 3 keeps the newest two and today's.
    std::fs::create_dir_all(&logs).expect("log directory");
    for day in 1..=10 {
        std::fs::write(logs.join(format!("combined.log.2026-01-{day:02}")), "old\n")
            .expect("old log");
    }
    let env = [
        ("AGGREGATOR_VENDORS", vendor_list(&[&a, &b])),
        ("AGGREGATOR_LOG_DIR", logs.display().to_string()),
        ("AGGREGATOR_LOG_FORMAT", "json".to_owned()),
        ("AGGREGATOR_LOG_KEEP_DAYS", "3".to_owned()),
    ];
    let (code, out, err) = stock_sync(&["all", "--progress", "off"], &env).await;
    assert_eq!(code, 1, "VendorB is down: {out}{err}");
    assert!(
        out.contains("VendorA: synced") && out.contains("VendorB: sync FAILED"),
        "{out}"
    );
    assert!(
        !out.contains("\"level\""),
        "no log line in the report:\n{out}"
    );
    let lines: Vec<serde_json::Value> = err
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let logged = |level: &str, message: &str| {
        lines
            .iter()
            .any(|l| l["level"] == level && l["fields"]["message"] == message)
    };
    assert!(logged("INFO", "stock sync applied"), "{err}");
    assert!(logged("WARN", "stock sync failed"), "{err}");
    let files: Vec<std::path::PathBuf> = std::fs::read_dir(&logs)
        .expect("the log directory")
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .starts_with("combined.log")
        })
        .map(|entry| entry.path())
        .collect();
    assert_eq!(files.len(), 3, "kept: {files:?}");
    let combined: String = files
        .iter()
        .map(|path| std::fs::read_to_string(path).unwrap_or_default())
        .collect();
    assert!(combined.contains("stock sync applied"), "{combined}");
    assert!(combined.contains("stock sync failed"), "{combined}");
    let _ = std::fs::remove_dir_all(&logs);
}

#[tokio::test]
async fn progress_shows_as_plain_lines_when_stderr_is_not_a_terminal() {
    let (a, b) = seed_vendors().await;
    let env = [("AGGREGATOR_VENDORS", vendor_list(&[&a, &b]))];
    let (code, out, err) =
        stock_sync(&["all", "--page-size", "4", "--sync-write-rows", "5"], &env).await;
    assert_eq!(code, 0, "{out}{err}");
    for vendor in ["VendorA", "VendorB"] {
        for needle in [
            format!("{vendor}: fetched 1/3 pages, 4 rows ("),
            format!("{vendor}: fetched 3/3 pages, 10 rows ("),
            format!("{vendor}: wrote 2/2 batches, 10 rows ("),
            format!("{vendor}: done: 3 pages, 10 rows written in "),
        ] {
            assert!(
                err.lines().any(|line| line.starts_with(&needle)),
                "{needle} missing from:\n{err}"
            );
        }
    }
    assert!(!out.contains("fetched"), "progress stays off stdout: {out}");
    let (code, out, err) = stock_sync(&["all", "--progress", "off"], &env).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(!err.contains("fetched"), "{err}");
}

#[tokio::test]
async fn unknown_commands_and_vendors_exit_2_with_a_clear_message() {
    let (a, b) = seed_vendors().await;
    let env = [("AGGREGATOR_VENDORS", vendor_list(&[&a, &b]))];
    for (args, needle) in [
        (
            vec!["vendor", "VendorZ"],
            "unknown vendor VendorZ; configured vendors: VendorA, VendorB",
        ),
        (vec!["resync"], "unknown command"),
        (vec!["--queue"], "AMQP_URL"),
    ] {
        let (code, out, err) = stock_sync(&args, &env).await;
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let (code, _, err) = stock_sync(&[], &[("AGGREGATOR_VENDORS", "VendorA".into())]).await;
    assert_eq!(code, 2);
    assert!(err.contains("--vendors"), "{err}");
}

#[tokio::test]
async fn a_vendor_that_is_down_fails_its_sync_and_the_exit_code_says_so() {
    let (a, b) = seed_vendors().await;
    a.set_faults(Faults {
        outage: true,
        ..Faults::default()
    });
    let env = [("AGGREGATOR_VENDORS", vendor_list(&[&a, &b]))];
    let (code, out, _) = stock_sync(&["all"], &env).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("VendorA: sync FAILED: vendor VendorA"),
        "{out}"
    );
    assert!(out.contains("503"), "{out}");
    assert!(
        out.contains("VendorB: synced 10 SKU(s)"),
        "the other vendor still syncs: {out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_syncs_into_postgres_and_aggregate_reads_it_back() {
    let Some(db) = TestDatabase::create(4).await else {
        return;
    };
    let (a, b) = seed_vendors().await;
    let env = [
        ("AGGREGATOR_VENDORS", vendor_list(&[&a, &b])),
        ("DATABASE_URL", db.config().url.expose().to_owned()),
    ];
    let (code, out, err) = stock_sync(&["all"], &env).await;
    assert_eq!(code, 0, "{out}{err}");
    let (reported,): (i64,) = sqlx::query_as(
        "SELECT reported FROM vendor_stock WHERE vendor_id = 'VendorA' AND sku = 'LAPTOP-a-001'",
    )
    .fetch_one(db.store.pool())
    .await
    .expect("row");
    assert_eq!(Some(reported), a.quantity("LAPTOP-a-001"));
    a.set_faults(Faults {
        outage: true,
        ..Faults::default()
    });
    let (code, out, _) = stock_sync(&["aggregate"], &env).await;
    assert_eq!(code, 0, "aggregate reads the store only: {out}");
    let laptops =
        a.quantity("LAPTOP-a-001").expect("sold") + b.quantity("LAPTOP-b-001").expect("sold");
    assert!(
        out.contains(&format!("LAPTOP-001\tavailable {laptops}\t")),
        "{out}"
    );
    let (code, out, _) = stock_sync(&["vendor", "VendorA"], &env).await;
    assert_eq!(code, 1, "{out}");
    let (health, failures): (String, i32) =
        sqlx::query_as("SELECT health, consecutive_failures FROM vendors WHERE id = 'VendorA'")
            .fetch_one(db.store.pool())
            .await
            .expect("vendor");
    assert_eq!((health.as_str(), failures), ("degraded", 1));
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_mode_puts_one_request_per_vendor_on_stock_sync_queue() {
    let Some(amqp_url) = service_url("AMQP_URL") else {
        return;
    };
    let (a, b) = seed_vendors().await;
    let prefix = format!("test.{}.", uuid::Uuid::now_v7().simple());
    let env = [
        ("AGGREGATOR_VENDORS", vendor_list(&[&a, &b])),
        ("AMQP_URL", amqp_url.clone()),
        ("AGGREGATOR_QUEUE_PREFIX", prefix.clone()),
    ];
    let (code, out, err) = stock_sync(&["all", "--queue"], &env).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("VendorA: sync request queued"), "{out}");
    let mut config = RabbitConfig::new(amqp_url);
    config.prefix = prefix;
    let queue = RabbitQueue::connect(config).await.expect("connect");
    let mut subscription = queue
        .subscribe(QueueName::StockSync, 10)
        .await
        .expect("subscribe");
    let mut vendors = Vec::new();
    for _ in 0..2 {
        let delivery =
            tokio::time::timeout(std::time::Duration::from_secs(10), subscription.next())
                .await
                .expect("in time")
                .expect("delivery");
        let request: SyncRequest = delivery.message.decode().expect("decodes");
        vendors.push(request.vendor.to_string());
        delivery.ack().await.expect("ack");
    }
    vendors.sort();
    assert_eq!(vendors, ["VendorA", "VendorB"]);
    drop(subscription);
    queue.delete_topology().await.expect("cleanup");
}
