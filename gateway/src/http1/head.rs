//! Message heads for the lean HTTP/1.1 engine: requests parsed with httparse and read in place
//! (or refused as "not ours" for hyper to judge, `request.rs`),
//! responses parsed with their body framing (`response.rs`), and both written back out as
//! bytes (here).
//!
//! Not for: deciding what a request may do (`proxy.rs`), nor moving bodies (`http1.rs`).

mod request;
mod response;

use http::{header, HeaderMap, HeaderValue, StatusCode};

use crate::{proxy::Forwarding, request::ClientHead};

pub use request::{parse_request, RequestHead};
pub use response::{parse_response, BadResponse, Framing, ResponseHead};

/// As many header lines as hyper accepts by default; more is hyper's to refuse.
const MAX_HEADERS: usize = 100;

/// What a client's buffered bytes hold.
#[derive(Debug)]
pub enum Parsed<T> {
    /// A complete head of `len` bytes.
    Complete(T, usize),
    /// Not yet a complete head: read more.
    Partial,
    /// Not the common case this engine serves (or not valid at all): hyper decides.
    NotOurs,
}

/// Appends the head forwarded to the upstream at `host` to `out`: `METHOD target HTTP/1.1`,
/// `Host`, the client's header lines that `forwarding` lets through, the gateway's own
/// headers and the blank line.
pub fn write_request(
    out: &mut Vec<u8>,
    head: &RequestHead,
    forwarding: &Forwarding,
    host: &HeaderValue,
) {
    out.extend_from_slice(head.method().as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(head.target().as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    write_line(out, header::HOST.as_str().as_bytes(), host.as_bytes());
    for (name, value) in forwarding.forwarded_lines(head) {
        write_line(out, name, value);
    }
    forwarding.own_headers(head, |name, value| {
        write_line(out, name.as_str().as_bytes(), value);
    });
    out.extend_from_slice(b"\r\n");
}

pub(super) fn write_line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends `HTTP/1.1 status reason`, the headers and the blank line to `out`.
pub fn write_response(out: &mut Vec<u8>, status: StatusCode, headers: &HeaderMap) {
    write_status_line(out, status);
    write_headers(out, headers);
}

/// Appends `HTTP/1.1 status reason` to `out`.
pub(super) fn write_status_line(out: &mut Vec<u8>, status: StatusCode) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends the headers and the blank line that ends a head to `out`. Header values are
/// `HeaderValue`s, which cannot hold CR, LF or NUL: nothing written here can split a header
/// or a message.
pub fn write_headers(out: &mut Vec<u8>, headers: &HeaderMap) {
    for (name, value) in headers {
        write_line(out, name.as_str().as_bytes(), value.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// A `Content-Length` value as both engines read it.
fn decimal(value: &[u8]) -> Option<u64> {
    crate::request::decimal_length(value)
}

#[cfg(test)]
mod tests;
