//! Request heads: what a client sent, parsed with httparse into the same `http` types hyper
//! produces, or refused as "not ours" for hyper to judge.

use bytes::Bytes;
use http::{header, request, HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, Version};

use super::{connection_tokens, decimal, Parsed, MAX_HEADERS};

/// A client's request head in the subset this engine serves.
#[derive(Debug)]
pub struct RequestHead {
    pub parts: request::Parts,
    /// The body's length (0 without `Content-Length`).
    pub body_len: u64,
    /// The client asked to close the connection after this exchange.
    pub close: bool,
}

/// Parses a request head, accepting only unambiguous HTTP/1.1: an origin-form target, no
/// `Transfer-Encoding`, at most one plain `Content-Length`, no `Expect`, no upgrade, no
/// CONNECT. Every other request, valid or not, is `NotOurs`. The headers go into `spare`, a
/// map a finished request left behind (emptied here), so its allocation is reused; a
/// complete head takes it.
pub fn parse_request(buf: &[u8], spare: &mut HeaderMap) -> Parsed<RequestHead> {
    let mut lines = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut lines);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::NotOurs,
    };
    match head_of(&request, Head::copy(buf, len), spare) {
        Some(head) => Parsed::Complete(head, len),
        None => Parsed::NotOurs,
    }
}

/// One copy of a head's bytes, which every header value and the target then share, instead
/// of an allocation for each.
struct Head<'a> {
    original: &'a [u8],
    copy: Bytes,
}

impl<'a> Head<'a> {
    fn copy(buf: &'a [u8], len: usize) -> Self {
        Self {
            original: &buf[..len],
            copy: Bytes::copy_from_slice(&buf[..len]),
        }
    }

    /// The copy of `part`, a slice httparse returned from the original.
    fn share(&self, part: &[u8]) -> Bytes {
        let start = part.as_ptr() as usize - self.original.as_ptr() as usize;
        self.copy.slice(start..start + part.len())
    }

    fn value(&self, part: &[u8]) -> Option<HeaderValue> {
        HeaderValue::from_maybe_shared(self.share(part)).ok()
    }
}

fn head_of(
    request: &httparse::Request<'_, '_>,
    head: Head<'_>,
    headers: &mut HeaderMap,
) -> Option<RequestHead> {
    if request.version != Some(1) {
        return None;
    }
    let method = Method::from_bytes(request.method?.as_bytes()).ok()?;
    let target = request.path?;
    if method == Method::CONNECT || !target.starts_with('/') {
        return None;
    }
    let uri = Uri::from_maybe_shared(head.share(target.as_bytes())).ok()?;
    // Room for what the gateway adds on the way upstream, so the map does not grow.
    headers.clear();
    headers.reserve(request.headers.len() + 8);
    let mut body_len = None;
    let mut close = false;
    for line in request.headers.iter() {
        let name = HeaderName::from_bytes(line.name.as_bytes()).ok()?;
        let value = head.value(line.value)?;
        match name {
            header::TRANSFER_ENCODING | header::EXPECT | header::UPGRADE => return None,
            header::CONTENT_LENGTH => {
                if body_len.is_some() {
                    return None;
                }
                body_len = Some(decimal(line.value)?);
            }
            header::CONNECTION => {
                for token in connection_tokens(&value) {
                    if token.eq_ignore_ascii_case("upgrade") {
                        return None;
                    }
                    close |= token.eq_ignore_ascii_case("close");
                }
            }
            _ => {}
        }
        headers.append(name, value);
    }
    let (mut parts, ()) = Request::new(()).into_parts();
    parts.method = method;
    parts.uri = uri;
    parts.version = Version::HTTP_11;
    parts.headers = std::mem::take(headers);
    Some(RequestHead {
        parts,
        body_len: body_len.unwrap_or(0),
        close,
    })
}
