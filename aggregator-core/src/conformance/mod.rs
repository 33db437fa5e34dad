//! The conformance suite: plain async functions that every backend's tests call with
//! their implementation. Each case panics with a message naming the broken rule.
//!
//! * [`stock_store_suite`] runs every [`StockStore`] case, grouped by role
//!   ([`vendor_ledger_suite`], [`order_store_suite`], ...); each case also stands alone.
//!   Cases create their own vendors and products under fresh random ids, so a store
//!   that already holds data (say, from earlier cases) is fine. Cases move time forward
//!   (sweeps, outbox leases) from their own "now", so do not run two cases on one store
//!   at the same time.
//! * [`order_queue_suite`] runs every [`OrderQueue`] case. Pass a queue nobody else
//!   uses, built with the [`RetryPolicy`] you pass in (keep its delays short).
//! * [`cache_suite`] runs every [`Cache`] case; keys are prefixed with a random id.
//! * [`service_url`] tells a backend test where its real service is, or skips it.
//!
//! [`StockStore`]: crate::StockStore
//! [`OrderQueue`]: crate::OrderQueue
//! [`Cache`]: crate::Cache
//! [`RetryPolicy`]: crate::traits::RetryPolicy

mod batch_cases;
mod cache_cases;
mod cancellation_cases;
#[cfg(feature = "testcontainers")]
pub mod containers;
mod event_log_cases;
mod fixture;
mod hold_cases;
mod order_cases;
mod outbox_cases;
mod queue_cases;
mod quote_cases;
mod services;
mod stock_cases;
mod stock_model;
mod webhook_cases;

pub use batch_cases::*;
pub use cache_cases::*;
pub use cancellation_cases::*;
pub use event_log_cases::*;
pub use fixture::Fixture;
pub use hold_cases::*;
pub use order_cases::*;
pub use outbox_cases::*;
pub use queue_cases::*;
pub use quote_cases::*;
pub use services::{
    REQUIRE_SERVICES, ServiceDecision, USE_CONTAINERS, decide, service_url, skip_unless_required,
};
pub use stock_cases::*;
pub use stock_model::{ModelStep, StockModel};
pub use webhook_cases::*;

use crate::traits::{Cache, OrderQueue, RetryPolicy, StockStore};

/// Runs every stock-store case, one role after another.
pub async fn stock_store_suite(store: &dyn StockStore) {
    vendor_ledger_suite(store).await;
    catalog_reads_suite(store).await;
    order_store_suite(store).await;
    hold_store_suite(store).await;
    outbox_suite(store).await;
    order_event_log_suite(store).await;
    webhook_store_suite(store).await;
}

/// The [`WebhookStore`] cases.
///
/// [`WebhookStore`]: crate::traits::WebhookStore
pub async fn webhook_store_suite(store: &dyn StockStore) {
    webhook_endpoints_register_count_failures_and_disable(store).await;
    the_webhook_dispatcher_position_moves_by_compare_and_set(store).await;
    a_new_endpoint_wants_every_event_after_its_registration(store).await;
}

/// The [`OrderEventLog`] cases.
///
/// [`OrderEventLog`]: crate::traits::OrderEventLog
pub async fn order_event_log_suite(store: &dyn StockStore) {
    every_order_change_is_logged_once_in_version_order(store).await;
    the_event_log_resumes_pages_and_prunes(store).await;
    the_event_log_head_is_where_a_new_reader_starts(store).await;
}

/// The [`VendorLedger`] cases: snapshots, confirmations against reports, health and
/// freshness. (Each case also places orders, to see what the ledger leaves sellable.)
///
/// [`VendorLedger`]: crate::traits::VendorLedger
pub async fn vendor_ledger_suite(store: &dyn StockStore) {
    snapshot_below_reserved_blocks_new_placements_and_keeps_old_ones(store).await;
    confirmed_units_are_not_sold_again_before_a_later_snapshot(store).await;
    confirmations_wait_for_a_report_later_by_the_margin(store).await;
    snapshot_pages_are_validated_whole(store).await;
    a_snapshot_page_updates_adds_and_skips_older_rows_at_once(store).await;
    complete_snapshot_zeroes_missing_skus_and_tracks_health(store).await;
    stale_vendors_cannot_be_reserved_from(store).await;
}

