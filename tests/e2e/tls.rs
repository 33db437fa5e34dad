//! `rediss://`: the API binary reaches a Redis that speaks only TLS, verifying its
//! certificate against the trust store (`SSL_CERT_FILE`), and refuses one it cannot
//! verify. The test makes its own CA and server certificate with `openssl` and starts
//! its own `redis-server` on a spare port; it stops only that process.
//!
//! Without `redis-server` or `openssl` on the PATH it says so and passes, unless
//! `AGGREGATOR_REQUIRE_SERVICES=1` (CI), when that fails it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use super::support::eventually;

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn openssl(dir: &Path, args: &[&str]) {
    let status = tokio::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .expect("openssl runs");
    assert!(status.success(), "openssl {args:?}");
}

/// A CA, and a certificate it signed for 127.0.0.1 and localhost.
async fn certificates(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=aggregator test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ],
    )
    .await;
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    )
    .await;
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .expect("extensions");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.crt",
        ],
    )
    .await;
}

/// The cache's status in `/health` of an API using `redis_url`, trusting `trust`.
async fn cache_status(redis_url: &str, trust: Option<&PathBuf>) -> (String, String) {
    let port = free_port();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_aggregator-api"));
    command
        .env_remove("DATABASE_URL")
        .env_remove("AMQP_URL")
        .env("REDIS_URL", redis_url)
        .env("AGGREGATOR_API_ADDR", format!("127.0.0.1:{port}"))
        .env("AGGREGATOR_VENDORS", "VendorA=http://127.0.0.1:9")
        .env("AGGREGATOR_LOG_DIR", "none")
        .env("RUST_LOG", "error")
        .env_remove("SSL_CERT_DIR")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    match trust {
        Some(file) => command.env("SSL_CERT_FILE", file),
        None => command.env_remove("SSL_CERT_FILE"),
    };
    let mut api = command.spawn().expect("the API starts");
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let health: Value = eventually("the API answers", Duration::from_secs(30), || async {
        let answer = http.get(format!("{base}/health")).send().await.ok()?;
        answer.json().await.ok()
    })
    .await;
    let _ = api.kill().await;
    let cache = &health["components"]["cache"];
    (
        cache["status"].as_str().unwrap_or_default().to_owned(),
        cache["detail"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn the_api_reaches_a_tls_only_redis_it_can_verify_and_refuses_one_it_cannot() {
    if !(on_path("redis-server") && on_path("openssl")) {
        aggregator_core::conformance::skip_unless_required(
            aggregator_core::conformance::REQUIRE_SERVICES,
            "this test needs redis-server and openssl on the PATH",
        );
        return;
    }
    let dir = std::env::temp_dir().join(format!(
        "aggregator-tls-{}-{}",
        std::process::id(),
        uuid::Uuid::now_v7().simple()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    certificates(&dir).await;
    let port = free_port();
    let mut redis = tokio::process::Command::new("redis-server")
        .args(["--port", "0", "--tls-port", &port.to_string()])
        .args([
            "--tls-cert-file",
            "server.crt",
            "--tls-key-file",
            "server.key",
        ])
        .args(["--tls-ca-cert-file", "ca.crt", "--tls-auth-clients", "no"])
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-server starts");
    eventually("redis listens", Duration::from_secs(10), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    let url = format!("rediss://127.0.0.1:{port}");
    let trusted = cache_status(&url, Some(&dir.join("ca.crt"))).await;
    let untrusted = cache_status(&url, None).await;
    let plain = cache_status(&format!("redis://127.0.0.1:{port}"), None).await;
    let _ = redis.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        trusted.0, "up",
        "rediss:// with the CA trusted: {trusted:?}"
    );
    assert_eq!(
        untrusted.0, "down",
        "a certificate nobody vouches for is refused: {untrusted:?}"
    );
    assert_eq!(plain.0, "down", "no plain text to a TLS port: {plain:?}");
}
