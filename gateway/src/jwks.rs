//! The JWKS cache: fetches the issuer's key set, refreshes it in the background and answers
//! key lookups without ever waiting on the network for known keys.
//!
//! INTERFACE STUB: filled in behind these types.

use std::time::Duration;

/// How the key set is fetched and kept.
#[derive(Debug, Clone)]
pub struct JwksConfig {
    /// e.g. `http://127.0.0.1:3000/api/auth/jwks`.
    pub url: String,
    /// Refresh interval when the issuer sends no `Cache-Control: max-age` (Better Auth sends none).
    pub refresh_interval: Duration,
    /// `max-age` is honoured only within these bounds.
    pub min_refresh_interval: Duration,
    pub max_refresh_interval: Duration,
    /// At most one fetch per this period is caused by tokens with unknown `kid`s.
    pub unknown_kid_cooldown: Duration,
    /// How long the last good key set keeps serving while the issuer fails.
    pub stale_if_error: Duration,
    /// Connect and total timeouts of one fetch.
    pub connect_timeout: Duration,
    pub fetch_timeout: Duration,
    /// Bounds on what a fetch may return.
    pub max_response_bytes: usize,
    pub max_keys: usize,
}
