//! Verifications per second per algorithm, in one run: the full check of a fresh token
//! (signature every time, token cache off), a warm token-cache hit, and as a baseline
//! jsonwebtoken's own `decode` of the same token with its own validation.
//!
//! Run: `cargo run --release -p gateway --example verify_bench [seconds-per-figure]`.
//! Single-threaded on purpose: the figures are per core.

#[path = "../tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::time::{Duration, Instant};

use gateway::auth::{Algorithm, AuthConfig, Authenticator};
use jsonwebtoken::{DecodingKey, Validation};
use prometheus_client::registry::Registry;
use serde_json::Value;
use support::issuer::Issuer;
use tokio_util::sync::CancellationToken;

/// Distinct tokens minted per algorithm (fresh-token runs cycle through them).
const TOKENS: usize = 2_000;

struct Figures {
    per_sec: f64,
    p50: Duration,
    p99: Duration,
}

/// Runs `op` for about `budget`, timing each call.
async fn measure<F, Fut>(budget: Duration, mut op: F) -> Figures
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut samples = Vec::with_capacity(1 << 16);
    let start = Instant::now();
    let mut i = 0;
    while start.elapsed() < budget {
        let t = Instant::now();
        op(i).await;
        samples.push(t.elapsed());
        i += 1;
    }
    let total = start.elapsed();
    samples.sort_unstable();
    Figures {
        per_sec: samples.len() as f64 / total.as_secs_f64(),
        p50: samples[samples.len() / 2],
        p99: samples[samples.len() * 99 / 100],
    }
}

fn start_auth(config: AuthConfig) -> Authenticator {
    Authenticator::start(config, &mut Registry::default(), CancellationToken::new())
}

/// jsonwebtoken's `decode` with an equivalent validation, for the algorithms it knows.
fn baseline(issuer: &Issuer, alg: Algorithm) -> Option<(DecodingKey, Validation)> {
    let jwt_alg = match alg {
        Algorithm::EdDsa => jsonwebtoken::Algorithm::EdDSA,
        Algorithm::Es256 => jsonwebtoken::Algorithm::ES256,
        Algorithm::Rs256 => jsonwebtoken::Algorithm::RS256,
        Algorithm::Ps256 => jsonwebtoken::Algorithm::PS256,
        Algorithm::Es512 => return None,
    };
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(issuer.key(alg).jwk()).ok()?;
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    let mut validation = Validation::new(jwt_alg);
    validation.set_issuer(&[issuer.base_url()]);
    validation.set_audience(&[issuer.base_url()]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    Some((key, validation))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let budget = Duration::from_secs_f64(
        std::env::args()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(1.0),
    );
    let issuer = Issuer::start().await;
    let mut uncached = issuer.auth_config();
    uncached.token_cache_capacity = 0;
    let mut cached = issuer.auth_config();
    cached.token_cache_capacity = 1_000_000;
    let (uncached, cached) = (start_auth(uncached), start_auth(cached));
    while !(uncached.is_ready() && cached.is_ready()) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    println!(
        "{budget:?} per figure, one core; fresh = full verification of a token (cache off), \
         hit = warm token-cache hit, jsonwebtoken = its decode() of the same tokens"
    );
    println!(
        "{:<6} {:>12} {:>9} {:>9} | {:>12} {:>9} {:>9} | {:>12} {:>8} | {:>10}",
        "alg",
        "fresh/s",
        "p50",
        "p99",
        "hit/s",
        "p50",
        "p99",
        "jsonwebtoken/s",
        "ours/jwt",
        "hit/fresh"
    );
    for alg in Algorithm::ALL {
        let tokens: Vec<_> = (0..TOKENS)
            .map(|i| Issuer::bearer(&issuer.token_for(alg, &format!("user-{i}"))))
            .collect();
        let fresh = measure(budget, |i| {
            let header = &tokens[i % TOKENS];
            let auth = &uncached;
            async move {
                auth.authenticate(Some(header.as_bytes()))
                    .await
                    .expect("valid token");
            }
        })
        .await;
        let hit = measure(budget, |i| {
            let header = &tokens[i % 64];
            let auth = &cached;
            async move {
                auth.authenticate(Some(header.as_bytes()))
                    .await
                    .expect("valid token");
            }
        })
        .await;
        let raw: Vec<String> = tokens
            .iter()
            .map(|h| h.to_str().unwrap()["Bearer ".len()..].to_owned())
            .collect();
        let jwt = match baseline(&issuer, alg) {
            Some((key, validation)) => {
                let figures = measure(budget, |i| {
                    let result = jsonwebtoken::decode::<Value>(&raw[i % TOKENS], &key, &validation);
                    async move {
                        result.expect("jsonwebtoken accepts it too");
                    }
                })
                .await;
                Some(figures.per_sec)
            }
            None => None,
        };
        println!(
            "{:<6} {:>12.0} {:>9.1?} {:>9.1?} | {:>12.0} {:>9.1?} {:>9.1?} | {:>14} {:>8} | {:>9.1}x",
            alg.as_str(),
            fresh.per_sec,
            fresh.p50,
            fresh.p99,
            hit.per_sec,
            hit.p50,
            hit.p99,
            jwt.map_or("n/a".to_owned(), |v| format!("{v:.0}")),
            jwt.map_or("n/a".to_owned(), |v| format!("{:.2}", fresh.per_sec / v)),
            hit.per_sec / fresh.per_sec,
        );
    }
}
