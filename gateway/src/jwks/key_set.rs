//! One fetched JWKS, parsed into verification keys indexed by `kid`.
//!
//! JWKs are parsed leniently one by one: a key we cannot use (unknown `kty`, a curve we do not
//! support, an encryption key) is skipped rather than failing the whole set, so an issuer that
//! publishes an extra key type never locks every user out. What a key may verify is decided
//! here, once, from its type and curve; the JWK's own `alg`, `use` and `key_ops` only narrow it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use aws_lc_rs::digest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::DecodingKey;
use serde::Deserialize;

use crate::algorithm::Algorithm;

/// SHA-256 of a key's type and public material: tells two keys with the same `kid` apart, so a
/// cached verification is only trusted while the very key that made it is still published.
pub type KeyFingerprint = [u8; 32];

/// What kind of public key a JWK holds; decides which algorithms it can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// `kty: OKP`, `crv: Ed25519`.
    Ed25519,
    /// `kty: EC`, `crv: P-256`.
    P256,
    /// `kty: EC`, `crv: P-521`.
    P521,
    /// `kty: RSA`.
    Rsa,
}

impl KeyKind {
    /// Whether a key of this kind can verify `alg` (RFC 7518 §3, RFC 8037 §3.1).
    pub fn fits(self, alg: Algorithm) -> bool {
        matches!(
            (self, alg),
            (Self::Ed25519, Algorithm::EdDsa)
                | (Self::P256, Algorithm::Es256)
                | (Self::P521, Algorithm::Es512)
                | (Self::Rsa, Algorithm::Rs256 | Algorithm::Ps256)
        )
    }
}

/// The public material of one key, ready to verify with.
#[derive(Debug, Clone)]
pub enum KeyMaterial {
    /// Verified through jsonwebtoken (EdDSA, ES256, RS256, PS256).
    Jwt(DecodingKey),
    /// Uncompressed P-521 point (`04 || x || y`), verified with aws-lc-rs directly.
    P521Point(Vec<u8>),
}

/// A verification key from the JWKS.
#[derive(Debug, Clone)]
pub struct VerifyingKey {
    pub kid: Arc<str>,
    pub kind: KeyKind,
    /// The JWK's `alg`, when it names one: the key then verifies only that algorithm.
    pub alg: Option<Algorithm>,
    pub material: KeyMaterial,
    pub fingerprint: KeyFingerprint,
    /// The [`KeySet::generation`] of the set that published it.
    pub published_in: u64,
}

impl VerifyingKey {
    /// Whether this key may verify a token signed with `alg`.
    pub fn accepts(&self, alg: Algorithm) -> bool {
        self.kind.fits(alg) && self.alg.is_none_or(|own| own == alg)
    }
}

/// An immutable key set; replaced whole on every successful fetch, never edited.
#[derive(Debug, Default)]
pub struct KeySet {
    by_kid: HashMap<Arc<str>, Vec<Arc<VerifyingKey>>>,
    len: usize,
    /// Which parse made it: unique in the process (0 only for the empty default set). A
    /// verification made with one of its keys still holds while it is current, with no lookup.
    generation: u64,
}

/// The last [`KeySet::generation`] handed out.
static GENERATIONS: AtomicU64 = AtomicU64::new(0);

/// Why a fetched body is not a usable key set.
#[derive(Debug, thiserror::Error)]
pub enum KeySetError {
    #[error("not a JWKS document: {0}")]
    NotJwks(#[from] serde_json::Error),
    #[error("{count} keys published, more than the limit of {max} (JWKS_MAX_KEYS)")]
    TooManyKeys { count: usize, max: usize },
}

impl KeySet {
    /// Parses a JWKS body. Keys we cannot use are skipped (and reported through `skipped`).
    pub fn parse(body: &[u8], max_keys: usize) -> Result<(Self, usize), KeySetError> {
        let doc: JwksDocument = serde_json::from_slice(body)?;
        if doc.keys.len() > max_keys {
            return Err(KeySetError::TooManyKeys {
                count: doc.keys.len(),
                max: max_keys,
            });
        }
        let mut set = KeySet {
            generation: GENERATIONS.fetch_add(1, Ordering::Relaxed) + 1,
            ..KeySet::default()
        };
        let mut skipped = 0;
        for raw in doc.keys {
            // Each key is parsed on its own: one odd key must not discard the others.
            match serde_json::from_value::<RawJwk>(raw)
                .ok()
                .and_then(|raw| raw.into_key(set.generation))
            {
                Some(key) => {
                    set.len += 1;
                    set.by_kid
                        .entry(key.kid.clone())
                        .or_default()
                        .push(Arc::new(key));
                }
                None => skipped += 1,
            }
        }
        Ok((set, skipped))
    }

    /// Whether any key carries this `kid`, whatever its type.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.by_kid.contains_key(kid)
    }

