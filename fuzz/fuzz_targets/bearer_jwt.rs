//! The token readers before any key is involved: `Authorization` header to token
//! (`auth/bearer.rs`), token to JWS header and payload (`auth/jwt.rs`), payload to verified
//! claims (`auth/claims.rs`), on arbitrary bytes. Signatures are not checked here (that is
//! jsonwebtoken's and aws-lc-rs's code, with keys only the JWKS provides).
//!
//! Two shapes of input: raw header bytes, and a header and payload the target encodes as
//! base64url so the fuzzer explores the JSON readers without first having to find base64.
//!
//! Properties: nothing panics; every refusal is one of the typed errors its step may give;
//! a token taken is exactly what follows `Bearer ` and is visible ASCII; a header parsed
//! came from a token of three base64url segments (two dots, header and payload not empty)
//! with an allowed `alg` and a `kid`; parsing twice gives the same answer; claims accepted
//! name a valid user and an expiry not yet passed, with the configured issuer and audience.

#![no_main]

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use gateway::fuzzing::{credentials, validate, Algorithm, AuthError, ClaimRules, Jws};
use libfuzzer_sys::fuzz_target;

/// A fixed clock: 2023-11-14T22:13:20Z.
const NOW: f64 = 1_700_000_000.0;
const ISSUER: &str = "https://auth.example";
const AUDIENCE: &str = "https://api.example";

/// The input's shape: anything not starting with NUL is an `Authorization` header value as
/// a client sends it; NUL, a byte of allowed algorithms (a bit per `Algorithm::ALL` entry),
/// then a JOSE header, a payload and a signature separated by 0xFF bytes (which UTF-8 never
/// holds) become a token of their base64url encodings.
enum Input<'a> {
    Header(&'a [u8]),
    Parts {
        header: &'a [u8],
        payload: &'a [u8],
        signature: &'a [u8],
        allowed: u8,
    },
}

impl<'a> Input<'a> {
    fn read(input: &'a [u8]) -> Option<Self> {
        let [0, allowed, ref rest @ ..] = *input else {
            return (input.first() != Some(&0)).then_some(Self::Header(input));
        };
        let mut parts = rest.splitn(3, |&b| b == 0xff);
        Some(Self::Parts {
            header: parts.next()?,
            payload: parts.next()?,
            signature: parts.next()?,
            allowed,
        })
    }
}

fn base64url(token: &str) -> bool {
    token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

fn check_token(token: &str, allowed: &[Algorithm]) {
    let first = Jws::parse(token, allowed);
    let again = Jws::parse(token, allowed);
    match (&first, &again) {
        (Ok(a), Ok(b)) => assert_eq!((a.alg, &a.kid, &a.typ), (b.alg, &b.kid, &b.typ)),
        (Err(a), Err(b)) => assert_eq!(a, b),
        _ => panic!("parse is not deterministic"),
    }
    let jws = match first {
        Ok(jws) => jws,
        Err(error) => {
            assert!(
                matches!(
                    error,
                    AuthError::Malformed | AuthError::DisallowedAlgorithm | AuthError::UnknownKey
                ),
                "unexpected parse error {error:?}"
            );
            return;
        }
    };
    let segments: Vec<&str> = token.split('.').collect();
    assert_eq!(segments.len(), 3, "a parsed token is three segments");
    assert!(segments.iter().all(|segment| base64url(segment)));
    assert!(!segments[0].is_empty() && !segments[1].is_empty());
    assert!(
        allowed.contains(&jws.alg),
        "an algorithm not allowed was taken"
    );
    assert!(!jws.kid.is_empty() && jws.kid.len() <= 256);
    let header = URL_SAFE_NO_PAD
        .decode(segments[0])
        .expect("a parsed header is base64url");
    assert!(
        std::str::from_utf8(&header).is_ok(),
        "a header that is not UTF-8 was taken"
    );
    let payload = match jws.payload() {
        Ok(payload) => {
            assert_eq!(
                URL_SAFE_NO_PAD.decode(segments[1]).ok(),
                Some(payload.clone())
            );
            payload
        }
        Err(error) => {
            assert_eq!(error, AuthError::Malformed);
            assert!(URL_SAFE_NO_PAD.decode(segments[1]).is_err());
            return;
        }
    };
    check_claims(&payload);
}

fn check_claims(payload: &[u8]) {
    let rules = ClaimRules {
        issuer: ISSUER.to_owned(),
        audiences: vec![AUDIENCE.to_owned()],
        leeway: std::time::Duration::from_secs(30),
    };
    let first = rules.check(payload, NOW);
    assert_eq!(
        first,
        rules.check(payload, NOW),
        "check is not deterministic"
    );
    match first {
        Ok(verified) => {
            assert!(
                verified.expires_at as f64 + 30.0 > NOW,
                "an expired token passed"
            );
            assert!(!verified.user_id.as_str().is_empty());
            assert!(!verified.user_id.as_str().chars().any(char::is_control));
            let text = std::str::from_utf8(payload).expect("accepted claims are JSON, so UTF-8");
            assert!(
                text.contains(ISSUER) || text.contains("\\"),
                "issuer never named"
            );
        }
        Err(error) => assert!(
            matches!(
                error,
                AuthError::Malformed
                    | AuthError::Expired
                    | AuthError::NotYetValid
                    | AuthError::WrongIssuer
                    | AuthError::WrongAudience
                    | AuthError::InvalidSubject
                    | AuthError::WrongTokenType
            ),
            "unexpected claims error {error:?}"
        ),
    }
}

fuzz_target!(|input: &[u8]| {
    let Some(input) = Input::read(input) else {
        return;
    };
    match input {
        Input::Header(value) => {
            let rest = match credentials(Some(value)) {
                Ok(rest) => rest,
                Err(error) => {
                    assert!(matches!(error, AuthError::Missing | AuthError::Malformed));
                    return;
                }
            };
            assert!(value.len() >= 6 && value[..6].eq_ignore_ascii_case(b"bearer"));
            assert!(rest.is_empty() || value[6] == b' ');
            let token = match validate(rest) {
                Ok(token) => token,
                Err(error) => {
                    assert_eq!(error, AuthError::Malformed);
                    return;
                }
            };
            assert_eq!(value, [&value[..7], token.as_bytes()].concat().as_slice());
            assert!(!token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic()));
            check_token(token, &Algorithm::ALL);
        }
        Input::Parts {
            header,
            payload,
            signature,
            allowed,
        } => {
            let allowed: Vec<Algorithm> = Algorithm::ALL
                .iter()
                .enumerate()
                .filter(|(i, _)| allowed & (1 << i) != 0)
                .map(|(_, alg)| *alg)
                .collect();
            let signature: String = signature
                .iter()
                .map(|&b| b'A' + b % 26)
                .map(char::from)
                .collect();
            let token = format!(
                "{}.{}.{}",
                URL_SAFE_NO_PAD.encode(header),
                URL_SAFE_NO_PAD.encode(payload),
                signature
            );
            check_token(&token, &allowed);
            // The claims reader on the payload alone, whatever the header said.
            check_claims(payload);
        }
    }
});
