//! Signing: turns a verified user id into the two headers that tasks-service trusts, a v2
//! credential bound to one audience, one use and one body.

use std::{cell::Cell, fmt};

use aws_lc_rs::{hmac, rand::SecureRandom};
use http::{HeaderMap, HeaderValue, Method};

use super::{
    canonical::canonical_with, Audience, Binding, BodyDigest, Credential, KeyId, KeyRing, Nonce,
    Statement,
};
use crate::{headers, UserId};

/// Signs identities with the ring's signing key for one audience. Cheap to clone. `Debug`
/// shows the key id and audience only.
#[derive(Clone)]
pub struct Signer {
    key_id: KeyId,
    key: hmac::Key,
    audience: Audience,
}

/// The user-id header and its credential, ready to replace whatever a request carried.
/// `Debug` shows the user only: an unspent credential is as good as the key for one request.
/// The credential's value is marked sensitive too, so that `http`'s own `Debug` of a header
/// map hides it and HTTP/2's header compression never indexes it.
#[derive(Clone)]
pub struct IdentityHeaders {
    pub user_id: HeaderValue,
    pub credential: HeaderValue,
}

impl std::fmt::Debug for IdentityHeaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityHeaders")
            .field("user_id", &self.user_id)
            .field("credential", &"<hidden>")
            .finish()
    }
}

/// Unique nonces without a system call per request, and without a count that the threads
/// of a signing process would pass between their CPUs on every request: each thread draws 8
/// random bytes once, then counts. Uniqueness is all a nonce needs (the signature covers it,
/// so knowing the next one gives nobody a credential); two threads, in this process or any
/// other, collide only if their random halves do, a chance of about n²/2⁶⁵ for n threads.
struct NonceSequence {
    prefix: [u8; 8],
    next: Cell<u64>,
}

thread_local! {
    static NONCES: NonceSequence = NonceSequence::new();
}

impl NonceSequence {
    fn new() -> Self {
        let mut prefix = [0u8; 8];
        aws_lc_rs::rand::SystemRandom::new()
            .fill(&mut prefix)
            .expect("the operating system's random source is available");
        Self {
            prefix,
            next: Cell::new(0),
        }
    }

    /// The calling thread's next nonce.
    fn next() -> Nonce {
        NONCES.with(|sequence| {
            let count = sequence.next.get();
            sequence.next.set(count.wrapping_add(1));
            let mut nonce = [0u8; 16];
            nonce[..8].copy_from_slice(&sequence.prefix);
            nonce[8..].copy_from_slice(&count.to_be_bytes());
            Nonce(nonce)
        })
    }
}

impl Signer {
    /// A signer using the ring's signing (first) key, for credentials that only a verifier
    /// of `audience` accepts.
    pub fn new(ring: &KeyRing, audience: Audience) -> Self {
        let (key_id, key) = ring.signing_key();
        Self {
            key_id: key_id.clone(),
            key: key.clone(),
            audience,
        }
    }

    /// The id of the key this signer uses.
    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    /// The audience this signer's credentials are for.
    pub fn audience(&self) -> &Audience {
        &self.audience
    }

    /// Signs `user_id` for one request whose body has `body` as its digest
    /// ([`BodyDigest::of`] the exact bytes sent, [`BodyDigest::EMPTY`] for none).
    /// `path_and_query` is the request target exactly as it will be sent; `timestamp` is
    /// Unix seconds ([`super::unix_now`]).
    pub fn sign(
        &self,
        method: &Method,
        path_and_query: &str,
        user_id: &UserId,
        body: BodyDigest,
        timestamp: i64,
    ) -> IdentityHeaders {
        IdentityHeaders {
            user_id: user_id.to_header_value(),
            credential: self.credential(method, path_and_query, user_id, body, timestamp),
        }
    }

    /// The credential header alone, as [`Signer::sign`] makes it: for a caller that keeps
    /// `user_id`'s header value ([`UserId::to_header_value`]) from one request to the next.
    pub fn credential(
        &self,
        method: &Method,
        path_and_query: &str,
        user_id: &UserId,
        body: BodyDigest,
        timestamp: i64,
    ) -> HeaderValue {
        let credential = Credential {
            key_id: self.key_id.as_str(),
            timestamp,
            binding: Some(Binding {
                audience: self.audience.as_str(),
                nonce: NonceSequence::next(),
                body_digest: body,
            }),
            signature: [0; 32],
        };
        self.signed(method, path_and_query, user_id, credential)
    }

