//! Header surgery on the way through, in the order that makes spoofing impossible: strip every
//! identity header the client sent, then hop-by-hop headers (including those its `Connection`
//! header names), then set the gateway's own. The signed identity is inserted last, by
//! `proxy.rs`, so nothing stripped here can ever remove it.

use std::net::IpAddr;

use http::{header, HeaderMap, HeaderName, HeaderValue};
use proto_shared::{headers::is_identity_header, RequestId};

/// Hop-by-hop headers (RFC 9110 §7.6.1 and the customary extras): they describe one
/// connection and never travel past a proxy.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
];

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const HTTP: HeaderValue = HeaderValue::from_static("http");

/// What the request headers need besides themselves.
#[derive(Debug)]
pub struct RequestFacts<'a> {
    pub client_ip: IpAddr,
    /// `Host`, or the `:authority` of an HTTP/2 request.
    pub original_host: Option<HeaderValue>,
    pub request_id: &'a RequestId,
    /// Whether the client's `Authorization` header travels on.
    pub keep_authorization: bool,
}

/// Rewrites a client's request headers for the upstream, short of the signed identity.
pub fn prepare_request(headers: &mut HeaderMap, facts: RequestFacts<'_>) {
    strip_identity(headers);
    strip_hop_by_hop(headers);
    // The upstream's own authority goes in Host (the client sets it from the URI); the
    // client's travels as X-Forwarded-Host.
    headers.remove(header::HOST);
    headers.remove(header::TRANSFER_ENCODING);
    if !facts.keep_authorization {
        headers.remove(header::AUTHORIZATION);
    }
    append_forwarded_for(headers, facts.client_ip);
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

/// Cleans an upstream's response headers: hop-by-hop headers go, and so do CORS headers,
/// which the gateway alone decides (`cors.rs`).
pub fn prepare_response(headers: &mut HeaderMap) {
    strip_hop_by_hop(headers);
    headers.remove(header::TRANSFER_ENCODING);
    let cors: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("access-control-"))
        .cloned()
        .collect();
    for name in cors {
        headers.remove(name);
    }
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
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Appends the client's address to any `X-Forwarded-For` chain already present.
fn append_forwarded_for(headers: &mut HeaderMap, client_ip: IpAddr) {
    let previous: Vec<&str> = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    let value = if previous.is_empty() {
        client_ip.to_string()
    } else {
        format!("{}, {client_ip}", previous.join(", "))
    };
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(X_FORWARDED_FOR, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(request_id: &RequestId) -> RequestFacts<'_> {
        RequestFacts {
            client_ip: "10.0.0.7".parse().unwrap(),
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
        prepare_request(&mut headers, facts(&id));
        assert!(headers.get("x-secret").is_none());
        assert!(headers.get("x_user_id").is_none());
        assert!(headers.get(header::CONNECTION).is_none());
        assert_eq!(headers[X_FORWARDED_PROTO], "http");
        assert_eq!(headers[proto_shared::headers::REQUEST_ID], id.as_str());
        assert_eq!(headers[X_FORWARDED_FOR], "1.2.3.4, 10.0.0.7");
        assert_eq!(headers[X_FORWARDED_HOST], "gw.example");
    }
}
