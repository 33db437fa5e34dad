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
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
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

    /// Closes the pool and drops the database.
    pub async fn finish(self) {
        self.store.pool().close().await;
        let mut conn = PgConnection::connect_with(&self.admin)
            .await
            .expect("connect");
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        ))
        .execute(&mut conn)
        .await
        .expect("drop test database");
    }
}
