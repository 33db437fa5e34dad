//! What the services count as they work: worker outcomes, batch sizes, published
//! outbox messages, expiries and stock syncs.
//!
//! Recorded through the [`metrics`] facade: nothing is kept until the process installs
//! a recorder (the binaries install a Prometheus one), so embedders and tests that do
//! not care pay almost nothing. [`describe`] gives every name its help text.

use std::time::Duration;

use crate::domain::VendorId;

/// Order messages a worker settled, by `outcome`; the orders of a batch message count
/// one each under their own outcome, beside the batch itself under `batch`.
pub const WORKER_MESSAGES: &str = "aggregator_worker_messages_total";
/// Requests per batch of a batcher (group commit of placements and status changes,
/// cached availability reads), by `batcher`.
pub const BATCH_SIZE: &str = "aggregator_batch_size";
/// Outbox messages the relay published and marked sent.
pub const OUTBOX_PUBLISHED: &str = "aggregator_outbox_published_total";
/// Orders and holds the sweeper expired, by `kind`.
pub const EXPIRED: &str = "aggregator_expired_total";
/// Stock syncs of a vendor, by `vendor` and `outcome` (`applied` or `failed`).
pub const STOCK_SYNCS: &str = "aggregator_stock_syncs_total";
/// Time a stock sync of one vendor took, by `vendor`.
pub const STOCK_SYNC_DURATION: &str = "aggregator_stock_sync_duration_seconds";
/// The vendor's `confirmedAt` minus our receive time in its last confirmation, by
/// `vendor` (how far its order endpoint's clock is off from ours, plus transit).
pub const VENDOR_ORDER_CLOCK_OFFSET: &str = "aggregator_vendor_order_clock_offset_seconds";
/// Pending cancellations at vendors the sweeper queued again.
pub const CANCELLATIONS_REQUEUED: &str = "aggregator_cancellations_requeued_total";
/// Answers of vendors to our cancellations, by `vendor` and `outcome` (`cancelled`,
/// `unknown_key`, or `refused` for any error, which is retried).
pub const VENDOR_CANCELLATIONS: &str = "aggregator_vendor_cancellations_total";

/// The bucket bounds that suit [`BATCH_SIZE`] (powers of two up to the largest batch).
pub const BATCH_SIZE_BUCKETS: [f64; 11] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// What became of one order message at a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerOutcome {
    /// Every vendor accepted; the order is confirmed.
    Confirmed,
    /// The order failed with its units released.
    Failed,
    /// The order had already left `reserved`; nothing to do.
    AlreadySettled,
    /// A vendor order was cancelled.
    CancelledAtVendor,
    /// Failed for a reason that may pass; it comes back after a delay.
    Retrying,
    /// Out of attempts; its work was queued again as a fresh message.
    Requeued,
    /// Dead-lettered.
    DeadLettered,
    /// An order of a batch message that could not be settled within the batch and was
    /// queued as its own message.
    WentAlone,
    /// A batch message handled; each of its orders counts under its own outcome too.
    Batch,
    /// Could not be settled (the give-up or the queue failed); it will be redelivered.
    Unsettled,
}

impl WorkerOutcome {
    /// The outcome's label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmed => "confirmed",
            Self::Failed => "failed",
            Self::AlreadySettled => "already_settled",
            Self::CancelledAtVendor => "cancelled_at_vendor",
            Self::Retrying => "retrying",
            Self::Requeued => "requeued",
            Self::DeadLettered => "dead_lettered",
            Self::WentAlone => "went_alone",
            Self::Batch => "batch",
            Self::Unsettled => "unsettled",
        }
    }
}

/// Gives every name above its help text in the installed recorder. Call it once after
/// installing one; names recorded before that still count, with no help text.
pub fn describe() {
    metrics::describe_counter!(
        WORKER_MESSAGES,
        "Order messages a worker settled, by outcome (a batch's orders count one each, beside the batch)."
    );
    metrics::describe_histogram!(
        BATCH_SIZE,
        "Requests per batch, by batcher (placements, status changes, availability reads)."
    );
    metrics::describe_counter!(
        OUTBOX_PUBLISHED,
        "Outbox messages the relay published and marked sent."
    );
    metrics::describe_counter!(EXPIRED, "Orders and holds the sweeper expired, by kind.");
    metrics::describe_counter!(STOCK_SYNCS, "Stock syncs by vendor and outcome.");
    metrics::describe_gauge!(
        VENDOR_ORDER_CLOCK_OFFSET,
        metrics::Unit::Seconds,
        "The vendor's confirmedAt minus our receive time in its last confirmation, by vendor."
    );
    metrics::describe_counter!(
        CANCELLATIONS_REQUEUED,
        "Cancellations at vendors pending so long that the sweeper queued them again."
    );
    metrics::describe_counter!(
        VENDOR_CANCELLATIONS,
        "Vendors' answers to our cancellations, by vendor and outcome (refused ones are retried)."
    );
    metrics::describe_histogram!(
        STOCK_SYNC_DURATION,
        metrics::Unit::Seconds,
        "Time one vendor's stock sync took, by vendor."
    );
}

pub(crate) fn worker_settled(outcome: WorkerOutcome) {
    worker_settled_orders(outcome, 1);
}

pub(crate) fn worker_settled_orders(outcome: WorkerOutcome, orders: usize) {
    if orders > 0 {
        metrics::counter!(WORKER_MESSAGES, "outcome" => outcome.as_str())
            .increment(u64::try_from(orders).unwrap_or(u64::MAX));
    }
}

pub(crate) fn batch_gathered(batcher: &'static str, size: usize) {
    // Sizes are far below 2^52, where f64 stops holding integers exactly.
    #[allow(clippy::cast_precision_loss)]
    metrics::histogram!(BATCH_SIZE, "batcher" => batcher).record(size as f64);
}

pub(crate) fn outbox_published(count: usize) {
    metrics::counter!(OUTBOX_PUBLISHED).increment(u64::try_from(count).unwrap_or(u64::MAX));
}

pub(crate) fn expired(orders: usize, holds: usize) {
    for (kind, count) in [("order", orders), ("hold", holds)] {
        if count > 0 {
            metrics::counter!(EXPIRED, "kind" => kind)
                .increment(u64::try_from(count).unwrap_or(u64::MAX));
        }
    }
}

pub(crate) fn stock_synced(vendor: &VendorId, applied: bool, took: Duration) {
    let outcome = if applied { "applied" } else { "failed" };
    let vendor = vendor.to_string();
    metrics::counter!(STOCK_SYNCS, "vendor" => vendor.clone(), "outcome" => outcome).increment(1);
    metrics::histogram!(STOCK_SYNC_DURATION, "vendor" => vendor).record(took.as_secs_f64());
}

pub(crate) fn vendor_cancellation(
    vendor: &VendorId,
    outcome: Option<crate::traits::CancelOutcome>,
) {
    let outcome = match outcome {
        Some(crate::traits::CancelOutcome::Cancelled) => "cancelled",
        Some(crate::traits::CancelOutcome::UnknownKey) => "unknown_key",
        None => "refused",
    };
    metrics::counter!(VENDOR_CANCELLATIONS, "vendor" => vendor.to_string(), "outcome" => outcome)
        .increment(1);
}

pub(crate) fn cancellations_requeued(count: u64) {
    metrics::counter!(CANCELLATIONS_REQUEUED).increment(count);
}

pub(crate) fn vendor_order_clock_offset(vendor: &VendorId, offset: time::Duration) {
    metrics::gauge!(VENDOR_ORDER_CLOCK_OFFSET, "vendor" => vendor.to_string())
        .set(offset.as_seconds_f64());
}
