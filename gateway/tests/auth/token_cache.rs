//! The verified-token cache: a reused token has its signature checked once, never past its
//! `exp`, and not at all when the cache is switched off.

use std::time::Duration;

use gateway::auth::{Algorithm, AuthError, LastToken};
use serde_json::json;

use crate::helpers::{config, TestAuth};
use crate::support::issuer::{unix_now, Issuer};

#[tokio::test]
async fn a_reused_token_is_verified_once_and_counted() {
    let issuer = Issuer::start().await;
    let auth = TestAuth::ready(config(&issuer)).await;
    let token = issuer.token(Algorithm::Es512);
    for _ in 0..3 {
        assert_eq!(auth.check(&token).await.unwrap().user_id.as_str(), "user-1");
    }
    assert_eq!(auth.metric("gateway_token_cache_misses_total"), 1.0);
    assert_eq!(auth.metric("gateway_token_cache_hits_total"), 2.0);
    // A refused token is never cached: each attempt is a miss.
    // The last signature character changed: to `x`, unless it is `x` already (one token in
    // 64 ends so, and the "forgery" would then be the valid token itself).
    let (kept, last) = token.split_at(token.len() - 1);
    let forged = format!("{kept}{}", if last == "x" { "y" } else { "x" });
    assert_ne!(forged, token);
    for _ in 0..2 {
        assert!(auth.check(&forged).await.is_err());
    }
    assert_eq!(auth.metric("gateway_token_cache_misses_total"), 3.0);
}

#[tokio::test]
async fn a_cached_token_is_refused_once_it_expires() {
    let issuer = Issuer::start().await;
    let mut config = config(&issuer);
    config.leeway = Duration::ZERO;
    let auth = TestAuth::ready(config).await;
    let key = issuer.key(Algorithm::EdDsa);
    let mut claims = issuer.claims("user-1");
    // A few seconds of life: the checks below must fit in it on a loaded machine.
    let exp = unix_now() + 6;
    claims["exp"] = json!(exp);
    let token = key.mint(&key.header(), &claims);
    assert!(auth.check(&token).await.is_ok());
    // From the cache, and now remembered by a connection as well.
    let mut connection = LastToken::default();
    assert!(auth.check_on(&token, &mut connection).await.is_ok());
    assert_eq!(auth.metric("gateway_token_cache_hits_total"), 1.0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(16);
    loop {
        match auth.check(&token).await {
            Ok(_) => assert!(tokio::time::Instant::now() < deadline, "never expired"),
            Err(err) => {
                assert_eq!(err, AuthError::Expired);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(unix_now() >= exp, "refused before its exp");
    assert_eq!(
        auth.check_on(&token, &mut connection).await,
        Err(AuthError::Expired),
        "remembered by the connection"
    );
}

#[tokio::test]
async fn capacity_zero_switches_the_cache_off() {
    let issuer = Issuer::start().await;
    let mut config = config(&issuer);
    config.token_cache_capacity = 0;
    let auth = TestAuth::ready(config).await;
    let token = issuer.token(Algorithm::Rs256);
    let mut connection = LastToken::default();
    for _ in 0..3 {
        assert!(auth.check(&token).await.is_ok());
        assert!(auth.check_on(&token, &mut connection).await.is_ok());
    }
    assert_eq!(auth.metric("gateway_token_cache_hits_total"), 0.0);
    assert_eq!(auth.metric("gateway_token_cache_misses_total"), 6.0);
}

#[tokio::test]
async fn a_connection_recalls_its_last_token_and_nothing_else() {
    let issuer = Issuer::start().await;
    let auth = TestAuth::ready(config(&issuer)).await;
    let alice = issuer.token_for(Algorithm::EdDsa, "alice");
    let bob = issuer.token_for(Algorithm::EdDsa, "bob");
    let mut connection = LastToken::default();
    let user = |verified: Result<gateway::auth::Verified, AuthError>| {
        verified.unwrap().user_id.as_str().to_owned()
    };
    for (token, expected) in [(&alice, "alice"), (&alice, "alice"), (&bob, "bob")] {
        assert_eq!(user(auth.check_on(token, &mut connection).await), expected);
    }
    assert_eq!(user(auth.check_on(&alice, &mut connection).await), "alice");
    assert_eq!(user(auth.check_on(&bob, &mut connection).await), "bob");
    // alice twice: one miss, one hit; bob: a miss; then each from the cache.
    assert_eq!(auth.metric("gateway_token_cache_misses_total"), 2.0);
    assert_eq!(auth.metric("gateway_token_cache_hits_total"), 3.0);
    // A token one character off the remembered one is judged afresh, and refused.
    let (kept, last) = bob.split_at(bob.len() - 1);
    let forged = format!("{kept}{}", if last == "x" { "y" } else { "x" });
    assert!(auth.check_on(&forged, &mut connection).await.is_err());
    assert_eq!(user(auth.check_on(&bob, &mut connection).await), "bob");
}
