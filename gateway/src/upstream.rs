//! Where a request may be sent: an upstream origin as configured, how to connect to it, and
//! how long connecting may take. Both HTTP engines and the upstream probe reach upstreams
//! through this.
//!
//! Not for: which upstream a request goes to (`request/route.rs`).

use std::{io, time::Duration};

use http::{
    uri::{Authority, Scheme},
    HeaderValue,
};
use tokio::net::TcpStream;

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
