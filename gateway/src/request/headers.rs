//! The header rules both directions share: which headers are hop-by-hop, which response
//! headers the gateway alone decides, how a list-valued header splits, what a valid `Host`
//! is, and the client's address as `X-Forwarded-For` wants it. What a request takes upstream
//! is `forwarding.rs`.

use std::net::{IpAddr, SocketAddr};

use http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode, Version};
use proto_shared::headers::{length_mask, may_have_length};

use super::ClientHead;

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
    const LENGTHS: u64 = length_mask(&HOP_BY_HOP);
    may_have_length(LENGTHS, name.len())
        && HOP_BY_HOP
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

    /// The client's IP address as a header value.
    pub fn forwarded_for(&self) -> &HeaderValue {
        &self.forwarded_for
    }
}

/// Whether the header line `name` of an upstream's answer reaches the client: the one rule
/// both engines apply to every answer. Hop-by-hop headers go, and so do those the gateway
/// alone decides ([`is_gateway_response_header`]) and those the answer's `Connection` header
/// names (`named_by_connection`), except a `Content-Length` ([`connection_may_drop`]).
/// `unframed_length`: the answer's `Content-Length` frames no body the client gets, because
/// chunked framing overrides it (RFC 9112 §6.3: a stale length passed on would cut the body
/// short or hang the client) or the status has no body to measure (204, RFC 9110 §8.6).
pub fn relays_response_header(
    name: &[u8],
    unframed_length: bool,
    named_by_connection: impl FnOnce(&[u8]) -> bool,
) -> bool {
    !(is_hop_by_hop(name)
        || is_gateway_response_header(name)
        || (unframed_length && name.eq_ignore_ascii_case(b"content-length"))
        || (connection_may_drop(name) && named_by_connection(name)))
}

/// Applies [`relays_response_header`] to an answer hyper parsed into `headers`.
pub fn prepare_response(status: StatusCode, headers: &mut HeaderMap) {
    let unframed_length = headers.contains_key(header::TRANSFER_ENCODING)
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let named: Vec<&[u8]> = headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|value| list_items(value.as_bytes()))
        .collect();
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            let name = name.as_str().as_bytes();
            !relays_response_header(name, unframed_length, |name| {
                named.iter().any(|item| item.eq_ignore_ascii_case(name))
            })
        })
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
}

/// Whether a message's `Connection` header may name `name` as hop-by-hop, and so drop it:
/// any header but `Content-Length`, which frames the body it travels with. RFC 9110 §7.6.1
/// forbids naming it there; a message that does keeps its length, in both directions, or the
/// body would be read as the next message (request smuggling, or answers run together).
pub fn connection_may_drop(name: &[u8]) -> bool {
    !name.eq_ignore_ascii_case(header::CONTENT_LENGTH.as_str().as_bytes())
}

/// A `Content-Length` value: ASCII digits only (no sign, no spaces, no list), as RFC 9110
/// §8.6 allows, and small enough for a u64 (at most 19 digits, so no value that a reader with
/// a wider or a wrapping integer would take for another number).
pub fn decimal_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// Holds an upstream answer hyper's client read to the rules the lean engine reads one by
/// (`http1/head/response.rs`), so both engines relay or refuse the same answers. False for
/// an answer to refuse with 502: a 101 (the gateway never asks for an upgrade), a
/// `Transfer-Encoding` other than plain `chunked` (hyper would pass on a body still encoded,
/// or read to the close), or `Content-Length` lines that are not one plain number
/// ([`decimal_length`]) repeated. Otherwise one `Content-Length` line, the number, stays, on
/// answers that may carry a body (not on a 204 or a 304, as the lean engine does).
pub fn settle_response_framing(status: StatusCode, headers: &mut HeaderMap) -> bool {
    if status == StatusCode::SWITCHING_PROTOCOLS {
        return false;
    }
    let mut codings = headers.get_all(header::TRANSFER_ENCODING).iter();
    match (codings.next(), codings.next()) {
        (None, _) => {}
        (Some(coding), None)
            if coding
                .as_bytes()
                .trim_ascii()
                .eq_ignore_ascii_case(b"chunked") => {}
        _ => return false,
    }
    let mut length = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        match decimal_length(value.as_bytes()) {
            Some(declared) if length.is_none_or(|known| known == declared) => {
                length = Some(declared);
            }
            _ => return false,
        }
    }
    if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        headers.remove(header::CONTENT_LENGTH);
    } else if let Some(length) = length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    true
}

