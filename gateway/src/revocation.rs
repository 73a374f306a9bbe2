//! Sign-out that signs out: tokens of ended sessions and revoked users are refused, at every
//! gateway replica, within about a second of the revocation.
//!
//! Verification stays stateless and local; revocation is the small piece of shared state that
//! makes it safe. Better Auth's own database holds it: triggers there write a durable row for
//! every ended session and every banned or deleted user and `NOTIFY auth_revocation`
//! (`deploy/better-auth/revocation.sql`). `feed.rs` listens, loads what is still relevant on
//! every (re)connection, and applies each notification to the in-memory set (`set.rs`) that
//! every request is checked against: a read lock and two hash lookups, no network.
//!
//! Fail closed: until the first load, and once the feed has been lost for longer than
//! `REVOCATION_STALE_SECS`, protected requests get 503 (a revocation may have been missed).
//! `specs/research.md` says why PostgreSQL, and why this default.

mod feed;
pub mod set;

use std::{
    sync::{
        atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering},
        Arc, OnceLock, RwLock,
    },
    time::{Duration, Instant},
};

use prometheus_client::{
    metrics::{counter::Counter, gauge::Gauge},
    registry::Registry,
};
use proto_shared::postgres_tls::{self, Tls};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub use set::{Kind, RevocationSet};

/// Why a token that is otherwise valid is refused here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("its session or user was revoked")]
    Revoked,
    #[error("it would outlive the revocation window")]
    OutlivesWindow,
    #[error("the revocation feed cannot be trusted now")]
    Unavailable,
    #[error("it names no session, so signing out could not end it")]
    NoSession,
}

/// What the check needs to know of a verified token.
#[derive(Debug, Clone, Copy)]
pub struct TokenFacts<'a> {
    /// `sub`.
    pub user: &'a str,
    /// `sid`, if the issuer adds it.
    pub session: Option<&'a str>,
    /// `iat`, if present.
    pub issued_at: Option<i64>,
    /// `exp`.
    pub expires_at: i64,
}

/// How revocations are fetched and how long they count.
#[derive(Clone)]
pub struct RevocationConfig {
    /// Better Auth's database, e.g. `postgres://gateway@auth-db:5432/better_auth?sslmode=require`.
    pub database_url: String,
    /// The longest an API token may live (Better Auth's JWT expiration, 15 minutes by
    /// default, plus the leeway): a token whose `exp` is further than this from its `iat` is
    /// refused, since its revocation could be forgotten while it is still accepted.
    pub window: Duration,
    /// `JWT_LEEWAY_SECS`: how far the issuer's clock may be from this one. It counts twice in
    /// how long a revocation is remembered ([`RevocationConfig::remembered_for`]) and once in
    /// which of a revoked user's tokens are refused.
    pub leeway: Duration,
    /// How long the gateway keeps serving with a lost feed before it refuses protected
    /// requests with 503.
    pub stale_after: Duration,
    /// Refuse a token with no `sid` claim: signing out ends sessions, and such a token
    /// belongs to none, so only banning its user could end it. Off, it is served, counted
    /// and logged once.
    pub require_session: bool,
    /// TLS to the database, as the URL's `sslmode` asks (and `REVOCATION_DATABASE_CA_FILE`).
    pub tls: Tls,
}

// By hand, without the URL: it usually holds the database password, and this struct is
// inside `Settings`, whose `Debug` a start-up or error log may print.
impl std::fmt::Debug for RevocationConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationConfig")
            .field("database_url", &format_args!(".."))
            .field("window", &self.window)
            .field("leeway", &self.leeway)
            .field("stale_after", &self.stale_after)
            .field("require_session", &self.require_session)
            .field("tls", &self.tls)
            .finish()
    }
}

impl RevocationConfig {
    /// How long after a revocation it must still be remembered: as long as a token it covers
    /// can still be accepted. Such a token was issued before the revocation by the issuer's
    /// clock, which may run up to a leeway ahead (`iat <= at + leeway`); it may live the
    /// window (`exp <= iat + window`); and it is accepted until a leeway past its `exp`. So
    /// the window plus two leeways; the window alone forgot a sign-out while a token it ended
    /// was still served.
    pub fn remembered_for(&self) -> Duration {
        self.window.saturating_add(self.leeway.saturating_mul(2))
    }
}

