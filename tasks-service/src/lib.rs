//! tasks-service: the task API (six endpoints) on PostgreSQL, a drop-in replacement for the
//! FastAPI backend Better Auth frontends call. It trusts a user id only when the request
//! carries a valid identity credential (see `proto_shared::identity`), and isolates users
//! twice: every statement is scoped by `user_id`, and row-level security is forced.
//!
//! Reading order: [`startup`] builds it, [`listener`] binds, [`server`] accepts, [`routes`]
//! match, [`handlers`] act through the [`store`]; [`error`] is where every failure becomes a
//! response. [`state`] is the vocabulary they share (the state, the exact request target),
//! below all of them.

pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod handlers;
pub mod health;
pub mod listener;
pub mod metrics;
pub mod migrations;
pub mod routes;
pub mod server;
pub mod startup;
pub mod state;
pub mod store;

pub use config::{Config, Settings};
pub use startup::{Application, StartupError};
pub use state::AppState;
