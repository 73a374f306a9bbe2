//! The auth sidecar: verifies Better Auth JWTs and forwards requests with a signed identity.

pub mod auth;
pub mod jwks;
