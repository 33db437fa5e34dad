//! Cases about order status changes, idempotency, re-routing and lists.

use futures_util::future::join;
use time::{Duration, OffsetDateTime};

use super::fixture::{Fixture, qty, valid};
use crate::domain::{
    IdempotencyKey, Message, Order, OrderMessage, OrderStatus, OutboxMessage, QueueName,
    StatusChange, Transition, VendorPlacement,
};
use crate::error::Error;
use crate::traits::{IdempotencyRecord, OrderQuery, PlannedAllocation, Reroute, StockStore};

/// A confirmation of `order` by each of its vendors at `vendor_time`.
pub(crate) fn confirm_transition(
    order: &Order,
    fx: &Fixture,
    vendor_time: OffsetDateTime,
) -> Transition {
    let placements = order
        .allocations_by_vendor()
        .into_iter()
        .map(|(vendor, _)| VendorPlacement {
            vendor_order_id: format!("{vendor}-order"),
            idempotency_key: order.vendor_key(&vendor),
            vendor,
            confirmed_at: vendor_time,
        })
        .collect();
    Transition {
        order: order.id,
        expected_version: order.version,
        change: StatusChange::Confirm { placements },
        reason: "every vendor accepted".into(),
        at: fx.now + Duration::seconds(1),
    }
}

/// `change` of `order` from the version it has, with the reason "conformance".
pub(super) fn change(order: &Order, change: StatusChange, at: OffsetDateTime) -> Transition {
    Transition {
        order: order.id,
        expected_version: order.version,
        change,
        reason: "conformance".into(),
        at,
    }
}

/// Two sweepers expiring the same overdue orders at once release each order's units
/// exactly once; a later sweep finds nothing.
pub async fn expiry_releases_exactly_once(store: &dyn StockStore) {
    let fx = Fixture::new(store, 10, 0).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let mut placement = fx.placement(n, vec![fx.line(&fx.vendor_a, 2)]);
        placement.reserved_until = fx.now + Duration::seconds(1);
        ids.push(valid(store.place_order(placement).await, "place").order.id);
    }
    let keeper = valid(
        fx.place(store, &fx.vendor_a, 1, 9).await,
        "place unexpiring",
    );
    assert_eq!(fx.stock(store, &fx.vendor_a).await.reserved, 7);

    let early = valid(store.expire_overdue(fx.now, 100).await, "early sweep");
    assert!(
        !early.orders.iter().any(|id| ids.contains(id)),
        "nothing is due yet"
    );

    let at = fx.now + Duration::seconds(2);
    let (first, second) = join(store.expire_overdue(at, 100), store.expire_overdue(at, 100)).await;
    let (first, second) = (valid(first, "sweep 1"), valid(second, "sweep 2"));
    let mut expired: Vec<_> = first
        .orders
        .iter()
        .chain(&second.orders)
        .filter(|id| ids.contains(id))
        .copied()
        .collect();
    expired.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(expired, expected, "each order expires once, by one sweeper");
    assert_eq!(
        fx.stock(store, &fx.vendor_a).await.reserved,
        1,
        "released exactly once"
    );
    for id in &ids {
        let order = valid(store.order(*id).await, "order");
        assert_eq!(order.status, OrderStatus::Expired);
        assert!(order.failure_reason.is_some(), "expiry says why");
    }
    let again = valid(
        store.expire_overdue(at + Duration::seconds(1), 100).await,
        "sweep 3",
    );
    assert!(!again.orders.iter().any(|id| ids.contains(id)));
    assert_eq!(
        valid(store.order(keeper.order.id).await, "keeper").status,
        OrderStatus::Reserved
    );
}

