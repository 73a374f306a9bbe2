//! The one background task that fetches the key set: at start, on schedule (`max-age` within
//! bounds, else the configured interval), early when an unknown `kid` asks, and after failures
//! with exponential backoff and jitter. Readers never wait on it; it swaps the set in whole.
//! While no usable set exists (none loaded yet, or the last one past stale-if-error) every
//! protected request gets 503, so the backoff then stays within the unknown-`kid` cooldown:
//! the gateway recovers within seconds of the issuer, at the issuer load a flood of unknown
//! `kid`s may cause anyway.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::fetch::{loggable_url, FetchError, Fetched, Fetcher};
use super::metrics::FetchLabels;
use super::{JwksCache, Serving};

/// First retry delay after a failure; doubles per consecutive failure.
const INITIAL_BACKOFF: Duration = Duration::from_millis(250);
/// Ceiling of the retry delay while a usable key set serves, further capped by the refresh
/// interval and by the time the set has left. Without one, the unknown-`kid` cooldown is.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Runs until `shutdown` is cancelled.
pub async fn run(cache: JwksCache, fetcher: Fetcher, shutdown: CancellationToken) {
    run_with(cache, || fetcher.fetch(), shutdown).await;
}

/// [`run`] with any fetch: the tests drive it with a scripted issuer on a paused clock.
pub(super) async fn run_with<F, Fut>(cache: JwksCache, mut fetch: F, shutdown: CancellationToken)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Fetched, FetchError>>,
{
    let shared = &cache.shared;
    let config = &shared.config;
    let mut failures: u32 = 0;
    let url = loggable_url(&config.url);
    loop {
        let number = shared.started.fetch_add(1, Ordering::SeqCst) + 1;
        let result = tokio::select! {
            () = shutdown.cancelled() => return,
            result = fetch() => result,
        };
        let next = match result {
            Ok(Fetched {
                keys,
                skipped,
                max_age,
            }) => {
                failures = 0;
                shared
                    .metrics
                    .fetches
                    .get_or_create(&FetchLabels { result: "ok" })
                    .inc();
                tracing::info!(keys = keys.len(), skipped, "JWKS loaded");
                let next = max_age.map_or(config.refresh_interval, |age| {
                    age.clamp(config.min_refresh_interval, config.max_refresh_interval)
                });
                cache.store(keys, next);
                next
            }
            Err(err) => {
                failures = failures.saturating_add(1);
                shared.metrics.failures.inc();
                shared
                    .metrics
                    .fetches
                    .get_or_create(&FetchLabels {
                        result: err.label(),
                    })
                    .inc();
                let serving = cache.fetch_failed();
                tracing::warn!(
                    url = %url,
                    cause = err.label(),
                    failures,
                    key_set_age_secs = cache.age().map(|age| age.as_secs()),
                    "{}",
                    failure_message(&url, &err, serving, config.stale_if_error)
                );
                retry_delay(failures, cache.usable_for(), config)
            }
        };
        shared.completed.send_replace(number);
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(next) => {}
            () = shared.wake_refresher.notified() => {}
        }
    }
}

/// The warning for a failed fetch: which URL, why, and what the gateway does meanwhile, so
/// that one line tells an operator whether users are affected yet.
fn failure_message(
    url: &str,
    err: &FetchError,
    serving: Serving,
    stale_if_error: Duration,
) -> String {
    let serving = match serving {
        Serving::Nothing => {
            "no key set was ever loaded: protected requests get 503 until a fetch succeeds"
                .to_owned()
        }
        Serving::Expired { age } => format!(
            "the last good key set, fetched {} s ago, is past JWKS_STALE_IF_ERROR_SECS \
             ({} s after its refresh was due): protected requests get 503 until a fetch \
             succeeds",
            age.as_secs(),
            stale_if_error.as_secs()
        ),
        Serving::Stale { age, left } => {
            let left = left.map_or_else(
                || "without limit".to_owned(),
                |left| format!("for up to {} s more", left.as_secs()),
            );
            format!(
                "still serving the previous key set, fetched {} s ago, {left} \
                 (JWKS_STALE_IF_ERROR_SECS is {} s after its refresh was due)",
                age.as_secs(),
                stale_if_error.as_secs()
            )
        }
    };
    format!("JWKS fetch from {url} failed: {err}; {serving}")
}

/// How long to wait before retrying after `failures` consecutive failures. While a set
/// serves (`usable_for`, its time left), up to a minute, but never past its end; while none
/// does, every protected request gets 503, so at most the unknown-`kid` cooldown.
fn retry_delay(
    failures: u32,
    usable_for: Option<Duration>,
    config: &super::JwksConfig,
) -> Duration {
    match usable_for {
        // Just past the set's end, so that the next failure finds none and retries soon.
        Some(left) => backoff(failures, config.refresh_interval.min(MAX_BACKOFF))
            .min(left.saturating_add(Duration::from_millis(1))),
        None => backoff(failures, config.unknown_kid_cooldown.min(MAX_BACKOFF)),
    }
}

