//! The one function that builds the string a credential signs ([`canonical_with`]; the
//! verifier reaches it through [`canonical_string`]), so signer and verifier cannot drift
//! apart.

use http::Method;

use super::credential::{BindingText, Credential};
use super::Binding;
use crate::UserId;

/// The string a credential signs, on the stack when it fits (as that of any ordinary request
/// does): signer and verifier build one per request, and it lives only as long as the HMAC.
/// Hand-rolled rather than a `SmallVec`, whose `extend_from_slice` is an insertion and cost
/// more than the allocation it saved.
pub struct Canonical {
    inline: [u8; INLINE],
    len: usize,
    /// The whole string once it outgrows `inline`.
    spilled: Vec<u8>,
}

/// Room for the canonical string of a request target of a few hundred bytes.
const INLINE: usize = 512;

impl std::fmt::Debug for Canonical {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Canonical").field(&self.as_str()).finish()
    }
}

impl Canonical {
    /// The first line: the version, which is never empty.
    fn starting_with(version: &str) -> Self {
        let mut canonical = Self {
            inline: [0; INLINE],
            len: version.len(),
            spilled: Vec::new(),
        };
        canonical.inline[..version.len()].copy_from_slice(version.as_bytes());
        canonical
    }

    /// The bytes the HMAC covers.
    pub fn as_bytes(&self) -> &[u8] {
        if self.spilled.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.spilled
        }
    }

    /// The same as text (it is built from text alone).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).expect("built from string slices")
    }

    /// Appends a line break and `field`.
    fn line(&mut self, field: &[u8]) {
        let end = self.len + 1 + field.len();
        if self.spilled.is_empty() && end <= INLINE {
            self.inline[self.len] = b'\n';
            self.inline[self.len + 1..end].copy_from_slice(field);
            self.len = end;
            return;
        }
        if self.spilled.is_empty() {
            self.spilled.reserve(end + INLINE);
            self.spilled.extend_from_slice(&self.inline[..self.len]);
        }
        self.spilled.push(b'\n');
        self.spilled.extend_from_slice(field);
    }
}

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
pub fn canonical_string(statement: &Statement<'_>, credential: &Credential<'_>) -> Canonical {
    let binding = credential.binding.as_ref().map(Binding::text);
    canonical_with(statement, credential, binding.as_ref())
}

/// [`canonical_string`], with the binding's text already encoded (`binding` is
/// [`Binding::text`] of the credential's binding): a signer writes the same text into the
/// header, and encodes it once for both.
pub(crate) fn canonical_with(
    statement: &Statement<'_>,
    credential: &Credential<'_>,
    binding: Option<&BindingText<'_>>,
) -> Canonical {
    debug_assert_eq!(binding.is_some(), credential.binding.is_some());
    // Built by hand rather than with `format!` (and the number with itoa): this runs for
    // every signed and every verified request, and the formatting machinery costs more than
    // the HMAC.
    let mut digits = itoa::Buffer::new();
    let common = [
        statement.method.as_str().as_bytes(),
        statement.target.as_bytes(),
        statement.user.as_str().as_bytes(),
        digits.format(credential.timestamp).as_bytes(),
        credential.key_id.as_bytes(),
    ];
    let mut canonical = Canonical::starting_with(credential.version().as_str());
    for field in common {
        canonical.line(field);
    }
    if let Some(binding) = binding {
        for field in [
            binding.audience.as_bytes(),
            binding.nonce.as_bytes(),
            binding.body_digest.as_bytes(),
        ] {
            canonical.line(field);
        }
    }
    canonical
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::credential::{Binding, BodyDigest, Nonce};

    /// A target too long for the stack buffer moves the string to the heap whole: the lines
    /// are the same wherever the buffer crosses the boundary.
    #[test]
    fn a_long_target_signs_the_same_lines() {
        let user = UserId::parse("u1").unwrap();
        let credential = Credential {
            key_id: "gw",
            timestamp: 7,
            binding: Some(Binding {
                audience: "tasks-service",
                nonce: Nonce([0; 16]),
                body_digest: BodyDigest::EMPTY,
            }),
            signature: [0; 32],
        };
        for len in [400, 480, 490, 495, 500, 505, 511, 512, 513, 600, 4000] {
            let target = format!("/{}", "a".repeat(len));
            let statement = Statement {
                method: &Method::GET,
                target: &target,
                user: &user,
            };
            let expected = [
                "v2",
                "GET",
                &target,
                "u1",
                "7",
                "gw",
                "tasks-service",
                "AAAAAAAAAAAAAAAAAAAAAA",
                "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU",
            ]
            .join("\n");
            assert_eq!(
                canonical_string(&statement, &credential).as_str(),
                expected,
                "{len}"
            );
        }
    }

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
            canonical_string(&statement, &credential).as_str(),
            "v1\nPATCH\n/api/u1/tasks/7/complete\nu1\n1764000000\ngw"
        );
        credential.binding = Some(Binding {
            audience: "tasks-service",
            nonce: Nonce([0; 16]),
            body_digest: BodyDigest::EMPTY,
        });
        assert_eq!(
            canonical_string(&statement, &credential).as_str(),
            "v2\nPATCH\n/api/u1/tasks/7/complete\nu1\n1764000000\ngw\ntasks-service\n\
             AAAAAAAAAAAAAAAAAAAAAA\n47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
        );
    }
}
