//! The sweeper step: expire orders and holds whose reservation ran out.

use std::sync::Arc;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::traits::{ExpiredBatch, OrderStore};

/// Expires overdue reservations in batches.
#[derive(Debug, Clone)]
pub struct Sweeper {
    store: Arc<dyn OrderStore>,
    clock: Arc<dyn Clock>,
    batch_size: u32,
}

impl Sweeper {
    /// A sweeper over `store` expiring at most `batch_size` items per store call.
    pub fn new(store: Arc<dyn OrderStore>, clock: Arc<dyn Clock>, batch_size: u32) -> Result<Self> {
        if batch_size == 0 {
            return Err(Error::invalid("batchSize", "must be at least 1"));
        }
        Ok(Self {
            store,
            clock,
            batch_size,
        })
    }

    /// Expires everything overdue now, batch after batch, and says what it expired.
    /// Safe to run in several processes at once: each item expires exactly once.
    pub async fn run_once(&self) -> Result<ExpiredBatch> {
        let now = self.clock.now();
        let mut total = ExpiredBatch::default();
        loop {
            let batch = self.store.expire_overdue(now, self.batch_size).await?;
            let full = batch.len() >= self.batch_size as usize;
            let (batch_orders, batch_holds) = (batch.orders.len(), batch.holds.len());
            total.orders.extend(batch.orders);
            total.holds.extend(batch.holds);
            super::telemetry::expired(batch_orders, batch_holds);
            if !full {
                return Ok(total);
            }
        }
    }
}
