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
pub use canonical::{canonical_string, Statement};
pub use credential::{Binding, BodyDigest, Credential, Nonce, Version};
pub use keys::{KeyId, KeyRing, KeyRingError};
pub use sign::{IdentityHeaders, Signer};
pub use verify::{IdentityError, Verifier, Vouched};

/// Seconds since the Unix epoch, the clock every credential is stamped and checked with.
pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}
