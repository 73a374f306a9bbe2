//! Which signatures are accepted: every allowed algorithm with a key of the right type, never
//! `none` or HMAC, never a key the token brings or points to, never an unknown `crit`.

use aws_lc_rs::hmac;
use gateway::auth::{Algorithm, AuthError};
use serde_json::{json, Value};

use crate::helpers::{config, TestAuth};
use crate::support::issuer::{b64, signing_input, Issuer, SigningKey};

/// A token by `key` with `header` changed by `edit` (claims valid).
fn with_header(issuer: &Issuer, key: &SigningKey, edit: impl FnOnce(&mut Value)) -> String {
    let mut header = key.header();
    edit(&mut header);
    key.mint(&header, &issuer.claims("user-1"))
}

#[tokio::test]
async fn the_rfc_9864_name_ed25519_is_accepted_as_eddsa() {
    let issuer = Issuer::start().await;
    let auth = TestAuth::ready(config(&issuer)).await;
    let key = issuer.key(Algorithm::EdDsa);
    let token = with_header(&issuer, &key, |h| h["alg"] = json!("Ed25519"));
    assert!(auth.check(&token).await.is_ok());
}

#[tokio::test]
async fn alg_none_and_unknown_algorithms_are_refused() {
    let issuer = Issuer::start().await;
    let auth = TestAuth::ready(config(&issuer)).await;
    let key = issuer.key(Algorithm::EdDsa);
    let input = signing_input(&json!({"alg": "none", "kid": key.kid}), &issuer.claims("u"));
    for token in [format!("{input}."), format!("{input}.AAAA")] {
        assert_eq!(
            auth.check(&token).await,
            Err(AuthError::DisallowedAlgorithm)
        );
    }
    for alg in ["ES384", "RS512", "eddsa", "es256", "Ed448", ""] {
        let token = with_header(&issuer, &key, |h| h["alg"] = json!(alg));
        assert_eq!(
            auth.check(&token).await,
            Err(AuthError::DisallowedAlgorithm),
            "{alg}"
        );
    }
}

#[tokio::test]
async fn hmac_signed_with_the_public_key_is_refused() {
    let issuer = Issuer::start().await;
    let auth = TestAuth::ready(config(&issuer)).await;
    for alg in [Algorithm::Rs256, Algorithm::EdDsa] {
        let key = issuer.key(alg);
        // The classic confusion attack: the published key material as the HMAC secret.
        let secret = serde_json::to_vec(&key.jwk()).unwrap();
        let input = signing_input(
            &json!({"alg": "HS256", "kid": key.kid, "typ": "JWT"}),
            &issuer.claims("attacker"),
        );
        let tag = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, &secret),
            input.as_bytes(),
        );
        let token = format!("{input}.{}", b64(tag));
        assert_eq!(
            auth.check(&token).await,
            Err(AuthError::DisallowedAlgorithm)
        );
    }
}

#[tokio::test]
async fn an_algorithm_outside_the_allowlist_is_refused() {
    let issuer = Issuer::start().await;
    let mut config = config(&issuer);
    config.algorithms = vec![Algorithm::EdDsa];
    let auth = TestAuth::ready(config).await;
    assert!(auth.check(&issuer.token(Algorithm::EdDsa)).await.is_ok());
    for alg in [
        Algorithm::Es256,
        Algorithm::Es512,
        Algorithm::Rs256,
        Algorithm::Ps256,
    ] {
        assert_eq!(
            auth.check(&issuer.token(alg)).await,
            Err(AuthError::DisallowedAlgorithm),
            "{alg}"
        );
    }
}

