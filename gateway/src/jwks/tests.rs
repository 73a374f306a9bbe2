//! The unknown-`kid` gate on a paused clock, with a hand-driven stand-in for the refresher:
//! one fetch per cooldown (at once, or trailing at the cooldown's end), a pending fetch shared
//! by every waiter, a bounded wait and a bounded number of waiters.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::{JwksCache, JwksConfig, KeySet};

/// A cache whose "refresher" answers each wake-up after `fetch_takes` (never, if `None`).
fn cache_with_fake_refresher(fetch_takes: Option<Duration>) -> JwksCache {
    let mut config = JwksConfig::for_url("http://127.0.0.1:9/never-fetched");
    config.unknown_kid_cooldown = Duration::from_secs(30);
    let cache = JwksCache::new(config);
    cache.store(KeySet::default());
    let refresher = cache.clone();
    tokio::spawn(async move {
        let shared = &refresher.shared;
        loop {
            shared.wake_refresher.notified().await;
            let number = shared.started.fetch_add(1, Ordering::SeqCst) + 1;
            match fetch_takes {
                Some(delay) => tokio::time::sleep(delay).await,
                None => std::future::pending().await,
            }
            refresher.store(KeySet::default());
            shared.completed.send_replace(number);
        }
    });
    cache
}

fn fetches(cache: &JwksCache) -> u64 {
    cache.shared.started.load(Ordering::SeqCst)
}

#[tokio::test(start_paused = true)]
async fn concurrent_unknown_kids_share_one_fetch_then_one_trailing_fetch_per_cooldown() {
    let cache = cache_with_fake_refresher(Some(Duration::from_millis(300)));
    let started = Instant::now();
    let (a, b, c) = tokio::join!(
        cache.refresh_for_unknown_kid(),
        cache.refresh_for_unknown_kid(),
        cache.refresh_for_unknown_kid(),
    );
    assert!(a.is_some() && b.is_some() && c.is_some());
    assert_eq!(fetches(&cache), 1);
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(300),
        "all waited for that fetch"
    );

    // Within the cooldown: no fetch now, one trailing fetch at the cooldown's end, shared by
    // every unknown kid that arrives meanwhile.
    tokio::time::advance(Duration::from_secs(28)).await;
    let before = Instant::now();
    let (a, b) = tokio::join!(cache.refresh_for_unknown_kid(), async {
        tokio::time::advance(Duration::from_millis(500)).await;
        cache.refresh_for_unknown_kid().await
    });
    assert!(a.is_some() && b.is_some());
    assert_eq!(fetches(&cache), 2, "one trailing fetch for both");
    // The cooldown ends 30 s after the first fetch was asked for; the fetch takes 300 ms.
    assert_eq!(
        before.elapsed(),
        Duration::from_secs(2),
        "waited for the trailing fetch"
    );
    assert_eq!(cache.shared.metrics.unknown_kid_fetches.get(), 2);
    assert_eq!(cache.shared.metrics.unknown_kid_refused.get(), 0);

    // The next cooldown runs from the trailing fetch: its own trailing fetch 30 s on.
    let before = Instant::now();
    assert!(cache.refresh_for_unknown_kid().await.is_some());
    assert_eq!(fetches(&cache), 3);
    assert_eq!(before.elapsed(), Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn a_steady_stream_of_unknown_kids_costs_one_fetch_per_cooldown() {
    let cache = cache_with_fake_refresher(Some(Duration::from_millis(10)));
    let started = Instant::now();
    // One unknown kid every 100 ms for 95 s of paused time.
    let mut callers = Vec::new();
    for _ in 0..950 {
        let cache = cache.clone();
        callers.push(tokio::spawn(async move {
            cache.refresh_for_unknown_kid().await
        }));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for caller in callers {
        assert!(caller.await.unwrap().is_some());
    }
    // Fetches asked for at 0, 30, 60 and 90 s, then the last callers' trailing one at 120 s.
    assert_eq!(fetches(&cache), 5, "{:?}", started.elapsed());
}

#[tokio::test(start_paused = true)]
async fn beyond_the_waiter_bound_an_unknown_kid_is_answered_at_once() {
    let cache = cache_with_fake_refresher(None);
    let waiting: Vec<_> = (0..super::MAX_UNKNOWN_KID_WAITERS)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.refresh_for_unknown_kid().await })
        })
        .collect();
    // Let every waiter take its place.
    tokio::time::sleep(Duration::from_millis(1)).await;
    let before = Instant::now();
    assert!(cache.refresh_for_unknown_kid().await.is_some());
    assert_eq!(before.elapsed(), Duration::ZERO, "answered without waiting");
    assert_eq!(cache.shared.metrics.unknown_kid_refused.get(), 1);
    for waiter in waiting {
        assert!(waiter.await.unwrap().is_some());
    }
    assert_eq!(fetches(&cache), 1);
}

#[tokio::test(start_paused = true)]
async fn waiting_for_a_stalled_fetch_is_bounded() {
    let cache = cache_with_fake_refresher(None);
    let started = Instant::now();
    // The answer is the set as it is: the caller then refuses the unknown kid.
    assert!(cache.refresh_for_unknown_kid().await.is_some());
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    // A second caller during the cooldown shares the still-pending fetch, bounded too.
    let again = Instant::now();
    assert!(cache.refresh_for_unknown_kid().await.is_some());
    assert_eq!(again.elapsed(), Duration::from_secs(2));
    assert_eq!(fetches(&cache), 1);
}

#[tokio::test(start_paused = true)]
async fn the_key_set_goes_stale_after_the_bound() {
    let mut config = JwksConfig::for_url("http://127.0.0.1:9/never-fetched");
    config.stale_if_error = Duration::from_secs(60);
    let cache = JwksCache::new(config);
    assert!(!cache.is_ready(), "not ready before the first set");
    cache.store(KeySet::default());
    assert!(cache.is_ready());
    tokio::time::advance(Duration::from_secs(60)).await;
    assert!(cache.is_ready(), "exactly at the bound it still serves");
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(!cache.is_ready());
    assert!(cache.current().is_err());
}
