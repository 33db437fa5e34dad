//! Cases about webhook endpoints and the dispatcher's position.

use time::OffsetDateTime;

use super::fixture::valid;
use crate::domain::{
    CustomerId, DeliveryOutcome, EventCursor, Message, OrderStatus, OutboxMessage, QueueName,
    WebhookEndpoint, WebhookId,
};
use crate::error::Error;
use crate::traits::StockStore;

fn endpoint(customer: Option<&CustomerId>, statuses: Vec<OrderStatus>) -> WebhookEndpoint {
    let created_at =
        OffsetDateTime::from_unix_timestamp(OffsetDateTime::now_utc().unix_timestamp())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    WebhookEndpoint::new(
        customer.cloned(),
        "https://hooks.example.com/orders",
        "whsec-0123456789abcdef",
        statuses,
        created_at,
    )
}

/// `endpoint` without the start position the store set (to compare with what was given).
fn as_given(endpoint: WebhookEndpoint) -> WebhookEndpoint {
    WebhookEndpoint {
        starts_at: None,
        ..endpoint
    }
}

/// Endpoints are stored as given and listed per customer (the global ones only in the
/// full list); bad ones and taken ids are refused; failures in a row disable an
/// endpoint exactly at the limit, keeping the last reason; a success or enabling it
/// again forgets them; removal is final.
pub async fn webhook_endpoints_register_count_failures_and_disable(store: &dyn StockStore) {
    let tag = uuid::Uuid::now_v7().simple().to_string()[20..].to_owned();
    let alice = valid(CustomerId::new(format!("alice-{tag}")), "customer");
    let bob = valid(CustomerId::new(format!("bob-{tag}")), "customer");
    let own = endpoint(
        Some(&alice),
        vec![OrderStatus::Confirmed, OrderStatus::Failed],
    );
    let global = endpoint(None, Vec::new());
    valid(store.create_webhook(&own).await, "alice's");
    valid(store.create_webhook(&global).await, "global");
    let read_back = valid(store.webhook(own.id).await, "read back");
    assert!(
        read_back.starts_at.is_some(),
        "the store sets where it starts"
    );
    assert_eq!(as_given(read_back), own);
    assert!(matches!(
        store.create_webhook(&own).await,
        Err(Error::Conflict { .. })
    ));
    let mut weak = endpoint(Some(&bob), Vec::new());
    weak.secret = "short".into();
    assert!(matches!(
        store.create_webhook(&weak).await,
        Err(Error::Invalid { .. })
    ));
    let mut twice = endpoint(Some(&bob), vec![OrderStatus::Failed, OrderStatus::Failed]);
    twice.id = WebhookId::new();
    assert!(matches!(
        store.create_webhook(&twice).await,
        Err(Error::Invalid { .. })
    ));
    let alices: Vec<_> = valid(store.webhooks(Some(&alice)).await, "alice's list")
        .into_iter()
        .map(as_given)
        .collect();
    assert_eq!(alices, vec![own.clone()]);
    assert!(valid(store.webhooks(Some(&bob)).await, "bob's list").is_empty());
    let all: Vec<_> = valid(store.webhooks(None).await, "all")
        .into_iter()
        .map(as_given)
        .collect();
    assert!(all.contains(&own) && all.contains(&global));

    let failed = DeliveryOutcome::Failed("HTTP 500".into());
    let after_one = valid(store.record_delivery(own.id, &failed, 3).await, "1st");
    assert_eq!(
        (after_one.consecutive_failures, after_one.enabled),
        (1, true)
    );
    let reset = valid(
        store
            .record_delivery(own.id, &DeliveryOutcome::Delivered, 3)
            .await,
        "delivered",
    );
    assert_eq!(reset.consecutive_failures, 0, "a success forgets failures");
    for n in 1..=2 {
        let now = valid(store.record_delivery(own.id, &failed, 3).await, "again");
        assert_eq!((now.consecutive_failures, now.enabled), (n, true));
    }
    let last = DeliveryOutcome::Failed("connection refused".into());
    let disabled = valid(store.record_delivery(own.id, &last, 3).await, "3rd");
    assert!(!disabled.enabled, "the third failure in a row disables it");
    let reason = disabled.disabled_reason.clone().unwrap_or_default();
    assert!(
        reason.contains('3') && reason.contains("connection refused"),
        "{reason}"
    );
    let later = valid(store.record_delivery(own.id, &failed, 3).await, "4th");
    assert_eq!(
        later.disabled_reason, disabled.disabled_reason,
        "reason kept"
    );
    let enabled = valid(store.enable_webhook(own.id).await, "enable");
    assert_eq!(
        (
            enabled.enabled,
            enabled.consecutive_failures,
            enabled.disabled_reason
        ),
        (true, 0, None)
    );

    valid(store.delete_webhook(own.id).await, "delete");
    for outcome in [
        store.webhook(own.id).await.map(|_| ()),
        store.delete_webhook(own.id).await,
        store.enable_webhook(own.id).await.map(|_| ()),
        store
            .record_delivery(own.id, &DeliveryOutcome::Delivered, 3)
            .await
            .map(|_| ()),
    ] {
        assert!(
            matches!(outcome, Err(Error::NotFound { .. })),
            "{outcome:?}"
        );
    }
    valid(store.delete_webhook(global.id).await, "delete global");
}

