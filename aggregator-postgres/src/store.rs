//! [`PostgresStockStore`]: the store of record on PostgreSQL.

use std::fmt;

use aggregator_core::domain::{
    HealthPolicy, Hold, HoldId, MessageId, Order, OrderId, OutboxMessage, ProductId,
    SnapshotOutcome, SnapshotRow, Transition, Vendor, VendorId, VendorSku, VendorStock,
};
use aggregator_core::traits::{
    ExpiredBatch, HoldConversion, HoldPlacement, OrderPlacement, OrderQuery, Page, Placed, Reroute,
    StockStore,
};
use aggregator_core::{Error, Result};
use async_trait::async_trait;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use time::{Duration, OffsetDateTime};

use crate::config::PostgresConfig;
use crate::error::map;
use crate::{catalog, holds, orders, outbox};

/// The migrations in `aggregator-postgres/migrations`, built into the binary.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A [`StockStore`] on PostgreSQL.
///
/// Every operation that changes stock runs in one READ COMMITTED transaction whose
/// reservations are conditional updates (see the crate documentation for why that is
/// enough). Deadlock and serialization victims are retried inside the store a few times
/// before a retryable `Unavailable` reaches the caller.
#[derive(Clone)]
pub struct PostgresStockStore {
    pool: PgPool,
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
        let options: PgConnectOptions = config
            .url
            .parse()
            .map_err(|_| Error::invalid("databaseUrl", "is not a valid postgres:// URL"))?;
        let timeout_ms = config.statement_timeout.as_millis().to_string();
        // Every statement here looks rows up by key, so one generic plan per prepared
        // statement serves all parameters; re-planning each execution (PostgreSQL's
        // default for these statements) cost half the placement throughput.
        let options = options.options([
            ("statement_timeout", timeout_ms.as_str()),
            ("plan_cache_mode", "force_generic_plan"),
        ]);
        // No ping before every acquire: it costs a round trip per transaction, and a
        // connection that died is reported as a retryable error anyway.
        let pool = PgPoolOptions::new()
            .test_before_acquire(false)
            .max_connections(config.max_connections)
            .acquire_timeout(config.acquire_timeout)
            .connect_with(options)
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

#[async_trait]
impl StockStore for PostgresStockStore {
    async fn upsert_vendor(&self, vendor: &Vendor) -> Result<()> {
        catalog::upsert_vendor(&self.pool, vendor).await
    }

    async fn vendors(&self) -> Result<Vec<Vendor>> {
        catalog::vendors(&self.pool).await
    }

    async fn apply_snapshot(
        &self,
        vendor: &VendorId,
        rows: &[SnapshotRow],
        margin: Duration,
    ) -> Result<SnapshotOutcome> {
        catalog::apply_snapshot(&self.pool, vendor, rows, margin).await
    }

    async fn complete_snapshot(
        &self,
        vendor: &VendorId,
        listed: &[VendorSku],
        as_of: OffsetDateTime,
        at: OffsetDateTime,
        margin: Duration,
    ) -> Result<Vendor> {
        catalog::complete_snapshot(&self.pool, vendor, listed, as_of, at, margin).await
    }

    async fn record_sync_failure(
        &self,
        vendor: &VendorId,
        reason: &str,
        policy: HealthPolicy,
    ) -> Result<Vendor> {
        catalog::record_sync_failure(&self.pool, vendor, reason, policy).await
    }

    async fn stock_for_product(&self, product: &ProductId) -> Result<Vec<VendorStock>> {
        catalog::stock_for_product(&self.pool, product).await
    }

    async fn stock_for_sku(&self, sku: &VendorSku) -> Result<Vec<VendorStock>> {
        catalog::stock_for_sku(&self.pool, sku).await
    }

    async fn products(&self, offset: u64, limit: u32) -> Result<Page<ProductId>> {
        catalog::products(&self.pool, offset, limit).await
    }

    async fn place_order(&self, placement: OrderPlacement) -> Result<Placed> {
        orders::place_order(&self.pool, placement).await
    }

    async fn order(&self, id: OrderId) -> Result<Order> {
        orders::order(&self.pool, id).await
    }

    async fn orders(&self, query: &OrderQuery) -> Result<Page<Order>> {
        orders::orders(&self.pool, query).await
    }

    async fn transition(&self, transition: &Transition, outbox: &[OutboxMessage]) -> Result<Order> {
        orders::transition(&self.pool, transition, outbox).await
    }

    async fn reroute(&self, reroute: &Reroute) -> Result<Order> {
        orders::reroute(&self.pool, reroute).await
    }

    async fn vendor_cancellation_done(&self, vendor: &VendorId, key: &str) -> Result<()> {
        orders::vendor_cancellation_done(&self.pool, vendor, key).await
    }

    async fn place_hold(&self, placement: HoldPlacement) -> Result<Hold> {
        holds::place_hold(&self.pool, placement).await
    }

    async fn hold(&self, id: HoldId) -> Result<Hold> {
        holds::hold(&self.pool, id).await
    }

    async fn extend_hold(
        &self,
        id: HoldId,
        expires_at: OffsetDateTime,
        at: OffsetDateTime,
    ) -> Result<Hold> {
        holds::extend_hold(&self.pool, id, expires_at, at).await
    }

    async fn release_hold(&self, id: HoldId, _at: OffsetDateTime) -> Result<Hold> {
        holds::release_hold(&self.pool, id).await
    }

    async fn convert_hold(&self, conversion: HoldConversion) -> Result<Placed> {
        holds::convert_hold(&self.pool, conversion).await
    }

    async fn expire_overdue(&self, now: OffsetDateTime, limit: u32) -> Result<ExpiredBatch> {
        orders::expire_overdue(&self.pool, now, limit).await
    }

    async fn claim_outbox(
        &self,
        now: OffsetDateTime,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>> {
        outbox::claim_outbox(&self.pool, now, lease, limit).await
    }

    async fn mark_outbox_sent(&self, ids: &[MessageId]) -> Result<()> {
        outbox::mark_outbox_sent(&self.pool, ids).await
    }

    async fn record_processed(&self, consumer: &str, id: MessageId) -> Result<bool> {
        outbox::record_processed(&self.pool, consumer, id).await
    }
}
