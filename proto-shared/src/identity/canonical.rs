//! The one function that builds the string a credential signs. Signer and verifier both call
//! it, so they cannot drift apart.

use http::Method;

use super::KeyId;
use crate::UserId;

/// Version tag, first in both the canonical string and the credential header.
pub const CREDENTIAL_VERSION: &str = "v1";

/// `v1\n{METHOD}\n{path?query}\n{user id}\n{unix seconds}\n{key id}`.
///
/// No field can hold a newline (methods and request targets cannot, user ids and key ids are
/// validated), so the string is unambiguous. `path_and_query` is the request target exactly as
/// sent on the wire, e.g. `/api/u1/tasks?status=pending`.
pub fn canonical_string(
    method: &Method,
    path_and_query: &str,
    user_id: &UserId,
    timestamp: i64,
    key_id: &KeyId,
) -> String {
    // Built by hand rather than with `format!` (and the number with itoa): this runs for
    // every signed and every verified request, and the formatting machinery costs more than
    // the HMAC.
    let mut digits = itoa::Buffer::new();
    let fields = [
        CREDENTIAL_VERSION,
        method.as_str(),
        path_and_query,
        user_id.as_str(),
        digits.format(timestamp),
        key_id.as_str(),
    ];
    let mut canonical = String::with_capacity(fields.iter().map(|f| f.len() + 1).sum());
    for (index, field) in fields.iter().enumerate() {
        if index > 0 {
            canonical.push('\n');
        }
        canonical.push_str(field);
    }
    canonical
}
