//! The JOSE layer of a compact JWS: splits the token, reads its protected header, and checks
//! the signature with the key the header names. Claims are `claims.rs`'s business.
//!
//! The header is parsed here rather than by jsonwebtoken because jsonwebtoken's `Header` has no
//! `ES512` and no `Ed25519` and would reject such tokens before we could route them. Signatures
//! are still checked by jsonwebtoken (EdDSA, ES256, RS256, PS256) or aws-lc-rs (ES512).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Deserializer};

use super::{es512, AuthError};
use crate::algorithm::Algorithm;
use crate::jwks::key_set::{KeyMaterial, VerifyingKey};

/// Longest `kid` accepted. Better Auth's are 32 characters; a longer one is not worth a fetch.
const MAX_KID_LEN: usize = 256;

/// A token split into its parts, header decoded, nothing verified yet.
/// Its `Debug` shows the header fields only: the parts are the token itself.
pub struct Jws<'a> {
    pub alg: Algorithm,
    pub kid: String,
    pub typ: Option<String>,
    /// `base64url(header) "." base64url(payload)`: the signed bytes.
    signing_input: &'a str,
    payload: &'a str,
    signature: &'a str,
}

impl std::fmt::Debug for Jws<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jws")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("typ", &self.typ)
            .finish_non_exhaustive()
    }
}

/// The protected-header members we read. Unknown members are ignored, in particular `jku`,
/// `x5u`, `x5c` and `jwk`: keys come only from the configured JWKS, never from the token.
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    kid: Option<String>,
    typ: Option<String>,
    /// Any `crit` at all is refused: we implement no extension (RFC 7515 §4.1.11).
    #[serde(default, deserialize_with = "present")]
    crit: bool,
    /// RFC 7797 unencoded payloads change what is signed; refused like `crit`.
    #[serde(default, deserialize_with = "present")]
    b64: bool,
}

fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(deserializer).map(|_| true)
}

impl<'a> Jws<'a> {
    /// Splits and decodes the header; checks `alg` against `allowed` and requires a `kid`.
    pub fn parse(token: &'a str, allowed: &[Algorithm]) -> Result<Self, AuthError> {
        // Only base64url and the two dots: anything else is malformed, whichever part it is in.
        let base64url = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
        if !token.bytes().all(base64url) {
            return Err(AuthError::Malformed);
        }
        let mut parts = token.splitn(3, '.');
        let (Some(header), Some(payload), Some(signature)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed);
        };
        if signature.contains('.') || header.is_empty() || payload.is_empty() {
            return Err(AuthError::Malformed); // a JWE (5 parts) or worse
        }
        let header_json = URL_SAFE_NO_PAD
            .decode(header)
            .map_err(|_| AuthError::Malformed)?;
        // serde's derive refuses duplicate members, so `{"alg":"none","alg":"EdDSA"}` is malformed.
        // UTF-8 first (RFC 7515 §5.2): serde_json checks it only in the strings it keeps.
        let header_json = std::str::from_utf8(&header_json).map_err(|_| AuthError::Malformed)?;
        let raw: RawHeader = serde_json::from_str(header_json).map_err(|_| AuthError::Malformed)?;
        if raw.crit || raw.b64 {
            return Err(AuthError::Malformed);
        }
        let alg: Algorithm = raw
            .alg
            .parse()
            .map_err(|_| AuthError::DisallowedAlgorithm)?;
        if !allowed.contains(&alg) {
            return Err(AuthError::DisallowedAlgorithm);
        }
        // Better Auth always sets `kid`. Guessing among keys for a kid-less token would let a
        // token verify against keys it never named, so there is no guessing.
        let kid = raw
            .kid
            .filter(|kid| !kid.is_empty())
            .ok_or(AuthError::UnknownKey)?;
        if kid.len() > MAX_KID_LEN {
            return Err(AuthError::Malformed);
        }
        Ok(Self {
            alg,
            kid,
            typ: raw.typ,
            signing_input: &token[..header.len() + 1 + payload.len()],
            payload,
            signature,
        })
    }

    /// Checks the signature with `key`, which the caller chose by `kid` and `alg`.
    pub fn verify_signature(&self, key: &VerifyingKey) -> Result<(), AuthError> {
        if !key.accepts(self.alg) {
            return Err(AuthError::UnknownKey);
        }
        let message = self.signing_input.as_bytes();
        let valid = match &key.material {
            KeyMaterial::Jwt(decoding_key) => {
                let Some(alg) = self.alg.jsonwebtoken() else {
                    return Err(AuthError::UnknownKey);
                };
                // An Err here is an undecodable signature or a key that does not fit: both
                // mean the token was not signed by this key.
                jsonwebtoken::crypto::verify(self.signature, message, decoding_key, alg)
                    .unwrap_or(false)
            }
            KeyMaterial::P521Point(point) => {
                let signature = URL_SAFE_NO_PAD
                    .decode(self.signature)
                    .map_err(|_| AuthError::BadSignature)?;
                es512::verify(point, message, &signature)
            }
        };
        if valid {
            Ok(())
        } else {
            Err(AuthError::BadSignature)
        }
    }

    /// The decoded payload. Call only after the signature has been checked.
    pub fn payload(&self) -> Result<Vec<u8>, AuthError> {
        URL_SAFE_NO_PAD
            .decode(self.payload)
            .map_err(|_| AuthError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found with the `bearer_jwt` fuzz target (in the claims; the header had the same gap):
    /// invalid UTF-8 inside a header member the parser ignores passed.
    #[test]
    fn a_header_that_is_not_utf8_is_malformed() {
        let token = |header: &[u8]| format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode(header));
        let good = token(br#"{"alg":"EdDSA","kid":"k1","x":"y"}"#);
        assert!(Jws::parse(&good, &Algorithm::ALL).is_ok());
        let bad = token(b"{\"alg\":\"EdDSA\",\"kid\":\"k1\",\"x\":\"\xeb\xff\"}");
        assert_eq!(
            Jws::parse(&bad, &Algorithm::ALL).map(|jws| jws.kid),
            Err(AuthError::Malformed)
        );
    }
}
