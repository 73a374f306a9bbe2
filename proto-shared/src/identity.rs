//! The gateway credential: proof that a holder of a shared key vouched for a user id on one
//! exact request.
//!
//! The signer (gateway or in-cluster caller) computes HMAC-SHA256 over the
//! [canonical string](canonical::canonical_string) of method, path with query, user id,
//! timestamp and key id, and sends it as [`crate::headers::IDENTITY_CREDENTIAL`] beside
//! [`crate::headers::USER_ID`]. The verifier (tasks-service) recomputes it with the key the
//! credential names, compares in constant time and checks the timestamp is fresh.
//! `specs/identity.md` is the prose version of this module.

mod canonical;
mod keys;
mod sign;
mod verify;

pub use canonical::{canonical_string, CREDENTIAL_VERSION};
pub use keys::{KeyId, KeyRing, KeyRingError};
pub use sign::{IdentityHeaders, Signer};
pub use verify::{IdentityError, Verifier};

/// Seconds since the Unix epoch, the clock every credential is stamped and checked with.
pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}