/// The dispatcher's position moves only from where it is, together with the outbox
/// messages given: a second dispatcher moving it from the same place gets `Conflict`
/// and writes nothing.
pub async fn the_webhook_dispatcher_position_moves_by_compare_and_set(store: &dyn StockStore) {
    let start = valid(store.webhook_cursor().await, "position");
    let base = start.map_or(0, |c| c.sequence());
    let next = EventCursor::new(start.map_or(0, EventCursor::epoch), base + 10);
    let message = |text: &str| OutboxMessage {
        queue: QueueName::Webhooks,
        message: valid(Message::json(&text), "message"),
        created_at: OffsetDateTime::from_unix_timestamp(1_764_500_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH),
    };
    let first = message("first");
    valid(
        store
            .dispatch_webhooks(start, next, std::slice::from_ref(&first))
            .await,
        "move",
    );
    assert_eq!(valid(store.webhook_cursor().await, "moved"), Some(next));
    let other = EventCursor::new(next.epoch(), base + 11);
    let lost = message("lost the race");
    assert!(matches!(
        store
            .dispatch_webhooks(start, other, std::slice::from_ref(&lost))
            .await,
        Err(Error::Conflict { .. })
    ));
    assert_eq!(valid(store.webhook_cursor().await, "kept"), Some(next));
    let after = EventCursor::new(next.epoch(), base + 12);
    valid(store.dispatch_webhooks(Some(next), after, &[]).await, "on");
    assert_eq!(valid(store.webhook_cursor().await, "on"), Some(after));

    let ids = [first.message.id, lost.message.id];
    let now = OffsetDateTime::now_utc();
    let claimed = valid(
        store
            .claim_outbox_ids(&ids, now, time::Duration::seconds(30))
            .await,
        "claim",
    );
    assert_eq!(
        claimed.iter().map(|m| m.message.id).collect::<Vec<_>>(),
        vec![first.message.id],
        "the winner's delivery is in the outbox, the loser's is not"
    );
    assert_eq!(claimed[0].queue, QueueName::Webhooks);
    valid(store.mark_outbox_sent(&ids).await, "sent");
}

/// Every order event committed after an endpoint's registration lies at or after the
/// start position the store gave it, so the endpoint wants it whatever the clocks say
/// (here the registering host's clock runs an hour ahead).
pub async fn a_new_endpoint_wants_every_event_after_its_registration(store: &dyn StockStore) {
    use std::time::{Duration as StdDuration, Instant};

    let fx = super::Fixture::new(store, 5, 0).await;
    let mut ahead = endpoint(None, Vec::new());
    ahead.created_at += time::Duration::hours(1);
    valid(store.create_webhook(&ahead).await, "registered");
    let registered = valid(store.webhook(ahead.id).await, "read back");
    let placed = valid(fx.place(store, &fx.vendor_a, 1, 1).await, "placed").order;
    let customer = fx.details(1).customer;
    // A reader sees an event once every transaction before it has ended.
    let deadline = Instant::now() + StdDuration::from_secs(10);
    let event = loop {
        let read = valid(
            store.order_events_after(None, Some(&customer), 100).await,
            "read",
        );
        let found = match read {
            crate::domain::EventRead::Events(events) => {
                events.into_iter().find(|event| event.order_id == placed.id)
            }
            crate::domain::EventRead::Gone { .. } => None,
        };
        match found {
            Some(event) => break event,
            None if Instant::now() < deadline => {
                tokio::time::sleep(StdDuration::from_millis(20)).await;
            }
            None => panic!("the placement's event was never read"),
        }
    };
    assert!(
        registered.wants(&event),
        "an event after the registration is wanted: {:?} from {:?}",
        event.cursor,
        registered.starts_at
    );
    valid(store.delete_webhook(ahead.id).await, "removed");
}
