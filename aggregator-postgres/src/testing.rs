//! Test support (feature `testing`): a fresh database per test, dropped at the end.
//!
//! Meant for tests and benchmarks only: every failure panics with what went wrong.

use std::time::Duration;

use aggregator_core::conformance::service_url;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

use crate::{PostgresConfig, PostgresStockStore};

/// A database named `agg_test_<random>` with the schema applied, on the server that
/// `DATABASE_URL` names.
#[derive(Debug)]
pub struct TestDatabase {
    admin: PgConnectOptions,
    name: String,
    config: PostgresConfig,
    /// A store on the new database.
    pub store: PostgresStockStore,
}

impl TestDatabase {
    /// A new database and a store on it with a pool of `connections`; `None` (after one
    /// printed line) when `DATABASE_URL` is not set, a panic when it is required
    /// (`AGGREGATOR_REQUIRE_SERVICES=1`) or unreachable.
    pub async fn create(connections: u32) -> Option<Self> {
        Self::create_with(connections, Duration::from_secs(30)).await
    }

    /// As [`TestDatabase::create`], with the pool's acquire timeout.
    pub async fn create_with(connections: u32, acquire_timeout: Duration) -> Option<Self> {
        let url = service_url("DATABASE_URL")?;
        let admin: PgConnectOptions = url.parse().expect("DATABASE_URL is a postgres URL");
        let name = format!("agg_test_{}", uuid::Uuid::now_v7().simple());
        let mut conn = PgConnection::connect_with(&admin)
            .await
            .expect("connect to DATABASE_URL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .expect("create test database");
        conn.close().await.expect("close");
        let mut config = PostgresConfig::new(url).with_database(&name);
        config.max_connections = connections;
        config.acquire_timeout = acquire_timeout;
        let store = PostgresStockStore::connect(&config)
            .await
            .expect("connect to test database");
        store.migrate().await.expect("migrate");
        Some(Self {
            admin,
            name,
            config,
            store,
        })
    }

    /// The settings of the test database (its URL, for other processes).
    pub fn config(&self) -> &PostgresConfig {
        &self.config
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Closes the pool and drops the database.
    pub async fn finish(self) {
        self.store.pool().close().await;
        let mut conn = PgConnection::connect_with(&self.admin)
            .await
            .expect("connect");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        )))
        .execute(&mut conn)
        .await
        .expect("drop test database");
    }
}

/// A hot standby of the local server (127.0.0.1:5432), made with pg_basebackup by
/// `scripts/pg-replica.sh` on a spare port; stopped (by its PID) and deleted when
/// dropped. Every database of the server, test databases included, is on it.
#[derive(Debug)]
pub struct LocalReplica {
    dir: std::path::PathBuf,
    port: u16,
}

impl LocalReplica {
    fn script() -> std::path::PathBuf {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/pg-replica.sh")
    }

    /// Copies the local server and starts the copy as a standby.
    ///
    /// `None`, after one line on standard error naming what is missing, when this host
    /// cannot make a replica (no server binaries, or no replication connection allowed
    /// from 127.0.0.1 in pg_hba.conf): the test skips.
    ///
    /// # Panics
    ///
    /// When the replica does not start for another reason, or for a missing one while
    /// `AGGREGATOR_REQUIRE_SERVICES=1` (CI provides what it needs).
    pub fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a spare port")
            .port();
        let dir = std::env::temp_dir().join(format!("pg-replica-{}-{port}", std::process::id()));
        let output = std::process::Command::new("bash")
            .arg(Self::script())
            .arg("start")
            .arg(&dir)
            .arg(port.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("run scripts/pg-replica.sh");
        let said = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        // The script exits with 3 when the host lacks what a replica needs.
        if output.status.code() == Some(3) {
            let _ = std::fs::remove_dir_all(&dir);
            let first = said.lines().next().unwrap_or("pg-replica.sh exited with 3");
            aggregator_core::conformance::skip_unless_required(
                aggregator_core::conformance::REQUIRE_SERVICES,
                &format!("no replica on this host: {first}"),
            );
            return None;
        }
        let replica = Self { dir, port };
        assert!(output.status.success(), "the replica did not start: {said}");
        Some(replica)
    }

    /// The URL of `database` on the replica.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Runs `statement` on the replica, in `database`.
    pub async fn run(&self, database: &str, statement: &str) {
        let mut connection = PgConnection::connect(&self.url(database))
            .await
            .expect("replica answers");
        sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
            .execute(&mut connection)
            .await
            .expect(statement);
    }
}

impl Drop for LocalReplica {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash")
            .arg(Self::script())
            .arg("stop")
            .arg(&self.dir)
            .status();
    }
}
