//! Cases about the cache and rate limiter.

use std::time::Duration;

use futures_util::future::join_all;
use uuid::Uuid;

use super::fixture::valid;
use crate::traits::{Cache, RateLimit};

fn prefix() -> String {
    format!("conformance:{}:", Uuid::now_v7().simple())
}

/// What is set reads back until deleted; missing keys read as none.
pub async fn cache_get_set_delete(cache: &dyn Cache) {
    let key = format!("{}availability", prefix());
    assert_eq!(valid(cache.get(&key).await, "get missing"), None);
    valid(cache.set(&key, b"42", Duration::from_secs(60)).await, "set");
    assert_eq!(valid(cache.get(&key).await, "get"), Some(b"42".to_vec()));
    valid(
        cache.set(&key, b"41", Duration::from_secs(60)).await,
        "overwrite",
    );
    assert_eq!(valid(cache.get(&key).await, "get"), Some(b"41".to_vec()));
    valid(cache.delete(&key).await, "delete");
    assert_eq!(valid(cache.get(&key).await, "get deleted"), None);
    valid(cache.delete(&key).await, "delete missing");
    let others: Vec<String> = (0..3).map(|n| format!("{key}-{n}")).collect();
    for other in &others {
        valid(cache.set(other, b"x", Duration::from_secs(60)).await, "set");
    }
    let mut doomed = others[..2].to_vec();
    doomed.push(format!("{key}-missing"));
    valid(cache.delete_many(&doomed).await, "delete many");
    assert_eq!(valid(cache.get(&others[0]).await, "deleted"), None);
    assert_eq!(valid(cache.get(&others[1]).await, "deleted"), None);
    assert!(
        valid(cache.get(&others[2]).await, "kept").is_some(),
        "delete_many removes only the keys it is given"
    );
    valid(cache.delete_many(&[]).await, "delete nothing");
}

/// An entry is gone once its TTL has passed.
pub async fn cache_entries_expire(cache: &dyn Cache) {
    let key = format!("{}short", prefix());
    valid(
        cache.set(&key, b"x", Duration::from_millis(800)).await,
        "set",
    );
    assert!(valid(cache.get(&key).await, "get").is_some());
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    assert_eq!(valid(cache.get(&key).await, "get expired"), None);
}

/// 50 concurrent callers against a limit of 20 per window: exactly 20 are allowed;
/// another key has its own window; the window resets.
pub async fn rate_limit_is_exact_under_concurrency(cache: &dyn Cache) {
    let key = format!("{}client-key", prefix());
    // Long enough that all 50 calls land in one window even on a loaded machine.
    let limit = RateLimit {
        max_requests: 20,
        window: Duration::from_secs(3),
    };
    let decisions = join_all((0..50).map(|_| cache.rate_limit(&key, limit))).await;
    let decisions: Vec<_> = decisions
        .into_iter()
        .map(|d| valid(d, "rate limit"))
        .collect();
    assert_eq!(
        decisions.iter().filter(|d| d.allowed).count(),
        20,
        "exact at the boundary"
    );
    let refused = decisions.iter().find(|d| !d.allowed).expect("some refused");
    assert_eq!(refused.remaining, 0);
    assert!(refused.retry_after <= limit.window && refused.retry_after > Duration::ZERO);

    let other = valid(
        cache.rate_limit(&format!("{key}-other"), limit).await,
        "other key",
    );
    assert!(
        other.allowed && other.remaining == 19,
        "keys are independent"
    );

    tokio::time::sleep(limit.window + Duration::from_millis(200)).await;
    let fresh = valid(cache.rate_limit(&key, limit).await, "after the window");
    assert!(fresh.allowed, "the window resets");
}

