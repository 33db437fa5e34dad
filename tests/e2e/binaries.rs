//! The `aggregator` binary as an operator runs it: starts, logs to files, and stops
//! cleanly on SIGTERM.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test]
async fn sigterm_stops_every_part_cleanly_with_exit_0_and_logs_in_files() {
    let logs =
        std::env::temp_dir().join(format!("aggregator-logs-{}", uuid::Uuid::now_v7().simple()));
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_aggregator"))
        .arg("all")
        .env_remove("DATABASE_URL")
        .env_remove("AMQP_URL")
        .env_remove("REDIS_URL")
        .env("AGGREGATOR_API_ADDR", "127.0.0.1:0")
        .env("AGGREGATOR_VENDORS", "VendorA=http://127.0.0.1:9")
        .env("AGGREGATOR_LOG_DIR", &logs)
        .env("AGGREGATOR_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .spawn()
        .expect("starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let started = tokio::time::timeout(Duration::from_secs(20), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("\"started\"") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(started, Ok(true), "the binary said it started");
    let pid = child.id().expect("pid").to_string();
    let killed = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill");
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("stopped within the grace period")
        .expect("status");
    assert_eq!(status.code(), Some(0), "a clean exit");
    let mut combined = String::new();
    for entry in std::fs::read_dir(&logs).expect("log dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        if name.starts_with("combined.log") {
            combined.push_str(&std::fs::read_to_string(&path).expect("log"));
        }
        if name.starts_with("error.log") {
            let errors = std::fs::read_to_string(&path).expect("log");
            assert!(errors.lines().all(|l| l.contains("\"ERROR\"")), "{errors}");
        }
    }
    for part in [
        "api",
        "worker 0",
        "worker 1",
        "outbox relay",
        "sweeper",
        "sync schedule",
        "sync consumer",
    ] {
        assert!(
            combined.contains(&format!("\"part\":\"{part}\"")),
            "{part} did not report stopping:\n{combined}"
        );
    }
    let _ = std::fs::remove_dir_all(&logs);
}

#[tokio::test]
async fn bad_settings_and_unknown_parts_exit_2_with_the_reason() {
    for (args, env, needle) in [
        (vec!["dance"], ("AGGREGATOR_WORKERS", "2"), "unknown part"),
        (
            vec!["all"],
            ("AGGREGATOR_WORKERS", "lots"),
            "AGGREGATOR_WORKERS",
        ),
        (
            vec!["all"],
            ("AGGREGATOR_RETRY_DELAYS_MS", "5,1"),
            "AGGREGATOR_RETRY_DELAYS_MS",
        ),
    ] {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_aggregator"))
            .args(&args)
            .env(env.0, env.1)
            .output()
            .await
            .expect("runs");
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_aggregator"))
        .env("AGGREGATOR_API_ADDR", "0.0.0.0:0")
        .env("AGGREGATOR_LOG_DIR", "")
        .env_remove("AGGREGATOR_API_KEYS")
        .env_remove("DATABASE_URL")
        .env_remove("AMQP_URL")
        .env_remove("REDIS_URL")
        .output()
        .await
        .expect("runs");
    assert_eq!(output.status.code(), Some(1), "protected mode");
    assert!(String::from_utf8_lossy(&output.stderr).contains("protected mode"));
}
