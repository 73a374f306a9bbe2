//! Authenticates a request: `Authorization: Bearer <jwt>` in, verified identity out.
//! Knows nothing about forwarding; the proxy calls [`Authenticator::authenticate`] and maps
//! an [`AuthError`] to a response in `error.rs`.
//!
//! INTERFACE STUB: the types and signatures here are the contract between the proxy and the
//! token-verification code; the bodies are filled in behind them.

use std::time::Duration;

use http::HeaderValue;
use jsonwebtoken::Algorithm as JwtAlgorithm;
use prometheus_client::registry::Registry;
use proto_shared::UserId;
use tokio_util::sync::CancellationToken;

use crate::jwks::JwksConfig;

/// A signing algorithm the gateway may accept. ES512 is separate because jsonwebtoken lacks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    EdDsa,
    Es256,
    Es512,
    Rs256,
    Ps256,
}

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
}

/// What a valid token proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub user_id: UserId,
    /// `exp`, Unix seconds.
    pub expires_at: i64,
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
        }
    }
}

/// Verifies bearer tokens against the cached key set. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Authenticator {}

impl Authenticator {
    /// Registers metrics and starts fetching and refreshing the JWKS in the background until
    /// `shutdown` is cancelled. Never blocks on the network.
    pub fn start(config: AuthConfig, registry: &mut Registry, shutdown: CancellationToken) -> Self {
        let _ = (config, registry, shutdown);
        Self {}
    }

    /// True once a key set has been loaded and is not older than the stale-if-error bound.
    pub fn is_ready(&self) -> bool {
        false
    }

    /// Verifies the value of an `Authorization` header.
    pub async fn authenticate(
        &self,
        authorization: Option<&HeaderValue>,
    ) -> Result<Verified, AuthError> {
        let _ = authorization;
        Err(AuthError::KeysUnavailable)
    }
}

#[allow(dead_code)]
fn _jwt_algorithm_is_used(_: JwtAlgorithm) {}
