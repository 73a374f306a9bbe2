//! Verifications per second of the gateway's authenticator on one thread, token cache off:
//! every token in the file is checked once, signature included.
//!
//! Usage: `verify_rate <issuer url> <tokens file>` against a running `mint_tokens`.

use std::time::{Duration, Instant};

use gateway::auth::{AuthConfig, Authenticator};
use http::HeaderValue;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, issuer, tokens] = &args[..] else {
        eprintln!("usage: verify_rate <issuer url> <tokens file>");
        std::process::exit(2);
    };
    let headers: Vec<HeaderValue> = std::fs::read_to_string(tokens)
        .expect("read tokens")
        .lines()
        .map(|token| HeaderValue::from_str(&format!("Bearer {token}")).unwrap())
        .collect();
    let mut config = AuthConfig::better_auth(issuer);
    config.token_cache_capacity = 0; // measure the signature check, not the cache
    let shutdown = CancellationToken::new();
    let authenticator = Authenticator::start(config, &mut Registry::default(), shutdown.clone());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !authenticator.is_ready() {
        assert!(Instant::now() < deadline, "keys never loaded from {issuer}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    for header in &headers {
        authenticator
            .authenticate(Some(header.as_bytes()))
            .await
            .expect("every minted token verifies");
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!("{:.0}", headers.len() as f64 / elapsed);
    shutdown.cancel();
}