    /// `credential`, signed for the request, as header text.
    fn signed(
        &self,
        method: &Method,
        path_and_query: &str,
        user_id: &UserId,
        mut credential: Credential<'_>,
    ) -> HeaderValue {
        let statement = Statement {
            method,
            target: path_and_query,
            user: user_id,
        };
        // Encoded once, for the string signed and the header both.
        let binding = credential.binding.as_ref().map(Binding::text);
        let tag = hmac::sign(
            &self.key,
            canonical_with(&statement, &credential, binding.as_ref()).as_bytes(),
        );
        credential.signature = tag.as_ref().try_into().expect("HMAC-SHA256 is 32 bytes");
        // Exactly as long as the text, so that the header value takes it over as it is:
        // neither a copy nor a second allocation to share it.
        let mut text = Vec::with_capacity(credential.text_len());
        credential.write_with(binding.as_ref(), &mut text);
        let mut value = HeaderValue::from_maybe_shared(bytes::Bytes::from(text))
            .expect("key ids, audiences, digits and base64url are valid header text");
        value.set_sensitive(true);
        value
    }
}

impl Signer {
    /// Signs a v1 credential (method, target, user, time and key id; no audience, nonce or
    /// body), as signers did before v2. Only for what the rolling upgrade needs: tests and
    /// benchmarks of verifiers with `IDENTITY_ACCEPT_V1`. Signers send v2 ([`Signer::sign`]).
    pub fn sign_v1(
        &self,
        method: &Method,
        path_and_query: &str,
        user_id: &UserId,
        timestamp: i64,
    ) -> IdentityHeaders {
        let credential = Credential {
            key_id: self.key_id.as_str(),
            timestamp,
            binding: None,
            signature: [0; 32],
        };
        IdentityHeaders {
            user_id: user_id.to_header_value(),
            credential: self.signed(method, path_and_query, user_id, credential),
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
            .field("audience", &self.audience)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> KeyRing {
        "gw:gateway-secret-gateway-secret-123".parse().unwrap()
    }

    /// The nonce of a credential `signer` makes, read back from its header text.
    fn nonce_signed_by(signer: &Signer, user: &UserId) -> Nonce {
        let headers = signer.sign(&Method::GET, "/", user, BodyDigest::EMPTY, 1);
        let text = headers.credential.to_str().unwrap().to_owned();
        Credential::parse(&text).unwrap().binding.unwrap().nonce
    }

    #[test]
    fn debug_never_shows_an_unspent_credential() {
        let signer = Signer::new(&ring(), Audience::default());
        let user = UserId::parse("u1").unwrap();
        let headers = signer.sign(&Method::GET, "/", &user, BodyDigest::EMPTY, 1);
        let credential = headers.credential.to_str().unwrap().to_owned();
        let mut map = http::HeaderMap::new();
        map.insert(
            crate::headers::IDENTITY_CREDENTIAL,
            headers.credential.clone(),
        );
        for shown in [format!("{headers:?}"), format!("{map:?}")] {
            assert!(!shown.contains(&credential), "{shown}");
            assert!(
                !shown.contains(&credential[credential.len() - 20..]),
                "{shown}"
            );
        }
        assert!(format!("{headers:?}").contains("u1"));
    }

    #[test]
    fn every_credential_gets_its_own_nonce_across_threads() {
        let signer = Signer::new(&ring(), Audience::default());
        let user = UserId::parse("u1").unwrap();
        let nonces: Vec<Nonce> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        (0..100)
                            .map(|_| nonce_signed_by(&signer, &user))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            threads
                .into_iter()
                .flat_map(|thread| thread.join().unwrap())
                .collect()
        });
        let unique: std::collections::HashSet<_> = nonces.iter().collect();
        assert_eq!(unique.len(), 800, "a nonce was used twice");
    }

    #[test]
    fn every_credential_gets_its_own_nonce_across_clones() {
        let ring = ring();
        let signer = Signer::new(&ring, Audience::default());
        let clone = signer.clone();
        let other = Signer::new(&ring, Audience::default());
        let user = UserId::parse("u1").unwrap();
        let mut seen = std::collections::HashSet::new();
        for s in [&signer, &clone, &other, &signer] {
            let nonce = nonce_signed_by(s, &user);
            assert!(seen.insert(nonce), "nonce {nonce:?} used twice");
        }
    }
}