/// A cancel and a confirm of the same version race: exactly one wins and stock ends
/// as the winner left it.
pub async fn cancel_racing_confirm_has_one_winner(store: &dyn StockStore) {
    let fx = Fixture::new(store, 10, 0).await;
    for n in 0..8 {
        let placed = valid(fx.place(store, &fx.vendor_a, 1, n).await, "place");
        let confirm = confirm_transition(&placed.order, &fx, fx.now + Duration::seconds(5));
        let cancel = change(
            &placed.order,
            StatusChange::Cancel,
            fx.now + Duration::seconds(1),
        );
        let (confirmed, cancelled) = join(
            store.transition(&confirm, &[]),
            store.transition(&cancel, &[]),
        )
        .await;
        assert!(
            confirmed.is_ok() != cancelled.is_ok(),
            "exactly one wins: {confirmed:?} / {cancelled:?}"
        );
        let loser = if confirmed.is_ok() {
            &cancelled
        } else {
            &confirmed
        };
        assert!(
            matches!(loser, Err(Error::Conflict { .. })),
            "the loser gets Conflict"
        );
        let order = valid(store.order(placed.order.id).await, "order");
        assert_eq!(order.version, 2);
    }
    let row = fx.stock(store, &fx.vendor_a).await;
    assert_eq!(row.reserved, 0, "no units left held");
    assert_eq!(
        row.reported - row.confirmed_not_yet_reported,
        row.sellable(),
        "cancelled units came back, confirmed ones moved"
    );
}

/// Status changes are compare-and-set: a stale version or an illegal change is
/// Conflict and changes nothing; each change is recorded with its reason.
pub async fn transitions_are_compare_and_set(store: &dyn StockStore) {
    let fx = Fixture::new(store, 5, 0).await;
    let placed = valid(fx.place(store, &fx.vendor_a, 2, 1).await, "place");
    assert_eq!(
        (placed.order.status, placed.order.version),
        (OrderStatus::Reserved, 1)
    );
    assert_eq!(placed.order.events.len(), 1);
    assert_eq!(
        placed.order.lines[0].allocations[0]
            .unit_price
            .minor_units(),
        1_000,
        "priced from the catalog"
    );

    let mut stale = change(&placed.order, StatusChange::Fail, fx.now);
    stale.expected_version = 7;
    assert!(matches!(
        store.transition(&stale, &[]).await,
        Err(Error::Conflict { .. })
    ));

    let failed = valid(
        store
            .transition(&change(&placed.order, StatusChange::Fail, fx.now), &[])
            .await,
        "fail",
    );
    assert_eq!((failed.status, failed.version), (OrderStatus::Failed, 2));
    assert_eq!(failed.failure_reason.as_deref(), Some("conformance"));
    let event = failed.events.last().expect("an event per change");
    assert_eq!(
        (event.from, event.to, event.version),
        (Some(OrderStatus::Reserved), OrderStatus::Failed, 2)
    );
    assert_eq!(
        fx.stock(store, &fx.vendor_a).await.reserved,
        0,
        "failure releases"
    );

    let illegal = change(&failed, StatusChange::Cancel, fx.now);
    assert!(matches!(
        store.transition(&illegal, &[]).await,
        Err(Error::Conflict { .. })
    ));
    let after = valid(store.order(failed.id).await, "order");
    assert_eq!(
        (after.status, after.version),
        (OrderStatus::Failed, 2),
        "unchanged"
    );
    assert_eq!(
        fx.stock(store, &fx.vendor_a).await.reserved,
        0,
        "not released twice"
    );

    let mut ghost = change(&failed, StatusChange::Cancel, fx.now);
    ghost.order = crate::domain::OrderId::new();
    assert!(matches!(
        store.transition(&ghost, &[]).await,
        Err(Error::NotFound { .. })
    ));
}

