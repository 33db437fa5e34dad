//! PostgreSQL backend for `aggregator-core`'s [`StockStore`](aggregator_core::StockStore).
//!
//! The schema enforces the stock arithmetic by itself (CHECK constraints keep `reported`,
//! `reserved` and `confirmed_not_yet_reported` at zero or above, foreign keys tie every
//! row to its vendor and stock row), and a reservation is one conditional `UPDATE`:
//!
//! ```sql
//! UPDATE vendor_stock SET reserved = reserved + $q
//!  WHERE … AND reported - reserved - confirmed_not_yet_reported >= $q
//! ```
//!
//! READ COMMITTED is enough with that shape: a writer that finds the row locked waits,
//! then PostgreSQL re-checks the `WHERE` clause against the committed row before
//! updating it, so the condition holds for the value at commit, never for a stale read.
//! Multi-row changes lock their stock rows in (vendor, SKU) order first, so they cannot
//! deadlock with each other.
//!
//! ```no_run
//! # async fn run() -> aggregator_core::Result<()> {
//! use aggregator_postgres::{PostgresConfig, PostgresStockStore};
//! let store = PostgresStockStore::connect(&PostgresConfig::new("postgres://postgres@127.0.0.1/orders")).await?;
//! store.migrate().await?;
//! # Ok(()) }
//! ```

mod cancellations;
mod catalog;
mod change_batch;
mod config;
mod error;
mod event_log;
mod holds;
mod locks;
mod order_reads;
mod orders;
mod outbox;
mod place_batch;
mod read_replica;
mod reserve;
mod rows;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod tx;
mod webhooks;

pub use config::PostgresConfig;
pub use read_replica::{ReadReplicaConfig, ReplicaReads, ReplicaState};
pub use store::PostgresStockStore;
