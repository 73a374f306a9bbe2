//! Every header name the gateway and the services agree on. Nothing else in the workspace
//! spells them, so a rename happens here or nowhere.

use http::HeaderName;

/// The verified user id, as the gateway (or an in-cluster caller) asserts it.
/// Encoded with [`crate::UserId::to_header_value`]; meaningless without [`IDENTITY_CREDENTIAL`].
pub const USER_ID: HeaderName = HeaderName::from_static("x-user-id");

/// The HMAC credential proving that a key holder sent [`USER_ID`] for this exact request.
/// Format: `v1;kid=<key id>;ts=<unix seconds>;sig=<base64url HMAC-SHA256>`.
pub const IDENTITY_CREDENTIAL: HeaderName = HeaderName::from_static("x-identity-credential");

/// Correlates one request across gateway, service and logs; taken from the client or generated.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Header names, beyond ours, that some proxy or framework treats as an authenticated identity.
/// A client must never be able to smuggle any of them past the gateway.
const FOREIGN_IDENTITY_HEADERS: [&str; 8] = [
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-preferred-username",
    "x-auth-request-user",
    "x-auth-request-email",
    "x-remote-user",
    "remote-user",
    "x-authenticated-user",
];

/// True when a server anywhere could read `name` as an identity header: ours or a well-known
/// foreign one, in any letter case and with `_` in place of `-` (CGI-style servers fold the two).
pub fn is_identity_header(name: impl AsRef<[u8]>) -> bool {
    // Compared in place, byte by byte, and only against names of the same length: this runs
    // for every header of every request.
    let name = name.as_ref();
    let matches = |known: &str| {
        known.len() == name.len()
            && known.bytes().zip(name).all(|(known, &byte)| {
                let folded = match byte {
                    b'_' => b'-',
                    other => other.to_ascii_lowercase(),
                };
                known == folded
            })
    };
    matches(USER_ID.as_str())
        || matches(IDENTITY_CREDENTIAL.as_str())
        || FOREIGN_IDENTITY_HEADERS.iter().any(|known| matches(known))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_headers_match_in_any_case_and_with_underscores() {
        for name in [
            "x-user-id",
            "X-User-Id",
            "X_USER_ID",
            "x_user-id",
            "X-Identity-Credential",
            "x_identity_credential",
            "Remote-User",
            "X-Forwarded-User",
        ] {
            assert!(
                is_identity_header(name),
                "{name} should be an identity header"
            );
        }
    }

    #[test]
    fn ordinary_headers_are_not_identity_headers() {
        for name in [
            "content-type",
            "x-user",
            "x-user-idx",
            "authorization",
            "x-request-id",
        ] {
            assert!(
                !is_identity_header(name),
                "{name} is not an identity header"
            );
        }
    }
}
