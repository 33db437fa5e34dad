//! Cases about queues: acks, retries with growing delays, dead letters, redelivery.

use std::time::Duration;

use tokio::time::{Instant, timeout};

use super::fixture::valid;
use crate::domain::{Message, OrderId, OrderMessage, QueueName};
use crate::traits::{
    Delivery, OrderQueue, QueueDepth, QueuePart, RetryOutcome, RetryPolicy, Subscription,
};

/// How long a case waits for a delivery that should come.
const PATIENCE: Duration = Duration::from_secs(30);
/// How long a case waits to be sure a delivery does not come.
const QUIET: Duration = Duration::from_millis(300);

fn message() -> Message {
    valid(
        Message::json(&OrderMessage::ProcessOrder {
            order: OrderId::new(),
        }),
        "message",
    )
}

async fn next(subscription: &mut Box<dyn Subscription>) -> Delivery {
    match timeout(PATIENCE, subscription.next()).await {
        Ok(delivery) => valid(delivery, "next delivery"),
        Err(_) => panic!("no delivery within {PATIENCE:?}"),
    }
}

async fn assert_quiet(subscription: &mut Box<dyn Subscription>) {
    if let Ok(delivery) = timeout(QUIET, subscription.next()).await {
        panic!("unexpected delivery: {delivery:?}");
    }
}

/// A published message is delivered as attempt 1 and, once acked, never again.
pub async fn publish_consume_ack(queue: &dyn OrderQueue) {
    let sent = message();
    valid(queue.publish(QueueName::Orders, &sent).await, "publish");
    let mut subscription = valid(queue.subscribe(QueueName::Orders, 4).await, "subscribe");
    let delivery = next(&mut subscription).await;
    assert_eq!(delivery.message, sent);
    assert_eq!((delivery.attempt, delivery.redelivered), (1, false));
    assert_eq!(delivery.last_error, None);
    valid(delivery.ack().await, "ack");
    assert_quiet(&mut subscription).await;
    let other = valid(queue.subscribe(QueueName::StockSync, 1).await, "subscribe");
    let mut other = other;
    assert_quiet(&mut other).await;
}

/// Each retry comes back as the next attempt, no sooner than the policy's delay, with
/// the reason; after the last attempt it is a dead letter (listed without being lost),
/// and a replay delivers it again.
pub async fn retries_count_attempts_then_dead_letter_and_replay(
    queue: &dyn OrderQueue,
    policy: &RetryPolicy,
) {
    let sent = message();
    valid(queue.publish(QueueName::Orders, &sent).await, "publish");
    let mut subscription = valid(queue.subscribe(QueueName::Orders, 1).await, "subscribe");
    let max = policy.max_attempts();
    for attempt in 1..=max {
        let delivery = next(&mut subscription).await;
        assert_eq!(delivery.message.id, sent.id);
        assert_eq!(delivery.attempt, attempt, "attempts count from 1");
        if attempt > 1 {
            assert_eq!(
                delivery.last_error.as_deref(),
                Some(format!("failure {}", attempt - 1).as_str())
            );
        }
        let started = Instant::now();
        let outcome = valid(delivery.retry(&format!("failure {attempt}")).await, "retry");
        match (outcome, policy.delay_after(attempt)) {
            (
                RetryOutcome::Scheduled {
                    attempt: next_attempt,
                    delay,
                },
                Some(expected),
            ) => {
                assert_eq!((next_attempt, delay), (attempt + 1, expected));
                let again = next(&mut subscription).await;
                let waited = started.elapsed();
                assert!(
                    waited + Duration::from_millis(5) >= expected,
                    "came back after {waited:?}, before {expected:?}"
                );
                // Put it back the way it came for the next turn of the loop.
                drop(again);
            }
            (RetryOutcome::DeadLettered, None) => {}
            (outcome, expected) => {
                panic!("attempt {attempt}: got {outcome:?}, expected delay {expected:?}")
            }
        }
    }
    assert_quiet(&mut subscription).await;
    let dead = valid(
        queue.dead_letters(QueueName::Orders, 100).await,
        "dead letters",
    );
    let letter = dead
        .iter()
        .find(|d| d.message.id == sent.id)
        .expect("dead-lettered");
    assert_eq!(letter.attempts, max);
    assert_eq!(letter.reason, format!("failure {max}"));
    assert_eq!(letter.queue, QueueName::Orders);
    let listed_again = valid(
        queue.dead_letters(QueueName::Orders, 100).await,
        "dead letters",
    );
    assert!(
        listed_again.iter().any(|d| d.message.id == sent.id),
        "listing loses nothing"
    );

    let replayed = valid(
        queue
            .replay_dead_letters(QueueName::Orders, Some(sent.id))
            .await,
        "replay",
    );
    assert_eq!(replayed, 1);
    let delivery = next(&mut subscription).await;
    assert_eq!((delivery.message.id, delivery.attempt), (sent.id, 1));
    valid(delivery.ack().await, "ack");
    let dead = valid(
        queue.dead_letters(QueueName::Orders, 100).await,
        "dead letters",
    );
    assert!(
        !dead.iter().any(|d| d.message.id == sent.id),
        "replay removed it"
    );
}