/// Exponential backoff with "equal jitter": half fixed, half random, so many gateways
/// restarted together do not retry in lockstep. The delay is at most `ceiling` (but at least
/// half the initial backoff).
fn backoff(failures: u32, ceiling: Duration) -> Duration {
    let ceiling = ceiling.max(INITIAL_BACKOFF);
    let exp = INITIAL_BACKOFF.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    let delay = exp.min(ceiling);
    let half = delay / 2;
    half + half.mul_f64(random_unit())
}

/// A uniform value in [0, 1) from the system RNG.
fn random_unit() -> f64 {
    let mut bytes = [0u8; 4];
    // The RNG failing is not worth failing a retry over: no jitter then.
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        return 0.0;
    }
    f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_names_the_url_the_cause_and_what_is_served() {
        let url = "http://auth.internal:3000/api/auth/jwks";
        let day = Duration::from_secs(86_400);
        let never = failure_message(url, &FetchError::Refused, Serving::Nothing, day);
        assert_eq!(
            never,
            "JWKS fetch from http://auth.internal:3000/api/auth/jwks failed: connection refused \
             (is the issuer running and listening there?); no key set was ever loaded: \
             protected requests get 503 until a fetch succeeds"
        );
        let serving = Serving::Stale {
            age: Duration::from_secs(42),
            left: Some(Duration::from_secs(86_658)),
        };
        let stale = failure_message(url, &FetchError::Timeout, serving, day);
        assert_eq!(
            stale,
            "JWKS fetch from http://auth.internal:3000/api/auth/jwks failed: timed out; still \
             serving the previous key set, fetched 42 s ago, for up to 86658 s more \
             (JWKS_STALE_IF_ERROR_SECS is 86400 s after its refresh was due)"
        );
        let forever = Serving::Stale {
            age: Duration::from_secs(42),
            left: None,
        };
        let forever = failure_message(url, &FetchError::Timeout, forever, day);
        assert!(
            forever.contains("fetched 42 s ago, without limit"),
            "{forever}"
        );
        let expired = Serving::Expired { age: day * 2 };
        let status = failure_message(url, &FetchError::Status(502), expired, day);
        assert!(
            status.contains("failed: the issuer answered HTTP 502;"),
            "{status}"
        );
        assert!(status.contains("past JWKS_STALE_IF_ERROR_SECS"), "{status}");
        let invalid = serde_json::from_str::<serde_json::Value>("<html>").unwrap_err();
        let parse = failure_message(
            url,
            &FetchError::Invalid(invalid.into()),
            Serving::Nothing,
            day,
        );
        assert!(
            parse.contains("failed: the answer is not a usable key set: not a JWKS document"),
            "{parse}"
        );
    }

    #[test]
    fn backoff_grows_and_stays_bounded() {
        let ceiling = Duration::from_secs(60);
        for failures in 1..40 {
            let delay = backoff(failures, ceiling);
            let full = INITIAL_BACKOFF
                .saturating_mul(1 << (failures - 1).min(16))
                .min(ceiling);
            assert!(delay >= full / 2 && delay <= full, "{failures}: {delay:?}");
        }
        assert!(backoff(30, Duration::from_secs(1)) <= Duration::from_secs(1));
        assert!(backoff(30, Duration::ZERO) <= INITIAL_BACKOFF);
    }

    #[test]
    fn without_usable_keys_retries_stay_within_the_cooldown() {
        let config = super::super::JwksConfig::for_url("http://127.0.0.1:9/jwks");
        for failures in 1..40 {
            // None serves: within the unknown-kid cooldown (3 s).
            let delay = retry_delay(failures, None, &config);
            assert!(
                delay <= config.unknown_kid_cooldown,
                "{failures}: {delay:?}"
            );
            // One serves for long: up to a minute.
            let delay = retry_delay(failures, Some(Duration::MAX), &config);
            assert!(delay <= MAX_BACKOFF, "{failures}: {delay:?}");
            // One serves for 2 s more: retried just after its end at the latest.
            let delay = retry_delay(failures, Some(Duration::from_secs(2)), &config);
            assert!(
                delay <= Duration::from_millis(2001),
                "{failures}: {delay:?}"
            );
        }
        let delay = retry_delay(20, Some(Duration::MAX), &config);
        assert!(delay >= MAX_BACKOFF / 2, "{delay:?}");
    }
}
