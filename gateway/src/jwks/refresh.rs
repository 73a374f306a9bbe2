//! The one background task that fetches the key set: at start, on schedule (`max-age` within
//! bounds, else the configured interval), early when an unknown `kid` asks, and after failures
//! with exponential backoff and jitter. Readers never wait on it; it swaps the set in whole.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::fetch::{loggable_url, FetchError, Fetched, Fetcher};
use super::metrics::FetchLabels;
use super::JwksCache;

/// First retry delay after a failure; doubles per consecutive failure.
const INITIAL_BACKOFF: Duration = Duration::from_millis(250);
/// Ceiling of the retry delay, further capped by the refresh interval.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Runs until `shutdown` is cancelled.
pub async fn run(cache: JwksCache, fetcher: Fetcher, shutdown: CancellationToken) {
    let shared = &cache.shared;
    let config = &shared.config;
    let mut failures: u32 = 0;
    let url = loggable_url(&config.url);
    loop {
        let number = shared.started.fetch_add(1, Ordering::SeqCst) + 1;
        let result = tokio::select! {
            () = shutdown.cancelled() => return,
            result = fetcher.fetch() => result,
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
                cache.store(keys);
                max_age.map_or(config.refresh_interval, |age| {
                    age.clamp(config.min_refresh_interval, config.max_refresh_interval)
                })
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
                let age = cache.age();
                tracing::warn!(
                    url = %url,
                    cause = err.label(),
                    failures,
                    key_set_age_secs = age.map(|age| age.as_secs()),
                    "{}",
                    failure_message(&url, &err, age, config.stale_if_error)
                );
                backoff(failures, config.refresh_interval)
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
/// that one line tells an operator whether users are affected yet. `age` is that of the last
/// good key set, if one was ever loaded.
fn failure_message(
    url: &str,
    err: &FetchError,
    age: Option<Duration>,
    stale_if_error: Duration,
) -> String {
    let serving = match age {
        None => "no key set was ever loaded: protected requests get 503 until a fetch succeeds"
            .to_owned(),
        Some(age) if age > stale_if_error => format!(
            "the last good key set, fetched {} s ago, is past JWKS_STALE_IF_ERROR_SECS \
             ({} s): protected requests get 503 until a fetch succeeds",
            age.as_secs(),
            stale_if_error.as_secs()
        ),
        Some(age) => format!(
            "still serving the previous key set, fetched {} s ago (for up to {} s)",
            age.as_secs(),
            stale_if_error.as_secs()
        ),
    };
    format!("JWKS fetch from {url} failed: {err}; {serving}")
}

/// Exponential backoff with "equal jitter": half fixed, half random, so many gateways
/// restarted together do not retry in lockstep.
fn backoff(failures: u32, refresh_interval: Duration) -> Duration {
    let ceiling = MAX_BACKOFF.min(refresh_interval).max(INITIAL_BACKOFF);
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
        let never = failure_message(url, &FetchError::Refused, None, day);
        assert_eq!(
            never,
            "JWKS fetch from http://auth.internal:3000/api/auth/jwks failed: connection refused \
             (is the issuer running and listening there?); no key set was ever loaded: \
             protected requests get 503 until a fetch succeeds"
        );
        let stale = failure_message(
            url,
            &FetchError::Timeout,
            Some(Duration::from_secs(42)),
            day,
        );
        assert_eq!(
            stale,
            "JWKS fetch from http://auth.internal:3000/api/auth/jwks failed: timed out; still \
             serving the previous key set, fetched 42 s ago (for up to 86400 s)"
        );
        let status = failure_message(url, &FetchError::Status(502), Some(day * 2), day);
        assert!(
            status.contains("failed: the issuer answered HTTP 502;"),
            "{status}"
        );
        assert!(status.contains("past JWKS_STALE_IF_ERROR_SECS"), "{status}");
        let invalid = serde_json::from_str::<serde_json::Value>("<html>").unwrap_err();
        let parse = failure_message(url, &FetchError::Invalid(invalid.into()), None, day);
        assert!(
            parse.contains("failed: the answer is not a usable key set: not a JWKS document"),
            "{parse}"
        );
    }

    #[test]
    fn backoff_grows_and_stays_bounded() {
        let interval = Duration::from_secs(300);
        for failures in 1..40 {
            let delay = backoff(failures, interval);
            let full = INITIAL_BACKOFF
                .saturating_mul(1 << (failures - 1).min(16))
                .min(MAX_BACKOFF);
            assert!(delay >= full / 2 && delay <= full, "{failures}: {delay:?}");
        }
        assert!(backoff(30, Duration::from_secs(1)) <= Duration::from_secs(1));
    }
}
