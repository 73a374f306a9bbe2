//! Hostile input: arbitrary header values and tokens altered in one character are refused
//! with an error (never accepted, never a panic, never a hang).

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use gateway::auth::{Algorithm, AuthError};
use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use proptest::test_runner::{Config, TestRunner};
use serde_json::json;

use crate::helpers::{config, TestAuth};
use crate::support::issuer::Issuer;

const BASE64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A byte `HeaderValue` accepts that is not obs-text: visible ASCII, space or tab.
fn text_byte() -> impl Strategy<Value = u8> {
    prop_oneof![10 => 0x20u8..=0x7e, 1 => Just(b'\t')]
}

/// Header values as hyper could pass them on: every case is one `HeaderValue::from_bytes`
/// accepts, and most are `Bearer <a>.<b>.<c>`, so they get past the scheme into token parsing.
fn header_values(issuer: &Issuer, tokens: &[String]) -> BoxedStrategy<Vec<u8>> {
    // The parts of valid tokens, by position: a real header with a foreign payload or
    // signature gets as far as the signature check.
    let real: Vec<Vec<String>> = (0..3)
        .map(|at| {
            tokens
                .iter()
                .map(|token| token.split('.').nth(at).unwrap().to_owned())
                .collect()
        })
        .collect();
    // JSON that is almost a header this gateway would take, or is not one at all.
    let mut hostile: Vec<Vec<u8>> = Vec::new();
    for alg in Algorithm::ALL {
        let kid = issuer.key(alg).kid;
        for other in ["none", "None", "HS256", "RS512", "ES256K", ""]
            .into_iter()
            .chain(Algorithm::ALL.iter().map(|a| a.as_str()))
            .filter(|&other| other != alg.as_str())
        {
            hostile.push(serde_json::to_vec(&json!({"alg": other, "kid": kid})).unwrap());
        }
        let alg = alg.as_str();
        for header in [
            json!({"alg": alg}),
            json!({"alg": alg, "kid": ""}),
            json!({"alg": alg, "kid": null}),
            json!({"alg": alg, "kid": 7}),
            json!({"alg": alg, "kid": "k".repeat(300)}),
            json!({"alg": alg, "kid": kid, "crit": ["b64"]}),
            json!({"alg": alg, "kid": kid, "b64": false}),
            json!({"alg": [alg], "kid": kid}),
            json!({"kid": kid}),
        ] {
            hostile.push(serde_json::to_vec(&header).unwrap());
        }
        hostile.push(format!(r#"{{"alg":"{alg}","kid":"{kid}","alg":"none"}}"#).into_bytes());
        hostile.push(format!(r#"{{"alg":"{alg}","kid":"{kid}""#).into_bytes());
        hostile.push(format!(r#"{{"alg":"{alg}","kid":"{kid}\ud800"}}"#).into_bytes());
    }
    for text in [
        "",
        "null",
        "[]",
        "{}",
        "\"\"",
        "1e999",
        "-0",
        "true",
        "{\"alg\":\"none\"}",
        "{\"exp\":1e999}",
        "{\"sub\":null}",
    ] {
        hostile.push(text.as_bytes().to_vec());
    }
    hostile.push(b"\xff\xfe{\"alg\":\"EdDSA\"}".to_vec());
    hostile.push("[".repeat(10_000).into_bytes());
    let hostile_segment = prop_oneof![
        // base64url-ish: mostly the alphabet, sometimes padding or standard base64.
        "[A-Za-z0-9_-]{0,200}",
        "[A-Za-z0-9_+/=-]{0,60}",
        // Anything a header may hold, dots and spaces included.
        "[ -~\\t]{0,40}",
        prop::sample::select(hostile).prop_map(|json| URL_SAFE_NO_PAD.encode(json)),
        Just("A".repeat(9_000)),
    ]
    .boxed();
    let segment = |at: usize| {
        prop_oneof![
            2 => hostile_segment.clone(),
            1 => prop::sample::select(real[at].clone()),
        ]
    };
    // One part is always hostile, so no combination of real parts makes a valid token.
    let token = (
        segment(0),
        segment(1),
        segment(2),
        0..3usize,
        hostile_segment.clone(),
    )
        .prop_map(|(a, b, c, at, replacement)| {
            let mut parts = [a, b, c];
            parts[at] = replacement;
            parts.join(".")
        });
    prop_oneof![
        1 => proptest::collection::vec(text_byte(), 0..300),
        1 => proptest::collection::vec(
            prop_oneof![3 => text_byte(), 1 => 0x80u8..=0xff],
            0..300,
        ),
        8 => ("(?i:bearer)", token)
            .prop_map(|(scheme, token)| format!("{scheme} {token}").into_bytes()),
    ]
    .boxed()
}

#[test]
fn arbitrary_and_altered_tokens_are_refused() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (issuer, auth) = runtime.block_on(async {
        let issuer = Issuer::start().await;
        // A token whose signature no key verifies asks for an early key fetch and waits for
        // it; with the default cooldown each such case would wait 3 s for a trailing fetch.
        // The refusal is the same either way.
        let mut config = config(&issuer);
        config.jwks.unknown_kid_cooldown = Duration::ZERO;
        let auth = TestAuth::ready(config).await;
        (issuer, auth)
    });
    // A runner per property: one runner counts its successes across `run` calls, so a
    // second `run` on it would test nothing.
    let runner = || {
        TestRunner::new(Config {
            cases: 512,
            ..Config::default()
        })
    };
    let tokens: Vec<String> = Algorithm::ALL
        .iter()
        .map(|&alg| issuer.token(alg))
        .collect();

    // Any header value at all: an error, and never KeysUnavailable (keys are loaded).
    let cases = Cell::new(0u32);
    let offered = Cell::new(0u32);
    let reasons = RefCell::new(BTreeSet::new());
    runner()
        .run(&header_values(&issuer, &tokens), |bytes| {
            let value = http::HeaderValue::from_bytes(&bytes);
            prop_assert!(value.is_ok(), "not a header value: {:?}", bytes);
            let result = runtime.block_on(auth.auth.authenticate(Some(value.unwrap().as_bytes())));
            prop_assert!(
                result.is_err(),
                "accepted {:?}",
                String::from_utf8_lossy(&bytes)
            );
            let reason = result.unwrap_err();
            prop_assert_ne!(reason, AuthError::KeysUnavailable);
            cases.set(cases.get() + 1);
            offered.set(offered.get() + u32::from(reason != AuthError::Missing));
            reasons.borrow_mut().insert(reason.reason());
            Ok(())
        })
        .unwrap();
    // Not a vacuous property: every case ran, most offered a token, and refusals came from
    // every stage that can judge an unsigned token, up to the signature check.
    assert!(cases.get() >= 512, "{} header values", cases.get());
    assert!(
        offered.get() * 4 >= cases.get() * 3,
        "only {} of {} cases offered a bearer token",
        offered.get(),
        cases.get()
    );
    for reason in [
        "missing",
        "malformed",
        "disallowed_algorithm",
        "unknown_key",
        "bad_signature",
    ] {
        assert!(
            reasons.borrow().contains(reason),
            "no case was refused as {reason}: {:?}",
            reasons.borrow()
        );
    }

    // A valid token with one character replaced: refused, whatever the part.
    let strategy = (
        0..tokens.len(),
        any::<prop::sample::Index>(),
        0..BASE64URL.len(),
    );
    let altered_cases = Cell::new(0u32);
    runner()
        .run(&strategy, |(which, at, replacement)| {
            let token = &tokens[which];
            let at = at.index(token.len());
            let new = BASE64URL[replacement];
            prop_assume!(token.as_bytes()[at] != b'.' && token.as_bytes()[at] != new);
            let mut altered = token.clone().into_bytes();
            altered[at] = new;
            let altered = String::from_utf8(altered).unwrap();
            let result = runtime.block_on(auth.check(&altered));
            prop_assert!(result.is_err(), "accepted an altered token at {}", at);
            altered_cases.set(altered_cases.get() + 1);
            Ok(())
        })
        .unwrap();
    assert!(
        altered_cases.get() >= 512,
        "{} altered tokens",
        altered_cases.get()
    );
}