/// The state of the feed, as Unix seconds (0: never), readable without a lock.
#[derive(Debug, Default)]
struct FeedState {
    /// When the last (re)connection finished loading; 0 before the first.
    loaded_at: AtomicI64,
    /// When the feed was last lost; 0 while it is up (or before the first load).
    lost_at: AtomicI64,
    /// The same moment on the monotonic clock ([`monotonic_ms`]; 0 while up): how long the
    /// feed has been lost is the longer of the two clocks' counts, so a wall clock set back
    /// during an outage cannot stretch the stale bound.
    lost_at_ms: AtomicU64,
}

/// Milliseconds since the first call, on a clock that never steps back (never 0).
fn monotonic_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let elapsed = EPOCH.get_or_init(Instant::now).elapsed();
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX) + 1
}

#[derive(Debug, Default)]
struct Metrics {
    entries: Gauge,
    feed_up: Gauge,
    events: Counter,
    losses: Counter,
    without_session: Counter,
    login_privileged: Gauge,
    /// Seconds the database's clock is behind this gateway's (0 when it is not).
    database_clock_behind: Gauge,
    /// Whether the missing `sid` was logged yet: once per process is enough to be seen.
    without_session_logged: AtomicBool,
}

#[derive(Debug)]
struct Shared {
    set: RwLock<RevocationSet>,
    state: FeedState,
    config: RevocationConfig,
    metrics: Metrics,
}

/// The revocations this gateway knows of. Cheap to clone; all clones share one feed.
#[derive(Debug, Clone)]
pub struct Revocations {
    shared: Arc<Shared>,
}

/// Whether the feed can be trusted now, for `/readyz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedHealth {
    /// Loaded and listening.
    Up,
    /// Lost `for_secs` ago; still within the stale bound.
    Degraded { for_secs: i64 },
    /// Never loaded, or lost for longer than the stale bound: protected requests get 503.
    Down,
}

impl Revocations {
    /// Registers the metrics and spawns the feed, which runs until `shutdown` is cancelled.
    pub fn start(
        config: RevocationConfig,
        registry: &mut Registry,
        shutdown: CancellationToken,
    ) -> Self {
        let revocations = Self::new(config);
        let metrics = &revocations.shared.metrics;
        let registry = registry.sub_registry_with_prefix("gateway_revocation");
        registry.register(
            "entries",
            "Revoked sessions and users remembered",
            metrics.entries.clone(),
        );
        registry.register(
            "feed_up",
            "1 while the revocation feed is loaded and listening",
            metrics.feed_up.clone(),
        );
        registry.register(
            "events",
            "Revocations received from the feed (notifications and loaded rows)",
            metrics.events.clone(),
        );
        registry.register(
            "feed_losses",
            "Times the revocation feed's connection was lost",
            metrics.losses.clone(),
        );
        registry.register(
            "login_privileged",
            "1 while the feed's database login can do more than read auth_revocation (write \
             it, bypass row-level security, read Better Auth's sessions or accounts, or is a \
             superuser)",
            metrics.login_privileged.clone(),
        );
        registry.register(
            "database_clock_behind_seconds",
            "Seconds the revocation database's clock was found behind this gateway's at the \
             feed's last ping; revocation times are moved forward by as much",
            metrics.database_clock_behind.clone(),
        );
        registry.register(
            "tokens_without_session",
            "Requests whose token names no session (no sid claim): signing out cannot end \
             them, only a ban of the user; refused unless REVOCATION_REQUIRE_SID=false",
            metrics.without_session.clone(),
        );
        // Every line the feed logs names the database it listens to (never its login). At
        // the error level so that no filter keeps the span while letting its lines through.
        let database = postgres_tls::redacted(&revocations.config().database_url);
        let span = tracing::error_span!("revocation_feed", database = %database);
        let feed = tokio::spawn(feed::run(revocations.clone(), shutdown).instrument(span));
        tokio::spawn(revocations.clone().watch(feed));
        revocations
    }

