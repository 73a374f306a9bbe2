//! A request head as the client sent it, as the request steps read it. Both HTTP engines
//! implement it: hyper's path over the `http` types hyper parses into, the lean HTTP/1.1
//! engine over the bytes httparse checked, so that engine builds no header map at all. The
//! steps only read a head; what goes upstream is decided by `forwarding.rs`.

use http::{request, HeaderName, Method, Version};

/// What the request steps read of a client's request head.
pub trait ClientHead {
    /// The method, as sent.
    fn method(&self) -> &Method;

    /// The protocol version the request came in.
    fn version(&self) -> Version;

    /// The request target in origin form: path and query.
    fn target(&self) -> &str;

    /// The target's path.
    fn path(&self) -> &str;

    /// Every header line as `(name, value)`, names in the letter case they arrived in.
    fn lines(&self) -> impl Iterator<Item = (&[u8], &[u8])>;

    /// The host the client addressed: `Host`, or the `:authority` of an HTTP/2 request.
    fn host(&self) -> Option<&[u8]> {
        self.value(http::header::HOST)
    }

    /// Every value of the header `name`, in order.
    fn values(&self, name: HeaderName) -> impl Iterator<Item = &[u8]> {
        self.lines()
            .filter(move |(sent, _)| sent.eq_ignore_ascii_case(name.as_str().as_bytes()))
            .map(|(_, value)| value)
    }

    /// The first value of the header `name`.
    fn value(&self, name: HeaderName) -> Option<&[u8]> {
        self.values(name).next()
    }

    /// The head's size as the client sent it (request line and header lines), computed the
    /// same way for HTTP/1 and HTTP/2 so both meet the same limit.
    fn size(&self) -> usize {
        let line = self.method().as_str().len() + self.target().len() + 12;
        self.lines().fold(line, |sum, (name, value)| {
            sum + name.len() + value.len() + 4
        })
    }
}

/// hyper's parsed head, and the lean engine's fallback path.
impl ClientHead for request::Parts {
    fn method(&self) -> &Method {
        &self.method
    }

    fn version(&self) -> Version {
        self.version
    }

    fn target(&self) -> &str {
        self.uri.path_and_query().map_or("/", |pq| pq.as_str())
    }

    fn path(&self) -> &str {
        self.uri.path()
    }

    fn lines(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.headers
            .iter()
            .map(|(name, value)| (name.as_str().as_bytes(), value.as_bytes()))
    }

    /// The target's authority when it has one, else `Host`: an absolute-form target's
    /// authority replaces `Host` (RFC 9112 §3.2.2), as HTTP/2's `:authority` does, so the
    /// host checked and forwarded as `X-Forwarded-Host` is the one the request was routed by.
    fn host(&self) -> Option<&[u8]> {
        self.uri
            .authority()
            .map(|authority| authority.as_str().as_bytes())
            .or_else(|| Some(self.headers.get(http::header::HOST)?.as_bytes()))
    }

    // A map finds a name without a scan.
    fn values(&self, name: HeaderName) -> impl Iterator<Item = &[u8]> {
        self.headers
            .get_all(name)
            .iter()
            .map(|value| value.as_bytes())
    }
}