/// Cancelling a confirmed order leaves its units in `confirmed_not_yet_reported` (the
/// vendor has them until it cancels) and writes, with the change, the given outbox
/// messages and one `CancelAtVendor` per vendor placement.
pub async fn confirmed_order_cancel_keeps_units_counted(store: &dyn StockStore) {
    let fx = Fixture::new(store, 5, 0).await;
    let placed = valid(fx.place(store, &fx.vendor_a, 2, 1).await, "place");
    let confirmed = valid(
        store
            .transition(
                &confirm_transition(&placed.order, &fx, fx.now + Duration::seconds(3)),
                &[],
            )
            .await,
        "confirm",
    );
    assert_eq!(confirmed.vendor_placements.len(), 1);
    let extra = valid(
        Message::json(&OrderMessage::ProcessOrder {
            order: confirmed.id,
        }),
        "message",
    );
    let outbox = OutboxMessage {
        queue: QueueName::Orders,
        message: extra.clone(),
        created_at: fx.now,
    };
    let cancelled = valid(
        store
            .transition(&change(&confirmed, StatusChange::Cancel, fx.now), &[outbox])
            .await,
        "cancel confirmed",
    );
    assert_eq!(cancelled.status, OrderStatus::Cancelled);
    let row = fx.stock(store, &fx.vendor_a).await;
    assert_eq!(
        (row.reserved, row.confirmed_not_yet_reported, row.sellable()),
        (0, 2, 3)
    );
    let claimed = drain_outbox(store, &fx).await;
    assert!(
        claimed.iter().any(|m| m.message == extra),
        "outbox written with the change"
    );
    assert_eq!(
        vendor_cancellations(&claimed, confirmed.id),
        vec![(
            fx.vendor_a.clone(),
            confirmed.vendor_placements[0].idempotency_key.clone()
        )],
        "the vendor placement is cancelled through the outbox"
    );
}

/// Moving the one unit `order` holds at A to B.
fn one_unit_from_a_to_b(fx: &Fixture, order: &Order) -> Reroute {
    Reroute {
        order: order.id,
        expected_version: order.version,
        vendor: fx.vendor_a.clone(),
        sku: fx.sku_a.clone(),
        replacement: vec![PlannedAllocation {
            vendor: fx.vendor_b.clone(),
            sku: fx.sku_b.clone(),
            quantity: qty(1),
        }],
        reason: "A is short".into(),
        at: fx.now,
        fresh_since: fx.fresh_since(),
    }
}

/// Claims and marks every outbox message (as a relay would) and answers them.
pub(super) async fn drain_outbox(store: &dyn StockStore, fx: &Fixture) -> Vec<OutboxMessage> {
    let claimed = valid(
        store
            .claim_outbox(fx.now + Duration::days(365), Duration::seconds(30), 10_000)
            .await,
        "claim",
    );
    let ids: Vec<_> = claimed.iter().map(|m| m.message.id).collect();
    valid(store.mark_outbox_sent(&ids).await, "mark");
    claimed
}

/// The (vendor, key) of every `CancelAtVendor` for `order` among `messages`, sorted.
fn vendor_cancellations(
    messages: &[OutboxMessage],
    order: crate::domain::OrderId,
) -> Vec<(crate::domain::VendorId, String)> {
    let mut found: Vec<_> = messages
        .iter()
        .filter_map(|m| match m.message.decode::<OrderMessage>() {
            Ok(OrderMessage::CancelAtVendor {
                order: about,
                vendor,
                idempotency_key,
                ..
            }) if about == order => Some((vendor, idempotency_key)),
            _ => None,
        })
        .collect();
    found.sort();
    found
}

