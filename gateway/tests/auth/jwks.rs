//! The JWKS cache against an issuer that rotates, removes keys, fails and stalls:
//! readiness, removal and replacement of keys, stale-if-error, bounds on what a fetch may
//! return, `Cache-Control`, and what a failed fetch logs. Unknown `kid`s are `unknown_kid.rs`.

use std::time::Duration;

use gateway::auth::{Algorithm, AuthConfig, AuthError, LastToken};

use crate::helpers::{config, eventually, TestAuth};
use crate::support::issuer::{Behaviour, Issuer, SigningKey};
use crate::support::logs::Captured;

/// Refreshes every 100 ms, so failures and changes show up quickly.
fn fast_refresh(issuer: &Issuer) -> AuthConfig {
    let mut config = config(issuer);
    config.jwks.refresh_interval = Duration::from_millis(100);
    config
}

#[tokio::test]
async fn not_ready_and_503_until_the_first_key_set_loads_then_retried() {
    let issuer = Issuer::start().await;
    issuer.set_behaviour(Behaviour::Status(500));
    let auth = TestAuth::start(config(&issuer));
    issuer.wait_for_fetches(3).await; // retried with backoff
    assert!(!auth.auth.is_ready());
    let token = issuer.token(Algorithm::EdDsa);
    assert_eq!(auth.check(&token).await, Err(AuthError::KeysUnavailable));
    assert!(auth.metric("gateway_jwks_fetch_failures_total") >= 2.0);
    assert!(auth.metric(r#"gateway_jwks_fetches_total{result="http_status"}"#) >= 2.0);

    issuer.set_behaviour(Behaviour::Serve);
    auth.wait_ready(true).await;
    assert!(auth.check(&token).await.is_ok());
    assert_eq!(
        auth.metric(r#"gateway_jwks_fetches_total{result="ok"}"#),
        1.0
    );
    assert!(auth.metric("gateway_jwks_key_set_age_seconds") < 60.0);
}

#[tokio::test]
async fn a_removed_key_stops_working_after_the_next_refresh_even_for_cached_tokens() {
    let issuer = Issuer::start().await;
    let auth = TestAuth::ready(fast_refresh(&issuer)).await;
    for alg in [Algorithm::Es256, Algorithm::Es512] {
        let token = issuer.token(alg);
        // Sent on one connection, which remembers it as well as the cache does.
        let mut connection = LastToken::default();
        assert!(auth.check_on(&token, &mut connection).await.is_ok());
        let hits = auth.metric("gateway_token_cache_hits_total");
        assert!(auth.check_on(&token, &mut connection).await.is_ok());
        assert_eq!(
            auth.metric("gateway_token_cache_hits_total"),
            hits + 1.0,
            "cached"
        );

        issuer.remove_key(&issuer.key(alg).kid);
        let fetches = issuer.fetches();
        issuer.wait_for_fetches(fetches + 2).await; // a refresh that started after the removal
        assert_eq!(
            auth.check_on(&token, &mut connection).await,
            Err(AuthError::UnknownKey),
            "{alg}, remembered by the connection"
        );
        assert_eq!(
            auth.check(&token).await,
            Err(AuthError::UnknownKey),
            "{alg}"
        );
    }
}

#[tokio::test]
async fn a_key_replaced_under_the_same_kid_invalidates_cached_tokens() {
    let issuer = Issuer::start().await;
    let auth = TestAuth::ready(fast_refresh(&issuer)).await;
    let old = issuer.key(Algorithm::EdDsa);
    let token = issuer.token(Algorithm::EdDsa);
    assert!(auth.check(&token).await.is_ok());
    issuer.remove_key(&old.kid);
    issuer.publish(crate::support::issuer::SigningKey::generate_with_kid(
        Algorithm::EdDsa,
        old.kid.clone(),
    ));
    let fetches = issuer.fetches();
    issuer.wait_for_fetches(fetches + 2).await;
    assert_eq!(auth.check(&token).await, Err(AuthError::BadSignature));
}

#[tokio::test]
async fn a_key_replaced_under_the_same_kid_is_fetched_for_its_first_token() {
    let issuer = Issuer::start().await;
    // The default refresh interval (5 min): only the token can cause the fetch.
    let mut config = config(&issuer);
    config.jwks.unknown_kid_cooldown = Duration::from_millis(200);
    let auth = TestAuth::ready(config).await;
    let old = issuer.key(Algorithm::EdDsa);
    let old_token = issuer.token(Algorithm::EdDsa);
    assert!(auth.check(&old_token).await.is_ok());

    issuer.remove_key(&old.kid);
    let new = SigningKey::generate_with_kid(Algorithm::EdDsa, old.kid.clone());
    issuer.publish(new.clone());
    let new_token = new.mint(&new.header(), &issuer.claims("user-2"));
    // No key under its kid verifies it: one early fetch, then verified against the new set.
    assert!(
        auth.check(&new_token).await.is_ok(),
        "accepted on first sight"
    );
    assert_eq!(issuer.fetches(), 2);
    // That fetch withdrew the old key, cached token or not.
    assert_eq!(auth.check(&old_token).await, Err(AuthError::BadSignature));
}

#[tokio::test]
async fn every_key_published_under_one_kid_is_tried() {
    let first = SigningKey::generate_with_kid(Algorithm::EdDsa, "shared");
    let second = SigningKey::generate_with_kid(Algorithm::EdDsa, "shared");
    let issuer = Issuer::start_with_keys(vec![first.clone(), second.clone()]).await;
    let auth = TestAuth::ready(config(&issuer)).await;
    assert_eq!(auth.metric("gateway_jwks_keys"), 2.0);
    for (i, key) in [&first, &second].into_iter().enumerate() {
        let token = key.mint(&key.header(), &issuer.claims(&format!("user-{i}")));
        assert!(auth.check(&token).await.is_ok(), "key {i}");
    }
    assert_eq!(issuer.fetches(), 1, "no fetch was needed");
}

#[tokio::test]
async fn a_refused_signature_is_judged_afresh_once_its_key_is_published() {
    let issuer = Issuer::start().await;
    let mut config = config(&issuer);
    config.jwks.unknown_kid_cooldown = Duration::from_millis(200);
    let auth = TestAuth::ready(config).await;
    let old = issuer.key(Algorithm::EdDsa);
    let next = SigningKey::generate_with_kid(Algorithm::EdDsa, old.kid.clone());
    let token = next.mint(&next.header(), &issuer.claims("user-1"));
    let mut connection = LastToken::default();
    // Signed by a key the issuer has not published yet: refused after one early fetch.
    assert_eq!(
        auth.check_on(&token, &mut connection).await,
        Err(AuthError::BadSignature)
    );
    assert_eq!(issuer.fetches(), 2);

    // Now it is, under the same kid. Neither the verified-token cache nor the connection
    // remembered the refusal: the token asks for another fetch (trailing, at the cooldown's
    // end) and passes.
    issuer.remove_key(&old.kid);
    issuer.publish(next.clone());
    assert!(auth.check_on(&token, &mut connection).await.is_ok());
    assert_eq!(issuer.fetches(), 3);
    let hits = auth.metric("gateway_token_cache_hits_total");
    assert!(auth.check_on(&token, &mut connection).await.is_ok());
    assert!(auth.check(&token).await.is_ok());
    assert_eq!(auth.metric("gateway_token_cache_hits_total"), hits + 2.0);
    assert_eq!(issuer.fetches(), 3, "and remembered since");
}

#[tokio::test]
async fn an_empty_key_set_is_valid_and_refuses_with_401() {
    let issuer = Issuer::start().await;
    issuer.publish_empty();
    let auth = TestAuth::ready(config(&issuer)).await;
    assert_eq!(auth.metric("gateway_jwks_keys"), 0.0);
    let key = crate::support::issuer::SigningKey::generate(Algorithm::EdDsa);
    let token = key.mint(&key.header(), &issuer.claims("u"));
    assert_eq!(auth.check(&token).await, Err(AuthError::UnknownKey));
    // The key appears (Better Auth creates one lazily): picked up via the unknown kid.
    issuer.publish(key.clone());
    let mut config = config(&issuer);
    config.jwks.unknown_kid_cooldown = Duration::ZERO;
    let auth = TestAuth::ready(config).await;
    assert!(auth.check(&token).await.is_ok());
}

#[tokio::test]
async fn the_last_good_keys_serve_while_the_issuer_fails_then_expire() {
    let issuer = Issuer::start().await;
    let mut config = fast_refresh(&issuer);
    // Long enough that the checks below, a failed fetch after the last good one, still fall
    // inside it on a loaded machine; `wait_ready(false)` allows 10 s for it to run out.
    config.jwks.stale_if_error = Duration::from_secs(5);
    let auth = TestAuth::ready(config).await;
    let token = issuer.token(Algorithm::Rs256);

    issuer.set_behaviour(Behaviour::Status(500));
    eventually("a failed refresh", || {
        auth.metric("gateway_jwks_fetch_failures_total") >= 1.0
    })
    .await;
    assert!(auth.auth.is_ready(), "stale keys still serve");
    assert!(auth.check(&token).await.is_ok());
    let mut connection = LastToken::default();
    assert!(auth.check_on(&token, &mut connection).await.is_ok());

    auth.wait_ready(false).await;
    assert_eq!(auth.check(&token).await, Err(AuthError::KeysUnavailable));
    assert_eq!(
        auth.check_on(&token, &mut connection).await,
        Err(AuthError::KeysUnavailable),
        "remembered by the connection"
    );

    issuer.set_behaviour(Behaviour::Serve);
    auth.wait_ready(true).await;
    assert!(auth.check(&token).await.is_ok());
}

#[tokio::test]
async fn a_healthy_issuer_keeps_keys_available_whatever_the_stale_if_error_bound() {
    let issuer = Issuer::start().await;
    let mut config = config(&issuer);
    // Counted from each fetch, stale-if-error shorter than the refresh interval made the
    // keys unavailable for most of every interval, and 0 made them never available.
    config.jwks.refresh_interval = Duration::from_millis(300);
    config.jwks.stale_if_error = Duration::ZERO;
    let auth = TestAuth::ready(config).await;
    let token = issuer.token(Algorithm::EdDsa);
    // Through four refreshes: always ready, never a 503.
    let fetches = issuer.fetches();
    // Four refreshes take 1.2 s; a refresher that stopped fails this rather than hangs it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while issuer.fetches() < fetches + 4 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} refreshes in 10 s",
            issuer.fetches() - fetches
        );
        assert!(auth.auth.is_ready(), "after {} fetches", issuer.fetches());
        assert!(auth.check(&token).await.is_ok());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(auth.metric("gateway_jwks_fetch_failures_total"), 0.0);
}

#[tokio::test]
async fn garbage_oversized_crowded_and_stalled_answers_keep_the_last_good_keys() {
    let issuer = Issuer::start().await;
    let mut config = fast_refresh(&issuer);
    config.jwks.max_keys = 10;
    config.jwks.fetch_timeout = Duration::from_millis(500);
    let auth = TestAuth::ready(config).await;
    let token = issuer.token(Algorithm::Ps256);
    let cases = [
        (Behaviour::Garbage, "invalid"),
        (Behaviour::Endless, "too_large"),
        (Behaviour::ManyKeys(11), "invalid"),
        (Behaviour::Status(404), "http_status"),
        (Behaviour::Stall, "timeout"),
        (Behaviour::Slow(Duration::from_secs(3)), "timeout"),
    ];
    for (behaviour, label) in cases {
        let sample = format!(r#"gateway_jwks_fetches_total{{result="{label}"}}"#);
        let before = auth.metric(&sample);
        issuer.set_behaviour(behaviour.clone());
        eventually(&format!("{behaviour:?} counted as {label}"), || {
            auth.metric(&sample) > before
        })
        .await;
        assert!(auth.check(&token).await.is_ok(), "{behaviour:?}");
        assert_eq!(auth.metric("gateway_jwks_keys"), 5.0);
    }
    // Ten keys are within the bound.
    issuer.set_behaviour(Behaviour::ManyKeys(10));
    eventually("ten keys loaded", || {
        auth.metric("gateway_jwks_keys") == 10.0
    })
    .await;
}

/// Better Auth keeps a rotated-out key published for its grace period (30 days by default)
/// and makes a new one every rotation interval: a set rotating hourly holds about 721 keys,
/// the newest last. The default bounds take such a set whole, and the newest key verifies.
#[tokio::test]
async fn a_key_set_kept_through_better_auths_grace_period_is_taken_whole() {
    let issuer = Issuer::start().await;
    let first = issuer.keys().len();
    for _ in 0..720 {
        issuer.add_key(Algorithm::EdDsa);
    }
    let newest = issuer.add_key(Algorithm::EdDsa);
    let auth = TestAuth::ready(config(&issuer)).await;
    assert_eq!(auth.metric("gateway_jwks_keys"), (first + 721) as f64);
    let token = newest.mint(&newest.header(), &issuer.claims("u1"));
    assert!(auth.check(&token).await.is_ok());
}

#[tokio::test]
async fn without_cache_control_the_configured_interval_applies() {
    let issuer = Issuer::start().await;
    let auth = TestAuth::ready(fast_refresh(&issuer)).await;
    issuer.wait_for_fetches(4).await;
    assert_eq!(auth.metric("gateway_jwks_fetch_failures_total"), 0.0);
}

#[tokio::test]
async fn cache_control_max_age_is_honoured_within_bounds() {
    let issuer = Issuer::start().await;
    // Asks for an hour; the upper bound of 150 ms wins.
    issuer.set_cache_control(Some("public, max-age=3600"));
    let mut config = config(&issuer);
    config.jwks.refresh_interval = Duration::from_secs(3600);
    config.jwks.min_refresh_interval = Duration::from_millis(50);
    config.jwks.max_refresh_interval = Duration::from_millis(150);
    let auth = TestAuth::ready(config).await;
    issuer.wait_for_fetches(4).await;
    drop(auth);

    // Asks for a long refresh within bounds: no second fetch soon after the first.
    let issuer = Issuer::start().await;
    issuer.set_cache_control(Some("max-age=3000"));
    let mut config = fast_refresh(&issuer);
    config.jwks.refresh_interval = Duration::from_millis(50);
    let auth = TestAuth::ready(config).await;
    // A fetch of a fast-refresh config would have happened 5 times over by now.
    let token = issuer.token(Algorithm::EdDsa);
    for _ in 0..30 {
        assert!(auth.check(&token).await.is_ok());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(issuer.fetches(), 1);
}

/// Waits (10 s) for a warning that contains every one of `parts`, and returns it.
async fn warned(captured: &Captured, parts: &[&str]) -> String {
    let mut found = None;
    eventually(&format!("a warning with {parts:?}"), || {
        found = captured
            .text()
            .lines()
            .find(|line| {
                line.contains(r#""level":"WARN""#) && parts.iter().all(|part| line.contains(part))
            })
            .map(str::to_owned);
        found.is_some()
    })
    .await;
    found.unwrap()
}

// A current-thread runtime (tokio::test's default) runs the refresher on this thread, so the
// thread-local subscriber sees its events.
#[tokio::test]
async fn a_fetch_failure_log_names_the_url_the_cause_and_whether_keys_are_served() {
    let captured = Captured::default();
    let _guard = captured.install("gateway=warn");

    // Nothing ever loaded: a port nothing listens on refuses the connection.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let refused = TestAuth::start(AuthConfig::better_auth(&closed));
    let line = warned(
        &captured,
        &[&format!("JWKS fetch from {closed}/api/auth/jwks failed")],
    )
    .await;
    assert!(line.contains("connection refused"), "{line}");
    assert!(line.contains("no key set was ever loaded"), "{line}");
    drop(refused);

    // Loaded once, then failing in each way: the previous set is still served.
    let issuer = Issuer::start().await;
    let mut config = fast_refresh(&issuer);
    config.jwks.fetch_timeout = Duration::from_secs(1);
    let auth = TestAuth::ready(config).await;
    let url = issuer.jwks_url();
    let failed = format!("JWKS fetch from {url} failed");
    for (behaviour, cause) in [
        (Behaviour::Status(503), "the issuer answered HTTP 503"),
        (Behaviour::Garbage, "the answer is not a usable key set"),
        (Behaviour::Stall, "timed out"),
    ] {
        issuer.set_behaviour(behaviour);
        let line = warned(&captured, &[&failed, cause]).await;
        assert!(
            line.contains("still serving the previous key set, fetched"),
            "{line}"
        );
        assert!(line.contains(&format!(r#""url":"{url}""#)), "{line}");
    }
    assert!(auth.auth.is_ready());
}
