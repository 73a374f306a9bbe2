//! The JWKS cache: fetches the issuer's key set, refreshes it in the background and answers
//! key lookups without ever waiting on the network for known keys.
//!
//! Readers load the current [`KeySet`] through an `ArcSwap` (no lock, and no reference count
//! that every request on every CPU would write); the one background task in `refresh.rs`
//! swaps in a whole new set after each successful fetch. A token
//! naming an unknown `kid` asks for an early fetch: at once if none was asked for within the
//! cooldown, else one "trailing" fetch at the cooldown's end, shared by every unknown kid seen
//! meanwhile. So the issuer sees at most one such fetch per cooldown however many garbage kids
//! arrive, and a key published at any moment is fetched within one cooldown of the first token
//! that names it: bots cannot push an honest rotation out. A bounded number of requests wait
//! for the fetch that answers them; everyone else keeps reading the current set meanwhile.
//! A token whose signature no key under its (known) `kid` verifies asks through the same gate:
//! the key may have been replaced under the same name.
//!
//! A set serves until stale-if-error has passed since the refresh that should have replaced
//! it was due, or since the first fetch that failed after that: never because of its age
//! alone, so a healthy issuer never makes keys unavailable, whatever the refresh interval or
//! `max-age`. The bound is kept with the set (`Current::usable_until`) and checked against
//! the monotonic clock: one comparison per request.
//! Why this replaces jwks-client-rs: see `specs/research.md`.

mod fetch;
pub mod key_set;
mod metrics;
mod refresh;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use prometheus_client::registry::Registry;
use tokio::sync::{watch, Notify, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

// Also for config.rs, whose start-up errors name these URLs without their credentials.
pub use fetch::loggable_url;
pub use key_set::{KeySet, VerifyingKey};

use metrics::JwksMetrics;

/// How the key set is fetched and kept.
#[derive(Clone)]
pub struct JwksConfig {
    /// e.g. `http://127.0.0.1:3000/api/auth/jwks`.
    pub url: String,
    /// Refresh interval when the issuer sends no `Cache-Control: max-age` (Better Auth sends none).
    pub refresh_interval: Duration,
    /// `max-age` is honoured only within these bounds.
    pub min_refresh_interval: Duration,
    pub max_refresh_interval: Duration,
    /// At most one fetch per this period is caused by tokens with unknown `kid`s; also the
    /// longest a newly published key can go unfetched once a token names it.
    pub unknown_kid_cooldown: Duration,
    /// How long the last good key set keeps serving while the issuer fails, counted from when
    /// the refresh that should have replaced it was due (or from its first failed fetch, if
    /// later). A healthy issuer never makes keys unavailable; zero: no grace at all once a
    /// due refresh has failed.
    pub stale_if_error: Duration,
    /// Connect and total timeouts of one fetch.
    pub connect_timeout: Duration,
    pub fetch_timeout: Duration,
    /// Bounds on what a fetch may return.
    pub max_response_bytes: usize,
    pub max_keys: usize,
}

// By hand, with the URL shown without any credentials it holds (`https://user:pass@...`):
// this struct is inside `Settings`, whose `Debug` a start-up or error log may print.
impl std::fmt::Debug for JwksConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self {
            url,
            refresh_interval,
            min_refresh_interval,
            max_refresh_interval,
            unknown_kid_cooldown,
            stale_if_error,
            connect_timeout,
            fetch_timeout,
            max_response_bytes,
            max_keys,
        } = self;
        f.debug_struct("JwksConfig")
            .field("url", &loggable_url(url))
            .field("refresh_interval", refresh_interval)
            .field("min_refresh_interval", min_refresh_interval)
            .field("max_refresh_interval", max_refresh_interval)
            .field("unknown_kid_cooldown", unknown_kid_cooldown)
            .field("stale_if_error", stale_if_error)
            .field("connect_timeout", connect_timeout)
            .field("fetch_timeout", fetch_timeout)
            .field("max_response_bytes", max_response_bytes)
            .field("max_keys", max_keys)
            .finish()
    }
}

