//! The parsers of bytes a client or an upstream controls, reachable from the fuzz targets in
//! `fuzz/` (cargo feature `fuzzing`): the lean engine's request and response heads and its
//! chunked decoder, and the bearer token, JWS header and claims readers. Re-exports only, so
//! what is fuzzed is exactly what runs.
//!
//! Not for: anything else. Without the feature this module does not exist.

pub use crate::auth::fuzzing::*;
pub use crate::auth::{Algorithm, AuthError};
pub use crate::http1::fuzzing::*;
pub use crate::proxy::Forwarding;
pub use crate::request::{ClientAddr, ClientHead, TrustedProxies};
