//! What the gateway, tasks-service and in-cluster callers must agree on, written once.
//!
//! - [`headers`]: every header name the parts of the system exchange.
//! - [`user_id`]: the one validated user id type, and how it travels in paths and headers.
//! - [`identity`]: the gateway credential: key ring, canonical string, signing and verifying.
//! - [`task`]: the task API's wire types.
//! - [`error_body`]: FastAPI-shaped `{"detail": ...}` error bodies.
//! - [`request_id`]: request correlation.
//! - [`telemetry`]: the log format setting and `error_chain`; the log set-up itself,
//!   `telemetry::init`, with the `telemetry` feature.
//! - `client` (feature `client`): a typed async client for services inside the cluster.
//! - `shutdown` (feature `shutdown`): the stop signal, alike in both binaries.
//! - `cli` (feature `cli`): command-line parsing that reports a missing setting by its
//!   variable.
//! - `postgres_tls` (feature `postgres-tls`): PostgreSQL URLs and TLS to the server, alike
//!   for tasks-service's pool and the gateway's revocation feed.
//!
//! No feature is on by default: what signs or verifies credentials, or reads the wire types,
//! builds without reqwest, tracing-subscriber, clap or tokio. The binaries turn on `cli`,
//! `shutdown` and `telemetry`; in-cluster callers turn on `client`.

#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "client")]
pub mod client;
pub mod error_body;
pub mod headers;
pub mod identity;
#[cfg(feature = "postgres-tls")]
pub mod postgres_tls;
pub mod request_id;
#[cfg(feature = "shutdown")]
pub mod shutdown;
pub mod task;
pub mod telemetry;
pub mod user_id;

/// The longest Unix socket path either side takes (Linux's `sun_path` holds 108 bytes, the
/// last a NUL): tasks-service's `TASKS_SOCKET` and the gateway's `TASKS_SERVICE_URL=unix:...`
/// are checked against the same bound, so a path one accepts the other does too.
pub const MAX_SOCKET_PATH: usize = 107;

pub use error_body::{Detail, ErrorBody, FieldError};
pub use identity::{
    Audience, BodyDigest, IdentityError, IdentityHeaders, KeyId, KeyRing, KeyRingError, Signer,
    Verifier,
};
pub use request_id::RequestId;
pub use task::{CompleteTask, CreateTask, SortOrder, StatusFilter, Task, TaskId, UpdateTask};
pub use user_id::{UserId, UserIdError};
