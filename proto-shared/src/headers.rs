//! Every header name the gateway and the services agree on. Nothing else in the workspace
//! spells them, so a rename happens here or nowhere.

use http::HeaderName;

/// The verified user id, as the gateway (or an in-cluster caller) asserts it.
/// Encoded with [`crate::UserId::to_header_value`]; meaningless without [`IDENTITY_CREDENTIAL`].
pub const USER_ID: HeaderName = HeaderName::from_static(USER_ID_NAME);
const USER_ID_NAME: &str = "x-user-id";

/// The HMAC credential proving that a key holder sent [`USER_ID`] for this exact request.
/// Format (`specs/identity.md`): `v2;kid=..;ts=..;aud=..;nonce=..;bd=..;sig=..`, an HMAC-SHA256
/// over method, target, user, time, key, audience, nonce and body digest.
pub const IDENTITY_CREDENTIAL: HeaderName = HeaderName::from_static(IDENTITY_CREDENTIAL_NAME);
const IDENTITY_CREDENTIAL_NAME: &str = "x-identity-credential";

/// Correlates one request across gateway, service and logs; taken from the client or generated.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// On a list answer: how many of the user's tasks match the filter on all pages (the header
/// react-admin's json-server provider and many table components read).
pub const TOTAL_COUNT: HeaderName = HeaderName::from_static("x-total-count");

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

/// Every identity header name, ours first.
const IDENTITY_HEADERS: [&str; 10] = {
    let mut all = [USER_ID_NAME; 10];
    all[1] = IDENTITY_CREDENTIAL_NAME;
    let mut i = 0;
    while i < FOREIGN_IDENTITY_HEADERS.len() {
        all[i + 2] = FOREIGN_IDENTITY_HEADERS[i];
        i += 1;
    }
    all
};

/// Bit `n` is set when some name in `names` is `n` bytes long (names under 64 bytes).
pub const fn length_mask(names: &[&str]) -> u64 {
    let mut mask = 0;
    let mut i = 0;
    while i < names.len() {
        assert!(names[i].len() < 64, "a name of 64 bytes or more");
        mask |= 1 << names[i].len();
        i += 1;
    }
    mask
}

/// Whether some name `length_mask` made `mask` of could be `len` bytes long: a test of one
/// instruction or two that most header names fail, before any comparison.
pub const fn may_have_length(mask: u64, len: usize) -> bool {
    len < 64 && mask & (1 << len) != 0
}

/// True when a server anywhere could read `name` as an identity header: ours or a well-known
/// foreign one, in any letter case and with `_` in place of `-` (CGI-style servers fold the two).
pub fn is_identity_header(name: impl AsRef<[u8]>) -> bool {
    const LENGTHS: u64 = length_mask(&IDENTITY_HEADERS);
    // Compared in place, byte by byte, and only against names of the same length: this runs
    // for every header of every request.
    let name = name.as_ref();
    if !may_have_length(LENGTHS, name.len()) {
        return false;
    }
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
    IDENTITY_HEADERS.iter().any(|known| matches(known))
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