/// The items of a comma-separated header value, trimmed; empty ones skipped.
pub fn list_items(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&byte| byte == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|item| !item.is_empty())
}

/// The most bytes a request's `Connection` header lines may hold in all. On the way upstream
/// each header line is checked against every option they list (a header named there is
/// dropped), so their length multiplies the work per line: a head of a hundred lines with a
/// `Connection` header of thousands of options would cost milliseconds where a request costs
/// microseconds. Real clients list one to three short options (`keep-alive`, `Upgrade`, `TE`).
pub const MAX_CONNECTION_BYTES: usize = 256;

/// Whether `head`'s `Connection` lines hold more than [`MAX_CONNECTION_BYTES`] in all.
pub fn connection_too_long(head: &impl ClientHead) -> bool {
    head.values(header::CONNECTION)
        .map(<[u8]>::len)
        .sum::<usize>()
        > MAX_CONNECTION_BYTES
}

/// Whether `head` names its host as RFC 9112 §3.2 requires: an HTTP/1.1 request has exactly one
/// `Host`, and that value, or an HTTP/2 request's `:authority`, is a host and an optional port
/// (empty is allowed), with no user info, path or anything else. Other requests are refused
/// (400), so the `X-Forwarded-Host` an upstream gets is a host and nothing it could read as
/// more.
pub fn has_valid_host(head: &impl ClientHead) -> bool {
    let mut lines = head.values(header::HOST);
    let host = match (lines.next(), lines.next()) {
        (_, Some(_)) => return false,
        (Some(line), None) => Some(line),
        (None, None) if head.version() == Version::HTTP_11 => return false,
        (None, None) => head.host(),
    };
    let valid = |host: &[u8]| host.iter().all(|&byte| HOST_BYTES[usize::from(byte)]);
    // An absolute-form target's authority, which replaces `Host`, is held to the same rule.
    host.is_none_or(valid) && head.host().is_none_or(valid)
}

/// The bytes a host and port may hold: reg-name, IPv4 and IP-literal characters (RFC 3986
/// §3.2.2) and the port's colon. A table, as this runs on every request.
static HOST_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = (byte as u8).is_ascii_alphanumeric();
        byte += 1;
    }
    let others = b"-._~!$&'()*+,;=%:[]";
    let mut i = 0;
    while i < others.len() {
        table[others[i] as usize] = true;
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;
    use http::{request, Request};

    fn head(version: Version, uri: &str, hosts: &[&str]) -> request::Parts {
        let mut request = Request::builder().version(version).uri(uri);
        for host in hosts {
            request = request.header(header::HOST, *host);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn a_host_is_a_host_and_an_optional_port_and_nothing_more() {
        let http11 = |hosts: &[&str]| has_valid_host(&head(Version::HTTP_11, "/x", hosts));
        for valid in ["gw", "gw.example:8080", "127.0.0.1:80", "[::1]:8080", ""] {
            assert!(http11(&[valid]), "{valid:?} refused");
        }
        for invalid in ["victim@gw", "gw/api/victim", "gw\\x", "gw?x", "gw#x", "g w"] {
            assert!(!http11(&[invalid]), "{invalid:?} accepted");
        }
        assert!(!http11(&[]), "HTTP/1.1 without Host");
        assert!(!http11(&["gw", "gw"]), "two Host lines");
        assert!(has_valid_host(&head(Version::HTTP_10, "/x", &[])));
        assert!(has_valid_host(&head(
            Version::HTTP_2,
            "http://gw:8080/x",
            &[]
        )));
        assert!(!has_valid_host(&head(
            Version::HTTP_2,
            "http://u@gw/x",
            &[]
        )));
    }
}
