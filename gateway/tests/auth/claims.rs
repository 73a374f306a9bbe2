//! The claim rules: `exp`, `nbf`, `iat` with leeway; `iss`; `aud` as string or array; `sub`;
//! the token type (Better Auth's session-cache cookie never passes); and malformed input.

use gateway::auth::{Algorithm, AuthError, SESSION_CACHE_AUDIENCE, SESSION_CACHE_TYP};
use serde_json::{json, Value};

use crate::helpers::{config, TestAuth};
use crate::support::issuer::{b64, unix_now, Issuer};

struct Case {
    issuer: Issuer,
    auth: TestAuth,
}

impl Case {
    /// Leeway 30 s (the default).
    async fn start() -> Self {
        let issuer = Issuer::start().await;
        let auth = TestAuth::ready(config(&issuer)).await;
        Self { issuer, auth }
    }

    /// Valid claims changed by `edit`, signed with EdDSA.
    async fn claims(&self, edit: impl FnOnce(&mut Value)) -> Result<String, AuthError> {
        let mut claims = self.issuer.claims("user-1");
        edit(&mut claims);
        self.header_and_claims(json!({}), claims).await
    }

    /// The default header with `extra` members merged in, and `claims`.
    async fn header_and_claims(&self, extra: Value, claims: Value) -> Result<String, AuthError> {
        let key = self.issuer.key(Algorithm::EdDsa);
        let mut header = key.header();
        for (name, value) in extra.as_object().unwrap() {
            header[name] = value.clone();
        }
        let token = key.mint(&header, &claims);
        self.auth
            .check(&token)
            .await
            .map(|verified| verified.user_id.to_string())
    }
}

#[tokio::test]
async fn exp_is_required_and_honoured_with_leeway() {
    let case = Case::start().await;
    let now = unix_now();
    let expired = case.claims(|c| c["exp"] = json!(now - 31)).await;
    assert_eq!(expired, Err(AuthError::Expired));
    assert!(case.claims(|c| c["exp"] = json!(now - 20)).await.is_ok());
    let missing = case.claims(|c| c["exp"] = Value::Null).await;
    assert_eq!(missing, Err(AuthError::Malformed));
    let text = case
        .claims(|c| c["exp"] = json!((now + 60).to_string()))
        .await;
    assert_eq!(text, Err(AuthError::Malformed));
}

#[tokio::test]
async fn time_claims_that_are_not_whole_seconds_in_range_are_malformed() {
    let case = Case::start().await;
    let now = unix_now();
    let bad = [
        json!(now as f64 + 60.5),
        json!(1.5e9),
        json!(1e300),
        json!(-1),
        json!(253_402_300_800_i64), // 10000-01-01T00:00:00Z
        json!((now + 60).to_string()),
        json!(true),
    ];
    for claim in ["exp", "nbf", "iat"] {
        for value in &bad {
            let result = case.claims(|c| c[claim] = value.clone()).await;
            assert_eq!(result, Err(AuthError::Malformed), "{claim}: {value}");
        }
    }
    // Whole seconds still pass, at the far end of the range too.
    assert!(case
        .claims(|c| c["exp"] = json!(253_402_300_799_i64))
        .await
        .is_ok());
}

#[tokio::test]
async fn nbf_and_iat_in_the_future_are_refused_beyond_the_leeway() {
    let case = Case::start().await;
    let now = unix_now();
    for claim in ["nbf", "iat"] {
        let early = case.claims(|c| c[claim] = json!(now + 120)).await;
        assert_eq!(early, Err(AuthError::NotYetValid), "{claim}");
        assert!(
            case.claims(|c| c[claim] = json!(now + 10)).await.is_ok(),
            "{claim}"
        );
        assert!(
            case.claims(|c| c[claim] = json!(now - 600)).await.is_ok(),
            "{claim}"
        );
    }
    // Both optional.
    let bare = case
        .claims(|c| {
            c.as_object_mut().unwrap().remove("iat");
        })
        .await;
    assert!(bare.is_ok());
}

#[tokio::test]
async fn the_issuer_must_match_exactly() {
    let case = Case::start().await;
    let base = case.issuer.base_url().to_owned();
    for iss in [
        json!("https://evil.example"),
        json!(format!("{base}/")),
        json!(null),
        json!([base]),
    ] {
        let result = case.claims(|c| c["iss"] = iss.clone()).await;
        let expected = if iss.is_array() {
            AuthError::Malformed
        } else {
            AuthError::WrongIssuer
        };
        assert_eq!(result, Err(expected), "iss {iss}");
    }
}

#[tokio::test]
async fn the_audience_may_be_a_string_or_an_array_naming_ours() {
    let case = Case::start().await;
    let ours = case.issuer.base_url().to_owned();
    assert!(case.claims(|c| c["aud"] = json!([ours])).await.is_ok());
    assert!(case
        .claims(|c| c["aud"] = json!(["other", ours]))
        .await
        .is_ok());
    for aud in [json!("other"), json!(["other"]), json!([]), json!(null)] {
        let result = case.claims(|c| c["aud"] = aud.clone()).await;
        assert_eq!(result, Err(AuthError::WrongAudience), "aud {aud}");
    }
    let number = case.claims(|c| c["aud"] = json!(7)).await;
    assert_eq!(number, Err(AuthError::Malformed));
}