#[tokio::test]
async fn the_key_type_must_fit_the_algorithm() {
    let issuer = Issuer::start().await;
    let auth = TestAuth::ready(config(&issuer)).await;
    let ed = issuer.key(Algorithm::EdDsa);
    let es256 = issuer.key(Algorithm::Es256);
    let es512 = issuer.key(Algorithm::Es512);
    let rs = issuer.key(Algorithm::Rs256);
    // (header alg, kid of a key of another type)
    let cases = [
        ("ES256", &ed),
        ("EdDSA", &es256),
        ("ES512", &es256),
        ("ES256", &es512),
        ("RS256", &es256),
        // The RS256 key's JWK says `alg: RS256`: it may not verify PS256.
        ("PS256", &rs),
    ];
    for (alg, key) in cases {
        let token = with_header(&issuer, key, |h| h["alg"] = json!(alg));
        assert_eq!(
            auth.check(&token).await,
            Err(AuthError::UnknownKey),
            "{alg} with {key:?}"
        );
    }
    // The known kid with the wrong type costs no fetch.
    assert_eq!(issuer.fetches(), 1);
}

#[tokio::test]
async fn an_rsa_key_without_alg_verifies_both_rs256_and_ps256() {
    let issuer = Issuer::start_with_keys(vec![]).await;
    let rs = SigningKey::generate(Algorithm::Rs256).renamed("rsa-bare");
    let mut jwk = rs.bare_jwk();
    jwk["kid"] = json!("rsa-bare");
    issuer.publish_jwk(jwk);
    let auth = TestAuth::ready(config(&issuer)).await;
    for signer in [rs.clone(), rs.signing_as(Algorithm::Ps256)] {
        let token = signer.mint(&signer.header(), &issuer.claims("u"));
        assert!(auth.check(&token).await.is_ok(), "{signer:?}");
    }
}

