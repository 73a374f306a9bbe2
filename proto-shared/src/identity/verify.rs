//! Verifying: the only way tasks-service learns who a request is for.
//!
//! In two steps, because the body arrives after the head: [`Verifier::verify_head`] judges
//! everything the head carries (shape, version, key, audience, freshness, user id, signature)
//! before any body byte is read, and [`Verifier::confirm`] then checks the body against the
//! signed digest and spends the credential's nonce. [`Verifier::verify`] does both for a
//! request already in memory.

use aws_lc_rs::hmac;
use http::{HeaderMap, HeaderValue, Method};

use super::{
    canonical_string,
    replay::{Refusal, ReplaySet},
    unix_now, Audience, BodyDigest, Credential, KeyRing, Nonce, Statement, Version,
};
use crate::{headers, UserId};

/// Checks credentials against every key of a ring, for one audience. Cheap to clone; clones
/// share one memory of spent nonces. `Debug` shows key ids and how many nonces are
/// remembered, never a secret or a nonce.
#[derive(Debug, Clone)]
pub struct Verifier {
    ring: KeyRing,
    max_skew_secs: i64,
    audience: Audience,
    accept_v1: bool,
    replay: ReplaySet,
    /// One user's share of `replay` when set by [`Verifier::replay_per_user`], kept so that
    /// a capacity set after it does not reset it.
    replay_share: Option<usize>,
    /// Unix second from which `replay` knows every spent nonce: its memory is the process's,
    /// so a credential signed before it began may have been spent by a process before this
    /// one (a restart within its freshness window).
    remembers_since: i64,
}

/// Why a request's identity was refused. Each one means the claimed id is never used: 401,
/// except [`IdentityError::ReplayCapacity`], which is the verifier's limit, not the caller's
/// fault (503), and [`IdentityError::UserShareFull`], which is the user's own rate (429).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("a user id was sent without a credential")]
    MissingCredential,
    #[error("a credential was sent without a user id")]
    MissingUserId,
    #[error("an identity header was sent more than once")]
    DuplicateHeader,
    #[error("the credential is malformed")]
    Malformed,
    #[error("v1 credentials are not accepted here")]
    VersionRefused,
    #[error("the credential names an unknown key")]
    UnknownKey,
    #[error("the credential was minted for another service")]
    WrongAudience,
    #[error("the credential is not fresh")]
    Stale,
    #[error("the credential was signed before this verifier began remembering spent ones")]
    SignedBeforeStart,
    #[error("the credential's signature does not match the request")]
    BadSignature,
    #[error("the user id is invalid")]
    InvalidUserId,
    #[error("the body is not the one the credential was signed for")]
    BodyMismatch,
    #[error("the credential was used before")]
    Replayed,
    #[error("too many fresh credentials to remember another")]
    ReplayCapacity,
    #[error("this user spent its share of the fresh credentials remembered at once")]
    UserShareFull {
        /// When to try again: the freshness window, by the end of which the user's oldest
        /// credentials have expired (unless they were dated ahead of the clock).
        retry_after_secs: u32,
    },
}

impl IdentityError {
    /// A short stable label for logs and metrics.
    pub fn reason(self) -> &'static str {
        match self {
            Self::MissingCredential => "missing_credential",
            Self::MissingUserId => "missing_user_id",
            Self::DuplicateHeader => "duplicate_header",
            Self::Malformed => "malformed",
            Self::VersionRefused => "version_refused",
            Self::UnknownKey => "unknown_key",
            Self::WrongAudience => "wrong_audience",
            Self::Stale => "stale",
            Self::SignedBeforeStart => "signed_before_start",
            Self::BadSignature => "bad_signature",
            Self::InvalidUserId => "invalid_user_id",
            Self::BodyMismatch => "body_mismatch",
            Self::Replayed => "replayed",
            Self::ReplayCapacity => "replay_capacity",
            Self::UserShareFull { .. } => "user_share_full",
        }
    }
}

/// A head whose credential holds: the user it vouches for, pending the body check.
#[derive(Debug)]
#[must_use = "the body must still be confirmed"]
pub struct Vouched {
    user: UserId,
    /// The last second (Unix) in which the credential is fresh.
    expires: i64,
    /// v2 only: the nonce to spend and the digest the body must have.
    bound: Option<(Nonce, BodyDigest)>,
}