/// Every change that takes a reserved order out of its version (fail, cancel, expire,
/// re-route) writes, in the same step, a `CancelAtVendor` for the key of that version at
/// each of its vendors (a handler may have used any of them); confirming writes none.
pub async fn leaving_a_version_queues_the_cancellation_of_its_vendor_keys(store: &dyn StockStore) {
    let fx = Fixture::new(store, 20, 20).await;
    drain_outbox(store, &fx).await;
    let keys = |order: &Order| -> Vec<(crate::domain::VendorId, String)> {
        let mut keys: Vec<_> = order
            .allocations_by_vendor()
            .into_iter()
            .map(|(vendor, _)| {
                let key = order.vendor_key(&vendor);
                (vendor, key)
            })
            .collect();
        keys.sort();
        keys
    };
    for (step, kind) in [StatusChange::Fail, StatusChange::Cancel]
        .into_iter()
        .enumerate()
    {
        let placed = valid(fx.place_split(store, 1, 1).await, "place");
        let expected = keys(&placed.order);
        assert_eq!(expected.len(), 2, "two vendors");
        drain_outbox(store, &fx).await;
        valid(
            store
                .transition(&change(&placed.order, kind, fx.now), &[])
                .await,
            "leave reserved",
        );
        let claimed = drain_outbox(store, &fx).await;
        assert_eq!(
            vendor_cancellations(&claimed, placed.order.id),
            expected,
            "change {step}"
        );
    }

    let placed = valid(fx.place_split(store, 1, 1).await, "place");
    let expected = keys(&placed.order);
    drain_outbox(store, &fx).await;
    let expired = valid(
        store
            .expire_overdue(placed.order.reserved_until, 10_000)
            .await,
        "expire",
    );
    assert!(expired.orders.contains(&placed.order.id));
    let claimed = drain_outbox(store, &fx).await;
    assert_eq!(
        vendor_cancellations(&claimed, placed.order.id),
        expected,
        "expiry cancels too"
    );

    let placed = valid(fx.place(store, &fx.vendor_a, 1, 1).await, "place");
    let expected = keys(&placed.order);
    drain_outbox(store, &fx).await;
    let moved = valid(
        store
            .reroute(&one_unit_from_a_to_b(&fx, &placed.order))
            .await,
        "reroute",
    );
    let claimed = drain_outbox(store, &fx).await;
    assert_eq!(
        vendor_cancellations(&claimed, placed.order.id),
        expected,
        "a re-route cancels the old version's keys"
    );
    valid(
        store
            .transition(
                &confirm_transition(&moved, &fx, fx.now + Duration::seconds(1)),
                &[],
            )
            .await,
        "confirm",
    );
    let claimed = drain_outbox(store, &fx).await;
    assert_eq!(
        vendor_cancellations(&claimed, placed.order.id),
        vec![],
        "confirming cancels nothing"
    );
}

/// The same idempotency key with the same request returns the first order without
/// taking stock again; with another request it is refused; keys are per customer.
pub async fn idempotency_keys(store: &dyn StockStore) {
    let fx = Fixture::new(store, 10, 0).await;
    let key = valid(IdempotencyKey::new(format!("key-{}", fx.tag)), "key");
    let with_key = |fingerprint: &str, customer: u32| {
        let mut placement = fx.placement(customer, vec![fx.line(&fx.vendor_a, 2)]);
        placement.idempotency = Some(IdempotencyRecord {
            key: key.clone(),
            fingerprint: fingerprint.to_owned(),
        });
        placement
    };
    let first = valid(store.place_order(with_key("same", 1)).await, "first");
    assert!(!first.replayed);
    let again = valid(store.place_order(with_key("same", 1)).await, "replay");
    assert!(again.replayed, "the replay is flagged");
    assert_eq!(again.order.id, first.order.id, "the same order comes back");
    assert_eq!(
        fx.stock(store, &fx.vendor_a).await.reserved,
        2,
        "stock taken once"
    );
    assert!(matches!(
        store.place_order(with_key("other", 1)).await,
        Err(Error::IdempotencyMismatch { .. })
    ));
    let other_customer = valid(
        store.place_order(with_key("other", 2)).await,
        "other customer",
    );
    assert!(!other_customer.replayed, "keys are scoped to the customer");
    assert_eq!(fx.stock(store, &fx.vendor_a).await.reserved, 4);

    // A replay is answered even when the stock it would need is gone now.
    fx.report(store, &fx.vendor_a, 0, fx.now + Duration::seconds(1))
        .await;
    let late = valid(store.place_order(with_key("same", 1)).await, "late replay");
    assert!(late.replayed);
}