impl JwksConfig {
    /// Default refresh interval: 5 minutes. Better Auth rotates lazily and sends no
    /// `Cache-Control`, and unknown `kid`s trigger an early fetch, so this can be relaxed.
    pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(300);
    /// Default lower bound on an honoured `max-age`: 30 seconds.
    pub const DEFAULT_MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(30);
    /// Default upper bound on an honoured `max-age`: 1 hour.
    pub const DEFAULT_MAX_REFRESH_INTERVAL: Duration = Duration::from_secs(3600);
    /// Default unknown-`kid` cooldown: 3 seconds. Short enough that a token from a freshly
    /// rotated key waits at most that long, long enough that a flood of garbage kids costs
    /// the issuer one small GET per 3 s (the figure is in `specs/research.md`).
    pub const DEFAULT_UNKNOWN_KID_COOLDOWN: Duration = Duration::from_secs(3);
    /// Default stale-if-error bound: 24 hours.
    pub const DEFAULT_STALE_IF_ERROR: Duration = Duration::from_secs(24 * 3600);
    /// Default connect timeout: 2 seconds.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
    /// Default total fetch timeout: 5 seconds.
    pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(5);
    /// Default key count limit: 1,024. Better Auth keeps a rotated-out key published for
    /// its grace period (30 days by default) and makes one every rotation interval, so its
    /// set holds about grace ÷ interval + 1 keys: 31 rotating daily, 721 hourly. A set over
    /// the limit is refused whole (the last good one keeps serving), so the limit must sit
    /// above what the issuer publishes, never at it.
    pub const DEFAULT_MAX_KEYS: usize = 1024;
    /// Default response size limit: room for the default key count (1 MiB).
    pub const DEFAULT_MAX_RESPONSE_BYTES: usize = Self::response_bytes_for(Self::DEFAULT_MAX_KEYS);

    /// The response size limit for a set of up to `max_keys` keys: 1 KiB a key (an RSA-4096
    /// JWK is about 750 bytes, an Ed25519 one about 150), and never under 64 KiB.
    pub const fn response_bytes_for(max_keys: usize) -> usize {
        let bytes = max_keys.saturating_mul(1024);
        if bytes < 64 * 1024 {
            64 * 1024
        } else {
            bytes
        }
    }

    /// The defaults above for the JWKS at `url`.
    pub fn for_url(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            refresh_interval: Self::DEFAULT_REFRESH_INTERVAL,
            min_refresh_interval: Self::DEFAULT_MIN_REFRESH_INTERVAL,
            max_refresh_interval: Self::DEFAULT_MAX_REFRESH_INTERVAL,
            unknown_kid_cooldown: Self::DEFAULT_UNKNOWN_KID_COOLDOWN,
            stale_if_error: Self::DEFAULT_STALE_IF_ERROR,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            fetch_timeout: Self::DEFAULT_FETCH_TIMEOUT,
            max_response_bytes: Self::DEFAULT_MAX_RESPONSE_BYTES,
            max_keys: Self::DEFAULT_MAX_KEYS,
        }
    }

    /// Better Auth's JWKS route under its base URL: `$BETTER_AUTH_URL/api/auth/jwks`.
    pub fn better_auth_url(base_url: &str) -> String {
        format!("{}/api/auth/jwks", base_url.trim_end_matches('/'))
    }
}

/// Longest an unknown-`kid` request waits for the fetch that answers it once that fetch is
/// due (it may be due up to one cooldown later).
const UNKNOWN_KID_MAX_WAIT: Duration = Duration::from_secs(2);

/// How many unknown-`kid` requests may wait for a fetch at once. Each holds one of the
/// gateway's concurrent-request slots while it waits, so without a bound a flood of garbage
/// kids would fill them all; beyond it a request is refused at once (its key, if real, still
/// arrives with the fetch already due, and the client's retry passes).
pub const MAX_UNKNOWN_KID_WAITERS: usize = 64;

/// Slack on top of the fetch timeout for the refresh due at [`Current::due_at`] to end: past
/// it, with no failure reported, the refresher is taken to have stopped (a last resort: a
/// refresher that runs always ends a fetch within its timeout, and reports a failure).
const LATE_REFRESH_SLACK: Duration = Duration::from_secs(5);

/// The last good key set, when it was fetched, and until when it may serve.
#[derive(Debug, Clone)]
struct Current {
    keys: Arc<KeySet>,
    fetched_at: Instant,
    /// When the refresh that should replace it is due (the refresh interval, or the issuer's
    /// `max-age` within bounds, after `fetched_at`); `None`: too far off to represent.
    due_at: Option<Instant>,
    /// Whether a fetch has failed since this set was fetched.
    failed: bool,
    /// Past this instant the set no longer serves; `None`: never (a bound too far off to
    /// represent). Stale-if-error counted from the later of `due_at` and the first failed
    /// fetch; with no failure, from when the due refresh must have ended.
    usable_until: Option<Instant>,
}

impl Current {
    fn usable_at(&self, now: Instant) -> bool {
        self.usable_until.is_none_or(|until| now <= until)
    }
}

/// What the cache serves, as the refresher's failure warning tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Serving {
    /// No key set was ever loaded.
    Nothing,
    /// The last good set, fetched `age` ago, is past the stale-if-error bound.
    Expired { age: Duration },
    /// The last good set, fetched `age` ago, still serves, for `left` more at most (`None`:
    /// without limit).
    Stale {
        age: Duration,
        left: Option<Duration>,
    },
}

