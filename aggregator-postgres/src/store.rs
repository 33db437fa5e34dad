//! [`PostgresStockStore`]: the store of record on PostgreSQL.

use std::fmt;

use aggregator_core::{Error, Result};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::config::PostgresConfig;
use crate::error::map;

/// The migrations in `aggregator-postgres/migrations`, built into the binary.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A [`StockStore`](aggregator_core::StockStore) on PostgreSQL: every role, each in the
/// module of its tables.
///
/// Every operation that changes stock runs in one READ COMMITTED transaction whose
/// reservations are conditional updates (see the crate documentation for why that is
/// enough). Deadlock and serialization victims are retried inside the store a few times
/// before a retryable `Unavailable` reaches the caller.
#[derive(Clone)]
pub struct PostgresStockStore {
    pub(crate) pool: PgPool,
}

impl fmt::Debug for PostgresStockStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStockStore")
            .field("connections", &self.pool.size())
            .field("idle", &self.pool.num_idle())
            .finish()
    }
}

impl PostgresStockStore {
    /// Opens a pool as `config` says. Does not apply migrations; call
    /// [`PostgresStockStore::migrate`] for that.
    pub async fn connect(config: &PostgresConfig) -> Result<Self> {
        let pool = pool_options(config)
            .connect_with(connect_options(config)?)
            .await
            .map_err(map)?;
        Ok(Self { pool })
    }

    /// A store over an existing pool.
    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The pool, for health checks and shutdown.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies every migration not yet applied; safe to call from several processes.
    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| Error::permanent("postgres", format!("migration failed: {e}")))
    }

    /// Whether a trivial query answers, for `/health`.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query_scalar!("SELECT 1 AS \"one!\"")
            .fetch_one(&self.pool)
            .await
            .map_err(map)?;
        Ok(())
    }
}

/// How every connection of ours is opened: `config`'s URL with its statement timeout and
/// generic plans.
pub(crate) fn connect_options(config: &PostgresConfig) -> Result<PgConnectOptions> {
    let options: PgConnectOptions = config
        .url
        .expose()
        .parse()
        .map_err(|_| Error::invalid("databaseUrl", "is not a valid postgres:// URL"))?;
    let timeout_ms = config.statement_timeout.as_millis().to_string();
    // Every statement here looks rows up by key, so one generic plan per prepared
    // statement serves all parameters; re-planning each execution (PostgreSQL's
    // default for these statements) cost half the placement throughput.
    Ok(options.options([
        ("statement_timeout", timeout_ms.as_str()),
        ("plan_cache_mode", "force_generic_plan"),
    ]))
}

/// The pool's limits from `config`.
pub(crate) fn pool_options(config: &PostgresConfig) -> PgPoolOptions {
    // No ping before every acquire: it costs a round trip per transaction, and a
    // connection that died is reported as a retryable error anyway.
    PgPoolOptions::new()
        .test_before_acquire(false)
        .max_connections(config.max_connections)
        .acquire_timeout(config.acquire_timeout)
}