/// Re-routing moves an order's units from one vendor SKU to another atomically, and
/// refuses wrong quantities or missing stock without changing anything.
pub async fn reroute_moves_units_atomically(store: &dyn StockStore) {
    let fx = Fixture::new(store, 5, 3).await;
    let placed = valid(fx.place(store, &fx.vendor_a, 2, 1).await, "place");
    let reroute = |units: u32, version: i64| Reroute {
        order: placed.order.id,
        expected_version: version,
        vendor: fx.vendor_a.clone(),
        sku: fx.sku_a.clone(),
        replacement: vec![PlannedAllocation {
            vendor: fx.vendor_b.clone(),
            sku: fx.sku_b.clone(),
            quantity: qty(units),
        }],
        reason: "vendor A is short".into(),
        at: fx.now,
        fresh_since: fx.now - Duration::minutes(5),
    };
    assert!(matches!(
        store.reroute(&reroute(1, 1)).await,
        Err(Error::Invalid { .. })
    ));
    assert!(matches!(
        store.reroute(&reroute(2, 9)).await,
        Err(Error::Conflict { .. })
    ));
    let moved = valid(store.reroute(&reroute(2, 1)).await, "reroute");
    assert_eq!(moved.version, 2);
    let allocations = &moved.lines[0].allocations;
    assert_eq!(allocations.len(), 1);
    assert_eq!(
        (&allocations[0].vendor, allocations[0].quantity.get()),
        (&fx.vendor_b, 2)
    );
    assert_eq!(fx.stock(store, &fx.vendor_a).await.reserved, 0);
    assert_eq!(fx.stock(store, &fx.vendor_b).await.reserved, 2);

    let second = valid(fx.place(store, &fx.vendor_a, 2, 2).await, "place");
    let mut too_much = reroute(2, second.order.version);
    too_much.order = second.order.id;
    too_much.replacement[0].quantity = qty(2);
    // B has 1 sellable left.
    assert!(matches!(
        store.reroute(&too_much).await,
        Err(Error::InsufficientStock { .. })
    ));
    assert_eq!(
        fx.stock(store, &fx.vendor_a).await.reserved,
        2,
        "nothing moved"
    );
    assert_eq!(fx.stock(store, &fx.vendor_b).await.reserved, 2);
}

/// Lists are newest first, filter by customer and status, and page with a total.
pub async fn order_lists_filter_and_page(store: &dyn StockStore) {
    let fx = Fixture::new(store, 20, 0).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(valid(fx.place(store, &fx.vendor_a, 1, 1).await, "place").order);
    }
    valid(fx.place(store, &fx.vendor_a, 1, 2).await, "other customer");
    let cancelled = valid(
        store
            .transition(&change(&ids[0], StatusChange::Cancel, fx.now), &[])
            .await,
        "cancel",
    );
    let customer = Some(fx.details(1).customer);
    let query = |status, offset, limit| OrderQuery {
        customer: customer.clone(),
        status,
        offset,
        limit,
    };
    let page = valid(store.orders(&query(None, 0, 2)).await, "page 1");
    assert_eq!(page.total, 5);
    let newest: Vec<_> = page.items.iter().map(|o| o.id).collect();
    assert_eq!(newest, vec![ids[4].id, ids[3].id], "newest first");
    let rest = valid(store.orders(&query(None, 2, 10)).await, "page 2");
    assert_eq!(rest.items.len(), 3);
    let reserved = valid(
        store
            .orders(&query(Some(OrderStatus::Reserved), 0, 10))
            .await,
        "reserved",
    );
    assert_eq!(reserved.total, 4);
    let only = valid(
        store
            .orders(&query(Some(OrderStatus::Cancelled), 0, 10))
            .await,
        "cancelled",
    );
    assert_eq!(
        only.items.iter().map(|o| o.id).collect::<Vec<_>>(),
        vec![cancelled.id]
    );
    let past_end = valid(store.orders(&query(None, 50, 10)).await, "past the end");
    assert!(past_end.items.is_empty());
    assert_eq!(past_end.total, 5);
}

