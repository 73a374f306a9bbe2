//! Message heads for the lean HTTP/1.1 engine: requests parsed with httparse into the same
//! `http` types hyper produces (or refused as "not ours" for hyper to judge), responses parsed
//! with their body framing, and both written back out as bytes.
//!
//! Not for: deciding what a request may do (`proxy.rs`), nor moving bodies (`http1.rs`).

use bytes::Bytes;
use http::{
    header, request, HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri, Version,
};

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
/// (`proxy::is_gateway_response_header`), and a `Content-Length` that chunked framing
/// overrides. The
/// lines are copied as they came, names lower-cased as hyper writes them: httparse accepts
/// exactly the bytes `HeaderName` and `HeaderValue` accept (checked for every byte value when
/// this was written), so nothing goes out that a `HeaderMap` would have refused.
pub fn parse_response(
    buf: &[u8],
    method: &Method,
    out: &mut Vec<u8>,
) -> Result<Parsed<ResponseHead>, BadResponse> {
    let mut lines = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut lines);
    let len = match response.parse(buf)? {
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
            close |= list_tokens(line.value).any(|token| token.eq_ignore_ascii_case(b"close"));
        } else if name.eq_ignore_ascii_case(b"date") {
            dated = true;
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
                    .flat_map(|line| list_tokens(line.value))
                    .any(|token| token.eq_ignore_ascii_case(name))
        };
        let unframed_length = framing == Framing::Chunked;
        write_status_line(out, status);
        for line in headers {
            let name = line.name.as_bytes();
            let dropped = crate::proxy::is_hop_by_hop(name)
                || crate::proxy::is_gateway_response_header(name)
                || (unframed_length && name.eq_ignore_ascii_case(b"content-length"))
                || named(name);
            if !dropped {
                out.extend(name.iter().map(u8::to_ascii_lowercase));
                out.extend_from_slice(b": ");
                out.extend_from_slice(line.value);
                out.extend_from_slice(b"\r\n");
            }
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

/// Appends `METHOD target HTTP/1.1`, the headers and the blank line to `out`.
pub fn write_request(out: &mut Vec<u8>, parts: &request::Parts) {
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    write_headers(out, &parts.headers);
}

/// Appends `HTTP/1.1 status reason`, the headers and the blank line to `out`.
pub fn write_response(out: &mut Vec<u8>, status: StatusCode, headers: &HeaderMap) {
    write_status_line(out, status);
    write_headers(out, headers);
}

/// Appends `HTTP/1.1 status reason` to `out`.
fn write_status_line(out: &mut Vec<u8>, status: StatusCode) {
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
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// A `Content-Length` value: ASCII digits only (no sign, no spaces, no list), as RFC 9110
/// §8.6 allows, and small enough for a u64.
fn decimal(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

fn connection_tokens(value: &HeaderValue) -> impl Iterator<Item = &str> {
    value.to_str().unwrap_or("").split(',').map(str::trim)
}

/// The items of a comma-separated header value, trimmed.
fn list_tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&byte| byte == b',').map(<[u8]>::trim_ascii)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(raw: &str) -> Parsed<RequestHead> {
        parse_request(raw.as_bytes(), &mut HeaderMap::new())
    }

    #[test]
    fn the_common_case_parses_into_http_types() {
        let raw = "POST /api/u1/tasks?x=1 HTTP/1.1\r\nHost: gw\r\nX-Mixed-Case: v\r\n\
                   Content-Length: 5\r\nConnection: keep-alive, close\r\n\r\nhello";
        let Parsed::Complete(head, len) = request(raw) else {
            panic!("expected a complete head");
        };
        assert_eq!(len, raw.len() - 5);
        assert_eq!(head.parts.method, Method::POST);
        assert_eq!(head.parts.uri, "/api/u1/tasks?x=1");
        assert_eq!(head.parts.headers["x-mixed-case"], "v");
        assert_eq!(head.body_len, 5);
        assert!(head.close);
    }

    #[test]
    fn anything_ambiguous_or_unusual_is_left_to_hyper() {
        for raw in [
            "GET / HTTP/1.0\r\n\r\n",
            "GET http://gw/ HTTP/1.1\r\nHost: gw\r\n\r\n",
            "OPTIONS * HTTP/1.1\r\nHost: gw\r\n\r\n",
            "CONNECT gw:443 HTTP/1.1\r\nHost: gw\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
            "POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
            "GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
            "GET / HTTP/1.1\r\nBad Name: v\r\n\r\n",
            "GET /a b HTTP/1.1\r\n\r\n",
        ] {
            assert!(matches!(request(raw), Parsed::NotOurs), "{raw:?}");
        }
        assert!(matches!(
            request("GET / HTTP/1.1\r\nHost:"),
            Parsed::Partial
        ));
    }

    fn response(raw: &str, method: Method) -> ResponseHead {
        relayed(raw, method).0
    }

    /// The head, and what the client gets of it.
    fn relayed(raw: &str, method: Method) -> (ResponseHead, String) {
        let mut out = Vec::new();
        match parse_response(raw.as_bytes(), &method, &mut out) {
            Ok(Parsed::Complete(head, _)) => (head, String::from_utf8(out).unwrap()),
            other => panic!("{raw:?}: {other:?}"),
        }
    }

    #[test]
    fn response_framing_follows_rfc_9112() {
        let get = || Method::GET;
        let ok = "HTTP/1.1 200 OK\r\n";
        assert_eq!(
            response(&format!("{ok}Content-Length: 3\r\n\r\n"), get()).framing,
            Framing::Length(3)
        );
        assert_eq!(
            response(&format!("{ok}Content-Length: 3\r\n\r\n"), Method::HEAD).framing,
            Framing::Empty
        );
        assert_eq!(
            response("HTTP/1.1 204 No Content\r\n\r\n", get()).framing,
            Framing::Empty
        );
        let chunked = response(&format!("{ok}Transfer-Encoding: chunked\r\n\r\n"), get());
        assert_eq!(chunked.framing, Framing::Chunked);
        assert!(!chunked.close);
        let (both, relayed_head) = relayed(
            &format!("{ok}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
            get(),
        );
        assert_eq!(both.framing, Framing::Chunked);
        assert!(both.close);
        assert_eq!(relayed_head, "HTTP/1.1 200 OK\r\n");
        let until_close = response(&format!("{ok}\r\n"), get());
        assert_eq!(until_close.framing, Framing::UntilClose);
        assert!(until_close.close);
        assert!(
            response(
                &format!("{ok}Connection: close\r\nContent-Length: 0\r\n\r\n"),
                get()
            )
            .close
        );
        let (hints, nothing) = relayed("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", get());
        assert_eq!(hints.status, 103);
        assert_eq!(nothing, "", "an informational head is skipped, not relayed");
    }

    #[test]
    fn only_what_the_client_may_see_is_relayed() {
        let raw = "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n\
                   Connection: keep-alive, X-Private\r\nX-Private: s\r\nKeep-Alive: timeout=5\r\n\
                   X-Request-Id: upstream-chosen\r\nAccess-Control-Allow-Origin: *\r\n\
                   Set-Cookie: a=1\r\nDate: Mon, 30 Nov 2026 13:00:00 GMT\r\nSet-Cookie: b=2\r\n\
                   Content-Length: 2\r\n\r\n";
        let (head, relayed_head) = relayed(raw, Method::POST);
        assert_eq!(head.framing, Framing::Length(2));
        assert!(head.dated && !head.close);
        assert_eq!(
            relayed_head,
            "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\nset-cookie: a=1\r\n\
             date: Mon, 30 Nov 2026 13:00:00 GMT\r\nset-cookie: b=2\r\ncontent-length: 2\r\n"
        );
    }

    #[test]
    fn bad_response_framing_is_refused() {
        for raw in [
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            "HTTP/1.1 101 Switching Protocols\r\n\r\n",
            // What a `HeaderName` or `HeaderValue` would refuse, httparse refuses.
            "HTTP/1.1 200 OK\r\nX-A: a\x01b\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nX-A: a\x7fb\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nX A: b\r\nContent-Length: 0\r\n\r\n",
            "HTTP/2 200\r\n\r\n",
        ] {
            assert!(
                parse_response(raw.as_bytes(), &Method::GET, &mut Vec::new()).is_err(),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn heads_are_written_as_http_1_1() {
        let (mut parts, ()) = Request::new(()).into_parts();
        parts.method = Method::PATCH;
        parts.uri = Uri::from_static("/api/u1/tasks/1/complete");
        parts
            .headers
            .insert("x-user-id", HeaderValue::from_static("u1"));
        let mut out = Vec::new();
        write_request(&mut out, &parts);
        assert_eq!(
            out,
            b"PATCH /api/u1/tasks/1/complete HTTP/1.1\r\nx-user-id: u1\r\n\r\n"
        );
        out.clear();
        write_response(&mut out, StatusCode::NOT_FOUND, &HeaderMap::new());
        assert_eq!(out, b"HTTP/1.1 404 Not Found\r\n\r\n");
    }

    mod properties {
        //! Whatever a client sends, the engine either leaves it to hyper or takes it with
        //! framing it can stand behind: the invariants hold for every head it accepts.

        use super::*;
        use proptest::prelude::*;

        /// Header lines a request smuggler or a confused client would send, in any case, most
        /// of them about framing.
        fn header_line() -> impl Strategy<Value = String> {
            let pick = |names: &[&'static str], values: &[&'static str]| {
                (
                    prop::sample::select(names.to_vec()),
                    prop::sample::select(values.to_vec()),
                )
            };
            let line = prop_oneof![
                4 => pick(
                    &["Content-Length", "Content-Length ", "Content_Length"],
                    &["5", "05", "0", "+5", "-1", "5, 5", " 5", "5 ", "abc", "", "99999999999999999999"],
                ),
                2 => pick(&["Transfer-Encoding", "Transfer_Encoding"], &["chunked", "gzip, chunked", "identity", ""]),
                2 => pick(
                    &["Connection"],
                    &["close", "keep-alive, close", "Upgrade", "upgrade, close", "keep-alive"],
                ),
                1 => pick(&["Expect"], &["100-continue"]),
                1 => pick(&["Upgrade"], &["websocket", "h2c"]),
                1 => pick(&["Host", "X-Other"], &["gw", "a\tb", ""]),
            ];
            (line, any::<bool>(), any::<bool>()).prop_map(|((name, value), upper, shout)| {
                let name = if upper {
                    name.to_uppercase()
                } else {
                    name.to_lowercase()
                };
                let value = if shout {
                    value.to_uppercase()
                } else {
                    value.to_owned()
                };
                format!("{name}:{value}\r\n")
            })
        }

        fn request_head() -> impl Strategy<Value = String> {
            let method = prop::sample::select(vec!["GET", "POST", "CONNECT", "PATCH", "get"]);
            let target = prop::sample::select(vec!["/api/u1/tasks", "*", "http://gw/x", "/a?b=c"]);
            let version = prop::sample::select(vec!["HTTP/1.1", "HTTP/1.0", "HTTP/2.0"]);
            (
                method,
                target,
                version,
                prop::collection::vec(header_line(), 0..6),
            )
                .prop_map(|(method, target, version, lines)| {
                    format!("{method} {target} {version}\r\n{}\r\n", lines.concat())
                })
        }

        /// The values of header `name` (any case) in `raw`, as sent.
        fn values<'a>(raw: &'a str, name: &str) -> Vec<&'a str> {
            raw.split("\r\n")
                .skip(1)
                .filter_map(|line| line.split_once(':'))
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.trim_matches(|c| c == ' ' || c == '\t'))
                .collect()
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2048))]

            #[test]
            fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
                let _ = parse_request(&bytes, &mut HeaderMap::new());
                let _ = parse_response(&bytes, &Method::GET, &mut Vec::new());
                let _ = parse_response(&bytes, &Method::HEAD, &mut Vec::new());
            }

            #[test]
            fn an_accepted_request_has_framing_only_one_way_to_read(raw in request_head()) {
                let Parsed::Complete(head, len) = parse_request(raw.as_bytes(), &mut HeaderMap::new())
                else {
                    return Ok(());
                };
                prop_assert_eq!(len, raw.len());
                prop_assert!(raw.contains(" HTTP/1.1\r\n"));
                prop_assert!(head.parts.uri.path().starts_with('/'));
                prop_assert_ne!(head.parts.method, Method::CONNECT);
                for refused in ["transfer-encoding", "expect", "upgrade"] {
                    prop_assert!(values(&raw, refused).is_empty(), "{} in {:?}", refused, raw);
                }
                let lengths = values(&raw, "content-length");
                prop_assert!(lengths.len() <= 1, "{:?}", raw);
                let declared = lengths.first().map_or(Some(0), |v| {
                    v.bytes().all(|b| b.is_ascii_digit()).then(|| v.parse::<u64>().ok()).flatten()
                });
                prop_assert_eq!(Some(head.body_len), declared, "{:?}", raw);
                let tokens: Vec<String> = values(&raw, "connection")
                    .iter()
                    .flat_map(|v| v.split(','))
                    .map(|t| t.trim().to_ascii_lowercase())
                    .collect();
                prop_assert!(!tokens.iter().any(|t| t == "upgrade"), "{:?}", raw);
                prop_assert_eq!(head.close, tokens.iter().any(|t| t == "close"), "{:?}", raw);
            }
        }
    }
}