/// Bookkeeping of early fetches caused by unknown `kid`s.
#[derive(Debug, Default)]
struct KickState {
    /// When the last early fetch was asked for (or, for a trailing one, is due).
    last_kick: Option<Instant>,
    /// Number of the fetch that answers the last kick; pending while `completed` is below it.
    target: u64,
    /// When that fetch is asked of the refresher: at once, or at the end of a cooldown.
    due: Option<Instant>,
}

#[derive(Debug)]
struct Shared {
    config: JwksConfig,
    /// Read on every authenticated request, replaced after each fetch: `ArcSwap`'s load
    /// writes only to the reading thread's own slot, where a lock (or cloning the `Arc`)
    /// would bounce one cache line between the CPUs on every request.
    current: ArcSwapOption<Current>,
    kick: Mutex<KickState>,
    /// Permits to wait for an unknown-`kid` fetch (`MAX_UNKNOWN_KID_WAITERS`).
    waiters: Semaphore,
    wake_refresher: Notify,
    /// Number of fetches started; the refresher is the only writer.
    started: AtomicU64,
    /// Number of the last fetch that finished (successfully or not).
    completed: watch::Sender<u64>,
    metrics: JwksMetrics,
}

/// The key-set cache. Cheap to clone; all clones share one refresher.
#[derive(Debug, Clone)]
pub struct JwksCache {
    shared: Arc<Shared>,
}

/// No key set has been loaded, or the last good one is past the stale-if-error bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no usable key set")]
pub struct KeysUnavailable;

impl JwksCache {
    /// Registers the JWKS metrics and spawns the refresher, which fetches at once and then
    /// keeps the set fresh until `shutdown` is cancelled. Must be called inside a Tokio runtime.
    ///
    /// If the HTTP client cannot be built (its TLS backend failed to start) the error is
    /// logged and the cache stays empty: never ready, every protected request refused with 503.
    pub fn start(config: JwksConfig, registry: &mut Registry, shutdown: CancellationToken) -> Self {
        let fetcher = fetch::Fetcher::new(&config);
        let cache = Self::new(config);
        metrics::register(registry, &cache);
        match fetcher {
            Ok(fetcher) => {
                tokio::spawn(refresh::run(cache.clone(), fetcher, shutdown));
            }
            Err(err) => tracing::error!(error = %err, "cannot build the JWKS HTTP client"),
        }
        cache
    }

