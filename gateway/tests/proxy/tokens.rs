//! Token refusals as the client sees them: 401 with the RFC 6750 challenge and a general
//! reason, and 503 (not 401) while the signing keys are not loaded.

use gateway::auth::Algorithm;
use serde_json::json;

use crate::{
    helpers::{detail, spawn_gateway, start_gateway},
    support::issuer::{unix_now, Behaviour, Issuer},
};

const INVALID: &str = r#"Bearer error="invalid_token""#;

async fn refusal(
    gateway: &crate::helpers::TestGateway,
    authorization: Option<&str>,
) -> (u16, Option<String>, String) {
    let mut request = gateway.http.get(gateway.url("/api/user-1/tasks"));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, challenge, detail(response).await)
}

#[tokio::test]
async fn a_missing_token_gets_a_bare_bearer_challenge() {
    let gateway = spawn_gateway().await;
    let (status, challenge, detail) = refusal(&gateway, None).await;
    assert_eq!((status, challenge.as_deref()), (401, Some("Bearer")));
    assert_eq!(detail, "Not authenticated: no bearer token");
}

#[tokio::test]
async fn malformed_expired_and_forged_tokens_get_invalid_token() {
    let gateway = spawn_gateway().await;
    let key = gateway.issuer.key(Algorithm::EdDsa);
    let mut expired_claims = gateway.issuer.claims("user-1");
    expired_claims["exp"] = json!(unix_now() - 3600);
    expired_claims["iat"] = json!(unix_now() - 7200);
    let expired = key.mint(&key.header(), &expired_claims);
    let valid = gateway.issuer.token(Algorithm::EdDsa);
    let (signing_input, signature) = valid.rsplit_once('.').unwrap();
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    let forged = format!("{signing_input}.{flipped}{}", &signature[1..]);
    let mut wrong_issuer_claims = gateway.issuer.claims("user-1");
    wrong_issuer_claims["iss"] = json!("https://elsewhere.example");
    let wrong_issuer = key.mint(&key.header(), &wrong_issuer_claims);

    for (authorization, expected) in [
        ("Bearer not-a-jwt".to_owned(), "Invalid token: malformed"),
        (format!("Bearer {expired}"), "Invalid token: expired"),
        (format!("Bearer {forged}"), "Invalid token: bad signature"),
        (
            format!("Bearer {wrong_issuer}"),
            "Invalid token: wrong issuer",
        ),
    ] {
        let (status, challenge, detail) = refusal(&gateway, Some(&authorization)).await;
        assert_eq!(status, 401, "{expected}");
        assert_eq!(challenge.as_deref(), Some(INVALID), "{expected}");
        assert_eq!(detail, expected);
        assert!(
            !detail.contains(&authorization[7..]),
            "the token must not be echoed"
        );
    }
    assert!(gateway.upstream.seen().is_empty());
}

#[tokio::test]
async fn a_token_from_a_key_never_published_is_refused_as_unknown_key_not_bad_signature() {
    let gateway = spawn_gateway().await;
    // Signed correctly, by a key the issuer never published: nothing to check it against.
    let stranger = crate::support::issuer::SigningKey::generate(Algorithm::EdDsa);
    let token = stranger.mint(&stranger.header(), &gateway.issuer.claims("user-1"));
    let (status, challenge, detail) = refusal(&gateway, Some(&format!("Bearer {token}"))).await;
    assert_eq!((status, challenge.as_deref()), (401, Some(INVALID)));
    assert_eq!(detail, "Invalid token: unknown key");
    assert!(gateway.upstream.seen().is_empty());
}

#[tokio::test]
async fn two_authorization_headers_are_refused_even_if_both_are_valid() {
    // Which one a server would pick is anyone's guess; a gateway that chose one could be
    // made to authenticate a different user than another hop sees. Refuse instead.
    let gateway = spawn_gateway().await;
    let token = gateway.issuer.token(Algorithm::EdDsa);
    let response = gateway
        .http
        .get(gateway.url("/api/user-1/tasks"))
        .header("authorization", format!("Bearer {token}"))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(detail(response).await, "Invalid token: malformed");
    assert!(gateway.upstream.seen().is_empty());
}

#[tokio::test]
async fn before_the_keys_load_protected_requests_get_503_and_readyz_says_not_ready() {
    let issuer = Issuer::start().await;
    issuer.set_behaviour(Behaviour::Stall);
    let token = issuer.token(Algorithm::EdDsa);
    let gateway = start_gateway(issuer, |_| {}).await;

    let ready = gateway
        .http
        .get(gateway.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(detail(ready).await, "Not ready: signing keys not loaded");

    let (status, challenge, detail) = refusal(&gateway, Some(&format!("Bearer {token}"))).await;
    assert_eq!(status, 503);
    assert_eq!(challenge, None);
    assert_eq!(
        detail,
        "Authentication temporarily unavailable: signing keys not loaded"
    );
    // Public routes do not depend on the keys.
    let public = gateway
        .http
        .get(gateway.url("/api/auth/session"))
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), 200);
}
