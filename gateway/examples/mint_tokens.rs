//! The benchmark's issuer: generates one EdDSA, one ES256 and one RS256 key, writes for each
//! a warm token (`warm-<ALG>.txt`) and N distinct tokens (`tokens-<ALG>.txt`, one per line,
//! distinct `jti`), then serves the public keys as a JWKS at `/api/auth/jwks` until killed.
//! With `MINT_USERS=N` it also writes `users-<ALG>.txt`: one line `bench-user-<i> <token>`
//! for each of N users (bench/e2e/share.sh).
//!
//! Usage: `mint_tokens <listen addr> <issuer url> <count> <out dir>`; `<out dir>/ready`
//! appears once the JWKS is being served.

use std::{convert::Infallible, fs, path::PathBuf, sync::Arc, time::SystemTime};

use aws_lc_rs::{
    rand::SystemRandom,
    rsa::KeySize,
    signature::{
        EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
        RSA_PKCS1_SHA256,
    },
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use bytes::Bytes;
use http::Response;
use http_body_util::Full;
use hyper::{server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

/// The `sub` of every token; the benchmark requests `/api/bench-user/tasks`.
const SUB: &str = "bench-user";

enum Key {
    Ed25519(Ed25519KeyPair),
    Es256(EcdsaKeyPair),
    Rs256(RsaKeyPair),
}

impl Key {
    fn alg(&self) -> &'static str {
        match self {
            Self::Ed25519(_) => "EdDSA",
            Self::Es256(_) => "ES256",
            Self::Rs256(_) => "RS256",
        }
    }

    fn kid(&self) -> String {
        format!("bench-{}", self.alg().to_ascii_lowercase())
    }

    fn jwk(&self) -> Value {
        let mut jwk = match self {
            Self::Ed25519(pair) => json!({"kty": "OKP", "crv": "Ed25519",
                "x": b64(pair.public_key().as_ref())}),
            Self::Es256(pair) => {
                let point = pair.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..])})
            }
            Self::Rs256(pair) => {
                let public = pair.public_key();
                json!({"kty": "RSA",
                    "n": b64(public.modulus().big_endian_without_leading_zero()),
                    "e": b64(public.exponent().big_endian_without_leading_zero())})
            }
        };
        jwk["kid"] = json!(self.kid());
        jwk["alg"] = json!(self.alg());
        jwk["use"] = json!("sig");
        jwk
    }

    fn mint(&self, claims: &Value) -> String {
        let header = json!({"alg": self.alg(), "kid": self.kid(), "typ": "JWT"});
        let input = format!(
            "{}.{}",
            b64(serde_json::to_vec(&header).unwrap()),
            b64(serde_json::to_vec(claims).unwrap())
        );
        let rng = SystemRandom::new();
        let signature = match self {
            Self::Ed25519(pair) => pair.sign(input.as_bytes()).as_ref().to_vec(),
            Self::Es256(pair) => pair.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec(),
            Self::Rs256(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut signature)
                    .unwrap();
                signature
            }
        };
        format!("{input}.{}", b64(signature))
    }
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, listen, issuer, count, out] = &args[..] else {
        eprintln!("usage: mint_tokens <listen addr> <issuer url> <count> <out dir>");
        std::process::exit(2);
    };
    let count: usize = count.parse().expect("count is a number");
    let out = PathBuf::from(out);
    fs::create_dir_all(&out).expect("create out dir");
    let keys = Arc::new(vec![
        Key::Ed25519(Ed25519KeyPair::generate().unwrap()),
        Key::Es256(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap()),
        Key::Rs256(RsaKeyPair::generate(KeySize::Rsa2048).unwrap()),
    ]);
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // Each token in a session of its own, as Better Auth's tokens name theirs (`sid`, the
    // README's definePayload line): a gateway with revocation on refuses a token without one.
    let claims_of = |sub: &str, jti: usize| {
        json!({"iss": issuer, "aud": issuer, "sub": sub, "iat": now, "exp": now + 3 * 3600,
               "jti": format!("bench-{jti}"), "sid": format!("bench-session-{jti}")})
    };
    let claims = |jti: usize| claims_of(SUB, jti);
    let users: usize = std::env::var("MINT_USERS").map_or(0, |n| n.parse().expect("MINT_USERS"));
    for key in keys.iter() {
        fs::write(
            out.join(format!("warm-{}.txt", key.alg())),
            key.mint(&claims(0)),
        )
        .unwrap();
        // RSA signing is slow: split the work over the machine's threads.
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let per_thread = count.div_ceil(threads);
        let lines: Vec<String> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|t| {
                    let claims = &claims;
                    scope.spawn(move || {
                        let range = t * per_thread + 1..((t + 1) * per_thread).min(count) + 1;
                        range.map(|jti| key.mint(&claims(jti))).collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect()
        });
        fs::write(
            out.join(format!("tokens-{}.txt", key.alg())),
            lines.join("\n") + "\n",
        )
        .unwrap();
        eprintln!("minted {} {} tokens", lines.len(), key.alg());
        if users > 0 {
            let lines: String = (0..users)
                .map(|i| {
                    let user = format!("bench-user-{i}");
                    let token = key.mint(&claims_of(&user, 0));
                    format!("{user} {token}\n")
                })
                .collect();
            fs::write(out.join(format!("users-{}.txt", key.alg())), lines).unwrap();
        }
    }
    let jwks =
        Bytes::from(json!({"keys": keys.iter().map(Key::jwk).collect::<Vec<_>>()}).to_string());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(serve_jwks(listen, jwks, out.join("ready")));
}

async fn serve_jwks(listen: &str, jwks: Bytes, ready: PathBuf) {
    let listener = tokio::net::TcpListener::bind(listen).await.expect("bind");
    fs::write(ready, "").unwrap();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let jwks = jwks.clone();
        tokio::spawn(async move {
            let service = service_fn(move |_request| {
                let jwks = jwks.clone();
                async move { Ok::<_, Infallible>(Response::new(Full::new(jwks))) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
