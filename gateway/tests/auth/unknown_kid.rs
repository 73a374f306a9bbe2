//! Tokens naming a `kid` the cache does not know: a flood costs one fetch and valid tokens
//! keep working meanwhile; at most one fetch per cooldown, the one after the first trailing
//! at the cooldown's end; a rotated-in key is accepted on first sight. Forged signatures
//! under a known `kid` (which may ask for a fetch too, the key may have been replaced) go
//! through the same gate.

use std::time::Duration;

use futures_util::future::join_all;
use gateway::auth::{Algorithm, AuthError};
use serde_json::json;

use crate::helpers::{config, eventually, TestAuth};
use crate::support::issuer::{b64, Behaviour, Issuer};

/// A token naming `kid`, with a signature that is never checked (the kid is unknown).
fn token_with_kid(issuer: &Issuer, kid: &str) -> String {
    let header = json!({"alg": "ES256", "kid": kid, "typ": "JWT"});
    format!(
        "{}.{}.{}",
        b64(header.to_string()),
        b64(issuer.claims("u").to_string()),
        b64([7u8; 64])
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_unknown_kids_cost_one_fetch_while_valid_tokens_keep_working() {
    let issuer = Issuer::start().await;
    let mut config = config(&issuer);
    // Generous: the fetch below stays in flight until the test releases it.
    config.jwks.fetch_timeout = Duration::from_secs(60);
    let auth = TestAuth::ready(config).await;
    assert_eq!(issuer.fetches(), 1);
    // Distinct valid tokens, so each needs its signature checked (no cache help).
    let valid: Vec<String> = (0..200)
        .map(|i| issuer.token_for(Algorithm::Es256, &format!("user-{i}")))
        .collect();

    // The fetch the flood causes is held open until every valid token has been answered.
    let (release, gate) = tokio::sync::watch::channel(false);
    issuer.set_behaviour(Behaviour::Held(gate));
    let flood: Vec<String> = (0..10_000)
        .map(|i| token_with_kid(&issuer, &format!("made-up-{i}-{}", i * 7919 % 10_007)))
        .collect();
    let auth = std::sync::Arc::new(auth);
    let flooding = {
        let auth = auth.clone();
        tokio::spawn(async move { join_all(flood.iter().map(|token| auth.check(token))).await })
    };
    issuer.wait_for_fetches(2).await;
    // Were valid tokens to wait on the held fetch, this would never finish: bound it.
    let answered = tokio::time::timeout(Duration::from_secs(30), async {
        for token in &valid {
            assert!(auth.check(token).await.is_ok());
        }
    })
    .await;
    assert!(
        answered.is_ok(),
        "valid tokens waited on the unknown-kid fetch"
    );
    // Every valid token was answered while the flood's fetch was still in flight.
    assert_eq!(
        auth.metric(r#"gateway_jwks_fetches_total{result="ok"}"#),
        1.0
    );
    release.send(true).unwrap();

    let results = flooding.await.unwrap();
    assert!(results.iter().all(|r| *r == Err(AuthError::UnknownKey)));
    assert_eq!(
        auth.metric(r#"gateway_jwks_fetches_total{result="ok"}"#),
        2.0
    );
    assert_eq!(auth.metric("gateway_jwks_unknown_kid_fetches_total"), 1.0);
    assert_eq!(issuer.fetches(), 2, "exactly one fetch for the whole flood");
    // Only a bounded number waited for that fetch; the rest were answered at once.
    assert_eq!(
        auth.metric("gateway_jwks_unknown_kid_refused_total"),
        (10_000 - gateway::jwks::MAX_UNKNOWN_KID_WAITERS) as f64
    );
    // Within the cooldown, yet another unknown kid gets no fetch of its own: it waits for
    // the one trailing fetch at the cooldown's end.
    assert_eq!(
        auth.check(&token_with_kid(&issuer, "one-more")).await,
        Err(AuthError::UnknownKey)
    );
    assert_eq!(issuer.fetches(), 3);
    assert_eq!(auth.metric("gateway_jwks_unknown_kid_fetches_total"), 2.0);
}

/// The issuer fails while an unknown kid waits for its fetch, and with it the set's last chance
/// (no stale-if-error grace here): the answer is 503, keys unavailable, as for every token once
/// the set is gone; not a 401 telling the client to throw away a token that may be good.
#[tokio::test]
async fn a_set_that_expires_while_an_unknown_kid_waits_answers_unavailable() {
    let issuer = Issuer::start().await;
    let mut config = config(&issuer);
    config.jwks.refresh_interval = Duration::from_millis(200);
    config.jwks.stale_if_error = Duration::ZERO;
    config.jwks.fetch_timeout = Duration::from_secs(60);
    let auth = std::sync::Arc::new(TestAuth::ready(config).await);
    let (release, gate) = tokio::sync::watch::channel(false);
    issuer.set_behaviour(Behaviour::HeldThenStatus(gate, 500));
    // The due refresh is in flight, held: the set serves until it fails.
    issuer.wait_for_fetches(2).await;
    assert!(auth.auth.is_ready());

    let asking = {
        let auth = auth.clone();
        let token = token_with_kid(&issuer, "rotated-in");
        tokio::spawn(async move { auth.check(&token).await })
    };
    // Once it has asked for its fetch, the held refresh fails, and the set with it.
    eventually("an unknown-kid fetch asked for", || {
        auth.metric("gateway_jwks_unknown_kid_fetches_total") >= 1.0
    })
    .await;
    release.send(true).unwrap();
    assert_eq!(asking.await.unwrap(), Err(AuthError::KeysUnavailable));
    assert!(!auth.auth.is_ready());
}

#[tokio::test]
async fn after_the_cooldown_an_unknown_kid_may_fetch_again() {
    let issuer = Issuer::start().await;
    let mut config = config(&issuer);
    config.jwks.unknown_kid_cooldown = Duration::from_millis(300);
    let auth = TestAuth::ready(config).await;
    let unknown = token_with_kid(&issuer, "nope");
    // The cooldown runs from the fetch this first check asks for: the clock starts before
    // it, so however long that fetch takes, the next one cannot come sooner than 300 ms on.
    let started = tokio::time::Instant::now();
    assert_eq!(auth.check(&unknown).await, Err(AuthError::UnknownKey));
    assert_eq!(issuer.fetches(), 2);
    // Keep asking: no fetch until the cooldown is over, then one trailing fetch that the
    // asker waited for.
    while issuer.fetches() == 2 {
        assert_eq!(auth.check(&unknown).await, Err(AuthError::UnknownKey));
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no second fetch"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "cooldown not honoured"
    );
    assert_eq!(issuer.fetches(), 3);
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_without_restart() {
    let issuer = Issuer::start().await;
    let auth = TestAuth::ready(config(&issuer)).await;
    let old = issuer.token(Algorithm::EdDsa);
    assert!(auth.check(&old).await.is_ok());

    let new_key = issuer.rotate(Algorithm::EdDsa);
    let new = new_key.mint(&new_key.header(), &issuer.claims("user-1"));
    // The unknown kid triggers the fetch and waits for it: accepted on first sight.
    assert!(auth.check(&new).await.is_ok());
    assert_eq!(issuer.fetches(), 2);
    // The old key was withdrawn by the same fetch, cached or not.
    assert_eq!(auth.check(&old).await, Err(AuthError::UnknownKey));
}

#[tokio::test]
async fn forged_signatures_under_a_known_kid_cost_one_fetch_per_cooldown() {
    let issuer = Issuer::start().await;
    let mut config = config(&issuer);
    let cooldown = Duration::from_millis(300);
    config.jwks.unknown_kid_cooldown = cooldown;
    let auth = TestAuth::ready(config).await;
    let kid = issuer.key(Algorithm::Es256).kid;
    // Known kid, signature of sevens: no published key verifies it.
    let forged: Vec<String> = (0..2_000)
        .map(|i| {
            let header = json!({"alg": "ES256", "kid": kid, "typ": "JWT"});
            let claims = issuer.claims(&format!("user-{i}"));
            format!(
                "{}.{}.{}",
                b64(header.to_string()),
                b64(claims.to_string()),
                b64([7u8; 64])
            )
        })
        .collect();

    // At once: one early fetch for all of them, a bounded number waiting for it.
    let results = join_all(forged.iter().map(|token| auth.check(token))).await;
    assert!(results.iter().all(|r| *r == Err(AuthError::BadSignature)));
    assert_eq!(issuer.fetches(), 2, "one fetch for the whole flood");
    assert_eq!(auth.metric("gateway_jwks_unknown_kid_fetches_total"), 1.0);
    assert_eq!(
        auth.metric("gateway_jwks_unknown_kid_refused_total"),
        (2_000 - gateway::jwks::MAX_UNKNOWN_KID_WAITERS) as f64
    );

    // Kept up: at most one fetch per cooldown, valid tokens unaffected.
    let valid = issuer.token(Algorithm::Es256);
    let started = tokio::time::Instant::now();
    let fetches = issuer.fetches();
    let mut rounds = 0;
    while started.elapsed() < Duration::from_millis(1_500) {
        let batch = &forged[rounds * 20 % 2_000..][..20];
        let results = join_all(batch.iter().map(|token| auth.check(token))).await;
        assert!(results.iter().all(|r| *r == Err(AuthError::BadSignature)));
        assert!(auth.check(&valid).await.is_ok());
        rounds += 1;
    }
    let elapsed = started.elapsed();
    let fetched = issuer.fetches() - fetches;
    // One per cooldown, plus one trailing fetch asked for at the end and already started.
    let bound = (elapsed.as_millis() / cooldown.as_millis()) as usize + 1;
    assert!(
        (1..=bound).contains(&fetched),
        "{fetched} fetches in {elapsed:?} with a {cooldown:?} cooldown"
    );
}
