//! Cases about batches: [`OrderCommits::place_orders`] and [`OrderCommits::transitions`]
//! answer each member as the single call would have at its turn.
//!
//! [`OrderCommits::place_orders`]: crate::traits::OrderCommits::place_orders
//! [`OrderCommits::transitions`]: crate::traits::OrderCommits::transitions

use futures_util::future::join_all;
use time::Duration;

use super::fixture::{Fixture, qty, valid};
use super::order_cases::confirm_transition;
use crate::domain::{
    IdempotencyKey, Message, MessageId, OrderMessage, OrderStatus, OutboxMessage, QueueName,
    StatusChange, SyncRequest, Transition,
};
use crate::error::Error;
use crate::traits::{IdempotencyRecord, OrderPlacement, StockStore};

/// A batch is decided in the order given: each placement takes its units if what the
/// earlier ones left is enough, and one that is short fails alone with the same
/// `short` detail a single placement would get, while the rest commit.
pub async fn a_batch_decides_in_order_and_a_short_placement_fails_alone(store: &dyn StockStore) {
    let fx = Fixture::new(store, 5, 4).await;
    let batch = vec![
        fx.placement(1, vec![fx.line(&fx.vendor_a, 2)]),
        fx.placement(2, vec![fx.line(&fx.vendor_a, 2)]),
        // Two lines: vendor B has enough, vendor A has only 1 left.
        fx.placement(3, vec![fx.line(&fx.vendor_b, 1), fx.line(&fx.vendor_a, 2)]),
        fx.placement(4, vec![fx.line(&fx.vendor_a, 1)]),
        fx.placement(5, vec![fx.line(&fx.vendor_b, 3)]),
    ];
    let ids: Vec<_> = batch.iter().map(|p| p.id).collect();
    let answers = store.place_orders(batch).await;
    assert_eq!(answers.len(), 5, "one answer per placement");
    for index in [0, 1, 3, 4] {
        let placed = match &answers[index] {
            Ok(placed) => placed,
            Err(error) => panic!("placement {index} should commit, got {error}"),
        };
        assert_eq!(
            placed.order.id, ids[index],
            "answers come in the order given"
        );
        assert_eq!(placed.order.status, OrderStatus::Reserved);
        assert!(!placed.replayed);
    }
    match &answers[2] {
        Err(Error::InsufficientStock { short }) => {
            assert_eq!(short.len(), 1, "only the short line is named: {short:?}");
            assert_eq!(short[0].requested, 2);
            assert_eq!(short[0].available, 1, "what the earlier placements left");
        }
        other => panic!("the third placement is short, got {other:?}"),
    }
    assert_eq!(fx.stock(store, &fx.vendor_a).await.reserved, 5);
    assert_eq!(
        fx.stock(store, &fx.vendor_b).await.reserved,
        3,
        "the short placement took nothing, not even its good line"
    );
    assert!(
        matches!(store.order(ids[2]).await, Err(Error::NotFound { .. })),
        "the short placement left no order"
    );
}

/// A batch writes the orders it placed to process as one `ProcessOrders` message under
/// the id of the first placement's message (none for a placement that failed), and
/// every other message of its placements as it is.
pub async fn a_batch_writes_its_orders_to_process_as_one_message(store: &dyn StockStore) {
    let fx = Fixture::new(store, 3, 0).await;
    let mut batch: Vec<OrderPlacement> = (1..=4)
        .map(|n| fx.placement(n, vec![fx.line(&fx.vendor_a, 1)]))
        .collect();
    for placement in &mut batch {
        let work = OrderMessage::ProcessOrder {
            order: placement.id,
        };
        placement.outbox.push(OutboxMessage {
            queue: QueueName::Orders,
            message: valid(Message::json(&work), "message"),
            created_at: fx.now,
        });
    }
    let other = OutboxMessage {
        queue: QueueName::StockSync,
        message: valid(
            Message::json(&SyncRequest {
                vendor: fx.vendor_a.clone(),
            }),
            "message",
        ),
        created_at: fx.now,
    };
    batch[1].outbox.push(other.clone());
    let ids: Vec<_> = batch.iter().map(|p| p.id).collect();
    let written: Vec<MessageId> = batch
        .iter()
        .flat_map(|p| p.outbox.iter().map(|m| m.message.id))
        .collect();
    let answers = store.place_orders(batch).await;
    assert!(answers[..3].iter().all(Result::is_ok), "{answers:?}");
    assert!(
        matches!(answers[3], Err(Error::InsufficientStock { .. })),
        "the fourth is short: {:?}",
        answers[3]
    );
    let claimed = valid(
        store
            .claim_outbox_ids(&written, fx.now, Duration::seconds(30))
            .await,
        "claim",
    );
    assert_eq!(
        claimed.len(),
        2,
        "one message for the orders, the other as it is"
    );
    let gathered = claimed
        .iter()
        .find(|m| m.queue == QueueName::Orders)
        .expect("the orders' message");
    assert_eq!(
        gathered.message.id, written[0],
        "under the first placement's id"
    );
    assert_eq!(
        gathered.message.decode::<OrderMessage>(),
        Ok(OrderMessage::ProcessOrders {
            orders: ids[..3].to_vec()
        })
    );
    assert!(claimed.iter().any(|m| m == &other), "{claimed:?}");
    let sent: Vec<MessageId> = claimed.iter().map(|m| m.message.id).collect();
    valid(store.mark_outbox_sent(&sent).await, "mark");
}