/// The units of a reserved order's dead keys stay counted (the vendor may hold them)
/// until the vendor confirms each key's cancellation; a confirmed order's cancel keeps
/// its units as confirmed ones, not twice.
pub async fn dead_keys_hold_their_units_until_the_vendor_cancels(store: &dyn StockStore) {
    let fx = Fixture::new(store, 10, 10).await;
    let sellable = |vendor: &crate::domain::VendorId| {
        let vendor = vendor.clone();
        let fx = &fx;
        async move { fx.stock(store, &vendor).await.sellable() }
    };
    // A cancel: A's 2 units are no longer reserved, but still not sellable.
    let placed = valid(fx.place(store, &fx.vendor_a, 2, 1).await, "place");
    let cancelled = valid(
        store
            .transition(&change(&placed.order, StatusChange::Cancel, fx.now), &[])
            .await,
        "cancel",
    );
    let row = fx.stock(store, &fx.vendor_a).await;
    assert_eq!(
        (row.reserved, row.confirmed_not_yet_reported, row.sellable()),
        (0, 2, 8),
        "held while the vendor may have them"
    );
    let key = placed.order.vendor_key(&fx.vendor_a);
    valid(
        store.vendor_cancellation_done(&fx.vendor_b, &key).await,
        "another vendor's key",
    );
    assert_eq!(
        sellable(&fx.vendor_a).await,
        8,
        "only the right vendor frees it"
    );
    valid(
        store.vendor_cancellation_done(&fx.vendor_a, &key).await,
        "done",
    );
    assert_eq!(
        sellable(&fx.vendor_a).await,
        10,
        "free once the vendor cancelled"
    );
    valid(
        store.vendor_cancellation_done(&fx.vendor_a, &key).await,
        "again",
    );
    assert_eq!(sellable(&fx.vendor_a).await, 10, "freed once");
    assert_eq!(cancelled.status, OrderStatus::Cancelled);

    // An expiry holds the same way.
    let placed = valid(fx.place(store, &fx.vendor_a, 3, 2).await, "place");
    valid(
        store
            .expire_overdue(placed.order.reserved_until, 10_000)
            .await,
        "expire",
    );
    assert_eq!(sellable(&fx.vendor_a).await, 7);
    valid(
        store
            .vendor_cancellation_done(&fx.vendor_a, &placed.order.vendor_key(&fx.vendor_a))
            .await,
        "done",
    );
    assert_eq!(sellable(&fx.vendor_a).await, 10);

    // A re-route from A to B: A's units wait for A's cancellation, B's are reserved.
    let placed = valid(fx.place(store, &fx.vendor_a, 1, 3).await, "place");
    let moved = valid(
        store
            .reroute(&one_unit_from_a_to_b(&fx, &placed.order))
            .await,
        "reroute",
    );
    assert_eq!(
        (sellable(&fx.vendor_a).await, sellable(&fx.vendor_b).await),
        (9, 9)
    );
    valid(
        store
            .vendor_cancellation_done(&fx.vendor_a, &placed.order.vendor_key(&fx.vendor_a))
            .await,
        "done",
    );
    assert_eq!(sellable(&fx.vendor_a).await, 10);

    // Confirmed, then cancelled: counted once, as a confirmation.
    let confirmed = valid(
        store
            .transition(
                &confirm_transition(&moved, &fx, fx.now + Duration::seconds(1)),
                &[],
            )
            .await,
        "confirm",
    );
    valid(
        store
            .transition(&change(&confirmed, StatusChange::Cancel, fx.now), &[])
            .await,
        "cancel confirmed",
    );
    let row = fx.stock(store, &fx.vendor_b).await;
    assert_eq!(
        (row.reserved, row.confirmed_not_yet_reported, row.sellable()),
        (0, 1, 9)
    );
    drain_outbox(store, &fx).await;
}

