//! Signing: turns a verified user id into the two headers that tasks-service trusts.

use std::fmt;

use aws_lc_rs::hmac;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use http::{HeaderMap, HeaderValue, Method};

use super::{canonical_string, KeyId, KeyRing, CREDENTIAL_VERSION};
use crate::{headers, UserId};

/// Length of a base64url (unpadded) HMAC-SHA256 tag.
const SIGNATURE_LEN: usize = 43;

/// Signs identities with the ring's signing key. Cheap to clone; `Debug` shows the key id only.
#[derive(Clone)]
pub struct Signer {
    key_id: KeyId,
    key: hmac::Key,
}

/// The user-id header and its credential, ready to replace whatever a request carried.
#[derive(Debug, Clone)]
pub struct IdentityHeaders {
    pub user_id: HeaderValue,
    pub credential: HeaderValue,
}

impl Signer {
    /// A signer using the ring's signing (first) key.
    pub fn new(ring: &KeyRing) -> Self {
        let (key_id, key) = ring.signing_key();
        Self {
            key_id: key_id.clone(),
            key: key.clone(),
        }
    }

    /// The id of the key this signer uses.
    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    /// Signs `user_id` for one request. `path_and_query` is the request target exactly as it
    /// will be sent; `timestamp` is Unix seconds ([`super::unix_now`]).
    pub fn sign(
        &self,
        method: &Method,
        path_and_query: &str,
        user_id: &UserId,
        timestamp: i64,
    ) -> IdentityHeaders {
        let message = canonical_string(method, path_and_query, user_id, timestamp, &self.key_id);
        let tag = hmac::sign(&self.key, message.as_bytes());
        // `v1;kid={key id};ts={timestamp};sig={base64url tag}`, without `format!` (see
        // `canonical_string`), handed to the header value without a copy.
        let mut credential = String::with_capacity(message.len() + 64);
        credential.push_str(CREDENTIAL_VERSION);
        credential.push_str(";kid=");
        credential.push_str(self.key_id.as_str());
        credential.push_str(";ts=");
        credential.push_str(itoa::Buffer::new().format(timestamp));
        credential.push_str(";sig=");
        // Into a stack buffer: `encode_string` goes through a slower chunked encoder.
        let mut signature = [0u8; SIGNATURE_LEN];
        let written = URL_SAFE_NO_PAD
            .encode_slice(tag.as_ref(), &mut signature)
            .expect("an HMAC-SHA256 tag is 43 base64url characters");
        credential.push_str(std::str::from_utf8(&signature[..written]).expect("base64 is ASCII"));
        IdentityHeaders {
            user_id: user_id.to_header_value(),
            credential: HeaderValue::from_maybe_shared(bytes::Bytes::from(credential))
                .expect("key ids, digits and base64url are valid header text"),
        }
    }
}

impl IdentityHeaders {
    /// Replaces (never appends to) any identity headers already in `headers`.
    pub fn insert_into(self, headers: &mut HeaderMap) {
        headers.insert(headers::USER_ID, self.user_id);
        headers.insert(headers::IDENTITY_CREDENTIAL, self.credential);
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("key_id", &self.key_id)
            .finish()
    }
}
