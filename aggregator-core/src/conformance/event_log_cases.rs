//! Cases about the order event log: every change logged once, in order, resumable,
//! pruned as a prefix.

use std::time::{Duration as StdDuration, Instant};

use time::Duration;

use super::fixture::{Fixture, valid};
use super::order_cases::change;
use crate::domain::{
    CustomerId, EventCursor, EventRead, LoggedOrderEvent, Order, OrderStatus, StatusChange,
};
use crate::traits::StockStore;

/// Reads `customer`'s events after `after` until `count` have arrived (a store may show
/// an event only once every transaction before it has ended), waiting at most 10 s.
async fn read_events(
    store: &dyn StockStore,
    after: Option<EventCursor>,
    customer: &CustomerId,
    count: usize,
) -> Vec<LoggedOrderEvent> {
    let deadline = Instant::now() + StdDuration::from_secs(10);
    loop {
        match valid(
            store.order_events_after(after, Some(customer), 1_000).await,
            "read events",
        ) {
            EventRead::Events(events) if events.len() >= count || Instant::now() > deadline => {
                return events;
            }
            EventRead::Events(_) => tokio::time::sleep(StdDuration::from_millis(20)).await,
            EventRead::Gone { resume_from } => {
                panic!("a position the log gave is gone (resume from {resume_from:?})")
            }
        }
    }
}

/// Every change of every order is logged once, with its customer, version and reason,
/// whether made one by one or in batches; one order's events come in version order; a
/// customer reads only its own.
pub async fn every_order_change_is_logged_once_in_version_order(store: &dyn StockStore) {
    let fx = Fixture::new(store, 20, 0).await;
    let one = valid(fx.place(store, &fx.vendor_a, 1, 1).await, "place").order;
    let cancelled = valid(
        store
            .transition(&change(&one, StatusChange::Cancel, fx.now), &[])
            .await,
        "cancel",
    );
    let batch: Vec<Order> = store
        .place_orders(vec![
            fx.placement(2, vec![fx.line(&fx.vendor_a, 1)]),
            fx.placement(2, vec![fx.line(&fx.vendor_a, 2)]),
        ])
        .await
        .into_iter()
        .map(|placed| valid(placed, "batch placement").order)
        .collect();
    let changed: Vec<Order> = store
        .transitions(vec![
            (change(&batch[0], StatusChange::Fail, fx.now), Vec::new()),
            (change(&batch[1], StatusChange::Expire, fx.now), Vec::new()),
        ])
        .await
        .into_iter()
        .map(|changed| valid(changed, "batch change"))
        .collect();

    let first = fx.details(1).customer;
    let events = read_events(store, None, &first, 2).await;
    let seen: Vec<_> = events
        .iter()
        .map(|e| (e.order_id, e.change.from, e.change.to, e.change.version))
        .collect();
    assert_eq!(
        seen,
        vec![
            (one.id, None, OrderStatus::Reserved, 1),
            (
                one.id,
                Some(OrderStatus::Reserved),
                OrderStatus::Cancelled,
                2
            ),
        ],
        "customer 1 reads exactly its order's two changes"
    );
    assert_eq!(
        events[1].change, cancelled.events[1],
        "as the order records it"
    );
    assert_eq!(events[0].id, format!("{}:v1", one.id));
    assert_eq!(events[1].id, format!("{}:v2", one.id));
    assert!(events.iter().all(|e| e.customer_id == first));
    assert!(events[0].cursor < events[1].cursor);

    let second = fx.details(2).customer;
    let events = read_events(store, None, &second, 4).await;
    assert_eq!(events.len(), 4, "{events:?}");
    for order in &changed {
        let versions: Vec<_> = events
            .iter()
            .filter(|e| e.order_id == order.id)
            .map(|e| (e.change.version, e.change.to))
            .collect();
        assert_eq!(
            versions,
            vec![(1, OrderStatus::Reserved), (2, order.status)],
            "one order's events in version order"
        );
    }
    let again = read_events(store, None, &second, 4).await;
    assert_eq!(again, events, "reading again reads the same events");
}

