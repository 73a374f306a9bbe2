//! The gateway credential: proof that a holder of a shared key vouched for a user id on one
//! exact request, for one service, once.
//!
//! The signer (gateway or in-cluster caller) computes HMAC-SHA256 over the
//! [canonical string](canonical::canonical_string) of method, path with query, user id,
//! timestamp, key id, audience, a nonce and the body's SHA-256, and sends it as
//! [`crate::headers::IDENTITY_CREDENTIAL`] beside [`crate::headers::USER_ID`]. The verifier
//! (tasks-service) recomputes it with the key the credential names, compares in constant
//! time, checks the timestamp is fresh, the audience is its own and the body is the one
//! signed for, and remembers the nonce so the credential is accepted once.
//! `specs/identity.md` is the prose version of this module.

mod audience;
mod canonical;
mod credential;
mod keys;
mod replay;
mod sign;
mod verify;

pub use audience::Audience;
pub use canonical::{canonical_string, Canonical, Statement};
pub use credential::{Binding, BodyDigest, Credential, Nonce, Version};
pub use keys::{KeyId, KeyRing, KeyRingError};
pub use sign::{IdentityHeaders, Signer};
pub use verify::{IdentityError, Verifier, Vouched};

/// Seconds since the Unix epoch, the clock every credential is stamped and checked with.
/// Read from `SystemTime` directly: a calendar date (what `chrono::Utc::now` works out on
/// the way) is not needed for a count of seconds, and this runs for every request.
pub fn unix_now() -> i64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        // A clock set before 1970: as far before it as it is.
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn unix_now_is_the_calendar_clock_in_seconds() {
        let before = chrono::Utc::now().timestamp();
        let now = super::unix_now();
        let after = chrono::Utc::now().timestamp();
        assert!(
            before <= now && now <= after,
            "{before} <= {now} <= {after}"
        );
    }
}
