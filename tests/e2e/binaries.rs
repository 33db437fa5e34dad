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
        (
            vec!["dance"],
            ("AGGREGATOR_WORKERS", "2"),
            "invalid value 'dance'",
        ),
        (vec!["all"], ("AGGREGATOR_WORKERS", "lots"), "--workers"),
        (
            vec!["all"],
            ("AGGREGATOR_RETRY_DELAYS_MS", "5,1"),
            "--retry-delays",
        ),
        (
            vec!["--workers=many"],
            ("AGGREGATOR_WORKERS", "2"),
            "--workers",
        ),
    ] {
        let output = run(env!("CARGO_BIN_EXE_aggregator"), &args, &[env]).await;
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    for binary in [
        env!("CARGO_BIN_EXE_aggregator"),
        env!("CARGO_BIN_EXE_aggregator-api"),
    ] {
        let output = tokio::process::Command::new(binary)
            .env("AGGREGATOR_API_ADDR", "0.0.0.0:0")
            .env("AGGREGATOR_LOG_DIR", "none")
            .env("AGGREGATOR_VENDORS", "VendorA=http://127.0.0.1:9")
            .env_remove("AGGREGATOR_API_KEYS")
            .env_remove("DATABASE_URL")
            .env_remove("AMQP_URL")
            .env_remove("REDIS_URL")
            .output()
            .await
            .expect("runs");
        assert_eq!(output.status.code(), Some(1), "{binary}: protected mode");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("protected mode"), "{binary}: {stderr}");
        assert!(stderr.contains("AGGREGATOR_API_KEYS"), "{binary}: {stderr}");
    }
    let output = run(
        env!("CARGO_BIN_EXE_aggregator-api"),
        &[],
        &[
            ("AGGREGATOR_API_KEYS", "admin:short"),
            ("AGGREGATOR_LOG_DIR", "none"),
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(2), "a bad key list");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--api-keys") && !stderr.contains("short"),
        "named, never echoed: {stderr}"
    );
}

/// Runs `binary` with `args` and these variables set, to its end.
async fn run(binary: &str, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    tokio::process::Command::new(binary)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .await
        .expect("runs")
}

/// Every binary answers `--help` on stdout with exit 0 (naming the shared settings and
/// their variables), `--version` with its version, and an unknown flag with exit 2 on
/// stderr.
#[tokio::test]
async fn every_binary_answers_help_version_and_bad_flags() {
    for binary in [
        env!("CARGO_BIN_EXE_aggregator"),
        env!("CARGO_BIN_EXE_aggregator-api"),
        env!("CARGO_BIN_EXE_stock-sync"),
    ] {
        let help = run(binary, &["--help"], &[]).await;
        assert_eq!(help.status.code(), Some(0), "{binary} --help");
        let text = String::from_utf8_lossy(&help.stdout);
        for needle in [
            "--database-url",
            "DATABASE_URL",
            "--retry-delays",
            "AGGREGATOR_RETRY_DELAYS_MS",
            "--vendors",
            "--relay-batch",
        ] {
            assert!(
                text.contains(needle),
                "{binary} --help lacks {needle}:\n{text}"
            );
        }
        let version = run(binary, &["--version"], &[]).await;
        assert_eq!(version.status.code(), Some(0), "{binary} --version");
        assert!(
            String::from_utf8_lossy(&version.stdout).contains(env!("CARGO_PKG_VERSION")),
            "{binary} --version"
        );
        let bad = run(binary, &["--no-such-flag"], &[]).await;
        assert_eq!(bad.status.code(), Some(2), "{binary} --no-such-flag");
        assert!(bad.stdout.is_empty(), "{binary}: errors go to stderr");
        assert!(
            String::from_utf8_lossy(&bad.stderr).contains("--no-such-flag"),
            "{binary}"
        );
    }
}

/// Secrets in the environment never reach `--help` or an error, and an empty variable
/// counts as unset (as the hand-written parser had it).
#[tokio::test]
async fn secrets_stay_out_of_help_and_errors_and_empty_variables_are_unset() {
    let aggregator = env!("CARGO_BIN_EXE_aggregator");
    let help = run(
        aggregator,
        &["--help"],
        &[
            ("DATABASE_URL", "postgres://app:s3cret-db@db/orders"),
            ("AMQP_URL", "amqp://guest:s3cret-mq@mq/%2f"),
            ("AGGREGATOR_API_KEYS", "admin:s3cret-key-0123456789"),
        ],
    )
    .await;
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("DATABASE_URL"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");

    let bad = run(
        aggregator,
        &[],
        &[
            ("DATABASE_URL", "postgres//app:s3cret-db@db/orders"),
            ("AGGREGATOR_LOG_DIR", "none"),
        ],
    )
    .await;
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("--database-url") && stderr.contains("DATABASE_URL"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");

    let vendors = run(
        aggregator,
        &[],
        &[
            ("AGGREGATOR_VENDORS", "VendorA=http//user:s3cret-v@vendor:1"),
            ("AGGREGATOR_LOG_DIR", "none"),
        ],
    )
    .await;
    assert_eq!(vendors.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&vendors.stderr);
    assert!(stderr.contains("--vendors"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");

    // Empty variables are unset: in-memory backends, default workers; the run then stops
    // at the protected-mode check (exit 1), not at the settings (exit 2).
    let empty = run(
        aggregator,
        &[],
        &[
            ("DATABASE_URL", ""),
            ("AMQP_URL", ""),
            ("REDIS_URL", ""),
            ("AGGREGATOR_WORKERS", ""),
            ("AGGREGATOR_API_KEYS", ""),
            ("AGGREGATOR_API_ADDR", "0.0.0.0:0"),
            ("AGGREGATOR_VENDORS", "VendorA=http://127.0.0.1:9"),
            ("AGGREGATOR_LOG_DIR", "none"),
        ],
    )
    .await;
    let stderr = String::from_utf8_lossy(&empty.stderr);
    assert_eq!(empty.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("protected mode"), "{stderr}");
}
