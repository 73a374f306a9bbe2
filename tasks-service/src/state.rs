//! What every layer of the request path shares: the service's state ([`AppState`], handed to
//! filters by [`with_state`]) and the request target exactly as received ([`RequestTarget`]).
//! It sits below the server, the routes and the handlers so that each can name these without
//! importing another; it builds nothing (startup.rs does) and decides nothing.

use std::{convert::Infallible, sync::Arc, time::Duration};

use proto_shared::Verifier;
use warp::Filter;

use crate::{metrics::Metrics, store::Store};

/// What every handler shares. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    pub verifier: Arc<Verifier>,
    pub metrics: Metrics,
    pub max_body_bytes: u64,
    /// How long a connection may take to send a request head (see `server.rs`).
    pub header_read_timeout: Duration,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// How long the service keeps accepting after it is asked to stop.
    pub shutdown_delay: Duration,
}

/// The shared state, for handlers.
pub fn with_state(
    state: AppState,
) -> impl Filter<Extract = (AppState,), Error = Infallible> + Clone {
    warp::any().map(move || state.clone())
}

/// The request target (path and query) exactly as received, which the credential signs.
/// Inserted by `server.rs` before warp sees the request.
#[derive(Debug, Clone)]
pub struct RequestTarget(pub Arc<str>);

impl RequestTarget {
    /// The raw query string, empty if none.
    pub fn query(&self) -> &str {
        self.0.split_once('?').map_or("", |(_, query)| query)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_whatever_follows_the_first_question_mark() {
        assert_eq!(RequestTarget("/a?b=1?c".into()).query(), "b=1?c");
        assert_eq!(RequestTarget("/a".into()).query(), "");
    }
}