    /// Waits for the feed's task to end: it ends only at shutdown, so ending otherwise (a
    /// panic) must not leave the set frozen with the health saying up. It counts as a lost
    /// feed: protected requests get 503 once `REVOCATION_STALE_SECS` have passed.
    async fn watch(self, feed: tokio::task::JoinHandle<()>) {
        if let Err(error) = feed.await {
            if error.is_panic() {
                tracing::error!(
                    "revocation feed stopped (it panicked); protected requests get 503 once \
                     REVOCATION_STALE_SECS have passed"
                );
                self.lost(unix_now());
            }
        }
    }

    fn new(config: RevocationConfig) -> Self {
        let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4);
        let set = RevocationSet::new(secs(config.remembered_for()), secs(config.leeway));
        Self {
            shared: Arc::new(Shared {
                set: RwLock::new(set),
                state: FeedState::default(),
                config,
                metrics: Metrics::default(),
            }),
        }
    }

    /// Refuses a token if its session or user was revoked, if its life (`iat` to `exp`; a
    /// token without `iat` has no known start) is longer than the revocation window, if it
    /// names no session while one is required, or if the feed cannot be trusted now.
    pub fn check(&self, token: TokenFacts<'_>, now: i64) -> Result<(), Refusal> {
        let shared = &*self.shared;
        if self.health(now) == FeedHealth::Down {
            return Err(Refusal::Unavailable);
        }
        // An empty `sid` names no session either: no sign-out could ever end it.
        if token.session.is_none_or(str::is_empty) {
            // An issuer that leaves `sid` out (Better Auth's JWT plugin without the
            // `definePayload` step) makes sign-out a no-op here: refuse (the default) or at
            // least say so, rather than have revocation look on while doing half its job.
            shared.metrics.without_session.inc();
            let first = !shared
                .metrics
                .without_session_logged
                .swap(true, Ordering::Relaxed);
            let required = shared.config.require_session;
            if first {
                tracing::warn!(
                    refused = required,
                    "a token with no sid claim: signing out cannot revoke such tokens, only \
                     banning the user can; add sid to the issuer's JWT payload \
                     (deploy/better-auth/README.md){}",
                    if required {
                        "; refused (REVOCATION_REQUIRE_SID)"
                    } else {
                        "; served, as REVOCATION_REQUIRE_SID=false asks"
                    }
                );
            }
            if required {
                return Err(Refusal::NoSession);
            }
        }
        // A revocation is remembered for the window from when it happened, and it may happen
        // at any moment of the token's life: the whole life must fit in the window, not only
        // what is left of it (else a long-lived token would pass once its revocation was
        // forgotten). Without `iat` nothing says when that life began.
        let began = token.issued_at.map_or(i64::MIN, |iat| iat.min(now));
        if token.expires_at.saturating_sub(began) > shared.config.window.as_secs() as i64 {
            return Err(Refusal::OutlivesWindow);
        }
        // std RwLock: two hash lookups under a read lock, never held across `.await`.
        let set = shared.set.read().unwrap_or_else(|e| e.into_inner());
        if set.is_revoked(token.session, token.user, token.issued_at) {
            return Err(Refusal::Revoked);
        }
        Ok(())
    }

    /// Whether the feed can be trusted at `now` (Unix seconds).
    pub fn health(&self, now: i64) -> FeedHealth {
        let state = &self.shared.state;
        if state.loaded_at.load(Ordering::Acquire) == 0 {
            return FeedHealth::Down;
        }
        match state.lost_at.load(Ordering::Acquire) {
            0 => FeedHealth::Up,
            lost => {
                // 0: `loaded` is clearing the loss under us (it clears `lost_at` first); the wall
                // clock's count alone decides this once.
                let by_monotonic = match state.lost_at_ms.load(Ordering::Acquire) {
                    0 => 0,
                    since => monotonic_ms().saturating_sub(since).min(i64::MAX as u64) as i64,
                };
                let lost_for_ms = now
                    .saturating_sub(lost)
                    .saturating_mul(1000)
                    .max(by_monotonic);
                let stale_after_ms = self.shared.config.stale_after.as_millis();
                if i128::from(lost_for_ms) > stale_after_ms as i128 {
                    FeedHealth::Down
                } else {
                    FeedHealth::Degraded {
                        for_secs: lost_for_ms / 1000,
                    }
                }
            }
        }
    }

    /// Applies revocations stamped by the database's clock; `now` expires what is past its
    /// window first.
    fn apply<'s>(&self, revoked: impl IntoIterator<Item = (Kind, &'s str, i64)>, now: i64) {
        let shared = &*self.shared;
        // A revocation is remembered, and a ban compared with a token's `iat`, by this host's
        // clock: a database clock behind it would forget a sign-out early and let a token
        // minted just before a ban pass. Moved forward by what it was found behind (never
        // back: a clock ahead only makes the gateway refuse more, for longer).
        let behind = shared.metrics.database_clock_behind.get();
        let mut set = shared.set.write().unwrap_or_else(|e| e.into_inner());
        set.expire(now);
        for (kind, subject, at) in revoked {
            shared.metrics.events.inc();
            set.revoke(kind, subject, at.saturating_add(behind));
        }
        shared.metrics.entries.set(set.len() as i64);
    }

    /// Notes the database's clock (`database_now`, Unix seconds) read at `now` by this host's:
    /// revocations from then on are moved forward by what it is behind. Warns when that is more
    /// than the leeway, which the clocks of the hosts are otherwise assumed to keep within.
    fn database_clock(&self, database_now: i64, now: i64) {
        // Whole seconds, read apart: a second of it may be rounding, which errs the safe way.
        let behind = now.saturating_sub(database_now).max(0);
        let gauge = &self.shared.metrics.database_clock_behind;
        let leeway = i64::try_from(self.shared.config.leeway.as_secs()).unwrap_or(i64::MAX);
        // Said when it crosses the leeway, not at every ping's second of jitter.
        if gauge.set(behind) <= leeway && behind > leeway {
            tracing::warn!(
                behind_secs = behind,
                "the revocation database's clock is behind this host's by more than the \
                 leeway; revocation times are moved forward by as much (synchronise the clocks)"
            );
        }
    }

    /// Forgets what is past its window (the feed calls this periodically too, so memory
    /// follows time even when no revocation arrives).
    fn expire(&self, now: i64) {
        self.apply(std::iter::empty(), now);
    }

    /// The feed finished loading after a (re)connection at `now`.
    fn login_privileged(&self, privileged: bool) {
        self.shared
            .metrics
            .login_privileged
            .set(i64::from(privileged));
    }

    fn loaded(&self, now: i64) {
        let state = &self.shared.state;
        state.lost_at.store(0, Ordering::Release);
        state.lost_at_ms.store(0, Ordering::Release);
        state.loaded_at.store(now.max(1), Ordering::Release);
        self.shared.metrics.feed_up.set(1);
    }

    /// The feed's connection was lost at `now`.
    fn lost(&self, now: i64) {
        let state = &self.shared.state;
        // Only the first loss counts from when it happened; reconnection attempts that fail
        // do not move it.
        if state.lost_at.load(Ordering::Acquire) == 0 {
            // The monotonic moment first: a reader that sees `lost_at` set finds it too.
            state.lost_at_ms.store(monotonic_ms(), Ordering::Release);
            state.lost_at.store(now.max(1), Ordering::Release);
            self.shared.metrics.losses.inc();
        }
        self.shared.metrics.feed_up.set(0);
    }

    fn config(&self) -> &RevocationConfig {
        &self.shared.config
    }
}