/// A reader goes on after any position it was given, a page holds at most the limit,
/// a position never given reads as gone, and pruning forgets a prefix of the log:
/// positions inside it read as gone, with where to go on from.
pub async fn the_event_log_resumes_pages_and_prunes(store: &dyn StockStore) {
    let fx = Fixture::new(store, 20, 0).await;
    let mut order = valid(fx.place(store, &fx.vendor_a, 1, 7).await, "place").order;
    order = valid(
        store
            .transition(&change(&order, StatusChange::Fail, fx.now), &[])
            .await,
        "fail",
    );
    assert_eq!(order.version, 2);
    let customer = fx.details(7).customer;
    let events = read_events(store, None, &customer, 2).await;
    let (first, second) = (
        events[0].cursor.expect("cursor"),
        events[1].cursor.expect("cursor"),
    );
    let rest = read_events(store, Some(first), &customer, 1).await;
    assert_eq!(rest, events[1..].to_vec(), "goes on after a position");
    let page = valid(
        store.order_events_after(None, Some(&customer), 1).await,
        "one",
    );
    assert_eq!(
        page,
        EventRead::Events(events[..1].to_vec()),
        "at most the limit"
    );
    assert_eq!(
        valid(
            store
                .order_events_after(Some(second), Some(&customer), 10)
                .await,
            "at the end"
        ),
        EventRead::Events(Vec::new()),
        "nothing after the newest event yet"
    );

    let never = EventCursor::new(second.epoch() + 1_000_000_000, 1);
    assert!(
        matches!(
            valid(
                store.order_events_after(Some(never), None, 10).await,
                "never given"
            ),
            EventRead::Gone { .. }
        ),
        "a position past the log is gone"
    );

    // Prune everything logged until a moment from now (waiting, like a reader, for
    // every transaction before it to end).
    let later = fx.now + Duration::days(365);
    let deadline = Instant::now() + StdDuration::from_secs(10);
    let resume_from = loop {
        valid(store.prune_order_events(later, 100_000).await, "prune");
        match valid(
            store.order_events_after(Some(first), None, 10).await,
            "read",
        ) {
            EventRead::Gone { resume_from } => break resume_from,
            EventRead::Events(_) if Instant::now() < deadline => {
                tokio::time::sleep(StdDuration::from_millis(20)).await;
            }
            EventRead::Events(events) => panic!("pruned events still read: {events:?}"),
        }
    };
    let resume_from = resume_from.expect("pruning names where to go on from");
    assert!(
        resume_from >= second,
        "the pruned prefix covers both events"
    );
    assert!(
        matches!(
            valid(
                store.order_events_after(Some(resume_from), None, 10).await,
                "from there"
            ),
            EventRead::Events(_)
        ),
        "the log goes on from where pruning left it"
    );
    assert_eq!(
        valid(
            store.order_events_after(None, Some(&customer), 10).await,
            "from the start"
        ),
        EventRead::Events(Vec::new()),
        "the customer's events are forgotten"
    );
    assert_eq!(
        valid(store.prune_order_events(later, 100_000).await, "again"),
        0,
        "nothing left to prune"
    );
}

/// The log's head is the newest readable event: reading from it gives only what comes
/// after, and every event logged later lies after it.
pub async fn the_event_log_head_is_where_a_new_reader_starts(store: &dyn StockStore) {
    let fx = Fixture::new(store, 5, 0).await;
    valid(
        fx.place(store, &fx.vendor_a, 1, 1).await,
        "an earlier order",
    );
    // Wait until the earlier order's event is readable, then take the head.
    let deadline = Instant::now() + StdDuration::from_secs(10);
    let head = loop {
        let head = valid(store.order_events_head().await, "head");
        let customer = fx.details(1).customer;
        let seen = match valid(
            store.order_events_after(None, Some(&customer), 10).await,
            "read",
        ) {
            EventRead::Events(events) => events.last().and_then(|event| event.cursor),
            EventRead::Gone { .. } => None,
        };
        match (head, seen) {
            (Some(head), Some(seen)) if head >= seen => break head,
            _ if Instant::now() < deadline => {
                tokio::time::sleep(StdDuration::from_millis(20)).await;
            }
            _ => panic!("the head never reached the readable event"),
        }
    };
    let later = valid(fx.place(store, &fx.vendor_a, 1, 2).await, "a later order").order;
    let deadline = Instant::now() + StdDuration::from_secs(10);
    loop {
        match valid(
            store.order_events_after(Some(head), None, 1_000).await,
            "read",
        ) {
            EventRead::Events(events) => {
                assert!(
                    events.iter().all(|event| event.cursor > Some(head)),
                    "only events after the head"
                );
                if events.iter().any(|event| event.order_id == later.id) {
                    break;
                }
            }
            EventRead::Gone { .. } => panic!("the head is a position readers may use"),
        }
        assert!(
            Instant::now() < deadline,
            "the later event is read after the head"
        );
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
}
