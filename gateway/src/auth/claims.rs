//! The claim rules of an API token, applied after its signature has been checked: token type,
//! `iss`, `aud`, `exp`, `nbf`, `iat` (with leeway) and `sub` (a valid [`UserId`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proto_shared::UserId;
use serde::Deserialize;

use super::{AuthError, Verified};

/// `aud` of Better Auth's session-cache cookie JWT, signed with the same keys.
pub const SESSION_CACHE_AUDIENCE: &str = "better-auth:session-cache";
/// `typ` of Better Auth's session-cache cookie JWT.
pub const SESSION_CACHE_TYP: &str = "better-auth.session-cache+jwt";

/// What a token must satisfy besides its signature.
#[derive(Debug, Clone)]
pub struct ClaimRules {
    pub issuer: String,
    pub audiences: Vec<String>,
    pub leeway: Duration,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// The registered claims we read; others are ignored. Wrong JSON types are `Malformed`.
#[derive(Deserialize)]
struct RawClaims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    exp: Option<NumericDate>,
    nbf: Option<NumericDate>,
    iat: Option<NumericDate>,
    /// Better Auth's session id, when the issuer adds it (`definePayload`).
    sid: Option<String>,
}

/// A registered time claim (`exp`, `nbf`, `iat`): whole seconds since the Unix epoch, from
/// 0 to the end of year 9999. RFC 7519 allows fractions, but no issuer we serve sends them
/// (Better Auth's `jose` floors to whole seconds), and a float, an exponent (`1.5e9`), a
/// string or a value out of range is more likely a forgery probing how the comparison
/// behaves (`1e300`, `NaN` tricks, negative `iat`) than an honest token: all are refused as
/// malformed rather than compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NumericDate(i64);

impl NumericDate {
    /// 9999-12-31T23:59:59Z.
    const MAX: i64 = 253_402_300_799;

    fn secs(self) -> f64 {
        // Exact: every value up to `MAX` fits a f64's 53-bit mantissa.
        self.0 as f64
    }
}

impl<'de> Deserialize<'de> for NumericDate {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = NumericDate;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("whole seconds since the Unix epoch, up to year 9999")
            }
            fn visit_u64<E: serde::de::Error>(self, secs: u64) -> Result<NumericDate, E> {
                i64::try_from(secs)
                    .ok()
                    .filter(|secs| *secs <= NumericDate::MAX)
                    .map(NumericDate)
                    .ok_or_else(|| E::custom("time claim out of range"))
            }
            fn visit_i64<E: serde::de::Error>(self, secs: i64) -> Result<NumericDate, E> {
                u64::try_from(secs)
                    .map_err(|_| E::custom("negative time claim"))
                    .and_then(|secs| self.visit_u64(secs))
            }
            // Floats, strings and everything else fall to the default: an invalid type.
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Seconds since the Unix epoch, as claims count them.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64())
}

/// Whether a token expiring at `exp` is still valid at `now`, allowing `leeway`.
pub fn unexpired(exp: f64, now: f64, leeway: Duration) -> bool {
    now < exp + leeway.as_secs_f64()
}

/// Refuses Better Auth's session-cache cookie and any `typ` that does not say "a JWT".
/// RFC 7515 §4.1.9: `typ` is compared case-insensitively and `application/` may be omitted.
/// Better Auth's API tokens carry `typ: JWT` or none; anything else (`at+jwt`, `logout+jwt`,
/// the session cache) is some other kind of token and is not ours to accept.
pub fn check_type(typ: Option<&str>) -> Result<(), AuthError> {
    let Some(typ) = typ else { return Ok(()) };
    let media = typ
        .get(..12)
        .filter(|prefix| prefix.eq_ignore_ascii_case("application/"))
        .map_or(typ, |_| &typ[12..]);
    if media.eq_ignore_ascii_case("jwt") {
        Ok(())
    } else {
        Err(AuthError::WrongTokenType)
    }
}

