//! Verifying: the only way tasks-service learns who a request is for.

use aws_lc_rs::hmac;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use http::{HeaderMap, HeaderValue, Method};

use super::{canonical_string, KeyRing, CREDENTIAL_VERSION};
use crate::{headers, UserId};

/// Checks credentials against every key of a ring. `Debug` shows key ids only.
#[derive(Debug, Clone)]
pub struct Verifier {
    ring: KeyRing,
    max_skew_secs: i64,
}

/// Why a request's identity was refused. Each one means 401: the claimed id is never used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("a user id was sent without a credential")]
    MissingCredential,
    #[error("a credential was sent without a user id")]
    MissingUserId,
    #[error("an identity header was sent more than once")]
    DuplicateHeader,
    #[error("the credential is malformed")]
    Malformed,
    #[error("the credential names an unknown key")]
    UnknownKey,
    #[error("the credential is not fresh")]
    Stale,
    #[error("the credential's signature does not match the request")]
    BadSignature,
    #[error("the user id is invalid")]
    InvalidUserId,
}

impl IdentityError {
    /// A short stable label for logs and metrics.
    pub fn reason(self) -> &'static str {
        match self {
            Self::MissingCredential => "missing_credential",
            Self::MissingUserId => "missing_user_id",
            Self::DuplicateHeader => "duplicate_header",
            Self::Malformed => "malformed",
            Self::UnknownKey => "unknown_key",
            Self::Stale => "stale",
            Self::BadSignature => "bad_signature",
            Self::InvalidUserId => "invalid_user_id",
        }
    }
}

/// The fields of a `v1;kid=..;ts=..;sig=..` credential.
struct Credential<'a> {
    key_id: &'a str,
    timestamp: i64,
    signature: Vec<u8>,
}

impl Verifier {
    /// Accepts credentials from any key in `ring` whose timestamp is within `max_skew_secs`
    /// of the verifier's clock, either way.
    pub fn new(ring: KeyRing, max_skew_secs: u32) -> Self {
        Self {
            ring,
            max_skew_secs: i64::from(max_skew_secs),
        }
    }

    /// Returns the verified user id, `None` when the request claims no identity at all, or
    /// why the claimed identity must not be trusted.
    pub fn verify(
        &self,
        method: &Method,
        path_and_query: &str,
        headers: &HeaderMap,
        now: i64,
    ) -> Result<Option<UserId>, IdentityError> {
        let user_id = single(headers, &headers::USER_ID)?;
        let credential = single(headers, &headers::IDENTITY_CREDENTIAL)?;
        let (user_id, credential) = match (user_id, credential) {
            (None, None) => return Ok(None),
            (Some(_), None) => return Err(IdentityError::MissingCredential),
            (None, Some(_)) => return Err(IdentityError::MissingUserId),
            (Some(user_id), Some(credential)) => (user_id, credential),
        };
        let credential = parse_credential(credential).ok_or(IdentityError::Malformed)?;
        let (key_id, key) = self
            .ring
            .key(credential.key_id)
            .ok_or(IdentityError::UnknownKey)?;
        if (now - credential.timestamp).abs() > self.max_skew_secs {
            return Err(IdentityError::Stale);
        }
        let user_id = user_id
            .to_str()
            .ok()
            .and_then(|raw| UserId::from_encoded(raw).ok())
            .ok_or(IdentityError::InvalidUserId)?;
        let message = canonical_string(
            method,
            path_and_query,
            &user_id,
            credential.timestamp,
            key_id,
        );
        // aws-lc-rs compares tags in constant time.
        hmac::verify(key, message.as_bytes(), &credential.signature)
            .map_err(|_| IdentityError::BadSignature)?;
        Ok(Some(user_id))
    }
}

/// The header's only value; a repeated identity header is refused rather than guessed at.
fn single<'a>(
    headers: &'a HeaderMap,
    name: &http::HeaderName,
) -> Result<Option<&'a HeaderValue>, IdentityError> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(IdentityError::DuplicateHeader);
    }
    Ok(first)
}