/// The [`CatalogReads`] cases.
///
/// [`CatalogReads`]: crate::traits::CatalogReads
pub async fn catalog_reads_suite(store: &dyn StockStore) {
    catalog_reads(store).await;
}

/// The [`OrderStore`] cases: placement, compare-and-set changes, cancellations of dead
/// vendor keys, idempotency, re-routes, listing and expiry.
///
/// [`OrderStore`]: crate::traits::OrderStore
pub async fn order_store_suite(store: &dyn StockStore) {
    multi_line_placement_with_one_short_line_reserves_nothing(store).await;
    concurrent_placements_never_oversell(store).await;
    expiry_releases_exactly_once(store).await;
    cancel_racing_confirm_has_one_winner(store).await;
    transitions_are_compare_and_set(store).await;
    confirmed_order_cancel_keeps_units_counted(store).await;
    leaving_a_version_queues_the_cancellation_of_its_vendor_keys(store).await;
    dead_keys_hold_their_units_until_the_vendor_cancels(store).await;
    pending_cancellations_are_queued_again_until_the_vendor_confirms(store).await;
    idempotency_keys(store).await;
    placed_under_key_answers_what_a_key_stands_for(store).await;
    a_quoted_line_is_charged_its_quote_or_refused(store).await;
    a_quoted_line_moves_only_to_rows_at_its_quote(store).await;
    reroute_moves_units_atomically(store).await;
    order_lists_filter_and_page(store).await;
    orders_are_numbered_once_and_keep_their_number(store).await;
    orders_read_together_are_each_as_read_alone(store).await;
    a_batch_decides_in_order_and_a_short_placement_fails_alone(store).await;
    a_batch_answers_bad_and_replayed_placements_on_their_own(store).await;
    concurrent_batches_never_oversell(store).await;
    a_taken_order_id_fails_alone_in_a_batch(store).await;
    a_batch_writes_its_orders_to_process_as_one_message(store).await;
    a_batch_of_changes_is_compare_and_set_per_order(store).await;
}

/// The [`HoldStore`] cases.
///
/// [`HoldStore`]: crate::traits::HoldStore
pub async fn hold_store_suite(store: &dyn StockStore) {
    holds_reserve_extend_convert_and_release(store).await;
    holds_expire_and_release_once(store).await;
    holds_are_capped_per_customer(store).await;
}

/// The [`Outbox`] cases.
///
/// [`Outbox`]: crate::traits::Outbox
pub async fn outbox_suite(store: &dyn StockStore) {
    concurrent_outbox_claimers_never_share_a_message(store).await;
    outbox_lease_expires_and_sent_messages_stay_sent(store).await;
    outbox_claims_by_id_follow_the_lease_rules(store).await;
    outbox_backlog_counts_unsent_messages_and_their_oldest(store).await;
}

/// Runs every queue case, one after another, on a queue built with `policy`.
pub async fn order_queue_suite(queue: &dyn OrderQueue, policy: &RetryPolicy) {
    publish_consume_ack(queue).await;
    retries_count_attempts_then_dead_letter_and_replay(queue, policy).await;
    dead_letter_at_once_and_replay_one(queue).await;
    unsettled_delivery_is_redelivered(queue).await;
    prefetch_bounds_unsettled_deliveries(queue).await;
    depths_count_waiting_messages_without_touching_them(queue, policy).await;
}

/// Runs every cache case, one after another.
pub async fn cache_suite(cache: &dyn Cache) {
    cache_get_set_delete(cache).await;
    cache_entries_expire(cache).await;
    rate_limit_is_exact_under_concurrency(cache).await;
    rate_limit_calls_grant_what_fits(cache).await;
    set_if_absent_has_one_winner(cache).await;
    slots_are_exact_and_come_free(cache).await;
}
