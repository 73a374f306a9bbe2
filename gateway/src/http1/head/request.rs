//! Request heads: what a client sent, parsed with httparse and read by the request steps in
//! place (`request/client_head.rs`), or refused as "not ours" for hyper to judge.

use std::{mem::MaybeUninit, ops::Range};

use http::{header, uri::PathAndQuery, HeaderName, Method, Version};

use super::{decimal, Parsed, MAX_HEADERS};
use crate::request::{list_items, ClientHead};

/// A client's request head in the subset this engine serves: a copy of its bytes, which the
/// parsed header lines index, so a head costs no allocation per header. Reused from request
/// to request.
pub struct RequestHead {
    bytes: Vec<u8>,
    lines: Vec<Line>,
    /// [`length_bit`] of every header name here: most names the steps look for are absent,
    /// and this tells so without a scan.
    name_lengths: u64,
    method: Method,
    target: PathAndQuery,
    /// The body's length (0 without `Content-Length`).
    pub body_len: u64,
    /// The client asked to close the connection after this exchange.
    pub close: bool,
}

impl std::fmt::Debug for RequestHead {
    // Not the header lines: one of them is usually a bearer token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestHead")
            .field("method", &self.method)
            .field("path", &self.target.path())
            .field("lines", &self.lines.len())
            .field("body_len", &self.body_len)
            .finish_non_exhaustive()
    }
}

/// Where a header line's name and value lie in [`RequestHead::bytes`].
#[derive(Debug, Clone)]
struct Line {
    name: Range<usize>,
    value: Range<usize>,
}

impl Default for RequestHead {
    fn default() -> Self {
        Self {
            // Empty: taking a head out of the connection leaves one of these behind, and
            // its buffers grow once, in the first head parsed into it.
            bytes: Vec::new(),
            lines: Vec::new(),
            name_lengths: 0,
            method: Method::GET,
            target: PathAndQuery::from_static("/"),
            body_len: 0,
            close: false,
        }
    }
}

/// Every header line httparse passes is a valid `http` header: names are tokens and values
/// hold no CR, LF, NUL or other control byte (httparse's tables and `HeaderValue`'s rules are
/// the same), so lines relayed as bytes can neither split a header nor a message.
impl ClientHead for RequestHead {
    fn method(&self) -> &Method {
        &self.method
    }

    /// The engine serves HTTP/1.1 alone (`fill`).
    fn version(&self) -> Version {
        Version::HTTP_11
    }

    fn target(&self) -> &str {
        self.target.as_str()
    }

    fn path(&self) -> &str {
        self.target.path()
    }

    fn lines(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.lines.iter().map(|line| self.line(line))
    }

    fn values(&self, name: HeaderName) -> impl Iterator<Item = &[u8]> {
        let present = self.name_lengths & length_bit(name.as_str().len()) != 0;
        let lines = if present { &self.lines[..] } else { &[] };
        lines
            .iter()
            .map(|line| self.line(line))
            .filter(move |(sent, _)| sent.eq_ignore_ascii_case(name.as_str().as_bytes()))
            .map(|(_, value)| value)
    }
}

impl RequestHead {
    fn line(&self, line: &Line) -> (&[u8], &[u8]) {
        (
            &self.bytes[line.name.clone()],
            &self.bytes[line.value.clone()],
        )
    }
}

/// One bit per name length, the last shared by all names of 63 bytes or more.
fn length_bit(len: usize) -> u64 {
    1 << len.min(63)
}

/// Parses a request head into `head`, accepting only unambiguous HTTP/1.1: an origin-form
/// target, no `Transfer-Encoding`, at most one plain `Content-Length`, no `Expect`, no
/// upgrade, no CONNECT. Every other request, valid or not, is `NotOurs`. On `Complete`,
/// `head` holds the request; otherwise its contents are meaningless.
pub fn parse_request(buf: &[u8], head: &mut RequestHead) -> Parsed<()> {
    // Left uninitialised for httparse to fill: initialising 100 lines cost more than
    // parsing the few a request has.
    let mut lines = [MaybeUninit::uninit(); MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    let len = match request.parse_with_uninit_headers(buf, &mut lines) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::NotOurs,
    };
    match fill(head, &request, &buf[..len]) {
        Some(()) => Parsed::Complete((), len),
        None => Parsed::NotOurs,
    }
}

fn fill(head: &mut RequestHead, request: &httparse::Request<'_, '_>, raw: &[u8]) -> Option<()> {
    if request.version != Some(1) {
        return None;
    }
    let method = Method::from_bytes(request.method?.as_bytes()).ok()?;
    let target = request.path?;
    if method == Method::CONNECT || !target.starts_with('/') {
        return None;
    }
    // What hyper would do with the target (it drops a `#fragment`, for one), so the target
    // signed and sent is the one hyper's path would sign and send.
    head.target = PathAndQuery::try_from(target).ok()?;
    head.method = method;
    // Offsets into `raw`, which is copied whole below.
    let offset = |part: &[u8]| part.as_ptr() as usize - raw.as_ptr() as usize;
    let span = |part: &[u8]| offset(part)..offset(part) + part.len();
    head.lines.clear();
    head.name_lengths = 0;
    let mut body_len = None;
    let mut close = false;
    for line in request.headers.iter() {
        let name = line.name.as_bytes();
        let is = |known: &HeaderName| name.eq_ignore_ascii_case(known.as_str().as_bytes());
        if is(&header::TRANSFER_ENCODING) || is(&header::EXPECT) || is(&header::UPGRADE) {
            return None;
        }
        if is(&header::CONTENT_LENGTH) {
            if body_len.is_some() {
                return None;
            }
            body_len = Some(decimal(line.value)?);
        } else if is(&header::CONNECTION) {
            for token in list_items(line.value) {
                if token.eq_ignore_ascii_case(b"upgrade") {
                    return None;
                }
                close |= token.eq_ignore_ascii_case(b"close");
            }
        }
        head.name_lengths |= length_bit(name.len());
        head.lines.push(Line {
            name: span(name),
            value: span(line.value),
        });
    }
    head.bytes.clear();
    head.bytes.extend_from_slice(raw);
    head.body_len = body_len.unwrap_or(0);
    head.close = close;
    Some(())
}
