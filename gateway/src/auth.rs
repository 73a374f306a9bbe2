//! Authenticates a request: `Authorization: Bearer <jwt>` in, verified identity out.
//! Knows nothing about forwarding; the proxy calls [`Authenticator::authenticate`] and maps
//! an [`AuthError`] to a response in `error.rs`.
//!
//! The steps, each in its own file: take the token out of the header (`bearer.rs`), look it up
//! in the verified-token cache (`token_cache.rs`), read its header and check its signature with
//! the JWKS key it names (`jwt.rs`, `es512.rs`), then apply the claim rules (`claims.rs`).

mod bearer;
mod claims;
mod es512;
mod jwt;
mod token_cache;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use prometheus_client::registry::Registry;
use proto_shared::UserId;
use tokio_util::sync::CancellationToken;

pub use crate::algorithm::{Algorithm, UnknownAlgorithm};
pub use bearer::MAX_TOKEN_LEN;
pub use claims::{SESSION_CACHE_AUDIENCE, SESSION_CACHE_TYP};
// The expiry rule, for the revocation set's tests: it must remember a revocation for as long
// as this rule still accepts a token the revocation covers.
#[cfg(test)]
pub(crate) use claims::unexpired;

use crate::jwks::{JwksCache, JwksConfig, KeySet, KeysUnavailable, VerifyingKey};
use crate::revocation::{self, FeedHealth, Refusal, RevocationConfig, Revocations, TokenFacts};
use claims::ClaimRules;
use jwt::Jws;
pub use token_cache::LastToken;
use token_cache::{CachedToken, TokenCache, TokenHash};

/// Everything token verification needs, built by `config.rs` from env and flags.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub jwks: JwksConfig,
    /// Required `iss`.
    pub issuer: String,
    /// Accepted `aud` values; a token must name at least one.
    pub audiences: Vec<String>,
    /// Allowed `alg` values.
    pub algorithms: Vec<Algorithm>,
    /// Slack for `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// Maximum number of verified tokens remembered.
    pub token_cache_capacity: u64,
    /// Where revocations come from; `None`: tokens are valid until they expire.
    pub revocation: Option<RevocationConfig>,
}

impl AuthConfig {
    /// Default leeway for `exp`, `nbf` and `iat`: 30 seconds.
    pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
    /// Default verified-token cache capacity: 100,000 tokens (about 20 MB at most).
    pub const DEFAULT_TOKEN_CACHE_CAPACITY: u64 = 100_000;

    /// Better Auth's defaults for a deployment at `base_url` (`BETTER_AUTH_URL`): JWKS at
    /// `$BETTER_AUTH_URL/api/auth/jwks`, issuer and audience `$BETTER_AUTH_URL` (without a
    /// trailing `/`), every algorithm, the default leeway and cache capacity.
    pub fn better_auth(base_url: &str) -> Self {
        let base = base_url.trim_end_matches('/');
        Self {
            jwks: JwksConfig::for_url(JwksConfig::better_auth_url(base)),
            issuer: base.to_owned(),
            audiences: vec![base.to_owned()],
            algorithms: Algorithm::ALL.to_vec(),
            leeway: Self::DEFAULT_LEEWAY,
            token_cache_capacity: Self::DEFAULT_TOKEN_CACHE_CAPACITY,
            revocation: None,
        }
    }
}

/// What a valid token proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub user_id: UserId,
    /// `user_id` as the identity header carries it ([`UserId::to_header_value`]), made once
    /// per verified token: every request the token comes with shares it.
    pub user_header: HeaderValue,
    /// `exp`, Unix seconds.
    pub expires_at: i64,
    /// `sid`: the Better Auth session the token was issued for, if the issuer says.
    pub session: Option<Arc<str>>,
    /// `iat`, Unix seconds, if present.
    pub issued_at: Option<i64>,
}

/// Why a request was not authenticated. `KeysUnavailable` means 503; every other variant 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token")]
    Missing,
    #[error("malformed token")]
    Malformed,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("bad signature")]
    BadSignature,
    #[error("unknown signing key")]
    UnknownKey,
    #[error("algorithm not allowed")]
    DisallowedAlgorithm,
    #[error("wrong issuer")]
    WrongIssuer,
    #[error("wrong audience")]
    WrongAudience,
    #[error("invalid subject")]
    InvalidSubject,
    #[error("not an API token")]
    WrongTokenType,
    #[error("signing keys unavailable")]
    KeysUnavailable,
    #[error("the session or user was revoked")]
    Revoked,
    #[error("the token would outlive the revocation window")]
    OutlivesRevocation,
    #[error("the revocation feed is unavailable")]
    RevocationUnavailable,
    #[error("the token names no session")]
    NoSession,
}

