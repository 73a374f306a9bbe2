//! Signing keys for the fake issuer: one kind per JOSE algorithm, each able to sign a JWS and
//! to describe itself as a public JWK. Generated with aws-lc-rs; ES512 included.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
    ECDSA_P521_SHA512_FIXED_SIGNING, RSA_PKCS1_SHA256, RSA_PSS_SHA256,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use gateway::auth::Algorithm;
use serde_json::{json, Value};

/// base64url without padding, as JOSE writes everything.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

enum Pair {
    Ed25519(Ed25519KeyPair),
    Ecdsa(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// A private key with its `kid` and the algorithm it signs with. Cheap to clone.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub alg: Algorithm,
    pair: Arc<Pair>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({} {})", self.alg, self.kid)
    }
}

static NEXT_KID: AtomicUsize = AtomicUsize::new(1);

impl SigningKey {
    /// A fresh key for `alg` with a unique kid like `es256-7`.
    pub fn generate(alg: Algorithm) -> Self {
        let n = NEXT_KID.fetch_add(1, Ordering::Relaxed);
        Self::generate_with_kid(alg, format!("{}-{n}", alg.as_str().to_ascii_lowercase()))
    }

    /// A fresh key for `alg` named `kid`.
    pub fn generate_with_kid(alg: Algorithm, kid: impl Into<String>) -> Self {
        let pair = match alg {
            Algorithm::EdDsa => Pair::Ed25519(Ed25519KeyPair::generate().unwrap()),
            Algorithm::Es256 => {
                Pair::Ecdsa(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap())
            }
            Algorithm::Es512 => {
                Pair::Ecdsa(EcdsaKeyPair::generate(&ECDSA_P521_SHA512_FIXED_SIGNING).unwrap())
            }
            // RSA generation costs ~100 ms: tests share one pair per algorithm.
            Algorithm::Rs256 | Algorithm::Ps256 => return Self::shared_rsa(alg).renamed(kid),
        };
        Self {
            kid: kid.into(),
            alg,
            pair: Arc::new(pair),
        }
    }

    fn shared_rsa(alg: Algorithm) -> Self {
        static RS256: OnceLock<Arc<Pair>> = OnceLock::new();
        static PS256: OnceLock<Arc<Pair>> = OnceLock::new();
        let cell = if alg == Algorithm::Rs256 {
            &RS256
        } else {
            &PS256
        };
        let pair = cell
            .get_or_init(|| {
                Arc::new(Pair::Rsa(
                    RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap(),
                ))
            })
            .clone();
        Self {
            kid: String::new(),
            alg,
            pair,
        }
    }

    /// A fresh RSA key (not the shared one), for rotation tests that need distinct RSA keys.
    pub fn generate_distinct_rsa(alg: Algorithm, kid: impl Into<String>) -> Self {
        Self {
            kid: kid.into(),
            alg,
            pair: Arc::new(Pair::Rsa(
                RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap(),
            )),
        }
    }

    /// The same private key signing with `alg` (RS256 vs PS256 on one RSA key).
    pub fn signing_as(&self, alg: Algorithm) -> Self {
        Self {
            alg,
            ..self.clone()
        }
    }

    /// The same private key under another kid.
    pub fn renamed(&self, kid: impl Into<String>) -> Self {
        Self {
            kid: kid.into(),
            ..self.clone()
        }
    }

    /// The public JWK, with `alg` and `use: sig` as Better Auth publishes them.
    pub fn jwk(&self) -> Value {
        let mut jwk = self.bare_jwk();
        jwk["kid"] = json!(self.kid);
        jwk["alg"] = json!(self.alg.as_str());
        jwk["use"] = json!("sig");
        jwk
    }

    /// The public JWK with only `kty`, the key material and nothing else (no kid, alg, use).
    pub fn bare_jwk(&self) -> Value {
        match &*self.pair {
            Pair::Ed25519(pair) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref())})
            }
            Pair::Ecdsa(pair) => {
                let point = pair.public_key().as_ref();
                let len = (point.len() - 1) / 2;
                let crv = if len == 32 { "P-256" } else { "P-521" };
                json!({
                    "kty": "EC", "crv": crv,
                    "x": b64(&point[1..1 + len]), "y": b64(&point[1 + len..]),
                })
            }
            Pair::Rsa(pair) => {
                let public = pair.public_key();
                json!({
                    "kty": "RSA",
                    "n": b64(public.modulus().big_endian_without_leading_zero()),
                    "e": b64(public.exponent().big_endian_without_leading_zero()),
                })
            }
        }
    }

    /// Signs `message` with this key's algorithm (RS256 vs PS256 decided by `self.alg`).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &*self.pair {
            Pair::Ed25519(pair) => pair.sign(message).as_ref().to_vec(),
            Pair::Ecdsa(pair) => pair.sign(&rng, message).unwrap().as_ref().to_vec(),
            Pair::Rsa(pair) => {
                let padding = if self.alg == Algorithm::Ps256 {
                    &RSA_PSS_SHA256
                } else {
                    &RSA_PKCS1_SHA256
                };
                let mut sig = vec![0; pair.public_modulus_len()];
                pair.sign(padding, &rng, message, &mut sig).unwrap();
                sig
            }
        }
    }

    /// A compact JWS of `header` and `claims`, signed with this key whatever `header` says.
    pub fn mint(&self, header: &Value, claims: &Value) -> String {
        let input = signing_input(header, claims);
        let sig = self.sign(input.as_bytes());
        format!("{input}.{}", b64(sig))
    }

    /// The default header: `alg`, `kid`, `typ: JWT`.
    pub fn header(&self) -> Value {
        json!({"alg": self.alg.as_str(), "kid": self.kid, "typ": "JWT"})
    }
}

/// `base64url(header) "." base64url(claims)`.
pub fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        b64(serde_json::to_vec(header).unwrap()),
        b64(serde_json::to_vec(claims).unwrap())
    )
}
