//! Cases about the outbox and consumer de-duplication.

use futures_util::future::join;
use std::collections::HashSet;
use time::Duration;

use super::fixture::{Fixture, valid};
use crate::domain::{Message, MessageId, OrderMessage, OutboxMessage, QueueName};
use crate::traits::StockStore;

async fn place_with_outbox(store: &dyn StockStore, fx: &Fixture, count: u32) -> HashSet<MessageId> {
    place_with_outbox_at(store, fx, count, fx.now).await
}

/// Places `count` orders, each with one outbox message written at `written`.
async fn place_with_outbox_at(
    store: &dyn StockStore,
    fx: &Fixture,
    count: u32,
    written: time::OffsetDateTime,
) -> HashSet<MessageId> {
    let mut ids = HashSet::new();
    for n in 0..count {
        let mut placement = fx.placement(n, vec![fx.line(&fx.vendor_a, 1)]);
        let message = valid(
            Message::json(&OrderMessage::ProcessOrder {
                order: placement.id,
            }),
            "message",
        );
        ids.insert(message.id);
        placement.outbox = vec![OutboxMessage {
            queue: QueueName::Orders,
            message,
            created_at: written,
        }];
        valid(store.place_order(placement).await, "place");
    }
    ids
}

/// Claims at later and later times (each past the previous lease) until every id in
/// `wanted` was handed out or `rounds` claims found nothing new; returns what was seen.
/// Other claimers running at the same time may hold some ids for a lease; later claims
/// get them once it has run out.
async fn claim_until_seen(
    store: &dyn StockStore,
    wanted: &HashSet<MessageId>,
    from: time::OffsetDateTime,
    lease: Duration,
) -> HashSet<MessageId> {
    let mut seen = HashSet::new();
    for round in 1..=20 {
        let at = from + lease * round;
        loop {
            let batch = valid(store.claim_outbox(at, lease, 1_000).await, "claim");
            if batch.is_empty() {
                break;
            }
            seen.extend(batch.iter().map(|m| m.message.id));
        }
        if wanted.is_subset(&seen) {
            break;
        }
    }
    seen
}

/// Two relays claiming at once never get the same message; claiming goes on until
/// every message was handed out.
pub async fn concurrent_outbox_claimers_never_share_a_message(store: &dyn StockStore) {
    let fx = Fixture::new(store, 100, 0).await;
    let ours = place_with_outbox(store, &fx, 20).await;
    let lease = Duration::seconds(30);
    let mut seen: HashSet<MessageId> = HashSet::new();
    loop {
        let (a, b) = join(
            store.claim_outbox(fx.now, lease, 7),
            store.claim_outbox(fx.now, lease, 7),
        )
        .await;
        let (a, b) = (valid(a, "claim a"), valid(b, "claim b"));
        if a.is_empty() && b.is_empty() {
            break;
        }
        for message in a.iter().chain(&b) {
            assert!(
                seen.insert(message.message.id),
                "message {} handed to two claimers within its lease",
                message.message.id
            );
        }
    }
    seen.extend(claim_until_seen(store, &ours, fx.now, lease).await);
    assert!(ours.is_subset(&seen), "every message was claimed");
    let ids: Vec<MessageId> = ours.iter().copied().collect();
    valid(store.mark_outbox_sent(&ids).await, "mark");
}

/// A claimed but unmarked message is not handed out again within its lease but is
/// after it; a message marked sent never comes back.
pub async fn outbox_lease_expires_and_sent_messages_stay_sent(store: &dyn StockStore) {
    let fx = Fixture::new(store, 100, 0).await;
    let ours = place_with_outbox(store, &fx, 3).await;
    let lease = Duration::seconds(30);
    let claimed = claim_until_seen(store, &ours, fx.now - lease, lease).await;
    assert!(ours.is_subset(&claimed));
    let within = valid(
        store
            .claim_outbox(fx.now + Duration::seconds(29), lease, 10_000)
            .await,
        "within lease",
    );
    assert!(
        within.iter().all(|m| !ours.contains(&m.message.id)),
        "leased messages are not handed out"
    );

    let sent = *ours.iter().next().expect("three messages");
    valid(store.mark_outbox_sent(&[sent]).await, "mark one");
    let unsent: HashSet<MessageId> = ours.iter().copied().filter(|id| *id != sent).collect();
    let reclaimed = claim_until_seen(store, &unsent, fx.now + Duration::seconds(1), lease).await;
    assert!(!reclaimed.contains(&sent), "a sent message stays sent");
    assert!(
        unsent.is_subset(&reclaimed),
        "unsent ones come back after the lease"
    );
    let all: Vec<MessageId> = ours.into_iter().collect();
    valid(store.mark_outbox_sent(&all).await, "mark all");
    valid(
        store.mark_outbox_sent(&[MessageId::new()]).await,
        "unknown ids are ignored",
    );
}

