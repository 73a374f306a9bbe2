//! Takes the token out of an `Authorization` header: the `Bearer` scheme in any letter case,
//! one space, one token, bounded in length before anything else looks at it.

use super::AuthError;

/// Longest token accepted, in bytes. Better Auth's tokens are well under 1 KiB; the bound keeps
/// base64 and JSON decoding of hostile input cheap.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// What follows `Bearer ` in an `Authorization` header value, not yet checked to be a
/// token: [`validate`] does that, unless the bytes are those of a token checked before.
///
/// A missing header, an empty one or another scheme (`Basic ...`) is `Missing`: no bearer
/// token was offered. A `Bearer` header that is not exactly `Bearer <token>` is `Malformed`
/// (here, or in [`validate`]).
pub fn credentials(authorization: Option<&[u8]>) -> Result<&[u8], AuthError> {
    let value = authorization.ok_or(AuthError::Missing)?;
    if value.len() > MAX_TOKEN_LEN + "Bearer ".len() {
        return Err(AuthError::Malformed);
    }
    if value.is_empty() {
        return Err(AuthError::Missing);
    }
    let (scheme, rest) = match value.iter().position(|&byte| byte == b' ') {
        Some(space) => (&value[..space], &value[space + 1..]),
        None => (value, &[][..]),
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Err(AuthError::Missing);
    }
    Ok(rest)
}

/// The token [`credentials`] returned, if it is one.
pub fn validate(rest: &[u8]) -> Result<&str, AuthError> {
    // Exactly one space and one token of visible ASCII: `Bearer  x`, `Bearer x y`, `Bearer `
    // and non-ASCII bytes are malformed. One branch-free pass the compiler vectorises: this
    // runs on every request, and a char-by-char scan showed in the per-request profile.
    let visible = rest
        .iter()
        .fold(true, |visible, byte| visible & byte.is_ascii_graphic());
    if rest.is_empty() || !visible {
        return Err(AuthError::Malformed);
    }
    std::str::from_utf8(rest).map_err(|_| AuthError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use proptest::prelude::*;

    /// Both steps, as the authenticator takes them for a token it has not seen before.
    fn token(authorization: Option<&[u8]>) -> Result<&str, AuthError> {
        validate(credentials(authorization)?)
    }

    fn parse(raw: &str) -> Result<&'static str, AuthError> {
        token(Some(Box::leak(raw.as_bytes().to_vec().into_boxed_slice())))
    }

    #[test]
    fn accepts_the_scheme_in_any_case() {
        assert_eq!(parse("Bearer a.b.c"), Ok("a.b.c"));
        assert_eq!(parse("bearer a.b.c"), Ok("a.b.c"));
        assert_eq!(parse("BEARER a.b.c"), Ok("a.b.c"));
        assert_eq!(parse("BEAREr A"), Ok("A"));
    }

    #[test]
    fn other_schemes_and_no_header_are_missing() {
        assert_eq!(token(None), Err(AuthError::Missing));
        assert_eq!(parse(""), Err(AuthError::Missing));
        assert_eq!(parse("Basic dXNlcjpwYXNz"), Err(AuthError::Missing));
        assert_eq!(parse("Bearerx a.b.c"), Err(AuthError::Missing));
    }

    #[test]
    fn anything_but_one_token_is_malformed() {
        assert_eq!(parse("Bearer"), Err(AuthError::Malformed));
        assert_eq!(parse("Bearer "), Err(AuthError::Malformed));
        assert_eq!(parse("Bearer  a.b.c"), Err(AuthError::Malformed));
        assert_eq!(parse("Bearer a.b.c d"), Err(AuthError::Malformed));
        assert_eq!(parse("Bearer a.b\tc"), Err(AuthError::Malformed));
        let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN + 1));
        assert_eq!(parse(&long), Err(AuthError::Malformed));
        assert_eq!(token(Some(b"Bearer \xff.b.c")), Err(AuthError::Malformed));
    }

    proptest! {
        /// Whatever a header holds, a token comes out only of exactly `Bearer <token>`, and
        /// the token is visible ASCII.
        #[test]
        fn only_one_visible_token_after_the_scheme_passes(
            scheme in "(?i:bearer|basic|bearerx|)",
            gap in "[ \\t]{0,2}",
            rest in "[!-~ \\t\\x80-\\xff]{0,20}",
        ) {
            let raw = format!("{scheme}{gap}{rest}");
            let Ok(value) = HeaderValue::from_bytes(raw.as_bytes()) else {
                return Ok(());
            };
            // Judged on the header's text, not on the parts it was drawn from: an empty gap
            // before a rest that starts with one space ("BEAREr" "" " A") is `Bearer A` too.
            if let Ok(token) = token(Some(value.as_bytes())) {
                let (head, tail) = raw.as_bytes().split_at(raw.len().min("bearer ".len()));
                prop_assert!(head.eq_ignore_ascii_case(b"bearer "), "{:?}", raw);
                prop_assert_eq!(token.as_bytes(), tail);
                prop_assert!(!token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic()));
            }
        }
    }
}
