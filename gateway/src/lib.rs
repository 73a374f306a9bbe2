//! The auth sidecar: verifies Better Auth JWTs and forwards requests with a signed identity.
//!
//! `startup` assembles the parts; `server` accepts connections (`admin` those of the
//! operators' listener); `http1` carries the common HTTP/1.1 case and hyper the rest; `proxy`
//! is the request path both run; `auth` and `jwks` verify tokens; `error` turns every refusal
//! into a response.
//!
//! Below them, the vocabulary they share: `request` (a client's head, its route, the header
//! rules), `upstream` (where requests go), `algorithm` (the signing algorithms), `body`.
//! Modules import only downwards: no two files import each other.

pub mod admin;
pub mod algorithm;
pub mod allocator;
pub mod auth;
pub mod body;
pub mod config;
pub mod connection;
pub mod cors;
pub mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod health;
pub mod http1;
pub mod jwks;
pub mod metrics;
pub mod proxy;
pub mod request;
pub mod revocation;
pub mod server;
pub mod startup;
pub mod upstream;
pub mod upstream_probe;
pub mod workers;

pub use config::{Config, Settings};
pub use startup::Application;
