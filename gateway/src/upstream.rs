//! Where a request may be sent: an upstream origin as configured (a TCP host and port, or a
//! Unix domain socket shared with a sidecar's neighbour), how to connect to it and how long
//! that may take, the connections a client connection keeps to it and those a worker
//! parks for its idle client connections (`kept.rs`), and the one rule for sending a lost
//! request again. Both HTTP engines reach upstreams through this.
//!
//! Not for: which upstream a request goes to (`request/route.rs`), nor the bytes of an
//! exchange (`http1/forward.rs`, `proxy/forward.rs`).

mod kept;

use std::{io, path::Path, sync::Arc, time::Duration};

use http::{
    uri::{Authority, Scheme},
    HeaderValue, Method,
};
use proto_shared::MAX_SOCKET_PATH;
use tokio::net::{TcpStream, UnixStream};
use tokio_util::either::Either;

pub use kept::{Connection, Kept, Parked};

/// The prefix of an upstream reached over a Unix domain socket: `unix:/run/tasks/http.sock`.
pub const UNIX_PREFIX: &str = "unix:";

/// A connection's bytes to an upstream: TCP, or a Unix domain socket.
pub type Stream = Either<TcpStream, UnixStream>;

/// An upstream origin, `http://host:port` or `unix:/path/to/socket`: requests keep their
/// path and query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub scheme: Scheme,
    /// What `Host` names: the configured host and port, or `localhost` for a Unix socket.
    pub authority: Authority,
    /// The Unix domain socket connections go to instead of `authority`, when configured so.
    /// A sidecar and the service it guards share a pod: over a socket in a volume they both
    /// mount, a request skips the kernel's TCP path twice (specs/research.md measures it),
    /// and only processes that can open the file reach the service that way.
    pub socket: Option<Arc<Path>>,
}

impl Upstream {
    /// Parses `http://host[:port]` (a trailing `/` is allowed, any other path is not), or
    /// `unix:` and an absolute socket path.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if let Some(path) = raw.trim().strip_prefix(UNIX_PREFIX) {
            return Self::unix(raw, path);
        }
        // Checked first, so that no message below echoes a password: a user or password would
        // go nowhere but into `Host` (the gateway logs in to no upstream) and into logs.
        // Anywhere, not only in the authority as a parser reads it: a password holding `/`
        // would end that early and be echoed below as part of a path. An origin has no `@`.
        if raw.contains('@') {
            return Err(
                "carries a user or password (user:password@), which an upstream URL \
                        cannot use; give http://host:port"
                    .into(),
            );
        }
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
            socket: None,
        })
    }

    fn unix(raw: &str, path: &str) -> Result<Self, String> {
        if !path.starts_with('/') {
            return Err(format!(
                "{raw:?}: give the socket's absolute path, as in unix:/run/tasks/http.sock"
            ));
        }
        if path.len() > MAX_SOCKET_PATH || path.contains('\0') {
            return Err(format!(
                "{raw:?}: a socket path has at most {MAX_SOCKET_PATH} bytes and no NUL"
            ));
        }
        Ok(Self {
            scheme: Scheme::HTTP,
            authority: Authority::from_static("localhost"),
            socket: Some(Path::new(path).into()),
        })
    }

    /// Where connections go, for logs: the socket's path or the host and port.
    pub fn address(&self) -> String {
        match &self.socket {
            Some(path) => format!("{UNIX_PREFIX}{}", path.display()),
            None => format!("{}://{}", self.scheme, self.authority),
        }
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

    /// A new connection to this upstream: over its Unix socket, else over TCP with Nagle off
    /// (small requests and answers must not wait for more).
    pub async fn connect(&self, timeout: Duration) -> io::Result<Stream> {
        let connecting = async {
            if let Some(path) = &self.socket {
                return Ok(Either::Right(UnixStream::connect(path).await?));
            }
            let port = self.authority.port_u16().unwrap_or(80);
            // An IPv6 literal keeps its brackets in the authority's host, which no resolver
            // reads as an address.
            let host = self.authority.host();
            let host = host
                .strip_prefix('[')
                .and_then(|literal| literal.strip_suffix(']'))
                .unwrap_or(host);
            let stream = TcpStream::connect((host, port)).await?;
            stream.set_nodelay(true)?;
            Ok(Either::Left(stream))
        };
        tokio::time::timeout(timeout, connecting)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))?
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

    /// `http://[::1]:port` (an IPv6-only cluster addressing a pod by IP) connects: the
    /// authority's host is `[::1]`, brackets and all, which was looked up as a name.
    #[tokio::test]
    async fn an_ipv6_literal_upstream_is_reached() {
        let listener = tokio::net::TcpListener::bind("[::1]:0")
            .await
            .expect("IPv6 loopback (::1) is needed by this test: enable IPv6 on lo");
        let port = listener.local_addr().unwrap().port();
        let upstream = Upstream::parse(&format!("http://[::1]:{port}")).unwrap();
        assert_eq!(upstream.host_header(), format!("[::1]:{port}"));
        let connected = upstream.connect(Duration::from_secs(5)).await;
        assert!(connected.is_ok(), "{:?}", connected.err());
        listener.accept().await.unwrap();
    }

    #[test]
    fn a_unix_socket_upstream_names_localhost_and_its_path() {
        let upstream = Upstream::parse(" unix:/run/tasks/http.sock ").unwrap();
        assert_eq!(
            upstream.socket.as_deref(),
            Some(Path::new("/run/tasks/http.sock"))
        );
        assert_eq!(upstream.host_header(), "localhost");
        assert_eq!(upstream.address(), "unix:/run/tasks/http.sock");
        assert_eq!(
            Upstream::parse("http://a:1").unwrap().address(),
            "http://a:1"
        );
    }

    #[test]
    fn a_unix_socket_path_must_be_absolute_and_fit() {
        for raw in ["unix:", "unix:run/http.sock", "unix:./http.sock"] {
            let error = Upstream::parse(raw).unwrap_err();
            assert!(error.contains("absolute path"), "{raw}: {error}");
        }
        let long = format!("unix:/{}", "a".repeat(MAX_SOCKET_PATH));
        assert!(Upstream::parse(&long)
            .unwrap_err()
            .contains("at most 107 bytes"));
        assert!(Upstream::parse("unix:/run/a\0b").is_err());
        let longest = format!("unix:/{}", "a".repeat(MAX_SOCKET_PATH - 1));
        assert!(Upstream::parse(&longest).is_ok());
    }

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
