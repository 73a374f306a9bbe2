//! What the gateway, tasks-service and in-cluster callers must agree on, written once.
//!
//! - [`headers`]: every header name the parts of the system exchange.
//! - [`user_id`]: the one validated user id type, and how it travels in paths and headers.
//! - [`identity`]: the gateway credential: key ring, canonical string, signing and verifying.
//! - [`task`]: the task API's wire types.
//! - [`error_body`]: FastAPI-shaped `{"detail": ...}` error bodies.
//! - [`client`]: a typed async client for services inside the cluster.
//! - [`request_id`], [`telemetry`], [`shutdown`]: request correlation, log set-up and the stop
//!   signal, alike in both binaries.
//! - [`cli`]: command-line parsing that reports a missing setting by its variable.

pub mod cli;
pub mod client;
pub mod error_body;
pub mod headers;
pub mod identity;
pub mod request_id;
pub mod shutdown;
pub mod task;
pub mod telemetry;
pub mod user_id;

pub use error_body::{Detail, ErrorBody, FieldError};
pub use identity::{
    Audience, BodyDigest, IdentityError, IdentityHeaders, KeyId, KeyRing, KeyRingError, Signer,
    Verifier,
};
pub use request_id::RequestId;
pub use task::{CompleteTask, CreateTask, SortOrder, StatusFilter, Task, TaskId, UpdateTask};
pub use user_id::{UserId, UserIdError};