/// A message that can never succeed is dead-lettered at once with its reason; replaying
/// one id leaves the others.
pub async fn dead_letter_at_once_and_replay_one(queue: &dyn OrderQueue) {
    let (first, second) = (message(), message());
    valid(queue.publish(QueueName::StockSync, &first).await, "publish");
    valid(
        queue.publish(QueueName::StockSync, &second).await,
        "publish",
    );
    let mut subscription = valid(queue.subscribe(QueueName::StockSync, 2).await, "subscribe");
    for _ in 0..2 {
        let delivery = next(&mut subscription).await;
        valid(delivery.dead_letter("malformed body").await, "dead letter");
    }
    let dead = valid(
        queue.dead_letters(QueueName::StockSync, 100).await,
        "dead letters",
    );
    for sent in [&first, &second] {
        let letter = dead
            .iter()
            .find(|d| d.message.id == sent.id)
            .expect("dead-lettered");
        assert_eq!(
            (letter.attempts, letter.reason.as_str()),
            (1, "malformed body")
        );
    }
    let dead_orders = valid(
        queue.dead_letters(QueueName::Orders, 100).await,
        "other queue",
    );
    assert!(
        !dead_orders.iter().any(|d| d.message.id == first.id),
        "queues are separate"
    );
    assert_eq!(
        valid(
            queue
                .replay_dead_letters(QueueName::StockSync, Some(first.id))
                .await,
            "replay"
        ),
        1
    );
    let delivery = next(&mut subscription).await;
    assert_eq!(delivery.message.id, first.id);
    valid(delivery.ack().await, "ack");
    let dead = valid(
        queue.dead_letters(QueueName::StockSync, 100).await,
        "dead letters",
    );
    assert!(
        dead.iter().any(|d| d.message.id == second.id),
        "the other stays"
    );
    assert!(
        valid(
            queue.replay_dead_letters(QueueName::StockSync, None).await,
            "replay all"
        ) >= 1
    );
    let delivery = next(&mut subscription).await;
    assert_eq!(delivery.message.id, second.id);
    valid(delivery.ack().await, "ack");
}

/// A delivery whose consumer goes away without settling it comes to another consumer,
/// flagged as redelivered.
pub async fn unsettled_delivery_is_redelivered(queue: &dyn OrderQueue) {
    let sent = message();
    valid(queue.publish(QueueName::Orders, &sent).await, "publish");
    let mut first = valid(queue.subscribe(QueueName::Orders, 1).await, "subscribe");
    let delivery = next(&mut first).await;
    assert_eq!(delivery.message.id, sent.id);
    drop(delivery);
    drop(first);
    let mut second = valid(queue.subscribe(QueueName::Orders, 1).await, "subscribe");
    let again = next(&mut second).await;
    assert_eq!(again.message.id, sent.id);
    assert!(again.redelivered, "flagged as redelivered");
    valid(again.ack().await, "ack");
}

