//! The unknown-`kid` gate on a paused clock, with a hand-driven stand-in for the refresher:
//! one fetch per cooldown, a pending fetch shared by every waiter, and a bounded wait.

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
async fn concurrent_unknown_kids_share_one_fetch_then_wait_out_the_cooldown() {
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

    // Within the cooldown: refused at once, no fetch.
    tokio::time::advance(Duration::from_secs(29)).await;
    let before = Instant::now();
    assert!(cache.refresh_for_unknown_kid().await.is_none());
    assert_eq!(before.elapsed(), Duration::ZERO);
    assert_eq!(fetches(&cache), 1);
    assert_eq!(cache.shared.metrics.unknown_kid_refused.get(), 1);

    // After it: one more fetch.
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(cache.refresh_for_unknown_kid().await.is_some());
    assert_eq!(fetches(&cache), 2);
    assert_eq!(cache.shared.metrics.unknown_kid_fetches.get(), 2);
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