/// Calls counted several at once grant what fits in the window and no more: a limit of
/// 20 grants 8, 8, then 4 of 8, then none, and a single call is then refused; another
/// key has its own window.
pub async fn rate_limit_calls_grant_what_fits(cache: &dyn Cache) {
    let key = format!("{}shared-key", prefix());
    let limit = RateLimit {
        max_requests: 20,
        window: Duration::from_secs(3),
    };
    let mut granted = Vec::new();
    for calls in [8, 8, 8, 1] {
        let grant = valid(cache.rate_limit_calls(&key, limit, calls).await, "grant");
        assert!(grant.retry_after <= limit.window && grant.retry_after > Duration::ZERO);
        granted.push(grant.granted);
    }
    assert_eq!(granted, vec![8, 8, 4, 0], "what fits, then nothing");
    let single = valid(cache.rate_limit(&key, limit).await, "single call");
    assert!(!single.allowed && single.remaining == 0);
    let other = valid(
        cache
            .rate_limit_calls(&format!("{key}-other"), limit, 5)
            .await,
        "other key",
    );
    assert_eq!(other.granted, 5, "keys are independent");
}

/// Of many callers setting one absent key at once, exactly one stores its value; the
/// key is free again once it expires or is deleted.
pub async fn set_if_absent_has_one_winner(cache: &dyn Cache) {
    let key = format!("{}claim", prefix());
    let racers = (0..50_u8).map(|n| {
        let key = key.clone();
        async move {
            valid(
                cache
                    .set_if_absent(&key, &[n], Duration::from_secs(60))
                    .await,
                "set if absent",
            )
        }
    });
    let won: Vec<bool> = join_all(racers).await;
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "exactly one winner");
    let winner = won
        .iter()
        .position(|w| *w)
        .and_then(|n| u8::try_from(n).ok());
    assert_eq!(
        valid(cache.get(&key).await, "get").map(|v| v[0]),
        winner,
        "the winner's value is kept"
    );
    valid(cache.delete(&key).await, "delete");
    assert!(valid(
        cache
            .set_if_absent(&key, b"again", Duration::from_millis(500))
            .await,
        "free after delete"
    ));
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(valid(
        cache
            .set_if_absent(&key, b"later", Duration::from_secs(60))
            .await,
        "free after expiry"
    ));
    valid(cache.delete(&key).await, "cleanup");
}

/// Of many takers at once, exactly `max` get a slot; a slot given back can be taken
/// again; one whose holder never gives it back comes free when its time runs out.
pub async fn slots_are_exact_and_come_free(cache: &dyn Cache) {
    let key = format!("{}vendor-in-flight", prefix());
    let long = Duration::from_secs(60);
    let takers = (0..20).map(|_| cache.take_slot(&key, 3, long));
    let taken: Vec<String> = join_all(takers)
        .await
        .into_iter()
        .filter_map(|taken| valid(taken, "take"))
        .collect();
    assert_eq!(taken.len(), 3, "exactly max slots held at once");
    assert_eq!(valid(cache.take_slot(&key, 3, long).await, "full"), None);
    valid(cache.give_back_slot(&key, &taken[0]).await, "give back");
    valid(
        cache.give_back_slot(&key, &taken[0]).await,
        "twice is harmless",
    );
    valid(
        cache.give_back_slot(&key, "never-given").await,
        "unknown is harmless",
    );
    let again = valid(cache.take_slot(&key, 3, long).await, "take again");
    assert!(again.is_some(), "a slot given back can be taken");
    assert_eq!(valid(cache.take_slot(&key, 3, long).await, "full"), None);

    let short = format!("{}short-lived", prefix());
    let held = valid(
        cache.take_slot(&short, 1, Duration::from_millis(200)).await,
        "take",
    );
    assert!(held.is_some());
    assert_eq!(
        valid(
            cache.take_slot(&short, 1, Duration::from_millis(200)).await,
            "held"
        ),
        None
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        valid(
            cache.take_slot(&short, 1, Duration::from_secs(5)).await,
            "free"
        )
        .is_some(),
        "a slot whose holder died comes free when its time runs out"
    );
}