/// Claims by id follow the same lease rules as scanning claims: each waiting message
/// once, oldest first; unknown, leased and sent ids skipped; a lapsed lease claimable
/// again.
pub async fn outbox_claims_by_id_follow_the_lease_rules(store: &dyn StockStore) {
    let fx = Fixture::new(store, 100, 0).await;
    let mut ours: Vec<MessageId> = place_with_outbox(store, &fx, 3).await.into_iter().collect();
    ours.sort();
    let (a, b, c) = (ours[0], ours[1], ours[2]);
    let lease = Duration::seconds(30);
    let claimed = valid(
        store
            .claim_outbox_ids(&[b, MessageId::new(), a, b], fx.now, lease)
            .await,
        "claim a and b",
    );
    let claimed: Vec<MessageId> = claimed.iter().map(|m| m.message.id).collect();
    assert_eq!(
        claimed,
        vec![a, b],
        "each once, oldest first; unknown skipped"
    );
    let within = valid(
        store
            .claim_outbox_ids(&[a, c], fx.now + Duration::seconds(29), lease)
            .await,
        "claim within the lease",
    );
    let within: Vec<MessageId> = within.iter().map(|m| m.message.id).collect();
    assert_eq!(within, vec![c], "a leased message is skipped");
    let after = valid(
        store
            .claim_outbox_ids(&[a], fx.now + Duration::seconds(31), lease)
            .await,
        "claim after the lease",
    );
    assert_eq!(after.len(), 1, "a lapsed lease is claimable again");
    valid(store.mark_outbox_sent(&ours).await, "mark");
    let sent = valid(
        store
            .claim_outbox_ids(&ours, fx.now + Duration::days(1), lease)
            .await,
        "claim sent ones",
    );
    assert!(sent.is_empty(), "sent messages are never claimed again");
    let none = valid(
        store.claim_outbox_ids(&[], fx.now, lease).await,
        "claim nothing",
    );
    assert!(none.is_empty());
}

/// The backlog counts unsent messages, leased or not, and names the oldest one's time;
/// marking messages sent takes them out of it. Other writers may share the store, so
/// ours are written ten years back (and at a millisecond of their own), where nothing
/// else writes.
pub async fn outbox_backlog_counts_unsent_messages_and_their_oldest(store: &dyn StockStore) {
    let fx = Fixture::new(store, 100, 0).await;
    let offset = i64::from(uuid::Uuid::now_v7().as_bytes()[15]);
    let written = fx.now - Duration::days(3_650) + Duration::milliseconds(offset);
    let ours = place_with_outbox_at(store, &fx, 3, written).await;

    let backlog = valid(store.outbox_backlog().await, "backlog");
    assert!(
        backlog.messages >= 3,
        "our three unsent messages are counted"
    );
    let oldest = backlog.oldest.expect("there are unsent messages");
    assert!(oldest <= written, "the oldest is at least as old as ours");
    assert!(backlog.oldest_age(fx.now) >= Duration::days(3_649));

    let leased = claim_until_seen(store, &ours, fx.now, Duration::seconds(30)).await;
    assert!(ours.is_subset(&leased));
    let while_leased = valid(store.outbox_backlog().await, "backlog while leased");
    assert!(
        while_leased.oldest.is_some_and(|oldest| oldest <= written),
        "leased messages are still unsent"
    );

    let all: Vec<MessageId> = ours.into_iter().collect();
    valid(store.mark_outbox_sent(&all).await, "mark all");
    let after = valid(store.outbox_backlog().await, "backlog after");
    assert_ne!(
        after.oldest,
        Some(written),
        "sent messages leave the backlog"
    );
}