impl Vouched {
    /// The last second (Unix) in which the credential is fresh: a body that has not arrived
    /// by the end of it can never be confirmed, so there is no point waiting longer for it.
    pub fn expires(&self) -> i64 {
        self.expires
    }

    /// The credential's version: v1 only where the operator allowed it.
    pub fn version(&self) -> Version {
        match self.bound {
            None => Version::V1,
            Some(_) => Version::V2,
        }
    }
}

impl Verifier {
    /// Default number of fresh credentials remembered at once (see [`Verifier::replay_capacity`]).
    pub const DEFAULT_REPLAY_CAPACITY: usize = 1_000_000;

    /// Default share of the memory one user may hold: this fraction of its capacity (see
    /// [`Verifier::replay_per_user`]), and never less than [`Self::MIN_DEFAULT_SHARE`] (or the
    /// whole of a smaller memory). Filling the whole memory then takes this many users
    /// sending at once; one user at its share is refused alone.
    pub const DEFAULT_USERS_TO_FILL: usize = 100;

    /// The least default share: a small memory still lets each user send a page's worth of
    /// requests at once.
    pub const MIN_DEFAULT_SHARE: usize = 100;

    /// One user's share of a memory of `capacity` unless set.
    fn default_share(capacity: usize) -> usize {
        (capacity / Self::DEFAULT_USERS_TO_FILL).max(Self::MIN_DEFAULT_SHARE.min(capacity))
    }

    /// Accepts v2 credentials for `audience` from any key in `ring` whose timestamp is
    /// within `max_skew_secs` of the verifier's clock, either way, each once, and none signed
    /// before now (see [`Verifier::remembering_since`]).
    pub fn new(ring: KeyRing, max_skew_secs: u32, audience: Audience) -> Self {
        Self {
            ring,
            max_skew_secs: i64::from(max_skew_secs),
            audience,
            accept_v1: false,
            replay: ReplaySet::new(
                Self::DEFAULT_REPLAY_CAPACITY,
                Self::default_share(Self::DEFAULT_REPLAY_CAPACITY),
            ),
            replay_share: None,
            remembers_since: unix_now(),
        }
    }

    /// Refuses v2 credentials signed before `since` (Unix seconds; by default, when the
    /// verifier was made) as [`IdentityError::SignedBeforeStart`]: the memory of spent nonces
    /// begins with the verifier, so one spent at a process before it (a restart inside the
    /// freshness window) could otherwise be spent again. For a clock other than the system's
    /// (tests) or a memory known to reach further back.
    pub fn remembering_since(mut self, since: i64) -> Self {
        self.remembers_since = since;
        self
    }

    /// Also accepts v1 credentials (no audience, body or single use), for a rolling upgrade
    /// from signers that send them.
    pub fn accept_v1(mut self, accept: bool) -> Self {
        self.accept_v1 = accept;
        self
    }

    /// Remembers at most `capacity` fresh credentials; past that, new ones are refused
    /// ([`IdentityError::ReplayCapacity`]) until old ones expire. One user's share is what
    /// [`Verifier::replay_per_user`] set (held to the capacity), else a hundredth of the
    /// capacity, at least [`Self::MIN_DEFAULT_SHARE`] or the whole of a smaller memory.
    pub fn replay_capacity(mut self, capacity: usize) -> Self {
        let share = self
            .replay_share
            .unwrap_or_else(|| Self::default_share(capacity));
        self.replay = ReplaySet::new(capacity, share);
        self
    }

    /// Remembers at most `per_user` fresh credentials of any one user (at least 1, at most
    /// the capacity); past that, that user's new ones are refused
    /// ([`IdentityError::UserShareFull`]) until its old ones expire, and everyone else's are
    /// still accepted. Without it, one user sending as fast as it can would fill the memory
    /// and have everyone refused.
    pub fn replay_per_user(mut self, per_user: usize) -> Self {
        self.replay_share = Some(per_user);
        self.replay = ReplaySet::new(self.replay.capacity(), per_user);
        self
    }