    /// Every key named `kid` that may verify `alg`, in the order published. An issuer may
    /// publish several under one `kid` (during a rotation that keeps the name): a token is
    /// valid if any of them verifies it.
    pub fn candidates<'a>(
        &'a self,
        kid: &str,
        alg: Algorithm,
    ) -> impl Iterator<Item = &'a Arc<VerifyingKey>> + 'a {
        self.by_kid
            .get(kid)
            .into_iter()
            .flatten()
            .filter(move |key| key.accepts(alg))
    }

    /// Whether the key that verified a cached token is still published, unchanged: at once
    /// if this is the set that published it (`published_in`), else looked up.
    pub fn still_has(&self, kid: &str, fingerprint: &KeyFingerprint, published_in: u64) -> bool {
        (published_in == self.generation && self.generation != 0)
            || self
                .by_kid
                .get(kid)
                .is_some_and(|keys| keys.iter().any(|key| &key.fingerprint == fingerprint))
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for an empty set, which is valid: Better Auth publishes one between rotations.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[derive(Deserialize)]
struct JwksDocument {
    keys: Vec<serde_json::Value>,
}

/// The JWK members we read (RFC 7517 §4, RFC 7518 §6, RFC 8037 §2); others are ignored.
#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    kid: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    key_ops: Option<Vec<String>>,
    alg: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

impl RawJwk {
    /// The key, for the set of generation `published_in`; `None` when unusable.
    fn into_key(self, published_in: u64) -> Option<VerifyingKey> {
        // Kid-less keys are useless: tokens without a kid are refused (see auth::jwt).
        let kid = self.kid.filter(|kid| !kid.is_empty())?;
        if self.use_.as_deref().is_some_and(|use_| use_ != "sig") {
            return None;
        }
        if let Some(ops) = &self.key_ops {
            if !ops.iter().any(|op| op == "verify") {
                return None;
            }
        }
        let alg = match self.alg.as_deref() {
            None => None,
            // An unknown or symmetric `alg` means the key is not for us.
            Some(name) => Some(name.parse::<Algorithm>().ok()?),
        };
        let (kind, material, public) = match (self.kty.as_str(), self.crv.as_deref()) {
            ("OKP", Some("Ed25519")) => {
                let x = decode_exact(self.x.as_deref()?, 32)?;
                let key = DecodingKey::from_ed_der(&x);
                (KeyKind::Ed25519, KeyMaterial::Jwt(key), x)
            }
            ("EC", Some("P-256")) => {
                let point = ec_point(self.x.as_deref()?, self.y.as_deref()?, 32)?;
                let key = DecodingKey::from_ec_der(&point);
                (KeyKind::P256, KeyMaterial::Jwt(key), point)
            }
            ("EC", Some("P-521")) => {
                let point = ec_point(self.x.as_deref()?, self.y.as_deref()?, 66)?;
                (KeyKind::P521, KeyMaterial::P521Point(point.clone()), point)
            }
            ("RSA", _) => {
                let n = URL_SAFE_NO_PAD.decode(self.n.as_deref()?).ok()?;
                let e = URL_SAFE_NO_PAD.decode(self.e.as_deref()?).ok()?;
                if n.is_empty() || e.is_empty() {
                    return None;
                }
                let key = DecodingKey::from_rsa_raw_components(&n, &e);
                let mut public = n;
                public.push(b'.');
                public.extend_from_slice(&e);
                (KeyKind::Rsa, KeyMaterial::Jwt(key), public)
            }
            _ => return None,
        };
        if alg.is_some_and(|alg| !kind.fits(alg)) {
            return None; // a JWK whose `alg` contradicts its own type is broken; skip it
        }
        Some(VerifyingKey {
            kid: kid.into(),
            kind,
            alg,
            material,
            fingerprint: fingerprint(kind, &public),
            published_in,
        })
    }
}

fn decode_exact(b64: &str, len: usize) -> Option<Vec<u8>> {
    let bytes = URL_SAFE_NO_PAD.decode(b64).ok()?;
    (bytes.len() == len).then_some(bytes)
}

fn ec_point(x: &str, y: &str, coordinate_len: usize) -> Option<Vec<u8>> {
    let mut point = Vec::with_capacity(1 + 2 * coordinate_len);
    point.push(0x04);
    point.extend_from_slice(&decode_exact(x, coordinate_len)?);
    point.extend_from_slice(&decode_exact(y, coordinate_len)?);
    Some(point)
}

fn fingerprint(kind: KeyKind, public: &[u8]) -> KeyFingerprint {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(format!("{kind:?}:").as_bytes());
    ctx.update(public);
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8037's example Ed25519 public key (RFC 8032's first test key), under `kid`.
    fn jwks(kid: &str) -> Vec<u8> {
        jwks_with(kid, "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
    }

    /// The Ed25519 public key `x` (base64url) under `kid`.
    fn jwks_with(kid: &str, x: &str) -> Vec<u8> {
        format!(r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","kid":"{kid}","x":"{x}"}}]}}"#)
            .into_bytes()
    }

    /// A verification made with a key holds at once in the set that published it, by lookup
    /// in a later set that publishes the same key, and nowhere else: not where another key
    /// took its kid, nor where it is gone.
    #[test]
    fn a_key_is_still_had_where_it_is_published_and_only_there() {
        let (first, _) = KeySet::parse(&jwks("k1"), 8).unwrap();
        let key = first
            .candidates("k1", Algorithm::EdDsa)
            .next()
            .unwrap()
            .clone();
        assert_ne!(key.published_in, 0);
        assert!(first.still_has("k1", &key.fingerprint, key.published_in));

        let (again, _) = KeySet::parse(&jwks("k1"), 8).unwrap();
        assert_ne!(again.generation, first.generation);
        assert!(again.still_has("k1", &key.fingerprint, key.published_in));

        // RFC 8032's second test key under the same kid: another key.
        let (replaced, _) = KeySet::parse(
            &jwks_with("k1", "PUAXw-hDiVqStwqnTRt-vJyYLM8uxJaMwM1V8Sr0Zgw"),
            8,
        )
        .unwrap();
        assert_eq!(replaced.len(), 1);
        assert!(!replaced.still_has("k1", &key.fingerprint, key.published_in));

        let (renamed, _) = KeySet::parse(&jwks("k2"), 8).unwrap();
        assert!(!renamed.still_has("k1", &key.fingerprint, key.published_in));
        assert!(!renamed.still_has("k1", &key.fingerprint, 0));
        assert!(!KeySet::default().still_has("k1", &key.fingerprint, 0));
    }
}
