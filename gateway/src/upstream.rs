//! Where a request may be sent: an upstream origin as configured, how to connect to it and
//! how long that may take, the connections a client connection keeps to it and those a worker
//! parks for its idle client connections (`kept.rs`), and the one rule for sending a lost
//! request again. Both HTTP engines reach upstreams through this.
//!
//! Not for: which upstream a request goes to (`request/route.rs`), nor the bytes of an
//! exchange (`http1/forward.rs`, `proxy/forward.rs`).

mod kept;

use std::{io, time::Duration};

use http::{
    uri::{Authority, Scheme},
    HeaderValue, Method,
};
use tokio::net::TcpStream;

pub use kept::{Connection, Kept, Parked};

/// An upstream origin, `http://host:port`: requests keep their path and query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub scheme: Scheme,
    pub authority: Authority,
}

impl Upstream {
    /// Parses `http://host[:port]` (a trailing `/` is allowed, any other path is not).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let uri: http::Uri = raw
            .trim()
            .parse()
            .map_err(|_| format!("{raw:?} is not a URL"))?;
        if uri.scheme() != Some(&Scheme::HTTP) {
            return Err(format!(
                "{raw:?}: only http:// upstreams are supported (TLS ends before the gateway)"
            ));
        }
        if uri.path_and_query().is_some_and(|pq| pq.as_str() != "/") {
            return Err(format!("{raw:?}: give an origin only, without a path"));
        }
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| format!("{raw:?} has no host"))?;
        Ok(Self {
            scheme: Scheme::HTTP,
            authority,
        })
    }

    /// `Host` for this upstream: `host[:port]`, the port only when it is not 80 (what hyper's
    /// pooled client sends).
    pub fn host_header(&self) -> HeaderValue {
        let authority = &self.authority;
        let value = match authority.port_u16() {
            Some(port) if port != 80 => HeaderValue::from_str(authority.as_str()),
            _ => HeaderValue::from_str(authority.host()),
        };
        value.expect("an authority is a valid header value")
    }

    /// A new TCP connection to this upstream, with Nagle off (small requests and answers
    /// must not wait for more).
    pub async fn connect(&self, timeout: Duration) -> io::Result<TcpStream> {
        let port = self.authority.port_u16().unwrap_or(80);
        let stream =
            tokio::time::timeout(timeout, TcpStream::connect((self.authority.host(), port)))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}

/// How long connecting to an upstream may take: part of the upstream timeout, at most 5 s.
pub fn connect_timeout(upstream_timeout: Duration) -> Duration {
    upstream_timeout.min(Duration::from_secs(5))
}

/// How a request was lost on an upstream connection, with no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lost {
    /// None of it was written: the connection was found closed first.
    Unsent,
    /// It may have been written, and the upstream closed or reset the connection without
    /// answering.
    Unanswered,
}

/// The one rule, for both engines, for sending a lost request once more on a new connection.
/// Only a request lost on a reused connection: that is the race of an upstream closing a
/// connection idle while the request was on its way, and a new connection has no such race.
/// One never sent is always safe to send; one the upstream may have seen only when repeating
/// it changes nothing: an idempotent method with no body (a body may already be consumed).
pub fn may_retry(lost: Lost, reused: bool, method: &Method, bodiless: bool) -> bool {
    reused
        && match lost {
            Lost::Unsent => true,
            Lost::Unanswered => bodiless && method.is_idempotent(),
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_request_lost_on_a_reused_connection_is_sent_again() {
        for lost in [Lost::Unsent, Lost::Unanswered] {
            assert!(!may_retry(lost, false, &Method::GET, true), "{lost:?}");
        }
    }

    #[test]
    fn an_unanswered_request_is_sent_again_only_when_repeating_it_is_harmless() {
        assert!(may_retry(Lost::Unanswered, true, &Method::GET, true));
        assert!(may_retry(Lost::Unanswered, true, &Method::DELETE, true));
        assert!(!may_retry(Lost::Unanswered, true, &Method::POST, true));
        assert!(!may_retry(Lost::Unanswered, true, &Method::PUT, false));
        assert!(may_retry(Lost::Unsent, true, &Method::POST, false));
    }
}
