//! The one function that builds the string a credential signs. Signer and verifier both call
//! it, so they cannot drift apart.

use http::Method;

use super::credential::{digest_text, nonce_text, Credential};
use crate::UserId;

/// What a credential vouches for: one request, as the verifier will receive it.
#[derive(Debug, Clone, Copy)]
pub struct Statement<'a> {
    pub method: &'a Method,
    /// The request target exactly as sent on the wire, e.g. `/api/u1/tasks?status=pending`.
    pub target: &'a str,
    pub user: &'a UserId,
}

/// The lines, joined by `\n`:
///
/// - v1: `v1`, method, target, user id, timestamp, key id;
/// - v2: the same with `v2`, then audience, nonce and body digest (as written in the header).
///
/// No field can hold a newline (methods and request targets cannot; user ids, key ids and
/// audiences are validated; the rest is digits and base64url), so the string is unambiguous.
pub fn canonical_string(statement: &Statement<'_>, credential: &Credential<'_>) -> String {
    // Built by hand rather than with `format!` (and the number with itoa): this runs for
    // every signed and every verified request, and the formatting machinery costs more than
    // the HMAC.
    let mut digits = itoa::Buffer::new();
    let common = [
        credential.version().as_str(),
        statement.method.as_str(),
        statement.target,
        statement.user.as_str(),
        digits.format(credential.timestamp),
        credential.key_id,
    ];
    let mut canonical =
        String::with_capacity(common.iter().map(|f| f.len() + 1).sum::<usize>() + 2 * 64 + 24);
    for (index, field) in common.iter().enumerate() {
        if index > 0 {
            canonical.push('\n');
        }
        canonical.push_str(field);
    }
    if let Some(binding) = &credential.binding {
        for field in [
            binding.audience,
            nonce_text(&binding.nonce).as_str(),
            digest_text(&binding.body_digest).as_str(),
        ] {
            canonical.push('\n');
            canonical.push_str(field);
        }
    }
    canonical
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::credential::{Binding, BodyDigest, Nonce};

    #[test]
    fn each_version_signs_its_own_lines() {
        let user = UserId::parse("u1").unwrap();
        let statement = Statement {
            method: &Method::PATCH,
            target: "/api/u1/tasks/7/complete",
            user: &user,
        };
        let mut credential = Credential {
            key_id: "gw",
            timestamp: 1_764_000_000,
            binding: None,
            signature: [0; 32],
        };
        assert_eq!(
            canonical_string(&statement, &credential),
            "v1\nPATCH\n/api/u1/tasks/7/complete\nu1\n1764000000\ngw"
        );
        credential.binding = Some(Binding {
            audience: "tasks-service",
            nonce: Nonce([0; 16]),
            body_digest: BodyDigest::EMPTY,
        });
        assert_eq!(
            canonical_string(&statement, &credential),
            "v2\nPATCH\n/api/u1/tasks/7/complete\nu1\n1764000000\ngw\ntasks-service\n\
             AAAAAAAAAAAAAAAAAAAAAA\n47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
        );
    }
}
