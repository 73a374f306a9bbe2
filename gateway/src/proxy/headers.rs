//! Header surgery on the way through, in the order that makes spoofing impossible: strip every
//! identity header the client sent, then hop-by-hop headers (including those its `Connection`
//! header names), then set the gateway's own. The signed identity is inserted last, by
//! `proxy.rs`, so nothing stripped here can ever remove it.

use std::net::{IpAddr, SocketAddr};

use http::{header, HeaderMap, HeaderName, HeaderValue};
use proto_shared::{headers::is_identity_header, RequestId};

/// Hop-by-hop headers (RFC 9110 §7.6.1 and the customary extras): they describe one
/// connection and never travel past a proxy.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

/// Whether `name`, in any letter case, is a hop-by-hop header.
pub fn is_hop_by_hop(name: &[u8]) -> bool {
    HOP_BY_HOP
        .iter()
        .any(|hop| name.eq_ignore_ascii_case(hop.as_bytes()))
}

/// Whether `name`, in any letter case, is a response header the gateway alone decides, so an
/// upstream's is dropped: the framing (the gateway frames each answer itself), CORS headers
/// (`cors.rs`) and the request id (the gateway sets its own). Both engines drop these, and
/// hop-by-hop headers, from every upstream answer.
pub fn is_gateway_response_header(name: &[u8]) -> bool {
    const CORS_PREFIX: &[u8] = b"access-control-";
    name.eq_ignore_ascii_case(b"transfer-encoding")
        || name.eq_ignore_ascii_case(proto_shared::headers::REQUEST_ID.as_str().as_bytes())
        || name
            .get(..CORS_PREFIX.len())
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case(CORS_PREFIX))
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const HTTP: HeaderValue = HeaderValue::from_static("http");

/// The client end of a connection, with its address already as an `X-Forwarded-For` value:
/// made once per connection, not per request.
#[derive(Debug, Clone)]
pub struct ClientAddr {
    addr: SocketAddr,
    forwarded_for: HeaderValue,
}

impl ClientAddr {
    /// The client at `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        let forwarded_for = HeaderValue::from_str(&addr.ip().to_string())
            .expect("an IP address is a valid header value");
        Self {
            addr,
            forwarded_for,
        }
    }

    /// The client's address and port.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The client's IP address.
    pub fn ip(&self) -> IpAddr {
        self.addr.ip()
    }
}

/// What the request headers need besides themselves.
#[derive(Debug)]
pub struct RequestFacts<'a> {
    pub client: &'a ClientAddr,
    /// `Host`, or the `:authority` of an HTTP/2 request.
    pub original_host: Option<HeaderValue>,
    pub request_id: &'a RequestId,
    /// Whether the client's `Authorization` header travels on.
    pub keep_authorization: bool,
}

/// Rewrites a client's request headers for the upstream, short of the signed identity.
pub fn prepare_request(headers: &mut HeaderMap, facts: RequestFacts<'_>) {
    // Identity headers, hop-by-hop headers, and: Host, since the upstream's own authority
    // goes there (the client set it from the URI; it travels on as X-Forwarded-Host), and
    // Authorization unless it is to be kept.
    strip(headers, |name| {
        is_identity_header(name.as_str())
            || name == header::HOST
            || name == header::TRANSFER_ENCODING
            || (!facts.keep_authorization && name == header::AUTHORIZATION)
    });
    append_forwarded_for(headers, facts.client);
    headers.insert(X_FORWARDED_PROTO, HTTP);
    match facts.original_host {
        Some(host) => headers.insert(X_FORWARDED_HOST, host),
        None => headers.remove(X_FORWARDED_HOST),
    };
    headers.insert(
        proto_shared::headers::REQUEST_ID,
        facts.request_id.header_value().clone(),
    );
}

/// Cleans an upstream's response headers: hop-by-hop headers go, and so do those the gateway
/// alone decides ([`is_gateway_response_header`]).
pub fn prepare_response(headers: &mut HeaderMap) {
    strip(headers, |name| {
        is_gateway_response_header(name.as_str().as_bytes())
    });
}

/// Removes every header some server could read as an identity, in any case or spelling.
pub fn strip_identity(headers: &mut HeaderMap) {
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| is_identity_header(name.as_str()))
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
}

/// Removes hop-by-hop headers and every header the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    strip(headers, |_| false);
}

/// Removes hop-by-hop headers, those the `Connection` header names, and those `also` picks,
/// in one pass over the names: a request with none of them costs no removal at all.
fn strip(headers: &mut HeaderMap, also: impl Fn(&HeaderName) -> bool) {
    let mut doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| is_hop_by_hop(name.as_str().as_bytes()) || also(name))
        .cloned()
        .collect();
    if doomed.contains(&header::CONNECTION) {
        doomed.extend(
            headers
                .get_all(header::CONNECTION)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .flat_map(|value| value.split(','))
                .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok()),
        );
    }
    for name in doomed {
        headers.remove(name);
    }
}

/// Appends the client's address to any `X-Forwarded-For` chain already present.
fn append_forwarded_for(headers: &mut HeaderMap, client: &ClientAddr) {
    let previous: Vec<&str> = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    if previous.is_empty() {
        headers.insert(X_FORWARDED_FOR, client.forwarded_for.clone());
        return;
    }
    let chain = format!("{}, {}", previous.join(", "), client.ip());
    if let Ok(value) = HeaderValue::from_str(&chain) {
        headers.insert(X_FORWARDED_FOR, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(request_id: &'a RequestId, client: &'a ClientAddr) -> RequestFacts<'a> {
        RequestFacts {
            client,
            original_host: Some(HeaderValue::from_static("gw.example")),
            request_id,
            keep_authorization: false,
        }
    }

    #[test]
    fn connection_cannot_remove_what_the_gateway_sets() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("x-forwarded-proto, x-request-id, x-secret"),
        );
        headers.insert("x-secret", HeaderValue::from_static("s"));
        headers.insert("x_user_id", HeaderValue::from_static("mallory"));
        headers.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4"));
        let id = RequestId::generate();
        let client = ClientAddr::new("10.0.0.7:5000".parse().unwrap());
        prepare_request(&mut headers, facts(&id, &client));
        assert!(headers.get("x-secret").is_none());
        assert!(headers.get("x_user_id").is_none());
        assert!(headers.get(header::CONNECTION).is_none());
        assert_eq!(headers[X_FORWARDED_PROTO], "http");
        assert_eq!(headers[proto_shared::headers::REQUEST_ID], id.as_str());
        assert_eq!(headers[X_FORWARDED_FOR], "1.2.3.4, 10.0.0.7");
        assert_eq!(headers[X_FORWARDED_HOST], "gw.example");
    }
}
