//! Cases about cancellations at vendors that must never be abandoned.

use time::Duration;

use super::fixture::{Fixture, valid};
use super::order_cases::{change, confirm_transition, drain_outbox};
use crate::domain::{OrderMessage, StatusChange};
use crate::traits::StockStore;

/// Every key a change kills stays a pending cancellation (a confirmed order's too) until
/// its vendor confirms it; the pending ones last queued long enough ago are queued again,
/// carrying the time the key died, and none twice in one round.
pub async fn pending_cancellations_are_queued_again_until_the_vendor_confirms(
    store: &dyn StockStore,
) {
    let fx = Fixture::new(store, 10, 0).await;
    let placed = valid(fx.place(store, &fx.vendor_a, 1, 1).await, "place");
    let confirmed = valid(
        store
            .transition(&confirm_transition(&placed.order, &fx, fx.now), &[])
            .await,
        "confirm",
    );
    // Long before every other case's times (in our clock), so that their pending
    // cancellations, all later, stay out of the rounds below.
    let killed_at = fx.now - Duration::days(1_000);
    let before = valid(store.cancellation_backlog().await, "backlog");
    valid(
        store
            .transition(&change(&confirmed, StatusChange::Cancel, killed_at), &[])
            .await,
        "cancel the confirmed order",
    );
    // A confirmed order's live key is the one its vendor confirmed (of the version placed).
    let key = placed.order.vendor_key(&fx.vendor_a);
    let pending = valid(store.cancellation_backlog().await, "backlog");
    assert_eq!(
        pending.pending,
        before.pending + 1,
        "a confirmed order's cancellation is pending"
    );
    assert!(pending.oldest_killed_at.is_some());
    drain_outbox(store, &fx).await;

    let ours = |messages: &[crate::domain::OutboxMessage]| -> Vec<OrderMessage> {
        messages
            .iter()
            .filter_map(|m| m.message.decode::<OrderMessage>().ok())
            .filter(|m| {
                matches!(m, OrderMessage::CancelAtVendor { idempotency_key, .. }
                    if *idempotency_key == key)
            })
            .collect()
    };
    // Not yet due: nothing for our key.
    valid(
        store
            .requeue_cancellations(killed_at - Duration::seconds(1), killed_at, 100_000)
            .await,
        "requeue",
    );
    assert!(
        ours(&drain_outbox(store, &fx).await).is_empty(),
        "not due yet"
    );
    // Due: queued again once, with the time the key died.
    let later = killed_at + Duration::days(1);
    let requeued = valid(
        store.requeue_cancellations(killed_at, later, 100_000).await,
        "requeue",
    );
    assert!(requeued >= 1, "{requeued}");
    let again = ours(&drain_outbox(store, &fx).await);
    assert_eq!(
        again,
        vec![OrderMessage::CancelAtVendor {
            order: confirmed.id,
            vendor: fx.vendor_a.clone(),
            idempotency_key: key.clone(),
            killed_at: Some(killed_at),
        }]
    );
    // Queued at `later` now: a round for what was queued before that skips it.
    valid(
        store
            .requeue_cancellations(later - Duration::seconds(1), later, 100_000)
            .await,
        "requeue",
    );
    assert!(
        ours(&drain_outbox(store, &fx).await).is_empty(),
        "not twice"
    );
    // Once the vendor confirms, it is no longer pending and never queued again.
    valid(
        store.vendor_cancellation_done(&fx.vendor_a, &key).await,
        "done",
    );
    let after = valid(store.cancellation_backlog().await, "backlog");
    assert_eq!(after.pending, before.pending, "done is no longer pending");
    valid(
        store
            .requeue_cancellations(
                later + Duration::days(1),
                later + Duration::days(2),
                100_000,
            )
            .await,
        "requeue",
    );
    assert!(
        ours(&drain_outbox(store, &fx).await).is_empty(),
        "done for good"
    );
}
