//! [`PostgresStockStore`]: the store of record on PostgreSQL.

use std::fmt;

use aggregator_core::{Error, Result};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};

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
/// generic plans, and without TLS to a server on this host unless the URL (or
/// `PGSSLMODE`) names an `sslmode`.
pub(crate) fn connect_options(config: &PostgresConfig) -> Result<PgConnectOptions> {
    let options: PgConnectOptions = config
        .url
        .expose()
        .parse()
        .map_err(|_| Error::invalid("databaseUrl", "is not a valid postgres:// URL"))?;
    let options = if tls_is_pointless(config.url.expose(), std::env::var_os("PGSSLMODE").is_some())
    {
        options.ssl_mode(PgSslMode::Disable)
    } else {
        options
    };
    let timeout_ms = config.statement_timeout.as_millis().to_string();
    // Every statement here looks rows up by key, so one generic plan per prepared
    // statement serves all parameters; re-planning each execution (PostgreSQL's
    // default for these statements) cost half the placement throughput.
    Ok(options.options([
        ("statement_timeout", timeout_ms.as_str()),
        ("plan_cache_mode", "force_generic_plan"),
    ]))
}

/// True when `url` names a server on this host (a loopback address, `localhost`, or a
/// Unix socket) and no `sslmode`, and `PGSSLMODE` is not set (`sslmode_in_env`): TLS there
/// protects nothing (the bytes never leave the host) and cost PostgreSQL about a seventh
/// of its CPU per order, so such connections go without it; naming `sslmode` keeps
/// whatever it says.
pub(crate) fn tls_is_pointless(url: &str, sslmode_in_env: bool) -> bool {
    if sslmode_in_env {
        return false;
    }
    let (address, query) = url.split_once('?').unwrap_or((url, ""));
    let named = query
        .split('&')
        .any(|pair| pair.split('=').next() == Some("sslmode"));
    if named {
        return false;
    }
    let socket = query
        .split('&')
        .any(|pair| pair.split('=').next() == Some("host") && pair.contains("=/"));
    let authority = address
        .split_once("://")
        .map_or(address, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or("");
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = match host_port.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or(""),
        None => host_port.split(':').next().unwrap_or(""),
    };
    socket
        || host.is_empty()
        || host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
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

#[cfg(test)]
mod tests {
    use super::tls_is_pointless;

    #[test]
    fn tls_is_left_out_only_on_this_host_and_only_when_nobody_asked_for_it() {
        for here in [
            "postgres://postgres@127.0.0.1:5432/postgres",
            "postgres://u:p@localhost/db",
            "postgres://u:p@[::1]:5432/db",
            "postgres://127.0.0.2/db",
            "postgres:///db?host=/var/run/postgresql",
            "postgres:///db",
        ] {
            assert!(tls_is_pointless(here, false), "{here}");
            assert!(!tls_is_pointless(here, true), "PGSSLMODE set: {here}");
        }
        for kept in [
            "postgres://postgres@127.0.0.1:5432/postgres?sslmode=require",
            "postgres://u:p@localhost/db?application_name=x&sslmode=prefer",
            "postgres://u:p@db.internal:5432/db",
            "postgres://u:p@10.0.0.5/db",
            "postgres://u:p@[2001:db8::1]:5432/db",
        ] {
            assert!(!tls_is_pointless(kept, false), "{kept}");
        }
    }
}