    /// The most fresh credentials of one user remembered at once.
    pub fn replay_share(&self) -> usize {
        self.replay.per_user()
    }

    /// The audience this verifier accepts.
    pub fn audience(&self) -> &Audience {
        &self.audience
    }

    /// How far `now` (Unix seconds) is behind the clock the memory of spent credentials
    /// judges by, when that is more than the allowed skew: the system clock stepped back,
    /// and every fresh credential is refused as expired until it catches up (the memory's
    /// clock never goes back, or a spent nonce could be forgotten early and spent again).
    /// `None` while credentials can be accepted.
    pub fn clock_behind(&self, now: i64) -> Option<i64> {
        let behind = self.replay.latest() - now;
        (behind > self.max_skew_secs).then_some(behind)
    }

    /// How many spent nonces are remembered now.
    pub fn remembered(&self) -> usize {
        self.replay.len()
    }

    /// Judges a whole request: [`Verifier::verify_head`], then [`Verifier::confirm`] with
    /// `body`. `None` when the request claims no identity at all.
    pub fn verify(
        &self,
        method: &Method,
        path_and_query: &str,
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<Option<UserId>, IdentityError> {
        match self.verify_head(method, path_and_query, headers, now)? {
            None => Ok(None),
            Some(vouched) => self.confirm(vouched, BodyDigest::of(body), now).map(Some),
        }
    }

    /// Judges what the head carries. Returns `None` when the request claims no identity at
    /// all, the vouched-for user pending the body check, or why the claimed identity must
    /// not be trusted.
    pub fn verify_head(
        &self,
        method: &Method,
        path_and_query: &str,
        headers: &HeaderMap,
        now: i64,
    ) -> Result<Option<Vouched>, IdentityError> {
        let user_id = single(headers, &headers::USER_ID)?;
        let credential = single(headers, &headers::IDENTITY_CREDENTIAL)?;
        let (user_id, credential) = match (user_id, credential) {
            (None, None) => return Ok(None),
            (Some(_), None) => return Err(IdentityError::MissingCredential),
            (None, Some(_)) => return Err(IdentityError::MissingUserId),
            (Some(user_id), Some(credential)) => (user_id, credential),
        };
        let credential = credential
            .to_str()
            .ok()
            .and_then(Credential::parse)
            .ok_or(IdentityError::Malformed)?;
        if credential.version() == Version::V1 && !self.accept_v1 {
            return Err(IdentityError::VersionRefused);
        }
        let (_, key) = self
            .ring
            .key(credential.key_id)
            .ok_or(IdentityError::UnknownKey)?;
        if credential
            .binding
            .is_some_and(|binding| binding.audience != self.audience.as_str())
        {
            return Err(IdentityError::WrongAudience);
        }
        if (now - credential.timestamp).abs() > self.max_skew_secs {
            return Err(IdentityError::Stale);
        }
        let user = user_id
            .to_str()
            .ok()
            .and_then(|raw| UserId::from_encoded(raw).ok())
            .ok_or(IdentityError::InvalidUserId)?;
        let statement = Statement {
            method,
            target: path_and_query,
            user: &user,
        };
        let message = canonical_string(&statement, &credential);
        // aws-lc-rs compares tags in constant time.
        hmac::verify(key, message.as_bytes(), &credential.signature)
            .map_err(|_| IdentityError::BadSignature)?;
        if credential.binding.is_some() && credential.timestamp < self.remembers_since {
            return Err(IdentityError::SignedBeforeStart);
        }
        Ok(Some(Vouched {
            user,
            expires: credential.timestamp + self.max_skew_secs,
            bound: credential
                .binding
                .map(|binding| (binding.nonce, binding.body_digest)),
        }))
    }

    /// Finishes what [`Verifier::verify_head`] began: the body must be the one signed for,
    /// and the credential must not have been used before. Only then is the user returned,
    /// and the credential spent. `body` is [`BodyDigest::of`] the exact bytes received.
    pub fn confirm(
        &self,
        vouched: Vouched,
        body: BodyDigest,
        now: i64,
    ) -> Result<UserId, IdentityError> {
        let Some((nonce, signed_body)) = vouched.bound else {
            return Ok(vouched.user);
        };
        let expires = vouched.expires;
        // Judged afresh: the body may have taken long enough to arrive that the credential's
        // window closed meanwhile, and past it the memory may have forgotten its first use.
        if now > expires {
            return Err(IdentityError::Stale);
        }
        // A digest is public (it is in the header), so a plain comparison leaks nothing.
        if body != signed_body {
            return Err(IdentityError::BodyMismatch);
        }
        self.replay
            .remember(nonce.as_u128(), &vouched.user, expires, now)
            .map_err(|refusal| match refusal {
                Refusal::Seen => IdentityError::Replayed,
                Refusal::Full => IdentityError::ReplayCapacity,
                Refusal::UserShareFull => IdentityError::UserShareFull {
                    retry_after_secs: u32::try_from(self.max_skew_secs).unwrap_or(u32::MAX),
                },
                Refusal::Expired => IdentityError::Stale,
            })?;
        Ok(vouched.user)
    }
}

/// The header's only value; a repeated identity header is refused rather than guessed at.
fn single<'a>(
    headers: &'a HeaderMap,
    name: &http::HeaderName,
) -> Result<Option<&'a HeaderValue>, IdentityError> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(IdentityError::DuplicateHeader);
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Signer;

    const NOW: i64 = 1_764_000_000;
    const GW: &str = "gw:gateway-secret-gateway-secret-123";
    const SVC: &str = "svc:service-secret-service-secret-123";

    fn ring(spec: &str) -> KeyRing {
        spec.parse().unwrap()
    }

    fn audience(name: &str) -> Audience {
        Audience::parse(name).unwrap()
    }

    fn signed_for(
        signer_spec: &str,
        to: &str,
        method: Method,
        path: &str,
        user: &str,
        body: &[u8],
        ts: i64,
    ) -> HeaderMap {
        let mut headers = HeaderMap::new();
        Signer::new(&ring(signer_spec), audience(to))
            .sign(
                &method,
                path,
                &UserId::parse(user).unwrap(),
                BodyDigest::of(body),
                ts,
            )
            .insert_into(&mut headers);
        headers
    }

    fn signed(signer_spec: &str, method: Method, path: &str, user: &str, ts: i64) -> HeaderMap {
        signed_for(signer_spec, "tasks-service", method, path, user, b"", ts)
    }

    /// A verifier as if made an hour before `NOW`.
    fn verifier() -> Verifier {
        Verifier::new(ring(&format!("{GW},{SVC}")), 30, Audience::default())
            .remembering_since(NOW - 3600)
    }

    /// A v1 credential as signers before v2 wrote it.
    fn v1(path: &str, user: &str, ts: i64) -> HeaderMap {
        let mut headers = HeaderMap::new();
        Signer::new(&ring(GW), Audience::default())
            .sign_v1(&Method::GET, path, &UserId::parse(user).unwrap(), ts)
            .insert_into(&mut headers);
        headers
    }

    #[test]
    fn accepts_a_fresh_credential_from_any_key_in_the_ring_once() {
        let v = verifier();
        for key in [GW, SVC] {
            let headers = signed(key, Method::GET, "/api/u1/tasks?limit=5", "u1", NOW);
            let user = v
                .verify(
                    &Method::GET,
                    "/api/u1/tasks?limit=5",
                    &headers,
                    b"",
                    NOW + 29,
                )
                .unwrap();
            assert_eq!(user.unwrap().as_str(), "u1");
            assert_eq!(
                v.verify(
                    &Method::GET,
                    "/api/u1/tasks?limit=5",
                    &headers,
                    b"",
                    NOW + 29
                ),
                Err(IdentityError::Replayed)
            );
        }
        assert_eq!(v.remembered(), 2);
    }

    #[test]
    fn a_clock_that_stepped_back_past_the_skew_is_told_while_it_refuses_everything() {
        let v = verifier();
        assert_eq!(v.clock_behind(NOW), None, "nothing seen yet");
        // A credential checked at NOW + 100 moves the memory's clock there.
        let later = signed(GW, Method::GET, "/", "u1", NOW + 100);
        assert!(v.verify(&Method::GET, "/", &later, b"", NOW + 100).is_ok());
        // Back by the skew or less: still accepted, and not reported.
        assert_eq!(v.clock_behind(NOW + 70), None);
        // Back by more: a credential fresh by that clock is refused, and that is told.
        assert_eq!(v.clock_behind(NOW + 50), Some(50));
        let fresh = signed(GW, Method::GET, "/", "u1", NOW + 50);
        assert_eq!(
            v.verify(&Method::GET, "/", &fresh, b"", NOW + 50),
            Err(IdentityError::Stale)
        );
    }

    #[test]
    fn a_replay_is_refused_by_every_clone_of_the_verifier() {
        let v = verifier();
        let clone = v.clone();
        let headers = signed(GW, Method::GET, "/", "u1", NOW);
        assert!(v.verify(&Method::GET, "/", &headers, b"", NOW).is_ok());
        assert_eq!(
            clone.verify(&Method::GET, "/", &headers, b"", NOW),
            Err(IdentityError::Replayed)
        );
    }

    #[test]
    fn a_body_that_arrives_after_the_window_closed_spends_nothing_twice() {
        let v = verifier();
        let headers = signed(GW, Method::PATCH, "/api/u1/tasks/7/complete", "u1", NOW);
        let head = |now| {
            v.verify_head(&Method::PATCH, "/api/u1/tasks/7/complete", &headers, now)
                .unwrap()
                .unwrap()
        };
        // Delivered at once.
        assert!(v.confirm(head(NOW), BodyDigest::EMPTY, NOW).is_ok());
        // A copy whose head arrives on the window's last second and whose body after it:
        // by then the memory may forget the first use, so the window is judged again.
        let late = head(NOW + 30);
        assert_eq!(
            v.confirm(late, BodyDigest::EMPTY, NOW + 31),
            Err(IdentityError::Stale)
        );
        // Inside the window the memory still has it.
        assert_eq!(
            v.confirm(head(NOW + 30), BodyDigest::EMPTY, NOW + 30),
            Err(IdentityError::Replayed)
        );
    }

    #[test]
    fn a_copy_judged_by_an_earlier_clock_than_the_memory_was_cleared_by_is_refused() {
        let v = verifier();
        let path = "/api/u1/tasks/7/complete";
        let spent = signed(GW, Method::PATCH, path, "u1", NOW);
        assert!(v.verify(&Method::PATCH, path, &spent, b"", NOW).is_ok());
        // Another request, its clock a second past `spent`'s window, clears that from memory.
        let other = signed(GW, Method::GET, "/", "u1", NOW + 31);
        assert!(v.verify(&Method::GET, "/", &other, b"", NOW + 31).is_ok());
        // A copy of `spent` whose clock was read on its window's last second (it waited for
        // the memory's lock, or the wall clock stepped back) must not pass as new.
        assert_eq!(
            v.verify(&Method::PATCH, path, &spent, b"", NOW + 30),
            Err(IdentityError::Stale)
        );
    }

    #[test]
    fn a_credential_signed_before_the_verifier_began_is_refused() {
        // A restart: the new process's memory of spent nonces is empty, so what was signed
        // before it cannot be told apart from what was spent at the process before it.
        let v = verifier().remembering_since(NOW);
        let before = signed(GW, Method::GET, "/", "u1", NOW - 1);
        assert_eq!(
            v.verify(&Method::GET, "/", &before, b"", NOW),
            Err(IdentityError::SignedBeforeStart)
        );
        let after = signed(GW, Method::GET, "/", "u1", NOW);
        assert!(v.verify(&Method::GET, "/", &after, b"", NOW).is_ok());
        // A forged one is still named for what it is.
        let forged = signed(
            "gw:another-secret-another-secret-1234",
            Method::GET,
            "/",
            "u1",
            NOW - 1,
        );
        assert_eq!(
            v.verify(&Method::GET, "/", &forged, b"", NOW),
            Err(IdentityError::BadSignature)
        );
        // By default the verifier begins when it is made: at or after `before`.
        let before = unix_now();
        let fresh = Verifier::new(ring(GW), 30, Audience::default());
        let old = signed(GW, Method::GET, "/", "u1", before - 1);
        assert_eq!(
            fresh.verify(&Method::GET, "/", &old, b"", unix_now()),
            Err(IdentityError::SignedBeforeStart)
        );
    }

    #[test]
    fn the_body_must_be_the_one_signed_for() {
        let v = verifier();
        let path = "/api/u1/tasks";
        let headers = signed_for(
            GW,
            "tasks-service",
            Method::POST,
            path,
            "u1",
            b"{\"title\":\"a\"}",
            NOW,
        );
        assert_eq!(
            v.verify(&Method::POST, path, &headers, b"{\"title\":\"b\"}", NOW),
            Err(IdentityError::BodyMismatch)
        );
        assert_eq!(
            v.verify(&Method::POST, path, &headers, b"", NOW),
            Err(IdentityError::BodyMismatch)
        );
        // A tampered copy spent nothing: the real request still goes through, once.
        assert!(v
            .verify(&Method::POST, path, &headers, b"{\"title\":\"a\"}", NOW)
            .is_ok());
        assert_eq!(
            v.verify(&Method::POST, path, &headers, b"{\"title\":\"a\"}", NOW),
            Err(IdentityError::Replayed)
        );
    }

    #[test]
    fn a_credential_for_another_audience_is_refused_before_its_signature_counts() {
        let headers = signed_for(GW, "billing", Method::GET, "/", "u1", b"", NOW);
        assert_eq!(
            verifier().verify(&Method::GET, "/", &headers, b"", NOW),
            Err(IdentityError::WrongAudience)
        );
        let billing =
            Verifier::new(ring(GW), 30, audience("billing")).remembering_since(NOW - 3600);
        assert!(billing
            .verify(&Method::GET, "/", &headers, b"", NOW)
            .is_ok());
    }

    #[test]
    fn a_full_replay_memory_refuses_rather_than_forgets() {
        let v = verifier().replay_capacity(1);
        let first = signed(GW, Method::GET, "/", "u1", NOW);
        let second = signed(GW, Method::GET, "/", "u2", NOW);
        assert!(v.verify(&Method::GET, "/", &first, b"", NOW).is_ok());
        assert_eq!(
            v.verify(&Method::GET, "/", &second, b"", NOW),
            Err(IdentityError::ReplayCapacity)
        );
        assert_eq!(
            v.verify(&Method::GET, "/", &first, b"", NOW),
            Err(IdentityError::Replayed)
        );
    }

    #[test]
    fn one_user_spending_fast_is_refused_alone() {
        let v = verifier().replay_capacity(10).replay_per_user(2);
        let spend = |user: &str| {
            let headers = signed(GW, Method::GET, "/", user, NOW);
            v.verify(&Method::GET, "/", &headers, b"", NOW)
        };
        assert!(spend("mallory").is_ok());
        assert!(spend("mallory").is_ok());
        assert_eq!(
            spend("mallory"),
            Err(IdentityError::UserShareFull {
                retry_after_secs: 30
            })
        );
        assert_eq!(
            spend("alice").map(|user| user.map(|u| u.to_string())),
            Ok(Some("alice".to_owned()))
        );
        // Once the first two expire, mallory has room again.
        let later = signed(GW, Method::GET, "/", "mallory", NOW + 31);
        assert!(v.verify(&Method::GET, "/", &later, b"", NOW + 31).is_ok());
    }

    #[test]
    fn a_users_share_defaults_to_a_hundredth_of_the_memory() {
        assert_eq!(verifier().replay_share(), 10_000);
        assert_eq!(verifier().replay_capacity(50_000).replay_share(), 500);
        // Never less than a page's worth, nor more than the memory holds.
        assert_eq!(verifier().replay_capacity(5_000).replay_share(), 100);
        assert_eq!(verifier().replay_capacity(50).replay_share(), 50);
        // A share that was set holds whichever builder comes last.
        for v in [
            verifier().replay_capacity(5_000).replay_per_user(7),
            verifier().replay_per_user(7).replay_capacity(5_000),
        ] {
            assert_eq!(v.replay_share(), 7);
        }
    }

    #[test]
    fn v1_is_refused_unless_the_operator_allows_it() {
        let headers = v1("/api/u1/tasks", "u1", NOW);
        assert_eq!(
            verifier().verify(&Method::GET, "/api/u1/tasks", &headers, b"", NOW),
            Err(IdentityError::VersionRefused)
        );
        let lenient = verifier().accept_v1(true);
        let vouched = lenient
            .verify_head(&Method::GET, "/api/u1/tasks", &headers, NOW)
            .unwrap()
            .unwrap();
        assert_eq!(vouched.version(), Version::V1);
        assert_eq!(
            lenient.verify(&Method::GET, "/api/u2/tasks", &headers, b"", NOW),
            Err(IdentityError::BadSignature)
        );
    }

    #[test]
    fn no_identity_headers_is_anonymous() {
        let result = verifier().verify(&Method::GET, "/", &HeaderMap::new(), b"", NOW);
        assert_eq!(result, Ok(None));
    }

    #[test]
    fn refuses_tampering_staleness_and_unknown_keys() {
        let v = verifier();
        let headers = signed(GW, Method::GET, "/api/u1/tasks", "u1", NOW);
        let check = |method: Method, path: &str, headers: &HeaderMap, now: i64| {
            v.verify(&method, path, headers, b"", now).unwrap_err()
        };
        assert_eq!(
            check(Method::DELETE, "/api/u1/tasks", &headers, NOW),
            IdentityError::BadSignature
        );
        assert_eq!(
            check(Method::GET, "/api/u2/tasks", &headers, NOW),
            IdentityError::BadSignature
        );
        assert_eq!(
            check(Method::GET, "/api/u1/tasks", &headers, NOW + 31),
            IdentityError::Stale
        );
        assert_eq!(
            check(Method::GET, "/api/u1/tasks", &headers, NOW - 31),
            IdentityError::Stale
        );

        let mut other_user = headers.clone();
        other_user.insert(headers::USER_ID, HeaderValue::from_static("u2"));
        assert_eq!(
            check(Method::GET, "/api/u1/tasks", &other_user, NOW),
            IdentityError::BadSignature
        );

        let unknown = signed(
            "old:old-secret-old-secret-old-secret-1",
            Method::GET,
            "/",
            "u1",
            NOW,
        );
        assert_eq!(
            check(Method::GET, "/", &unknown, NOW),
            IdentityError::UnknownKey
        );
    }

    #[test]
    fn refuses_half_and_doubled_identities() {
        let v = verifier();
        let mut only_user = HeaderMap::new();
        only_user.insert(headers::USER_ID, HeaderValue::from_static("u1"));
        assert_eq!(
            v.verify(&Method::GET, "/", &only_user, b"", NOW),
            Err(IdentityError::MissingCredential)
        );

        let mut headers = signed(GW, Method::GET, "/", "u1", NOW);
        headers.remove(headers::USER_ID);
        assert_eq!(
            v.verify(&Method::GET, "/", &headers, b"", NOW),
            Err(IdentityError::MissingUserId)
        );

        let mut doubled = signed(GW, Method::GET, "/", "u1", NOW);
        doubled.append(headers::USER_ID, HeaderValue::from_static("u2"));
        assert_eq!(
            v.verify(&Method::GET, "/", &doubled, b"", NOW),
            Err(IdentityError::DuplicateHeader)
        );
    }

    #[test]
    fn refuses_malformed_credentials() {
        for bad in [
            "",
            "v3;kid=gw;ts=1;sig=AA",
            "v1;kid=gw;ts=-1;sig=AA",
            "v1;kid=gw;ts=1",
            "v1;kid=gw;ts=1;sig=!!",
            "v1;kid=gw;ts=1;sig=AA;x=1",
            "v2;kid=gw;ts=1;sig=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(headers::USER_ID, HeaderValue::from_static("u1"));
            headers.insert(
                headers::IDENTITY_CREDENTIAL,
                HeaderValue::from_str(bad).unwrap(),
            );
            assert_eq!(
                verifier()
                    .accept_v1(true)
                    .verify(&Method::GET, "/", &headers, b"", NOW),
                Err(IdentityError::Malformed),
                "{bad:?}"
            );
        }
    }
}
