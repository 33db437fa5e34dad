//! [`OrderListing`]: the store's role of listing orders.

use std::fmt::Debug;

use async_trait::async_trait;

use crate::domain::Order;
use crate::error::Result;
use crate::traits::{OrderQuery, Page};

/// Pages of orders, newest first, for people to read.
///
/// Its own role so that a deployment can answer lists from a copy that may lag behind
/// the store of record (a read replica): nothing decides stock or an order's status from
/// a list. A list may miss the latest changes of such a copy, never show a change that
/// did not commit.
#[async_trait]
pub trait OrderListing: Send + Sync + Debug + 'static {
    /// Orders matching `query`, newest first.
    async fn orders(&self, query: &OrderQuery) -> Result<Page<Order>>;
}
