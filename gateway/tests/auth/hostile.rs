//! Hostile input: arbitrary header values and tokens altered in one character are refused
//! with an error (never accepted, never a panic, never a hang).

use gateway::auth::{Algorithm, AuthError};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::helpers::{config, TestAuth};
use crate::support::issuer::Issuer;

const BASE64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

#[test]
fn arbitrary_and_altered_tokens_are_refused() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (issuer, auth) = runtime.block_on(async {
        let issuer = Issuer::start().await;
        let auth = TestAuth::ready(config(&issuer)).await;
        (issuer, auth)
    });
    let mut runner = TestRunner::new(Config {
        cases: 512,
        ..Config::default()
    });

    // Any header value at all: an error, and never KeysUnavailable (keys are loaded).
    runner
        .run(&proptest::collection::vec(any::<u8>(), 0..300), |bytes| {
            let Ok(value) = http::HeaderValue::from_bytes(&bytes) else {
                return Ok(()); // hyper would not let it through either
            };
            let result = runtime.block_on(auth.auth.authenticate(Some(value.as_bytes())));
            prop_assert!(result.is_err());
            prop_assert_ne!(result, Err(AuthError::KeysUnavailable));
            Ok(())
        })
        .unwrap();

    // A valid token with one character replaced: refused, whatever the part.
    let tokens: Vec<String> = Algorithm::ALL
        .iter()
        .map(|&alg| issuer.token(alg))
        .collect();
    let strategy = (
        0..tokens.len(),
        any::<prop::sample::Index>(),
        0..BASE64URL.len(),
    );
    runner
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
            Ok(())
        })
        .unwrap();
}
