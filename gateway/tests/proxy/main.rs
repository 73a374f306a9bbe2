//! The gateway end to end over real sockets: a fake issuer, an echo upstream (or the real
//! tasks-service on PostgreSQL) and a whole gateway started in-process on port 0.

#[path = "../support/mod.rs"]
mod support;

/// The throw-away PostgreSQL cluster tasks-service's own TLS tests use (with a CA of its own),
/// shared by path rather than copied.
#[allow(dead_code)]
#[path = "../../../tasks-service/tests/api/cluster.rs"]
mod cluster;

mod admin;
mod connections;
mod cors;
mod headers;
mod helpers;
mod http1;
mod http2;
mod identity;
mod limits;
mod logs;
mod raw;
mod revocation;
mod rotation;
mod routes;
mod shutdown;
mod startup;
mod streaming;
mod tasks;
mod tokens;
mod upstream;
mod upstream_errors;
mod workers;