impl ClaimRules {
    /// Applies every rule to a signature-checked payload, at time `now` (Unix seconds).
    pub fn check(&self, payload: &[u8], now: f64) -> Result<Verified, AuthError> {
        // UTF-8 first (RFC 7519 §7.2, step 10): serde_json checks it only in the strings it
        // keeps, so invalid bytes in a member it skips would otherwise pass.
        let payload = std::str::from_utf8(payload).map_err(|_| AuthError::Malformed)?;
        let claims: RawClaims = serde_json::from_str(payload).map_err(|_| AuthError::Malformed)?;
        let audiences: &[String] = match &claims.aud {
            None => &[],
            Some(Audience::One(aud)) => std::slice::from_ref(aud),
            Some(Audience::Many(auds)) => auds,
        };
        // Before the audience check, so the session cookie fails the same way whatever
        // JWT_AUDIENCE is set to (even if someone lists the session-cache audience).
        if audiences.iter().any(|aud| aud == SESSION_CACHE_AUDIENCE) {
            return Err(AuthError::WrongTokenType);
        }
        let leeway = self.leeway.as_secs_f64();
        // A token without `exp` would be valid forever; we take none.
        let exp = claims.exp.ok_or(AuthError::Malformed)?;
        if !unexpired(exp.secs(), now, self.leeway) {
            return Err(AuthError::Expired);
        }
        for not_before in [claims.nbf, claims.iat].into_iter().flatten() {
            // `iat` in the future is as suspicious as an unmet `nbf`: a clock far off or a
            // token minted for later.
            if not_before.secs() > now + leeway {
                return Err(AuthError::NotYetValid);
            }
        }
        if claims.iss.as_deref() != Some(self.issuer.as_str()) {
            // Usually a configuration mismatch (BETTER_AUTH_URL / JWT_ISSUER), so say both.
            tracing::warn!(expected = %self.issuer, found = ?claims.iss, "token refused: wrong issuer");
            return Err(AuthError::WrongIssuer);
        }
        if !audiences.iter().any(|aud| self.audiences.contains(aud)) {
            return Err(AuthError::WrongAudience);
        }
        let sub = claims.sub.ok_or(AuthError::InvalidSubject)?;
        let user_id = UserId::parse(&sub).map_err(|_| AuthError::InvalidSubject)?;
        Ok(Verified {
            user_header: user_id.to_header_value(),
            user_id,
            expires_at: exp.0,
            session: claims.sid.map(Into::into),
            issued_at: claims.iat.map(|iat| iat.0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(json: &str) -> Result<NumericDate, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn time_claims_are_whole_seconds_in_range() {
        assert_eq!(date("0").unwrap(), NumericDate(0));
        assert_eq!(date("1700000000").unwrap(), NumericDate(1_700_000_000));
        assert_eq!(date("253402300799").unwrap(), NumericDate(NumericDate::MAX));
        for bad in [
            "253402300800",
            "-1",
            "1.5e9",
            "1700000000.0",
            "1700000000.5",
            "1e300",
            "18446744073709551616",
            "\"1700000000\"",
            "null",
            "true",
            "[1]",
        ] {
            assert!(date(bad).is_err(), "{bad}");
        }
    }

    /// Found by the `bearer_jwt` fuzz target: claims with invalid UTF-8 inside a member the
    /// rules ignore passed, as serde_json validates only the strings it keeps.
    #[test]
    fn claims_that_are_not_utf8_are_malformed() {
        let rules = ClaimRules {
            issuer: "https://auth.example".into(),
            audiences: vec!["https://api.example".into()],
            leeway: Duration::from_secs(30),
        };
        let claims = |extra: &[u8]| {
            let mut json = br#"{"iss":"https://auth.example","aud":"https://api.example","sub":"u1","exp":1900000000,"x":""#.to_vec();
            json.extend_from_slice(extra);
            json.extend_from_slice(br#""}"#);
            json
        };
        assert!(rules.check(&claims(b"fine"), 1_700_000_000.0).is_ok());
        assert_eq!(
            rules.check(&claims(b"\xeb\xff"), 1_700_000_000.0),
            Err(AuthError::Malformed)
        );
    }

    #[test]
    fn typ_must_say_jwt_if_present() {
        assert_eq!(check_type(None), Ok(()));
        assert_eq!(check_type(Some("JWT")), Ok(()));
        assert_eq!(check_type(Some("jwt")), Ok(()));
        assert_eq!(check_type(Some("application/jwt")), Ok(()));
        assert_eq!(
            check_type(Some(SESSION_CACHE_TYP)),
            Err(AuthError::WrongTokenType)
        );
        assert_eq!(check_type(Some("at+jwt")), Err(AuthError::WrongTokenType));
        assert_eq!(check_type(Some("")), Err(AuthError::WrongTokenType));
        assert_eq!(
            check_type(Some("application/")),
            Err(AuthError::WrongTokenType)
        );
    }
}