#[tokio::test]
async fn jwks_entries_not_meant_for_signatures_are_ignored() {
    let issuer = Issuer::start_with_keys(vec![]).await;
    let key = SigningKey::generate(Algorithm::Es256);
    let unusable = [
        json!({"use": "enc"}),
        json!({"key_ops": ["encrypt"]}),
        json!({"alg": "ES512"}), // contradicts the P-256 curve
        json!({"alg": "HS256"}),
    ];
    for (i, extra) in unusable.iter().enumerate() {
        let mut jwk = key.jwk();
        jwk["kid"] = json!(format!("bad-{i}"));
        for (name, value) in extra.as_object().unwrap() {
            jwk[name] = value.clone();
        }
        issuer.publish_jwk(jwk);
    }
    // Junk next to them must not spoil the set.
    issuer.publish_jwk(json!({"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}));
    issuer.publish_jwk(json!({"kty": "EC", "crv": "P-256", "kid": "short", "x": "AA", "y": "AA"}));
    issuer.publish_jwk(json!("not an object"));
    issuer.publish(key.clone());
    let auth = TestAuth::ready(config(&issuer)).await;
    assert!(auth
        .check(&key.mint(&key.header(), &issuer.claims("u")))
        .await
        .is_ok());
    for i in 0..unusable.len() {
        let signer = key.renamed(format!("bad-{i}"));
        let token = signer.mint(&signer.header(), &issuer.claims("u"));
        assert_eq!(
            auth.check(&token).await,
            Err(AuthError::UnknownKey),
            "bad-{i}"
        );
    }
    assert_eq!(auth.metric("gateway_jwks_keys"), 1.0);
}

#[tokio::test]
async fn a_tampered_or_foreign_signature_is_refused() {
    let issuer = Issuer::start().await;
    // Each refusal asks for one fetch through the unknown-kid gate (the key may have been
    // replaced) and waits for it, trailing at the cooldown's end: keep that short here.
    let mut config = config(&issuer);
    config.jwks.unknown_kid_cooldown = std::time::Duration::from_millis(20);
    let auth = TestAuth::ready(config).await;
    for alg in Algorithm::ALL {
        let token = issuer.token(alg);
        // Another subject under the original signature.
        let (input, sig) = token.rsplit_once('.').unwrap();
        let (header, _) = input.split_once('.').unwrap();
        let forged_claims = b64(serde_json::to_vec(&issuer.claims("admin")).unwrap());
        let forged = format!("{header}.{forged_claims}.{sig}");
        assert_eq!(
            auth.check(&forged).await,
            Err(AuthError::BadSignature),
            "{alg}"
        );
        // The same kid, signed by a key the issuer never published.
        let kid = issuer.key(alg).kid;
        let impostor = if matches!(alg, Algorithm::Rs256 | Algorithm::Ps256) {
            SigningKey::generate_distinct_rsa(alg, kid) // the shared RSA pair would verify
        } else {
            SigningKey::generate_with_kid(alg, kid)
        };
        let token = impostor.mint(&impostor.header(), &issuer.claims("admin"));
        assert_eq!(
            auth.check(&token).await,
            Err(AuthError::BadSignature),
            "{alg}"
        );
        // A truncated signature.
        let truncated = &token[..token.len() - 4];
        assert_eq!(
            auth.check(truncated).await,
            Err(AuthError::BadSignature),
            "{alg}"
        );
    }
}

#[tokio::test]
async fn keys_named_by_the_token_are_never_fetched_or_used() {
    let issuer = Issuer::start().await;
    let attacker = Issuer::start_with_keys(vec![]).await;
    let evil = attacker.add_key(Algorithm::Es256);
    let auth = TestAuth::ready(config(&issuer)).await;
    let victim_kid = issuer.key(Algorithm::Es256).kid;

    // `jku` and `x5u` pointing at the attacker's JWKS, with the attacker's kid.
    for param in ["jku", "x5u"] {
        let header = json!({"alg": "ES256", "kid": evil.kid, param: attacker.jwks_url()});
        let token = evil.mint(&header, &issuer.claims("admin"));
        assert_eq!(
            auth.check(&token).await,
            Err(AuthError::UnknownKey),
            "{param}"
        );
    }
    assert_eq!(
        attacker.fetches(),
        0,
        "the gateway must never fetch a URL from a token"
    );

    // An embedded `jwk` (and `x5c`) under the victim's kid: the published key decides.
    let header = json!({"alg": "ES256", "kid": victim_kid, "jwk": evil.jwk(), "x5c": ["AAAA"]});
    let token = evil.mint(&header, &issuer.claims("admin"));
    assert_eq!(auth.check(&token).await, Err(AuthError::BadSignature));
}

#[tokio::test]
async fn any_crit_header_or_unencoded_payload_is_refused() {
    let issuer = Issuer::start().await;
    let auth = TestAuth::ready(config(&issuer)).await;
    let key = issuer.key(Algorithm::EdDsa);
    for crit in [json!(["exp"]), json!(["b64"]), json!([]), json!(null)] {
        let token = with_header(&issuer, &key, |h| h["crit"] = crit.clone());
        assert_eq!(
            auth.check(&token).await,
            Err(AuthError::Malformed),
            "crit {crit}"
        );
    }
    let token = with_header(&issuer, &key, |h| h["b64"] = json!(false));
    assert_eq!(auth.check(&token).await, Err(AuthError::Malformed));
}

#[tokio::test]
async fn a_token_without_kid_is_refused_without_a_fetch() {
    let issuer = Issuer::start().await;
    let auth = TestAuth::ready(config(&issuer)).await;
    let key = issuer.key(Algorithm::EdDsa);
    for kid in [None, Some(json!("")), Some(json!(7))] {
        let token = with_header(&issuer, &key, |h| match &kid {
            None => {
                h.as_object_mut().unwrap().remove("kid");
            }
            Some(kid) => h["kid"] = kid.clone(),
        });
        let expected = if kid == Some(json!(7)) {
            AuthError::Malformed
        } else {
            AuthError::UnknownKey
        };
        assert_eq!(auth.check(&token).await, Err(expected), "kid {kid:?}");
    }
    assert_eq!(issuer.fetches(), 1);
}
