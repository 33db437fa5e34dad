//! Talking to one third-party vendor.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::{Quantity, SnapshotRow, VendorId, VendorSku};
use crate::error::{Error, Result};
use crate::resilience::BreakerState;

/// What a vendor says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VendorInfo {
    /// Its display name.
    pub name: String,
    /// How many SKUs it carries.
    pub sku_count: u64,
}

/// One page of a vendor's stock feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockPage {
    /// The rows, already validated.
    pub rows: Vec<SnapshotRow>,
    /// The vendor's time of this page.
    pub as_of: OffsetDateTime,
    /// The next page's number, if there is one.
    pub next_page: Option<u32>,
    /// The number of the feed's last page, when the vendor tells it (an HTTP vendor
    /// does, through its row count). A sync then asks for the pages after this one side
    /// by side; it still follows `next_page`, and asks page by page from the first page
    /// that disagrees.
    pub last_page: Option<u32>,
}

/// One line of an order as sent to a vendor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VendorOrderLine {
    /// The vendor's SKU.
    pub sku: VendorSku,
    /// Units.
    pub quantity: Quantity,
}

/// Our order as sent to one vendor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VendorOrder {
    /// Makes a repeated send place the order only once at the vendor.
    pub idempotency_key: String,
    /// The lines for this vendor.
    pub lines: Vec<VendorOrderLine>,
}

/// A vendor SKU the vendor could not serve in full.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VendorShortSku {
    /// The SKU.
    pub sku: VendorSku,
    /// Units the vendor has.
    pub available: u64,
}

/// How a vendor answered an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VendorOrderOutcome {
    /// Accepted in full.
    Accepted {
        /// The vendor's id for the order.
        vendor_order_id: String,
        /// The vendor's own clock at confirmation.
        confirmed_at: OffsetDateTime,
    },
    /// Refused because some SKUs are short; nothing was placed.
    Refused {
        /// The short SKUs.
        short: Vec<VendorShortSku>,
    },
    /// Refused because the key was cancelled earlier; nothing was placed. For us this
    /// means the order moved on (a newer version places under new keys, or it ended):
    /// read it again, never give it up for this.
    KeyCancelled,
}

/// How a vendor answered a cancellation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The order under the key is cancelled (now or before): done.
    Cancelled,
    /// The vendor says it never saw the key. Believe it only once no placement under
    /// the key can still reach the vendor; until then, ask again.
    UnknownKey,
}

/// One vendor's API.
///
/// What every implementation guarantees: `place_order` with the same idempotency key
/// places the order at most once; `cancel_order` is idempotent; a transient failure is
/// `Unavailable { retryable: true }`; data the vendor sends that breaks the rules
/// (negative or absurd quantities, malformed bodies) is an error naming the vendor and
/// the field, and never reaches the store.
#[async_trait]
pub trait VendorClient: Send + Sync + Debug + 'static {
    /// Which vendor this client talks to.
    fn vendor(&self) -> &VendorId;

    /// Whether the vendor answers its health check.
    async fn health(&self) -> Result<()>;

    /// The vendor's self-description.
    async fn info(&self) -> Result<VendorInfo>;

    /// Page `page` (from 1) of the stock feed, at most `limit` rows.
    async fn stock_page(&self, page: u32, limit: u32) -> Result<StockPage>;

    /// Places our order (idempotent by its key).
    async fn place_order(&self, order: &VendorOrder) -> Result<VendorOrderOutcome>;

    /// Cancels the order placed with `idempotency_key` (idempotent). Once cancelled,
    /// placing again with the same key must not answer `Accepted`. A vendor that keeps
    /// no record of a key it never saw says so with [`CancelOutcome::UnknownKey`]; any
    /// other refusal is a retryable error, since a cancellation must never be abandoned.
    async fn cancel_order(&self, idempotency_key: &str) -> Result<CancelOutcome>;

    /// Where the client's circuit breaker stands, for clients that keep one; `None`
    /// for those that do not.
    fn breaker_state(&self) -> Option<BreakerState> {
        None
    }
}

macro_rules! forward_vendor_client {
    ($wrapper:ident) => {
        #[async_trait]
        impl<T: VendorClient + ?Sized> VendorClient for $wrapper<T> {
            fn vendor(&self) -> &VendorId {
                (**self).vendor()
            }
            async fn health(&self) -> Result<()> {
                (**self).health().await
            }
            async fn info(&self) -> Result<VendorInfo> {
                (**self).info().await
            }
            async fn stock_page(&self, page: u32, limit: u32) -> Result<StockPage> {
                (**self).stock_page(page, limit).await
            }
            async fn place_order(&self, order: &VendorOrder) -> Result<VendorOrderOutcome> {
                (**self).place_order(order).await
            }
            async fn cancel_order(&self, idempotency_key: &str) -> Result<CancelOutcome> {
                (**self).cancel_order(idempotency_key).await
            }
            fn breaker_state(&self) -> Option<BreakerState> {
                (**self).breaker_state()
            }
        }
    };
}

forward_vendor_client!(Arc);
forward_vendor_client!(Box);

/// The clients of every vendor we sell from, by vendor id.
#[derive(Debug, Clone, Default)]
pub struct VendorDirectory {
    clients: BTreeMap<VendorId, Arc<dyn VendorClient>>,
}

impl VendorDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the client for its vendor.
    pub fn insert(&mut self, client: Arc<dyn VendorClient>) {
        self.clients.insert(client.vendor().clone(), client);
    }

    /// The client for `vendor`; `NotFound` if none is configured.
    pub fn get(&self, vendor: &VendorId) -> Result<&Arc<dyn VendorClient>> {
        self.clients
            .get(vendor)
            .ok_or_else(|| Error::not_found("vendor", vendor))
    }

    /// Every vendor id, in order.
    pub fn ids(&self) -> impl Iterator<Item = &VendorId> {
        self.clients.keys()
    }
}

impl FromIterator<Arc<dyn VendorClient>> for VendorDirectory {
    fn from_iter<I: IntoIterator<Item = Arc<dyn VendorClient>>>(iter: I) -> Self {
        let mut directory = Self::new();
        for client in iter {
            directory.insert(client);
        }
        directory
    }
}
