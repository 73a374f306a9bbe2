//! Token verification and the JWKS cache, driven through `Authenticator` against the fake
//! issuer over real sockets.

#[path = "../support/mod.rs"]
mod support;

mod algorithms;
mod claims;
mod helpers;
mod hostile;
mod jwks;
mod smoke;
mod token_cache;
mod unknown_kid;
