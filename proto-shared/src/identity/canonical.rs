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
    format!("{CREDENTIAL_VERSION}\n{method}\n{path_and_query}\n{user_id}\n{timestamp}\n{key_id}")
}