    /// An empty cache with no refresher (tests drive one by hand).
    fn new(config: JwksConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                config,
                current: ArcSwapOption::empty(),
                kick: Mutex::new(KickState::default()),
                waiters: Semaphore::new(MAX_UNKNOWN_KID_WAITERS),
                wake_refresher: Notify::new(),
                started: AtomicU64::new(0),
                completed: watch::Sender::new(0),
                metrics: JwksMetrics::default(),
            }),
        }
    }

    /// The current key set, unless none is loaded or it is past the stale-if-error bound.
    pub fn current(&self) -> Result<Arc<KeySet>, KeysUnavailable> {
        self.with_current(Arc::clone)
    }

    /// `read` applied to the current key set, unless none is loaded or it is past the
    /// stale-if-error bound, without taking a reference to it: what a request that only
    /// checks a key needs.
    pub fn with_current<R>(
        &self,
        read: impl FnOnce(&Arc<KeySet>) -> R,
    ) -> Result<R, KeysUnavailable> {
        let current = self.shared.current.load();
        let current = current.as_ref().ok_or(KeysUnavailable)?;
        if !current.usable_at(Instant::now()) {
            return Err(KeysUnavailable);
        }
        Ok(read(&current.keys))
    }

    /// True once a key set is loaded and not past the stale-if-error bound.
    pub fn is_ready(&self) -> bool {
        self.with_current(|_| ()).is_ok()
    }

    /// Called for a token whose `kid` is not in the current set, or whose signature no key
    /// under its `kid` verifies (the key may have been replaced). Asks for an early fetch: at
    /// once, or if one was asked for within the cooldown, at the cooldown's end (one trailing
    /// fetch for everyone who asks meanwhile). Waits for the fetch that answers it, bounded,
    /// and returns the set as it then is: no longer usable, if the issuer's outage outlasted
    /// the stale-if-error bound meanwhile. Returns at once with the current set when
    /// `MAX_UNKNOWN_KID_WAITERS` requests are already waiting, or when the set is no longer
    /// `seen`, the one the caller looked in: a fetch answered it since.
    pub async fn refresh_for_unknown_kid(
        &self,
        seen: &Arc<KeySet>,
    ) -> Result<Arc<KeySet>, KeysUnavailable> {
        let current = self.current()?;
        if !Arc::ptr_eq(&current, seen) {
            return Ok(current);
        }
        let shared = &self.shared;
        let (target, due) = {
            // std Mutex: a few loads and stores, never held across `.await`.
            let mut kick = shared.kick.lock().unwrap_or_else(|e| e.into_inner());
            let completed = *shared.completed.borrow();
            let now = Instant::now();
            let cooldown_end = kick
                .last_kick
                .map(|at| at + shared.config.unknown_kid_cooldown)
                .filter(|end| *end > now);
            if kick.target > completed {
                // An early fetch is pending or due: share it.
            } else if let Some(end) = cooldown_end {
                // Any fetch started from now on was started after the token was seen.
                kick.target = shared.started.load(Ordering::SeqCst) + 1;
                kick.last_kick = Some(end);
                kick.due = Some(end);
                tokio::spawn(self.clone().trailing_fetch(end, kick.target));
            } else {
                kick.target = shared.started.load(Ordering::SeqCst) + 1;
                kick.last_kick = Some(now);
                kick.due = Some(now);
                shared.metrics.unknown_kid_fetches.inc();
                shared.wake_refresher.notify_one();
            }
            (kick.target, kick.due.unwrap_or(now))
        };
        let Ok(_waiting) = shared.waiters.try_acquire() else {
            shared.metrics.unknown_kid_refused.inc();
            return self.current();
        };
        let mut completed = shared.completed.subscribe();
        let wait = due.saturating_duration_since(Instant::now())
            + UNKNOWN_KID_MAX_WAIT.min(shared.config.fetch_timeout);
        // A timeout or a closed channel both mean: answer with what we have.
        let _ = tokio::time::timeout(wait, completed.wait_for(|done| *done >= target)).await;
        self.current()
    }

    /// At `due`, asks the refresher for fetch number `target`, unless a fetch started since
    /// (a scheduled refresh) has already answered it.
    async fn trailing_fetch(self, due: Instant, target: u64) {
        tokio::time::sleep_until(due).await;
        let shared = &self.shared;
        if shared.started.load(Ordering::SeqCst) >= target {
            return;
        }
        shared.metrics.unknown_kid_fetches.inc();
        shared.wake_refresher.notify_one();
    }

    /// Swaps in a freshly fetched set, whose own refresh is due `refresh_in` from now.
    fn store(&self, keys: KeySet, refresh_in: Duration) {
        let config = &self.shared.config;
        let keys = Arc::new(keys);
        self.shared.metrics.keys.set(keys.len() as i64);
        let now = Instant::now();
        // `checked_add`: a bound of u64::MAX seconds is a valid setting, "never".
        let due_at = now.checked_add(refresh_in);
        let usable_until = due_at
            .and_then(|due| due.checked_add(config.fetch_timeout))
            .and_then(|end| end.checked_add(LATE_REFRESH_SLACK))
            .and_then(|end| end.checked_add(config.stale_if_error));
        self.shared.current.store(Some(Arc::new(Current {
            keys,
            fetched_at: now,
            due_at,
            failed: false,
            usable_until,
        })));
    }

    /// Notes a failed fetch: the first since the current set was fetched starts its
    /// stale-if-error clock, from then or from when its refresh was due, whichever is later
    /// (an early fetch failing before then does not shorten it). Returns what is served now.
    fn fetch_failed(&self) -> Serving {
        let now = Instant::now();
        let Some(current) = self.shared.current.load_full() else {
            return Serving::Nothing;
        };
        let current = if current.failed {
            current
        } else {
            // A refresh never due (`None`) never lets the set go stale.
            let from_failure = current
                .due_at
                .and_then(|due| due.max(now).checked_add(self.shared.config.stale_if_error));
            let usable_until = match (current.usable_until, from_failure) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let updated = Arc::new(Current {
                failed: true,
                usable_until,
                ..Current::clone(&current)
            });
            // The refresher is the only writer: nothing was swapped in meanwhile.
            self.shared.current.store(Some(updated.clone()));
            updated
        };
        let age = now.saturating_duration_since(current.fetched_at);
        if current.usable_at(now) {
            Serving::Stale {
                age,
                left: current
                    .usable_until
                    .map(|until| until.saturating_duration_since(now)),
            }
        } else {
            Serving::Expired { age }
        }
    }

    /// How long the current set may still serve: `None` when none does (none was loaded,
    /// or it is past the bound), `Some(Duration::MAX)` when it serves without limit.
    fn usable_for(&self) -> Option<Duration> {
        let now = Instant::now();
        let current = self.shared.current.load();
        let current = current.as_ref().filter(|current| current.usable_at(now))?;
        Some(
            current
                .usable_until
                .map_or(Duration::MAX, |until| until.saturating_duration_since(now)),
        )
    }

    fn age(&self) -> Option<Duration> {
        let current = self.shared.current.load();
        current.as_ref().map(|current| current.fetched_at.elapsed())
    }
}