impl AuthError {
    /// A short stable label for logs and the refusals metric.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::BadSignature => "bad_signature",
            Self::UnknownKey => "unknown_key",
            Self::DisallowedAlgorithm => "disallowed_algorithm",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::InvalidSubject => "invalid_subject",
            Self::WrongTokenType => "wrong_token_type",
            Self::KeysUnavailable => "keys_unavailable",
            Self::Revoked => "revoked",
            Self::OutlivesRevocation => "outlives_revocation",
            Self::RevocationUnavailable => "revocation_unavailable",
            Self::NoSession => "no_session",
        }
    }
}

/// Verifies bearer tokens against the cached key set. Cheap to clone.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

struct Inner {
    jwks: JwksCache,
    algorithms: Vec<Algorithm>,
    rules: ClaimRules,
    tokens: TokenCache,
    revocations: Option<Revocations>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("issuer", &self.inner.rules.issuer)
            .field("algorithms", &self.inner.algorithms)
            .field("ready", &self.is_ready())
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Registers metrics and starts fetching and refreshing the JWKS in the background until
    /// `shutdown` is cancelled. Never blocks on the network. Must be called inside a Tokio
    /// runtime (it spawns the refresher).
    /// Metrics are registered under the `gateway_` prefix, like the proxy's own.
    pub fn start(config: AuthConfig, registry: &mut Registry, shutdown: CancellationToken) -> Self {
        let revocations = config
            .revocation
            .map(|revocation| Revocations::start(revocation, registry, shutdown.clone()));
        let registry = registry.sub_registry_with_prefix("gateway");
        let jwks = JwksCache::start(config.jwks, registry, shutdown);
        let tokens = TokenCache::new(config.token_cache_capacity, registry);
        Self {
            inner: Arc::new(Inner {
                jwks,
                algorithms: config.algorithms,
                rules: ClaimRules {
                    issuer: config.issuer,
                    audiences: config.audiences,
                    leeway: config.leeway,
                },
                tokens,
                revocations,
            }),
        }
    }

    /// True once a key set has been loaded and is not past the stale-if-error bound (counted
    /// from when its refresh was due, or its first failed fetch after that).
    pub fn is_ready(&self) -> bool {
        self.inner.jwks.is_ready()
    }

    /// Verifies the value of an `Authorization` header.
    pub async fn authenticate(&self, authorization: Option<&[u8]>) -> Result<Verified, AuthError> {
        self.authenticate_on(authorization, &mut LastToken::default())
            .await
    }

    /// The revocation feed's health at `now`, if revocation is on.
    pub fn revocation_health(&self, now: i64) -> Option<FeedHealth> {
        self.inner
            .revocations
            .as_ref()
            .map(|revocations| revocations.health(now))
    }

    /// Verifies the value of an `Authorization` header that arrived on the connection whose
    /// last token `last` remembers, then checks that its session and user are not revoked.
    /// The check runs whichever way the token was found valid (afresh, from the cache or
    /// from the connection's memory), so a remembered token is refused once revoked.
    pub async fn authenticate_on(
        &self,
        authorization: Option<&[u8]>,
        last: &mut LastToken,
    ) -> Result<Verified, AuthError> {
        let verified = self.verify_on(authorization, last).await?;
        if let Some(revocations) = &self.inner.revocations {
            let facts = TokenFacts {
                user: verified.user_id.as_str(),
                session: verified.session.as_deref(),
                issued_at: verified.issued_at,
                expires_at: verified.expires_at,
            };
            revocations
                .check(facts, revocation::unix_now())
                .map_err(|refusal| {
                    let error = match refusal {
                        Refusal::Revoked => AuthError::Revoked,
                        Refusal::OutlivesWindow => AuthError::OutlivesRevocation,
                        Refusal::Unavailable => AuthError::RevocationUnavailable,
                        Refusal::NoSession => AuthError::NoSession,
                    };
                    tracing::debug!(reason = error.reason(), "token refused after verification");
                    error
                })?;
        }
        Ok(verified)
    }

    async fn verify_on(
        &self,
        authorization: Option<&[u8]>,
        last: &mut LastToken,
    ) -> Result<Verified, AuthError> {
        let inner = &*self.inner;
        let presented = bearer::credentials(authorization)?;
        if let Some(verified) = self.recall(presented, last)? {
            return Ok(verified);
        }
        let token = bearer::validate(presented)?;
        // Without a usable key set nothing can be judged: 503, not 401, even for cached tokens.
        let keys = inner
            .jwks
            .current()
            .map_err(|_| AuthError::KeysUnavailable)?;
        let hash = inner.tokens.hash(token);
        if let Some(cached) = inner.tokens.get(&hash) {
            if self.still_holds(&keys, &cached) {
                inner.tokens.record(true);
                let verified = cached.verified.clone();
                last.remember(token, hash, cached);
                return Ok(verified);
            }
            // Its key was removed or replaced: verify afresh, which gives the precise reason.
            inner.tokens.remove(&hash);
        }
        inner.tokens.record(false);
        // Boxed: the long way's state (the parsed token, a wait for a key fetch) would
        // otherwise be part of every request's future, which each caller moves on every
        // request of a kept-alive connection (`specs/research.md`, "Futures that move").
        Box::pin(self.verify_afresh(token, hash, keys, last)).await
    }

