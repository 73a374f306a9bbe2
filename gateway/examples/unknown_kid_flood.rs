//! Key rotation under a flood of tokens naming made-up key ids: how often the issuer is
//! asked for its key set, and how long a token from a freshly published key waits. Prints
//! figures; asserts nothing (the timed assertion is `tests/proxy/rotation.rs`).
//!
//! Usage: `unknown_kid_flood [seconds=12] [tokens per second=2000] [cooldown secs=3]`. Serves
//! its own JWKS on 127.0.0.1 (Ed25519), floods an `Authenticator` with random-kid tokens at
//! that rate (each checked in a task of its own, as concurrent requests would be, without
//! waiting for earlier answers), publishes a second key a third of the way in and polls with
//! a token signed by it every 10 ms.

use std::{
    convert::Infallible,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant, SystemTime},
};

use aws_lc_rs::{
    rand::SystemRandom,
    signature::{Ed25519KeyPair, KeyPair},
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use bytes::Bytes;
use gateway::auth::{AuthConfig, Authenticator};
use http::{HeaderValue, Response};
use http_body_util::Full;
use hyper::{server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use prometheus_client::registry::Registry;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

struct Key {
    kid: String,
    pair: Ed25519KeyPair,
}

impl Key {
    fn generate(kid: &str) -> Self {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Self {
            kid: kid.to_owned(),
            pair: Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap(),
        }
    }

    fn jwk(&self) -> Value {
        json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": self.kid,
            "x": b64(self.pair.public_key().as_ref())})
    }

    fn mint(&self, issuer: &str) -> String {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = json!({"alg": "EdDSA", "kid": self.kid, "typ": "JWT"});
        let claims = json!({"iss": issuer, "aud": issuer, "sub": "flood-user",
            "iat": now, "exp": now + 900});
        let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        let signature = self.pair.sign(input.as_bytes());
        format!("{input}.{}", b64(signature.as_ref()))
    }
}

/// A token naming a key id nobody published; its signature is never checked.
fn garbage(issuer: &str, n: u64) -> HeaderValue {
    let header = json!({"alg": "EdDSA", "kid": format!("made-up-{n}"), "typ": "JWT"});
    let claims = json!({"iss": issuer, "aud": issuer, "sub": "bot", "exp": 4_000_000_000u64});
    let token = format!(
        "{}.{}.{}",
        b64(header.to_string()),
        b64(claims.to_string()),
        b64([7u8; 64])
    );
    HeaderValue::from_str(&format!("Bearer {token}")).unwrap()
}

/// Serves `{"keys": ...}` from `keys` at any path, counting requests.
async fn serve_jwks(
    listener: tokio::net::TcpListener,
    keys: Arc<Mutex<Vec<Value>>>,
    count: Arc<AtomicU64>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (keys, count) = (keys.clone(), count.clone());
        tokio::spawn(async move {
            let service = service_fn(move |_request| {
                count.fetch_add(1, Ordering::SeqCst);
                let body = json!({ "keys": *keys.lock().unwrap() }).to_string();
                async move { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body)))) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|arg| arg.parse().expect("whole numbers"))
        .collect();
    let seconds = args.first().copied().unwrap_or(12);
    let rate = args.get(1).copied().unwrap_or(2000).max(1);
    let cooldown = Duration::from_secs(args.get(2).copied().unwrap_or(3));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let old = Key::generate("old");
    let keys = Arc::new(Mutex::new(vec![old.jwk()]));
    let fetches = Arc::new(AtomicU64::new(0));
    tokio::spawn(serve_jwks(listener, keys.clone(), fetches.clone()));

    let mut config = AuthConfig::better_auth(&issuer);
    config.jwks.unknown_kid_cooldown = cooldown;
    let shutdown = CancellationToken::new();
    let auth = Authenticator::start(config, &mut Registry::default(), shutdown.clone());
    while !auth.is_ready() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let fetches_before = fetches.load(Ordering::SeqCst);
    let flooder = {
        let (auth, stop, sent, issuer) = (auth.clone(), stop.clone(), sent.clone(), issuer.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1) / rate as u32);
            let mut checks = tokio::task::JoinSet::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                n += 1;
                let (auth, header) = (auth.clone(), garbage(&issuer, n));
                checks.spawn(async move {
                    let _ = auth.authenticate(Some(header.as_bytes())).await;
                });
                sent.fetch_add(1, Ordering::Relaxed);
                while checks.try_join_next().is_some() {}
            }
            while checks.join_next().await.is_some() {}
        })
    };
    tokio::time::sleep(Duration::from_secs(seconds) / 3).await;
    let new = Key::generate("new");
    let honest = HeaderValue::from_str(&format!("Bearer {}", new.mint(&issuer))).unwrap();
    keys.lock().unwrap().push(new.jwk());
    let published = Instant::now();
    let mut attempts = 0;
    let accepted_after = loop {
        attempts += 1;
        if auth.authenticate(Some(honest.as_bytes())).await.is_ok() {
            break Some(published.elapsed());
        }
        if published.elapsed() > Duration::from_secs(seconds) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let rest = Duration::from_secs(seconds).saturating_sub(started.elapsed());
    tokio::time::sleep(rest).await;
    stop.store(true, Ordering::Relaxed);
    flooder.await.unwrap();
    let window = started.elapsed().as_secs_f64();
    let fetched = fetches.load(Ordering::SeqCst) - fetches_before;
    println!("cooldown                 {} s", cooldown.as_secs());
    println!(
        "flood                    {:.0} unknown-kid tokens/s",
        sent.load(Ordering::Relaxed) as f64 / window
    );
    println!(
        "issuer fetches           {fetched} in {window:.1} s = one per {:.2} s",
        window / fetched.max(1) as f64
    );
    match accepted_after {
        Some(after) => println!(
            "new key accepted after   {:.0} ms ({attempts} attempt{})",
            after.as_secs_f64() * 1000.0,
            if attempts == 1 { "" } else { "s" }
        ),
        None => println!("new key accepted after   never (within {seconds} s)"),
    }
    shutdown.cancel();
}