/// Invalid placements, replays, two placements with one idempotency key and
/// placements from stale vendors are each answered on their own inside a batch, and
/// never make the others fail.
pub async fn a_batch_answers_bad_and_replayed_placements_on_their_own(store: &dyn StockStore) {
    let fx = Fixture::new(store, 10, 0).await;
    let keyed = |n: u32, key: &str, fingerprint: &str| {
        let mut placement = fx.placement(n, vec![fx.line(&fx.vendor_a, 1)]);
        placement.idempotency = Some(IdempotencyRecord {
            key: valid(IdempotencyKey::new(format!("{key}-{}", fx.tag)), "key"),
            fingerprint: fingerprint.to_owned(),
        });
        placement
    };
    let earlier = valid(store.place_order(keyed(1, "old", "f")).await, "earlier");

    let mut invalid = fx.placement(2, vec![fx.line(&fx.vendor_a, 1)]);
    invalid.lines[0].quantity = qty(3);
    let mut stale = fx.placement(3, vec![fx.line(&fx.vendor_a, 1)]);
    stale.fresh_since = fx.now + Duration::minutes(1);
    let batch: Vec<OrderPlacement> = vec![
        fx.placement(4, vec![fx.line(&fx.vendor_a, 1)]),
        invalid,
        keyed(1, "old", "f"),
        keyed(1, "old", "changed"),
        keyed(5, "new", "g"),
        keyed(5, "new", "g"),
        keyed(5, "new", "h"),
        stale,
        fx.placement(6, vec![fx.line(&fx.vendor_a, 1)]),
    ];
    let answers = store.place_orders(batch).await;
    assert_eq!(answers.len(), 9);
    let ok = |index: usize| match &answers[index] {
        Ok(placed) => placed.clone(),
        Err(error) => panic!("placement {index} should succeed, got {error}"),
    };
    assert!(!ok(0).replayed);
    assert!(
        matches!(answers[1], Err(Error::Invalid { .. })),
        "{:?}",
        answers[1]
    );
    let replay = ok(2);
    assert!(replay.replayed && replay.order.id == earlier.order.id);
    assert!(
        matches!(answers[3], Err(Error::IdempotencyMismatch { .. })),
        "{:?}",
        answers[3]
    );
    let first = ok(4);
    let second = ok(5);
    assert!(!first.replayed, "the first of two with one key is placed");
    assert!(second.replayed, "the second is its replay");
    assert_eq!(second.order.id, first.order.id);
    assert!(
        matches!(answers[6], Err(Error::IdempotencyMismatch { .. })),
        "{:?}",
        answers[6]
    );
    assert!(
        matches!(answers[7], Err(Error::InsufficientStock { .. })),
        "a stale vendor cannot be reserved from: {:?}",
        answers[7]
    );
    assert!(!ok(8).replayed);
    assert_eq!(
        fx.stock(store, &fx.vendor_a).await.reserved,
        4,
        "earlier + 0 + new + 8: one unit each, nothing twice"
    );
}