/// With prefetch 1, a second delivery waits until the first is settled.
pub async fn prefetch_bounds_unsettled_deliveries(queue: &dyn OrderQueue) {
    let (first, second) = (message(), message());
    valid(queue.publish(QueueName::Orders, &first).await, "publish");
    valid(queue.publish(QueueName::Orders, &second).await, "publish");
    let mut subscription = valid(queue.subscribe(QueueName::Orders, 1).await, "subscribe");
    let delivery = next(&mut subscription).await;
    assert!(
        timeout(QUIET, subscription.next()).await.is_err(),
        "a second delivery came while the first was unsettled"
    );
    valid(delivery.ack().await, "ack");
    let delivery = next(&mut subscription).await;
    valid(delivery.ack().await, "ack");
    assert!(
        valid(
            queue
                .subscribe(QueueName::Orders, 0)
                .await
                .map(|_| false)
                .or_else(|e| match e {
                    crate::Error::Invalid { .. } => Ok(true),
                    other => Err(other),
                }),
            "prefetch 0"
        ),
        "prefetch 0 is refused"
    );
}

/// The messages waiting in `part` of `queue`.
fn waiting(depths: &[QueueDepth], part: QueuePart) -> u64 {
    depths.iter().find(|depth| depth.part == part).map_or_else(
        || panic!("no {part:?} in {depths:?}"),
        |depth| depth.messages,
    )
}

/// Polls `depths` of `queue` until `wanted` holds (counts may lag a settle a little).
async fn depths_until(
    queue: &dyn OrderQueue,
    what: &str,
    wanted: impl Fn(&[QueueDepth]) -> bool,
) -> Vec<QueueDepth> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let depths = valid(queue.depths(QueueName::Orders).await, "depths");
        if wanted(&depths) {
            return depths;
        }
        assert!(Instant::now() < deadline, "{what}: still {depths:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Depths list the ready part, one part per retry delay and the dead letters, count
/// what waits in each, and reading them touches no message: what was counted is then
/// delivered as a first delivery, not a redelivery.
pub async fn depths_count_waiting_messages_without_touching_them(
    queue: &dyn OrderQueue,
    policy: &RetryPolicy,
) {
    let before = valid(queue.depths(QueueName::Orders).await, "depths");
    let mut parts: Vec<QueuePart> = before.iter().map(|depth| depth.part).collect();
    parts.sort();
    let mut expected = vec![QueuePart::Ready, QueuePart::DeadLetters];
    expected.extend(
        (1_u32..)
            .take(policy.delays().len())
            .map(|failed_attempt| QueuePart::Retry { failed_attempt }),
    );
    expected.sort();
    assert_eq!(parts, expected, "every part is listed once");
    let names: Vec<String> = before.iter().map(QueueDepth::name).collect();
    assert!(names.contains(&"order_queue".to_owned()), "{names:?}");
    assert!(
        names.contains(&"order_queue.retry.1".to_owned()),
        "{names:?}"
    );
    assert!(names.contains(&"order_queue.dlq".to_owned()), "{names:?}");
    let (ready, dead) = (
        waiting(&before, QueuePart::Ready),
        waiting(&before, QueuePart::DeadLetters),
    );

    let sent = [message(), message(), message()];
    for message in &sent {
        valid(queue.publish(QueueName::Orders, message).await, "publish");
    }
    depths_until(queue, "three published", |depths| {
        waiting(depths, QueuePart::Ready) == ready + 3
    })
    .await;
    // Counted twice more: counting must not touch them.
    valid(queue.depths(QueueName::Orders).await, "depths");
    valid(queue.depths(QueueName::Orders).await, "depths");

    let mut subscription = valid(queue.subscribe(QueueName::Orders, 1).await, "subscribe");
    let first = next(&mut subscription).await;
    assert!(!first.redelivered, "counting marked a message redelivered");
    let dead_id = first.message.id;
    valid(first.dead_letter("counted").await, "dead letter");
    for _ in 0..2 {
        let delivery = next(&mut subscription).await;
        assert!(
            !delivery.redelivered,
            "counting marked a message redelivered"
        );
        valid(delivery.ack().await, "ack");
    }
    depths_until(queue, "one dead letter, none ready", |depths| {
        waiting(depths, QueuePart::Ready) == ready
            && waiting(depths, QueuePart::DeadLetters) == dead + 1
    })
    .await;

    assert_eq!(
        valid(
            queue
                .replay_dead_letters(QueueName::Orders, Some(dead_id))
                .await,
            "replay"
        ),
        1
    );
    let replayed = next(&mut subscription).await;
    assert_eq!(replayed.message.id, dead_id);
    valid(replayed.ack().await, "ack");
}
