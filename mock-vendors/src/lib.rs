//! Mock third-party vendors for tests, demos and benchmarks.
//!
//! Each mock vendor is a small HTTP API over a generated catalog:
//!
//! * `GET /health`, `GET /info` (id, name, SKU count, orders, fault switches);
//! * `GET /stock?page&limit`: a JSON array of `{sku, productId, quantity, price, asOf}`,
//!   with `X-Total-Count`, `X-As-Of` (the vendor's clock at the read) and `Link`
//!   (`rel="next"`, `rel="last"`) headers;
//! * `POST /orders` (`Idempotency-Key` header, `{"lines": [{"sku", "quantity"}]}`):
//!   all or nothing, `201` with the vendor's `confirmedAt`, `200` for a replay of the same
//!   key and lines, `409 insufficient_stock` naming the short SKUs, `422` for a key reused
//!   with other lines, `409 order_cancelled` once the key's order was cancelled;
//! * `GET /orders/{id}` and `POST /orders/{id}/cancel` by vendor order id or idempotency
//!   key: cancelling puts the units back once and is idempotent; cancelling a key never
//!   placed records it, so a late placement under it is refused;
//! * `POST /simulate/fluctuation` (random stock changes, as in the seed),
//!   `GET`/`POST /simulate/fault` (see [`Faults`]), `POST /simulate/reset`,
//!   `POST /simulate/stock` (`{"sku", "quantity"}`), `GET /simulate/orders` (every
//!   order record, for audits from outside the process).
//!
//! Bad requests get a JSON `{error, detail}` answer with a 4xx status.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use mock_vendors::{MockVendor, MockVendorConfig};
//! let vendor = MockVendor::spawn_local(MockVendorConfig::new("VendorA")).await?;
//! println!("VendorA at {}", vendor.base_url());
//! # Ok(()) }
//! ```

mod catalog;
mod error;
mod fault_layer;
mod faults;
mod rng;
mod routes;
mod serve_args;
mod server;
mod state;
mod webhook_receiver;

pub use catalog::{CURRENCY, CatalogItem, SEED_PRODUCT_COUNT};
pub use faults::{FaultUpdate, Faults, MAX_CLOCK_OFFSET_MS, MAX_DELAY_MS};
pub use routes::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
pub use serve_args::{ServeArgs, ServeCli};
pub use server::MockVendor;
pub use state::{
    Fluctuation, MockVendorConfig, PlacedLine, ShortSku, VendorOrderRecord, VendorOrderStatus,
};
pub use webhook_receiver::{
    ReceivedDelivery, ReceiverMode, TIMESTAMP_TOLERANCE_SECS, WebhookReceiver,
};