/// Batches placed at the same time on one row never sell more than it has.
pub async fn concurrent_batches_never_oversell(store: &dyn StockStore) {
    let fx = Fixture::new(store, 25, 0).await;
    let batches = (0..4u32).map(|b| {
        let batch = (0..10u32)
            .map(|n| fx.placement(b * 10 + n, vec![fx.line(&fx.vendor_a, 1)]))
            .collect();
        store.place_orders(batch)
    });
    let answers: Vec<_> = join_all(batches).await.into_iter().flatten().collect();
    let placed = answers.iter().filter(|a| a.is_ok()).count();
    let short = answers
        .iter()
        .filter(|a| matches!(a, Err(Error::InsufficientStock { .. })))
        .count();
    assert_eq!(placed, 25, "exactly the stock is sold");
    assert_eq!(short, 15, "everyone else is told it is short");
    let row = fx.stock(store, &fx.vendor_a).await;
    assert_eq!(row.reserved, 25);
    assert_eq!(
        row.reported - row.reserved - row.confirmed_not_yet_reported,
        0
    );
}

/// A batch of status changes is compare-and-set per order: a stale version fails
/// alone, the others apply and move their stock.
pub async fn a_batch_of_changes_is_compare_and_set_per_order(store: &dyn StockStore) {
    let fx = Fixture::new(store, 10, 0).await;
    let mut orders = Vec::new();
    for n in 0..4 {
        orders.push(valid(fx.place(store, &fx.vendor_a, 2, n).await, "place").order);
    }
    let confirm = confirm_transition(&orders[0], &fx, fx.now + Duration::seconds(5));
    let mut stale = confirm_transition(&orders[1], &fx, fx.now + Duration::seconds(5));
    stale.expected_version += 7;
    let cancel = Transition {
        order: orders[2].id,
        expected_version: orders[2].version,
        change: StatusChange::Cancel,
        reason: "conformance".into(),
        at: fx.now + Duration::seconds(1),
    };
    let confirm_last = confirm_transition(&orders[3], &fx, fx.now + Duration::seconds(5));
    let answers = store
        .transitions(vec![
            (confirm, Vec::new()),
            (stale, Vec::new()),
            (cancel.clone(), Vec::new()),
            (confirm_last, Vec::new()),
            // The same order twice: the second saw the version before the first.
            (cancel, Vec::new()),
        ])
        .await;
    assert_eq!(answers.len(), 5);
    let status = |index: usize| match &answers[index] {
        Ok(order) => order.status,
        Err(error) => panic!("change {index} should apply, got {error}"),
    };
    assert_eq!(status(0), OrderStatus::Confirmed);
    assert!(
        matches!(answers[1], Err(Error::Conflict { .. })),
        "{:?}",
        answers[1]
    );
    assert_eq!(status(2), OrderStatus::Cancelled);
    assert_eq!(status(3), OrderStatus::Confirmed);
    assert!(
        matches!(answers[4], Err(Error::Conflict { .. })),
        "{:?}",
        answers[4]
    );
    let row = fx.stock(store, &fx.vendor_a).await;
    assert_eq!(
        row.reserved, 2,
        "only the order whose change was stale still holds"
    );
    assert_eq!(
        row.confirmed_not_yet_reported, 6,
        "two confirmed orders of 2, and the cancelled one's 2 held until its vendor \
         cancels"
    );
    assert_eq!(
        valid(store.order(orders[1].id).await, "stale").status,
        OrderStatus::Reserved
    );
}

/// A placement whose order id is taken already fails alone (`Conflict`); the rest of
/// its batch commits.
pub async fn a_taken_order_id_fails_alone_in_a_batch(store: &dyn StockStore) {
    let fx = Fixture::new(store, 10, 0).await;
    let first = valid(fx.place(store, &fx.vendor_a, 1, 1).await, "first");
    let mut again = fx.placement(2, vec![fx.line(&fx.vendor_a, 1)]);
    again.id = first.order.id;
    let answers = store
        .place_orders(vec![
            fx.placement(3, vec![fx.line(&fx.vendor_a, 2)]),
            again,
            fx.placement(4, vec![fx.line(&fx.vendor_a, 3)]),
        ])
        .await;
    assert!(answers[0].is_ok(), "{:?}", answers[0]);
    assert!(
        matches!(answers[1], Err(Error::Conflict { .. })),
        "{:?}",
        answers[1]
    );
    assert!(answers[2].is_ok(), "{:?}", answers[2]);
    assert_eq!(fx.stock(store, &fx.vendor_a).await.reserved, 6);
}
