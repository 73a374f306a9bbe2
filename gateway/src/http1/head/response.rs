//! Response heads: an upstream's answer, parsed with its body framing, and the part of it the
//! client may see written out at once.

use std::mem::MaybeUninit;

use http::{Method, StatusCode, Version};

use super::{decimal, write_status_line, Parsed, MAX_HEADERS};
use crate::request::{list_items, relays_response_header};

/// How an upstream's response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (HEAD, 204, 304).
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the upstream closes the connection.
    UntilClose,
}

/// An upstream's response head, as far as the engine needs it: its status line and header
/// lines have already been written out for the client (see [`parse_response`]).
#[derive(Debug)]
pub struct ResponseHead {
    pub status: StatusCode,
    pub framing: Framing,
    /// The upstream will close (or must not be reused) after this response.
    pub close: bool,
    /// The upstream sent a `Date`, which the client then gets.
    pub dated: bool,
}

/// Why an upstream's head is refused.
#[derive(Debug, thiserror::Error)]
pub enum BadResponse {
    #[error("unparsable response head: {0}")]
    Parse(#[from] httparse::Error),
    #[error("the response head is not HTTP/1.1 or 1.0")]
    Version,
    #[error("invalid status in the response head")]
    Status,
    #[error("ambiguous or invalid response body framing")]
    Framing,
    #[error("a 101 Switching Protocols answer to a request that asked for no upgrade")]
    Switching,
}

/// Parses an upstream's response head to `method`. An informational (1xx) head is
/// `Complete` with status 1xx: the caller skips it and reads on. For a final head, `out`
/// gets the client's status line and the upstream's header lines the client may see: all but
/// hop-by-hop headers, those its `Connection` header names and those the gateway decides
/// (`request::is_gateway_response_header`); `Content-Length` goes only where it frames the body
/// (not when chunked framing overrides it, not on a 204), and no `Connection` can name it
/// away. The lines are copied as they came, names in their letter case as nginx does:
/// httparse accepts exactly the bytes `HeaderName` and `HeaderValue` accept (checked for every
/// byte value when this was written), so nothing goes out that a `HeaderMap` would have
/// refused.
pub fn parse_response(
    buf: &[u8],
    method: &Method,
    out: &mut Vec<u8>,
) -> Result<Parsed<ResponseHead>, BadResponse> {
    // Uninitialised, as for a request (`request.rs`); the default configuration is the one
    // `Response::parse` uses.
    let mut lines = [MaybeUninit::uninit(); MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        buf,
        &mut lines,
    )? {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => return Ok(Parsed::Partial),
    };
    let version = match response.version {
        Some(1) => Version::HTTP_11,
        Some(0) => Version::HTTP_10,
        _ => return Err(BadResponse::Version),
    };
    let status = response
        .code
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or(BadResponse::Status)?;
    if status == StatusCode::SWITCHING_PROTOCOLS {
        return Err(BadResponse::Switching);
    }
    let mut length = None;
    let mut chunked = false;
    let mut close = version == Version::HTTP_10;
    let mut dated = false;
    let mut connection = false;
    for line in response.headers.iter() {
        let name = line.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            let declared = decimal(line.value).ok_or(BadResponse::Framing)?;
            if length.is_some_and(|known| known != declared) {
                return Err(BadResponse::Framing);
            }
            length = Some(declared);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // Only the plain `chunked` coding is relayed; anything layered under it would
            // need decoding this engine does not do.
            if chunked || !line.value.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                return Err(BadResponse::Framing);
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case(b"connection") {
            connection = true;
            close |= list_items(line.value).any(|token| token.eq_ignore_ascii_case(b"close"));
        }
    }
    let framing = if status.is_informational()
        || *method == Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        Framing::Empty
    } else if chunked {
        // RFC 9112 §6.3: Transfer-Encoding overrides Content-Length, but a message with both
        // may be an attempt at smuggling, so the connection is not reused.
        close |= length.is_some();
        Framing::Chunked
    } else if let Some(length) = length {
        Framing::Length(length)
    } else {
        close = true;
        Framing::UntilClose
    };
    if !status.is_informational() {
        let headers = &*response.headers;
        // Names the upstream's `Connection` header lists are hop-by-hop for this message.
        let named = |name: &[u8]| {
            connection
                && headers
                    .iter()
                    .filter(|line| line.name.eq_ignore_ascii_case("connection"))
                    .flat_map(|line| list_items(line.value))
                    .any(|token| token.eq_ignore_ascii_case(name))
        };
        // The length goes out with the body it frames, whatever `Connection` names (else the
        // client could not tell where this answer ends and the next begins), once and as the
        // number it parsed to, however many equal lines the upstream wrote; not when chunked
        // framing overrides it, nor on a 204, which has no body to measure (RFC 9110 §8.6),
        // nor on a 304, as hyper's path does (it would only repeat what the cache holds).
        let unframed_length = framing == Framing::Chunked
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED;
        write_status_line(out, status);
        for line in headers {
            let name = line.name.as_bytes();
            // Every length line is left out here: the one that frames the body is written
            // after the others, as its number.
            let length_line = name.eq_ignore_ascii_case(b"content-length");
            if !length_line && relays_response_header(name, unframed_length, named) {
                // Only a `Date` that reaches the client counts (`Connection` may name it).
                dated |= name.eq_ignore_ascii_case(b"date");
                super::write_line(out, name, line.value);
            }
        }
        if let Some(length) = length.filter(|_| !unframed_length) {
            let mut digits = itoa::Buffer::new();
            super::write_line(out, b"content-length", digits.format(length).as_bytes());
        }
    }
    Ok(Parsed::Complete(
        ResponseHead {
            status,
            framing,
            close,
            dated,
        },
        len,
    ))
}