#[tokio::test]
async fn the_subject_must_be_a_valid_user_id() {
    let case = Case::start().await;
    let longest = "x".repeat(255);
    let sub = case.claims(|c| c["sub"] = json!(longest)).await;
    assert_eq!(sub.as_deref(), Ok(longest.as_str()));
    let unicode = case.claims(|c| c["sub"] = json!("Zoë 🦀")).await;
    assert_eq!(unicode.as_deref(), Ok("Zoë 🦀"));
    for bad in [
        json!(""),
        json!("x".repeat(256)),
        json!("a\nb"),
        json!("a\u{7f}"),
        json!(null),
    ] {
        let result = case.claims(|c| c["sub"] = bad.clone()).await;
        assert_eq!(result, Err(AuthError::InvalidSubject), "sub {bad}");
    }
    let number = case.claims(|c| c["sub"] = json!(42)).await;
    assert_eq!(number, Err(AuthError::Malformed));
}

#[tokio::test]
async fn better_auth_session_cache_tokens_never_pass() {
    let issuer = Issuer::start().await;
    let mut config = config(&issuer);
    // Even an operator who lists the session-cache audience cannot let the cookie through.
    config.audiences.push(SESSION_CACHE_AUDIENCE.to_owned());
    let case = Case {
        auth: TestAuth::ready(config).await,
        issuer,
    };
    let by_typ = case
        .header_and_claims(json!({"typ": SESSION_CACHE_TYP}), case.issuer.claims("u"))
        .await;
    assert_eq!(by_typ, Err(AuthError::WrongTokenType));
    let by_aud = case
        .claims(|c| c["aud"] = json!(SESSION_CACHE_AUDIENCE))
        .await;
    assert_eq!(by_aud, Err(AuthError::WrongTokenType));
    let base = case.issuer.base_url().to_owned();
    let mixed = case
        .claims(|c| c["aud"] = json!([base, SESSION_CACHE_AUDIENCE]))
        .await;
    assert_eq!(mixed, Err(AuthError::WrongTokenType));
}

#[tokio::test]
async fn only_jwt_typ_or_none_is_accepted() {
    let case = Case::start().await;
    let claims = case.issuer.claims("u");
    for typ in ["JWT", "jwt", "application/jwt"] {
        let result = case
            .header_and_claims(json!({"typ": typ}), claims.clone())
            .await;
        assert!(result.is_ok(), "typ {typ}");
    }
    assert!(case.claims(|_| {}).await.is_ok());
    let no_typ = case
        .header_and_claims(json!({"typ": null}), claims.clone())
        .await;
    assert!(no_typ.is_ok());
    for typ in ["at+jwt", "JOSE", "logout+jwt"] {
        let result = case
            .header_and_claims(json!({"typ": typ}), claims.clone())
            .await;
        assert_eq!(result, Err(AuthError::WrongTokenType), "typ {typ}");
    }
}

#[tokio::test]
async fn malformed_tokens_are_refused_as_malformed() {
    let case = Case::start().await;
    let valid = case.issuer.token(Algorithm::EdDsa);
    let (header, rest) = valid.split_once('.').unwrap();
    let (payload, sig) = rest.split_once('.').unwrap();
    let cases = [
        "abc".to_owned(),
        "a.b".to_owned(),
        format!("{valid}.extra.parts"),
        format!("{header}..{sig}"),
        format!(".{payload}.{sig}"),
        format!("{header}={payload}.{sig}"),
        format!("{}.{payload}.{sig}", b64("not json")),
        format!("{}.{payload}.{sig}", b64("[1,2]")),
        format!(
            "{}.{payload}.{sig}",
            b64(r#"{"alg":"EdDSA","alg":"EdDSA","kid":"x"}"#)
        ),
        format!("{header}.{payload}!.{sig}"),
    ];
    for token in cases {
        assert_eq!(
            case.auth.check(&token).await,
            Err(AuthError::Malformed),
            "{token}"
        );
    }
    // A payload that is signed but not JSON.
    let key = case.issuer.key(Algorithm::EdDsa);
    let input = format!("{header}.{}", b64("not json"));
    let token = format!("{input}.{}", b64(key.sign(input.as_bytes())));
    assert_eq!(case.auth.check(&token).await, Err(AuthError::Malformed));
}

#[tokio::test]
async fn oversized_tokens_are_refused_before_parsing() {
    let case = Case::start().await;
    let huge = case
        .claims(|c| c["padding"] = json!("x".repeat(gateway::auth::MAX_TOKEN_LEN)))
        .await;
    assert_eq!(huge, Err(AuthError::Malformed));
    // Under the bound, extra claims are fine.
    let roomy = case
        .claims(|c| c["padding"] = json!("x".repeat(4000)))
        .await;
    assert!(roomy.is_ok());
}

#[tokio::test]
async fn the_authorization_header_must_carry_one_bearer_token() {
    let case = Case::start().await;
    let token = case.issuer.token(Algorithm::Es256);
    let auth = &case.auth.auth;
    assert_eq!(auth.authenticate(None).await, Err(AuthError::Missing));
    assert!(auth
        .authenticate(Some(format!("bEaReR {token}").as_bytes()))
        .await
        .is_ok());
    assert_eq!(
        auth.authenticate(Some(b"Basic dXNlcjpwYXNz")).await,
        Err(AuthError::Missing)
    );
    for bad in [
        format!("Bearer  {token}"),
        format!("Bearer {token} x"),
        "Bearer".to_owned(),
    ] {
        let result = auth.authenticate(Some(bad.as_bytes())).await;
        assert_eq!(result, Err(AuthError::Malformed), "{bad}");
    }
}