/// Unix seconds, the clock revocations and token times are compared on.
pub fn unix_now() -> i64 {
    proto_shared::identity::unix_now()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revocations() -> Revocations {
        Revocations::new(RevocationConfig {
            database_url: String::new(),
            window: Duration::from_secs(930),
            leeway: Duration::from_secs(30),
            stale_after: Duration::from_secs(30),
            require_session: true,
            tls: Tls::Plain,
        })
    }

    fn token<'a>(sub: &'a str, sid: Option<&'a str>, iat: i64, exp: i64) -> TokenFacts<'a> {
        TokenFacts {
            user: sub,
            session: sid,
            issued_at: Some(iat),
            expires_at: exp,
        }
    }

    #[test]
    fn debug_output_never_shows_the_database_url() {
        let config = RevocationConfig {
            database_url: "postgres://gateway:hunter2@auth-db:5432/better_auth".into(),
            window: Duration::from_secs(930),
            leeway: Duration::from_secs(30),
            stale_after: Duration::from_secs(30),
            require_session: true,
            tls: Tls::Plain,
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("window: 930s"), "{shown}");
        let shown = format!("{:?}", Revocations::new(config));
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[tokio::test]
    async fn a_feed_that_panics_counts_as_lost() {
        let r = revocations();
        r.loaded(unix_now());
        let feed = tokio::spawn(async { panic!("a feed bug") });
        r.clone().watch(feed).await;
        assert!(
            matches!(r.health(unix_now()), FeedHealth::Degraded { .. }),
            "{:?}",
            r.health(unix_now())
        );
        // Ended by shutdown, as it should: nothing changes.
        let r = revocations();
        r.loaded(unix_now());
        r.clone().watch(tokio::spawn(async {})).await;
        assert_eq!(r.health(unix_now()), FeedHealth::Up);
    }

    #[test]
    fn nothing_is_accepted_before_the_first_load_or_long_after_a_loss() {
        let r = revocations();
        let t = token("alice", Some("s1"), 1_000, 1_900);
        assert_eq!(r.check(t, 1_000), Err(Refusal::Unavailable));
        r.loaded(1_000);
        assert_eq!(r.check(t, 1_001), Ok(()));
        r.lost(1_010);
        assert_eq!(r.health(1_030), FeedHealth::Degraded { for_secs: 20 });
        assert_eq!(r.check(t, 1_040), Ok(()), "within the stale bound");
        r.lost(1_035);
        assert_eq!(
            r.check(t, 1_041),
            Err(Refusal::Unavailable),
            "from the first loss"
        );
        r.loaded(1_050);
        assert_eq!(r.check(t, 1_051), Ok(()));
    }

    #[test]
    fn a_wall_clock_set_back_during_a_loss_does_not_stretch_the_bound() {
        let r = Revocations::new(RevocationConfig {
            stale_after: Duration::ZERO,
            ..revocations().config().clone()
        });
        r.loaded(1_000);
        r.lost(1_010);
        // Some time passes, and the wall clock is set back two minutes: by it the feed was
        // lost in the future, which the monotonic clock's count outweighs.
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(r.health(890), FeedHealth::Down);
        r.loaded(1_020);
        assert_eq!(r.health(890), FeedHealth::Up);
    }

    #[test]
    fn revoked_sessions_and_users_are_refused_and_others_are_not() {
        let r = revocations();
        r.loaded(1_000);
        r.apply(
            [(Kind::Session, "s1", 1_010), (Kind::User, "bob", 1_010)],
            1_010,
        );
        assert_eq!(
            r.check(token("alice", Some("s1"), 1_000, 1_900), 1_011),
            Err(Refusal::Revoked)
        );
        assert_eq!(
            r.check(token("alice", Some("s2"), 1_000, 1_900), 1_011),
            Ok(())
        );
        assert_eq!(
            r.check(token("bob", Some("s3"), 1_005, 1_900), 1_011),
            Err(Refusal::Revoked)
        );
        // Signed in again once the leeway (how far the issuer's clock may run ahead) is past.
        assert_eq!(
            r.check(token("bob", Some("s4"), 1_041, 1_900), 1_042),
            Ok(())
        );
    }

    #[test]
    fn a_token_without_a_session_is_refused_unless_allowed_and_counted_either_way() {
        let strict = revocations();
        strict.loaded(1_000);
        let bare = token("alice", None, 1_000, 1_900);
        assert_eq!(strict.check(bare, 1_000), Err(Refusal::NoSession));
        let empty = token("alice", Some(""), 1_000, 1_900);
        assert_eq!(strict.check(empty, 1_000), Err(Refusal::NoSession));
        // A feed that cannot be trusted says so first: 503, retry later, not 401.
        let unloaded = revocations();
        assert_eq!(unloaded.check(bare, 1_000), Err(Refusal::Unavailable));
        let lenient = Revocations::new(RevocationConfig {
            require_session: false,
            ..strict.config().clone()
        });
        lenient.loaded(1_000);
        assert_eq!(lenient.check(bare, 1_000), Ok(()));
        // Revoking the user still ends it.
        lenient.apply([(Kind::User, "alice", 1_010)], 1_010);
        assert_eq!(lenient.check(bare, 1_011), Err(Refusal::Revoked));
        // Every use is counted, refused or served.
        assert_eq!(strict.shared.metrics.without_session.get(), 2);
        assert_eq!(lenient.shared.metrics.without_session.get(), 2);
    }

    #[test]
    fn a_token_that_would_outlive_its_revocation_is_refused() {
        let r = revocations();
        r.loaded(1_000);
        assert_eq!(
            r.check(token("alice", Some("s1"), 1_000, 1_930), 1_000),
            Ok(())
        );
        assert_eq!(
            r.check(token("alice", Some("s1"), 1_000, 1_931), 1_000),
            Err(Refusal::OutlivesWindow)
        );
        let no_iat = TokenFacts {
            issued_at: None,
            ..token("alice", Some("s1"), 1_000, 1_100)
        };
        assert_eq!(r.check(no_iat, 1_000), Err(Refusal::OutlivesWindow));
    }

    #[test]
    fn a_long_lived_token_stays_refused_after_its_revocation_is_forgotten() {
        // An issuer configured for hour-long tokens against a 15-minute window: the
        // session ends a minute in, and is forgotten 930 s later.
        let r = revocations();
        r.loaded(1_000);
        r.apply([(Kind::Session, "s1", 1_060)], 1_060);
        let stolen = token("alice", Some("s1"), 1_000, 4_600);
        assert_eq!(r.check(stolen, 1_061), Err(Refusal::OutlivesWindow));
        r.expire(3_700);
        assert!(r.shared.set.read().unwrap().is_empty(), "forgotten");
        // What is left of its life fits in the window now; its life never did.
        assert!(stolen.expires_at - 3_700 <= 930);
        assert_eq!(r.check(stolen, 3_700), Err(Refusal::OutlivesWindow));
    }

    #[test]
    fn a_database_clock_behind_this_hosts_moves_revocations_forward() {
        let r = revocations();
        r.loaded(1_000);
        // The database's clock reads two minutes behind this host's.
        r.database_clock(880, 1_000);
        assert_eq!(r.shared.metrics.database_clock_behind.get(), 120);
        // Signed out and banned now, stamped 880 by the database.
        r.apply(
            [(Kind::Session, "s1", 880), (Kind::User, "bob", 880)],
            1_000,
        );
        // The session's token minted a moment before, living the whole window, is accepted
        // until a leeway past its `exp` (1,960): still remembered then.
        let signed_out = token("alice", Some("s1"), 1_000, 1_930);
        r.expire(1_960);
        assert_eq!(r.check(signed_out, 1_960), Err(Refusal::Revoked));
        // Bob's token minted by this host's clock just before the ban is refused too.
        assert_eq!(
            r.check(token("bob", Some("s2"), 1_000, 1_900), 1_001),
            Err(Refusal::Revoked)
        );
        // A clock ahead moves nothing back.
        r.database_clock(1_100, 1_000);
        assert_eq!(r.shared.metrics.database_clock_behind.get(), 0);
    }

    #[test]
    fn a_revocation_is_remembered_for_as_long_as_a_token_it_ends_is_accepted() {
        let r = revocations();
        let leeway = r.config().leeway;
        r.loaded(1_000);
        r.apply(
            [(Kind::Session, "s1", 1_000), (Kind::User, "bob", 1_000)],
            1_000,
        );
        // Tokens minted the second of the revocation, each living the whole window: by a
        // clock in step with the database's, and by one a leeway ahead of it (whose `iat`
        // comes after the revocation it was minted before).
        let tokens = [
            token("alice", Some("s1"), 1_000, 1_930),
            token("alice", Some("s1"), 1_030, 1_960),
            token("bob", Some("s2"), 1_000, 1_930),
            token("bob", Some("s2"), 1_030, 1_960),
        ];
        for now in 1_000..2_100 {
            r.expire(now);
            for t in tokens {
                let accepted = crate::auth::unexpired(t.expires_at as f64, now as f64, leeway)
                    && t.issued_at
                        .is_some_and(|iat| iat <= now + leeway.as_secs() as i64);
                if accepted {
                    assert!(r.check(t, now).is_err(), "{t:?} served at {now}");
                }
            }
        }
        assert!(
            r.shared.set.read().unwrap().is_empty(),
            "forgotten once no token it covers is accepted"
        );
    }
}