/// The store numbers every order it writes, once: placed alone or in a batch, every
/// order has a number no other order has; reads, lists, replays and status changes
/// answer the same number.
pub async fn orders_are_numbered_once_and_keep_their_number(store: &dyn StockStore) {
    let fx = Fixture::new(store, 20, 0).await;
    let key = valid(IdempotencyKey::new(format!("numbered-{}", fx.tag)), "key");
    let mut keyed = fx.placement(1, vec![fx.line(&fx.vendor_a, 1)]);
    keyed.idempotency = Some(IdempotencyRecord {
        key,
        fingerprint: "same".into(),
    });
    let first = valid(store.place_order(keyed.clone()).await, "place").order;
    let mut orders = vec![first.clone()];
    for answer in store
        .place_orders(vec![
            fx.placement(2, vec![fx.line(&fx.vendor_a, 1)]),
            fx.placement(3, vec![fx.line(&fx.vendor_a, 1)]),
        ])
        .await
    {
        orders.push(valid(answer, "batch").order);
    }
    let numbers: Vec<u64> = orders
        .iter()
        .map(|o| {
            o.number
                .unwrap_or_else(|| panic!("order {} has no number", o.id))
        })
        .collect();
    let distinct: std::collections::BTreeSet<_> = numbers.iter().collect();
    assert_eq!(
        distinct.len(),
        numbers.len(),
        "numbers are unique: {numbers:?}"
    );
    for order in &orders {
        let read = valid(store.order(order.id).await, "read");
        assert_eq!(
            read.number, order.number,
            "a read answers the number placed"
        );
        assert_eq!(read.order_number(), order.order_number());
    }
    let replay = valid(store.place_order(keyed).await, "replay");
    assert!(replay.replayed);
    assert_eq!(
        replay.order.number, first.number,
        "a replay answers the same number"
    );
    let confirmed = valid(
        store
            .transition(&confirm_transition(&first, &fx, fx.now), &[])
            .await,
        "confirm",
    );
    assert_eq!(confirmed.number, first.number, "a change keeps the number");
    let listed = valid(
        store
            .orders(&OrderQuery {
                customer: Some(fx.details(2).customer),
                status: None,
                offset: 0,
                limit: 10,
            })
            .await,
        "list",
    );
    assert_eq!(listed.items.len(), 1);
    assert_eq!(
        listed.items[0].number, orders[1].number,
        "lists carry the number"
    );
}

/// Orders read together are each what a read of one answers: every id that has an
/// order brings it once (an id asked twice too), an id with none is left out, and no
/// ids read nothing.
pub async fn orders_read_together_are_each_as_read_alone(store: &dyn StockStore) {
    let fx = Fixture::new(store, 20, 0).await;
    let mut placed = Vec::new();
    for customer in 1..=3 {
        let placement = fx.placement(customer, vec![fx.line(&fx.vendor_a, 1)]);
        placed.push(valid(store.place_order(placement).await, "place").order);
    }
    let confirmed = valid(
        store
            .transition(&confirm_transition(&placed[2], &fx, fx.now), &[])
            .await,
        "confirm",
    );
    let unknown = crate::domain::OrderId::new();
    let asked = [
        placed[0].id,
        unknown,
        placed[1].id,
        placed[0].id,
        confirmed.id,
    ];
    let mut read = valid(store.orders_by_id(&asked).await, "read together");
    read.sort_by_key(|order| order.id);
    let mut alone = Vec::new();
    for order in [&placed[0], &placed[1], &confirmed] {
        alone.push(valid(store.order(order.id).await, "read alone"));
    }
    alone.sort_by_key(|order| order.id);
    assert_eq!(read, alone, "each order once, as a read of one answers");
    assert!(
        valid(store.orders_by_id(&[]).await, "no ids").is_empty(),
        "no ids read nothing"
    );
    assert!(
        valid(store.orders_by_id(&[unknown]).await, "unknown").is_empty(),
        "an id with no order is left out"
    );
    drain_outbox(store, &fx).await;
}