fn parse_credential(value: &HeaderValue) -> Option<Credential<'_>> {
    let mut fields = value.to_str().ok()?.split(';');
    if fields.next()? != CREDENTIAL_VERSION {
        return None;
    }
    let key_id = fields.next()?.strip_prefix("kid=")?;
    let timestamp = fields.next()?.strip_prefix("ts=")?;
    let signature = fields.next()?.strip_prefix("sig=")?;
    if fields.next().is_some() || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Credential {
        key_id,
        timestamp: timestamp.parse().ok()?,
        signature: URL_SAFE_NO_PAD.decode(signature).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Signer;

    const NOW: i64 = 1_764_000_000;

    fn ring(spec: &str) -> KeyRing {
        spec.parse().unwrap()
    }

    fn signed(signer_spec: &str, method: Method, path: &str, user: &str, ts: i64) -> HeaderMap {
        let mut headers = HeaderMap::new();
        Signer::new(&ring(signer_spec))
            .sign(&method, path, &UserId::parse(user).unwrap(), ts)
            .insert_into(&mut headers);
        headers
    }

    const GW: &str = "gw:gateway-secret-gateway-secret-123";
    const SVC: &str = "svc:service-secret-service-secret-123";

    fn verifier() -> Verifier {
        Verifier::new(ring(&format!("{GW},{SVC}")), 30)
    }

    #[test]
    fn accepts_a_fresh_credential_from_any_key_in_the_ring() {
        for key in [GW, SVC] {
            let headers = signed(key, Method::GET, "/api/u1/tasks?limit=5", "u1", NOW);
            let user = verifier()
                .verify(&Method::GET, "/api/u1/tasks?limit=5", &headers, NOW + 29)
                .unwrap();
            assert_eq!(user.unwrap().as_str(), "u1");
        }
    }

    #[test]
    fn no_identity_headers_is_anonymous() {
        let result = verifier().verify(&Method::GET, "/", &HeaderMap::new(), NOW);
        assert_eq!(result, Ok(None));
    }

    #[test]
    fn refuses_tampering_staleness_and_unknown_keys() {
        let v = verifier();
        let headers = signed(GW, Method::GET, "/api/u1/tasks", "u1", NOW);
        let check = |method: Method, path: &str, headers: &HeaderMap, now: i64| {
            v.verify(&method, path, headers, now).unwrap_err()
        };
        assert_eq!(
            check(Method::DELETE, "/api/u1/tasks", &headers, NOW),
            IdentityError::BadSignature
        );
        assert_eq!(
            check(Method::GET, "/api/u2/tasks", &headers, NOW),
            IdentityError::BadSignature
        );
        assert_eq!(
            check(Method::GET, "/api/u1/tasks", &headers, NOW + 31),
            IdentityError::Stale
        );
        assert_eq!(
            check(Method::GET, "/api/u1/tasks", &headers, NOW - 31),
            IdentityError::Stale
        );

        let mut other_user = headers.clone();
        other_user.insert(headers::USER_ID, HeaderValue::from_static("u2"));
        assert_eq!(
            check(Method::GET, "/api/u1/tasks", &other_user, NOW),
            IdentityError::BadSignature
        );

        let unknown = signed(
            "old:old-secret-old-secret-old-secret-1",
            Method::GET,
            "/",
            "u1",
            NOW,
        );
        assert_eq!(
            check(Method::GET, "/", &unknown, NOW),
            IdentityError::UnknownKey
        );
    }

    #[test]
    fn refuses_half_and_doubled_identities() {
        let v = verifier();
        let mut only_user = HeaderMap::new();
        only_user.insert(headers::USER_ID, HeaderValue::from_static("u1"));
        assert_eq!(
            v.verify(&Method::GET, "/", &only_user, NOW),
            Err(IdentityError::MissingCredential)
        );

        let mut headers = signed(GW, Method::GET, "/", "u1", NOW);
        headers.remove(headers::USER_ID);
        assert_eq!(
            v.verify(&Method::GET, "/", &headers, NOW),
            Err(IdentityError::MissingUserId)
        );

        let mut doubled = signed(GW, Method::GET, "/", "u1", NOW);
        doubled.append(headers::USER_ID, HeaderValue::from_static("u2"));
        assert_eq!(
            v.verify(&Method::GET, "/", &doubled, NOW),
            Err(IdentityError::DuplicateHeader)
        );
    }

    #[test]
    fn refuses_malformed_credentials() {
        for bad in [
            "",
            "v2;kid=gw;ts=1;sig=AA",
            "v1;kid=gw;ts=-1;sig=AA",
            "v1;kid=gw;ts=1",
            "v1;kid=gw;ts=1;sig=!!",
            "v1;kid=gw;ts=1;sig=AA;x=1",
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(headers::USER_ID, HeaderValue::from_static("u1"));
            headers.insert(
                headers::IDENTITY_CREDENTIAL,
                HeaderValue::from_str(bad).unwrap(),
            );
            assert_eq!(
                verifier().verify(&Method::GET, "/", &headers, NOW),
                Err(IdentityError::Malformed),
                "{bad:?}"
            );
        }
    }
}