    /// Verifies a token the cache does not hold: signature, key (fetched early if unknown),
    /// claims; caches and remembers what it proved.
    async fn verify_afresh(
        &self,
        token: &str,
        hash: TokenHash,
        keys: Arc<KeySet>,
        last: &mut LastToken,
    ) -> Result<Verified, AuthError> {
        let inner = &*self.inner;
        let jws = Jws::parse(token, &inner.algorithms).inspect_err(|err| {
            tracing::debug!(reason = err.reason(), "token refused before key lookup");
        })?;
        let key = match verifying_key(&jws, &keys) {
            Ok(key) => key,
            // The kid is known but no key of that name fits the alg: a refetch cannot help.
            Err(AuthError::UnknownKey) if keys.has_kid(&jws.kid) => {
                return Err(refused(&jws, AuthError::UnknownKey))
            }
            // An unknown kid, or no key under it verifies the signature: the key may have
            // been published or replaced since the last fetch. One early fetch, through the
            // unknown-kid gate (at most one per cooldown, however many tokens ask), then
            // once more against the new set. Refusals are never cached: a token refused
            // here is judged afresh next time.
            Err(first) => match inner.jwks.refresh_for_unknown_kid(&keys).await {
                Ok(fresh) if !Arc::ptr_eq(&fresh, &keys) => {
                    verifying_key(&jws, &fresh).map_err(|err| refused(&jws, err))?
                }
                Ok(_) => return Err(refused(&jws, first)),
                // The set outlived its stale-if-error bound during the wait: as at the door,
                // 503, not a 401 that would tell the client to drop a token it may keep.
                Err(KeysUnavailable) => return Err(AuthError::KeysUnavailable),
            },
        };
        claims::check_type(jws.typ.as_deref()).map_err(|err| refused(&jws, err))?;
        let payload = jws.payload().map_err(|err| refused(&jws, err))?;
        let verified = inner
            .rules
            .check(&payload, claims::now())
            .map_err(|err| refused(&jws, err))?;
        let cached = inner.tokens.insert(
            hash,
            CachedToken {
                verified: verified.clone(),
                kid: key.kid.clone(),
                fingerprint: key.fingerprint,
                published_in: key.published_in,
            },
        );
        if let Some(cached) = cached {
            last.remember(token, hash, cached);
        }
        Ok(verified)
    }

    /// What `presented` proved, if it is the token the connection last presented (so a
    /// token checked then) and its entry still holds; `None` sends it the long way, which
    /// also finds the precise reason for a refusal.
    fn recall(
        &self,
        presented: &[u8],
        last: &mut LastToken,
    ) -> Result<Option<Verified>, AuthError> {
        let Some((hash, cached)) = last.recall(presented) else {
            return Ok(None);
        };
        // Checked in place, not with a clone of the key set: this runs on every request of
        // a kept-alive connection, on every CPU.
        let holds = self
            .inner
            .jwks
            .with_current(|keys| self.still_holds(keys, &cached))
            .map_err(|_| AuthError::KeysUnavailable)?;
        if holds {
            self.inner.tokens.record(true);
            return Ok(Some(cached.verified.clone()));
        }
        self.inner.tokens.remove(&hash);
        last.forget();
        Ok(None)
    }

    /// Whether a remembered verification still holds: the key that verified it is still
    /// published, and the token's `exp` has not passed. The one judgement for an entry from
    /// the cache or from the connection.
    fn still_holds(&self, keys: &KeySet, cached: &CachedToken) -> bool {
        keys.still_has(&cached.kid, &cached.fingerprint, cached.published_in)
            && claims::unexpired(
                cached.verified.expires_at as f64,
                claims::now(),
                self.inner.rules.leeway,
            )
    }
}

/// The key that verifies the token's signature, among those under its `kid` that fit its
/// `alg` (an issuer may publish several under one `kid`). `UnknownKey` when none fits,
/// `BadSignature` when none verifies.
fn verifying_key(jws: &Jws<'_>, keys: &KeySet) -> Result<Arc<VerifyingKey>, AuthError> {
    let mut refusal = AuthError::UnknownKey;
    for key in keys.candidates(&jws.kid, jws.alg) {
        match jws.verify_signature(key) {
            Ok(()) => return Ok(key.clone()),
            Err(err) => refusal = err,
        }
    }
    Err(refusal)
}

/// Logs a refusal with what identifies the key, never the token.
fn refused(jws: &Jws<'_>, err: AuthError) -> AuthError {
    tracing::debug!(kid = ?jws.kid, alg = %jws.alg, reason = err.reason(), "token refused");
    err
}

/// The token parsers, for the fuzz targets alone (`gateway::fuzzing`).
#[cfg(feature = "fuzzing")]
pub mod fuzzing {
    pub use super::bearer::{credentials, validate};
    pub use super::claims::ClaimRules;
    pub use super::jwt::Jws;
}
