//! Registering the configured vendors and asking for their stock syncs.

use std::sync::Arc;

use crate::domain::{Message, MessageId, QueueName, SyncRequest, Vendor, VendorId};
use crate::error::{Error, Result};
use crate::traits::{OrderQueue, VendorClient, VendorDirectory, VendorLedger};

/// Registers every vendor in `ledger` (name, URL and priority; its health and sync
/// state are kept) and answers the directory of their clients. Refuses a client that
/// answers for another vendor than the one it is registered with; stops at the first
/// vendor that cannot be registered.
pub async fn register_vendors(
    ledger: &dyn VendorLedger,
    vendors: impl IntoIterator<Item = (Vendor, Arc<dyn VendorClient>)>,
) -> Result<VendorDirectory> {
    let mut directory = VendorDirectory::new();
    for (vendor, client) in vendors {
        if client.vendor() != &vendor.id {
            return Err(Error::invalid(
                "vendors",
                format!(
                    "the client for {} answers for {}",
                    vendor.id,
                    client.vendor()
                ),
            ));
        }
        ledger.upsert_vendor(&vendor).await?;
        directory.insert(client);
    }
    Ok(directory)
}

/// Queues one sync request per vendor on `stock_sync_queue`, in order; answers each
/// vendor with its message's id. Stops at the first request the queue refuses (the
/// ones before it stay queued).
pub async fn request_syncs(
    queue: &dyn OrderQueue,
    vendors: impl IntoIterator<Item = VendorId>,
) -> Result<Vec<(VendorId, MessageId)>> {
    let mut queued = Vec::new();
    for vendor in vendors {
        let message = Message::json(&SyncRequest {
            vendor: vendor.clone(),
        })?;
        queue.publish(QueueName::StockSync, &message).await?;
        queued.push((vendor, message.id));
    }
    Ok(queued)
}
