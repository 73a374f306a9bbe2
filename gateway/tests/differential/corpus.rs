//! The fixed corpus: raw client bytes for every ambiguity class a smuggler or a confused
//! client brings (framing, whitespace, line endings, control bytes, chunk syntax, targets,
//! versions, `Expect`, upgrades, `Connection`, identity headers, paths), each alone and with
//! requests pipelined behind it, and the same classes in the upstream's answers. Cases that
//! pin a settled engine difference carry an expectation as well. `{TOKEN}` stands for a
//! fresh valid token for the user `alice`. Not for: running them (`harness.rs`).

use crate::{harness::Observed, recorder::Reply};

/// An extra check on one engine's outcome, for a point both engines must settle one way.
pub type Expect = fn(&Observed) -> Result<(), String>;

pub struct Case {
    pub name: String,
    pub request: Vec<u8>,
    pub reply: Reply,
    /// Keep the client's write side open (the gateway's timeouts end the case), instead of
    /// closing it after the bytes.
    pub keep_open: bool,
    pub expect: Option<Expect>,
    /// The upstream's answer breaks off in its body: the client connection may then end with
    /// that request unanswered (both engines end it; neither can take back a head it sent).
    pub upstream_breaks: bool,
}

impl Case {
    pub fn new(name: impl Into<String>, request: impl AsRef<[u8]>) -> Self {
        Self {
            name: name.into(),
            request: request.as_ref().to_vec(),
            reply: Reply::ok(),
            keep_open: false,
            expect: None,
            upstream_breaks: false,
        }
    }

    fn reply(mut self, reply: Reply) -> Self {
        self.reply = reply;
        self
    }

    fn open(mut self) -> Self {
        self.keep_open = true;
        self
    }

    fn expect(mut self, expect: Expect) -> Self {
        self.expect = Some(expect);
        self
    }
}

/// A public request line and `Host`.
const PUBLIC: &str = "POST /api/auth/in HTTP/1.1\r\nHost: gw\r\n";
/// A protected request line, `Host` and a valid token.
const API: &str = "POST /api/alice/tasks HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {TOKEN}\r\n";
/// What is pipelined behind a case: a protected request with no token (it must be refused,
/// never reach the task API), then a public one.
const BEHIND: &str = "GET /api/alice/tasks/behind HTTP/1.1\r\nHost: gw\r\n\r\n\
                      GET /api/auth/behind HTTP/1.1\r\nHost: gw\r\n\r\n";

/// Client-side cases: (name, bytes after the request line and `Host`, whether to run on
/// both routes).
fn framing() -> Vec<(&'static str, String)> {
    let mut cases: Vec<(&str, String)> = vec![
        ("plain length", "Content-Length: 5\r\n\r\nhello".into()),
        ("no body", "\r\n".into()),
        ("CL.TE", "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG".into()),
        ("TE.CL", "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n".into()),
        ("duplicate equal lengths", "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello".into()),
        ("duplicate different lengths", "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!".into()),
        ("length list", "Content-Length: 5, 5\r\n\r\nhello".into()),
        ("plus length", "Content-Length: +5\r\n\r\nhello".into()),
        ("minus length", "Content-Length: -5\r\n\r\nhello".into()),
        ("zero-padded length", "Content-Length: 005\r\n\r\nhello".into()),
        ("nineteen-digit zero-padded length", "Content-Length: 0000000000000000005\r\n\r\nhello".into()),
        ("hex length", "Content-Length: 0x5\r\n\r\nhello".into()),
        ("length overflow", "Content-Length: 18446744073709551616\r\n\r\nhello".into()),
        ("u64 max length", "Content-Length: 18446744073709551615\r\n\r\nhello".into()),
        ("twenty-digit length", "Content-Length: 99999999999999999999\r\n\r\nhello".into()),
        ("length too large", "Content-Length: 70000\r\n\r\nhello".into()),
        ("space before colon in length", "Content-Length : 5\r\n\r\nhello".into()),
        ("tab in length value", "Content-Length:\t5\t\r\n\r\nhello".into()),
        ("underscore length", "Content_Length: 5\r\n\r\nhello".into()),
        ("short body", "Content-Length: 10\r\n\r\nhello".into()),
        // Larger than twice the read limit: a signed one is read whole, and the buffer it grew
        // is given back before the next request, whose bytes (pipelined) must survive it.
        ("body near the size limit", format!("Content-Length: 60000\r\n\r\n{}", "b".repeat(60_000))),
        ("space before colon in TE", "Transfer-Encoding : chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".into()),
        ("underscore TE", "Transfer_Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello".into()),
        ("TE.TE chunked twice", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".into()),
        ("TE.TE chunked then identity", "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n".into()),
        ("obs-fold in TE", "Transfer-Encoding:\r\n chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".into()),
        ("obs-fold in length", "Content-Length:\r\n 5\r\n\r\nhello".into()),
        ("obs-fold in other header", "X-A: a\r\n b\r\nContent-Length: 5\r\n\r\nhello".into()),
        ("NUL in value", "X-A: a\0b\r\n\r\n".into()),
        ("NUL in name", "X-\0A: b\r\n\r\n".into()),
        ("control byte in value", "X-A: a\x01b\r\n\r\n".into()),
        ("DEL in value", "X-A: a\x7fb\r\n\r\n".into()),
        ("escape in value", "X-A: \x1b[31mred\r\n\r\n".into()),
        ("vertical tab in TE", "Transfer-Encoding: \x0bchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".into()),
        ("high bytes in value", "X-A: caf\u{e9}\r\n\r\n".into()),
        ("bare LF line ends", "X-A: b\nContent-Length: 5\n\nhello".into()),
        ("bare CR in a value", "X-A: a\rb\r\n\r\n".into()),
        ("bare CR as line end", "X-A: b\rContent-Length: 5\r\r\nhello".into()),
        ("chunk extension", "Transfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0;last\r\n\r\n".into()),
        ("chunk extension with quoted semicolon", "Transfer-Encoding: chunked\r\n\r\n5;a=\"x;y\"\r\nhello\r\n0\r\n\r\n".into()),
        ("space before chunk extension", "Transfer-Encoding: chunked\r\n\r\n5 ;x\r\nhello\r\n0\r\n\r\n".into()),
        ("hex-prefixed chunk size", "Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n".into()),
        ("negative chunk size", "Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n".into()),
        ("chunk size overflow", "Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n".into()),
        ("chunk longer than its size", "Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n".into()),
        ("junk chunk size", "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n".into()),
        ("bare LF chunk lines", "Transfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n".into()),
        ("missing final chunk", "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n".into()),
        ("trailers", "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Trailer: v\r\n\r\n".into()),
        ("identity header in a trailer", "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-User-Id: mallory\r\n\r\n".into()),
        ("TE gzip, chunked", "Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".into()),
        ("TE chunked, gzip", "Transfer-Encoding: chunked, gzip\r\n\r\n5\r\nhello\r\n0\r\n\r\n".into()),
        ("TE Chunked", "Transfer-Encoding: Chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".into()),
        ("TE xchunked", "Transfer-Encoding: xchunked\r\nContent-Length: 5\r\n\r\nhello".into()),
        ("TE identity", "Transfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nhello".into()),
        ("TE chunked with a space after", "Transfer-Encoding: chunked \r\n\r\n5\r\nhello\r\n0\r\n\r\n".into()),
        ("TE chunked, chunked", "Transfer-Encoding: chunked, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".into()),
        ("Expect 100-continue", "Expect: 100-continue\r\nContent-Length: 5\r\n\r\nhello".into()),
        ("Expect something else", "Expect: 200-ok\r\nContent-Length: 5\r\n\r\nhello".into()),
        ("Expect 100-continue, body too large", "Expect: 100-continue\r\nContent-Length: 70000\r\n\r\n".into()),
        ("upgrade h2c", "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n".into()),
        ("upgrade websocket", "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".into()),
        ("upgrade without Connection", "Upgrade: websocket\r\n\r\n".into()),
        ("Connection names the length", "Connection: Content-Length\r\nContent-Length: 5\r\n\r\nhello".into()),
        ("Connection names TE", "Connection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".into()),
        ("Connection names Authorization", "Connection: Authorization\r\n\r\n".into()),
        ("Connection names Host", "Connection: Host\r\n\r\n".into()),
        ("Connection names identity and forwarding headers", "Connection: X-User-Id, X-Forwarded-For, X-Request-Id, X-Identity-Credential\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n".into()),
        ("client identity headers", "X-User-Id: mallory\r\nX-Identity-Credential: forged\r\nX-Forwarded-User: mallory\r\nRemote-User: mallory\r\n\r\n".into()),
        ("underscored identity headers", "X_User_Id: mallory\r\nx_identity_credential: forged\r\n\r\n".into()),
        ("Connection close", "Connection: close\r\n\r\n".into()),
        ("repeated Host", "Host: other\r\n\r\n".into()),
        ("padding header", "X-Pad: 1\r\n\r\n".into()),
        ("request id from the client", "X-Request-Id: client-chosen\r\n\r\n".into()),
        ("two Authorization lines", "Authorization: Bearer x.y.z\r\n\r\n".into()),
    ];
    let big = "a".repeat(9000);
    cases.push((
        "head over MAX_HEADER_BYTES",
        format!("X-Big: {big}\r\n\r\n"),
    ));
    let huge = "a".repeat(20_000);
    cases.push((
        "head over the read buffer",
        format!("X-Huge: {huge}\r\n\r\n"),
    ));
    cases
}

/// Whole requests whose request line or version is the point.
fn request_lines() -> Vec<(&'static str, String)> {
    vec![
        ("absolute-form public", "GET http://gw/api/auth/abs HTTP/1.1\r\nHost: gw\r\n\r\n".into()),
        ("absolute-form authority differs from Host", "GET http://evil.example/api/auth/abs HTTP/1.1\r\nHost: gw\r\n\r\n".into()),
        ("absolute-form protected", "GET http://gw/api/alice/tasks HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".into()),
        ("absolute-form https", "GET https://gw/api/auth/abs HTTP/1.1\r\nHost: gw\r\n\r\n".into()),
        ("asterisk-form OPTIONS", "OPTIONS * HTTP/1.1\r\nHost: gw\r\n\r\n".into()),
        ("asterisk-form GET", "GET * HTTP/1.1\r\nHost: gw\r\n\r\n".into()),
        ("CONNECT authority-form", "CONNECT gw:443 HTTP/1.1\r\nHost: gw:443\r\n\r\n".into()),
        ("fragment in target", "GET /api/auth/frag#x HTTP/1.1\r\nHost: gw\r\n\r\n".into()),
        ("space in target", "GET /api/auth/a b HTTP/1.1\r\nHost: gw\r\n\r\n".into()),
        ("HTTP/1.0 without Host", "GET /api/auth/old HTTP/1.0\r\n\r\n".into()),
        ("HTTP/1.0 with Host", "GET /api/auth/old HTTP/1.0\r\nHost: gw\r\n\r\n".into()),
        ("HTTP/1.0 keep-alive", "GET /api/auth/old HTTP/1.0\r\nHost: gw\r\nConnection: keep-alive\r\n\r\n".into()),
        ("HTTP/1.0 keep-alive with a body", "POST /api/auth/old HTTP/1.0\r\nHost: gw\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\nhello".into()),
        ("HTTP/1.0 chunked", "POST /api/auth/old HTTP/1.0\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".into()),
        ("HTTP/0.9", "GET /api/auth/nine\r\n\r\n".into()),
        ("HTTP/1.2", "GET /api/auth/v HTTP/1.2\r\nHost: gw\r\n\r\n".into()),
        ("HTTP/2.0 line", "GET /api/auth/v HTTP/2.0\r\nHost: gw\r\n\r\n".into()),
        ("lower-case version", "GET /api/auth/v http/1.1\r\nHost: gw\r\n\r\n".into()),
        ("lower-case method", "get /api/auth/m HTTP/1.1\r\nHost: gw\r\n\r\n".into()),
        ("unknown method", "BREW /api/auth/m HTTP/1.1\r\nHost: gw\r\n\r\n".into()),
        ("missing Host", "GET /api/auth/nohost HTTP/1.1\r\n\r\n".into()),
        ("Host with a bad byte", "GET /api/auth/h HTTP/1.1\r\nHost: g w\r\n\r\n".into()),
        ("two Hosts", "GET /api/auth/h HTTP/1.1\r\nHost: gw\r\nHost: evil\r\n\r\n".into()),
        ("leading blank line", "\r\nGET /api/auth/lead HTTP/1.1\r\nHost: gw\r\n\r\n".into()),
        ("bare CR in the request line", "GET /api/auth/cr HTTP/1.1\rHost: gw\r\n\r\n".into()),
        ("bare LF request", "GET /api/auth/lf HTTP/1.1\nHost: gw\n\n".into()),
        ("dot-dot-semicolon to public", "GET /api/auth/..;/alice/tasks HTTP/1.1\r\nHost: gw\r\n\r\n".into()),
        ("double-encoded dots to public", "GET /api/auth/%252e%252e/alice/tasks HTTP/1.1\r\nHost: gw\r\n\r\n".into()),
        ("encoded dots to public", "GET /api/auth/%2e%2e/alice/tasks HTTP/1.1\r\nHost: gw\r\n\r\n".into()),
        ("dot segment to protected", "GET /api/alice/../bob/tasks HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".into()),
        ("another user's path", "GET /api/bob/tasks HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".into()),
        ("no token", "GET /api/alice/tasks HTTP/1.1\r\nHost: gw\r\n\r\n".into()),
        ("HEAD protected", "HEAD /api/alice/tasks HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".into()),
        ("unknown route", "GET /nowhere HTTP/1.1\r\nHost: gw\r\n\r\n".into()),
        ("healthz", "GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n".into()),
        ("HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".into()),
        ("garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\x7c\x03\x03".into()),
    ]
}

/// What the upstream answers, for a plain request on each route.
fn answers() -> Vec<(&'static str, Reply)> {
    let keep = |bytes: &str| Reply::Keep(bytes.as_bytes().to_vec());
    let close = |bytes: &str| Reply::Close(bytes.as_bytes().to_vec());
    vec![
        ("answer CL+TE", keep("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")),
        ("answer duplicate equal CL", keep("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok")),
        ("answer duplicate different CL", keep("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!")),
        ("answer CL list", keep("HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok")),
        ("answer plus CL", keep("HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok")),
        ("answer zero-padded CL", keep("HTTP/1.1 200 OK\r\nContent-Length: 002\r\n\r\nok")),
        ("answer 304 with a length", keep("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nETag: \"x\"\r\n\r\n")),
        ("answer 204 with a length", keep("HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n")),
        ("answer 204 with a body", keep("HTTP/1.1 204 No Content\r\n\r\n")),
        ("answer unsolicited 101", keep("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")),
        ("answer 100 then 200", keep("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")),
        ("answer 103 then 200", keep("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")),
        ("answer bare LF head", keep("HTTP/1.1 200 OK\nContent-Length: 2\n\nok")),
        ("answer bare CR in head", keep("HTTP/1.1 200 OK\rContent-Length: 2\r\n\r\nok")),
        ("answer obs-fold", keep("HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nok")),
        ("answer NUL in value", keep("HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 2\r\n\r\nok")),
        ("answer space before colon", keep("HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok")),
        ("answer chunked with extensions and trailers", keep("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\nok\r\n0\r\nX-T: 1\r\n\r\n")),
        ("answer chunked, bad size", keep("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n")),
        ("answer chunked, missing last chunk", close("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n")),
        ("answer TE gzip, chunked", keep("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")),
        ("answer TE identity", close("HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nok")),
        ("answer until close", close("HTTP/1.1 200 OK\r\n\r\nuntil close")),
        ("answer cut short", close("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok")),
        ("answer HTTP/1.0", keep("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")),
        ("answer HTTP/2 status line", keep("HTTP/2 200\r\n\r\n")),
        ("answer status 99", keep("HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n")),
        ("answer status 600", keep("HTTP/1.1 600 Odd\r\nContent-Length: 0\r\n\r\n")),
        ("answer Connection names the length", keep("HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 2\r\n\r\nok")),
        ("answer with identity headers", keep("HTTP/1.1 200 OK\r\nX-User-Id: mallory\r\nContent-Length: 2\r\n\r\nok")),
        ("answer closes without a word", close("")),
        ("answer garbage", keep("garbage\r\n\r\n")),
        ("answer 500", keep("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")),
    ]
}

/// Every fixed case.
pub fn all() -> Vec<Case> {
    let mut cases = Vec::new();
    for (name, rest) in framing() {
        for (route, start) in [("public", PUBLIC), ("api", API)] {
            let request = format!("{start}{rest}");
            cases.push(Case::new(format!("{name} ({route})"), &request));
            cases.push(Case::new(
                format!("{name} ({route}) + pipelined"),
                format!("{request}{BEHIND}"),
            ));
        }
    }
    for (name, request) in request_lines() {
        cases.push(Case::new(name, &request));
        cases.push(Case::new(
            format!("{name} + pipelined"),
            format!("{request}{BEHIND}"),
        ));
    }
    for (name, reply) in answers() {
        let breaks = matches!(
            name,
            "answer chunked, bad size" | "answer chunked, missing last chunk" | "answer cut short"
        );
        for (route, request) in [
            ("public", "GET /api/auth/answer HTTP/1.1\r\nHost: gw\r\n\r\n"),
            ("api", "GET /api/alice/tasks HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"),
        ] {
            // Twice on one connection: the second shows whether the first was framed right.
            let mut case = Case::new(format!("{name} ({route})"), request.repeat(2)).reply(reply.clone());
            case.upstream_breaks = breaks;
            cases.push(case);
        }
        cases.push(
            Case::new(
                format!("{name} (HEAD)"),
                "HEAD /api/auth/answer HTTP/1.1\r\nHost: gw\r\n\r\n".repeat(2),
            )
            .reply(reply.clone()),
        );
    }
    cases.extend(settled());
    cases
}

/// The points where the engines differed and were settled one way (specs/spec.md,
/// "Where the engines may differ"); each checks the settled behaviour on both.
fn settled() -> Vec<Case> {
    vec![
        Case::new("settled: a padded length is forwarded as its number", format!("{PUBLIC}Content-Length: 005\r\n\r\nhello"))
            .expect(|o| match o.public.first().and_then(|s| s.headers.iter().find(|(n, _)| n == "content-length")) {
                Some((_, value)) if value == b"5" => Ok(()),
                other => Err(format!("upstream Content-Length {other:?}")),
            }),
        Case::new("settled: dot-dot-semicolon reaches the public upstream unchanged", "GET /api/auth/..;/x HTTP/1.1\r\nHost: gw\r\n\r\n")
            .expect(|o| match o.public.first() {
                Some(seen) if seen.target == "/api/auth/..;/x" => Ok(()),
                other => Err(format!("{other:?}")),
            }),
        Case::new("settled: double-encoded dots reach the public upstream unchanged", "GET /api/auth/%252e%252e/x HTTP/1.1\r\nHost: gw\r\n\r\n")
            .expect(|o| match o.public.first() {
                Some(seen) if seen.target == "/api/auth/%252e%252e/x" => Ok(()),
                other => Err(format!("{other:?}")),
            }),
        Case::new("settled: an absolute-form authority is the forwarded host", "GET http://app.example/api/auth/abs HTTP/1.1\r\nHost: gw\r\n\r\n")
            .expect(|o| match o.public.first().and_then(|s| s.headers.iter().find(|(n, _)| n == "x-forwarded-host")) {
                Some((_, value)) if value == b"app.example" => Ok(()),
                other => Err(format!("X-Forwarded-Host {other:?}")),
            }),
        Case::new("settled: an unsolicited 101 is a 502", "GET /api/auth/up HTTP/1.1\r\nHost: gw\r\n\r\n")
            .reply(Reply::Keep(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n".to_vec()))
            .expect(|o| statuses_are(o, &[502])),
        Case::new("settled: duplicate equal upstream lengths are relayed as one", "GET /api/auth/dup HTTP/1.1\r\nHost: gw\r\n\r\n")
            .reply(Reply::Keep(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok".to_vec()))
            .expect(|o| match o.received.answers.first() {
                Some(a) if a.status == 200
                    && a.headers.iter().filter(|(n, _)| n == "content-length").count() == 1
                    && a.body == b"ok" => Ok(()),
                other => Err(format!("{other:?}")),
            }),
        Case::new("settled: a 304's length is not relayed", "GET /api/auth/cached HTTP/1.1\r\nHost: gw\r\n\r\n")
            .reply(Reply::Keep(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n".to_vec()))
            .expect(|o| match o.received.answers.first() {
                Some(a) if a.status == 304 && a.header("content-length").is_none() => Ok(()),
                other => Err(format!("{other:?}")),
            }),
        Case::new("settled: a head with a bare CR is refused at once", "GET /api/auth/cr HTTP/1.1\r\nX-A: a\rb\r\n")
            .open()
            .expect(|o| statuses_are(o, &[400])),
        Case::new("idle: a connection that sends nothing is closed", "").open(),
        Case::new("idle: a kept-alive connection is closed when idle", "GET /api/auth/idle HTTP/1.1\r\nHost: gw\r\n\r\n").open(),
        Case::new("idle: a head that stops half-way is closed", "GET /api/auth/slow HTTP/1.1\r\nHost:").open(),
        Case::new("idle: a body that stops half-way is closed", format!("{PUBLIC}Content-Length: 10\r\n\r\nhello")).open(),
        Case::new("settled: a malformed head gets the JSON refusal", format!("{PUBLIC}Bad Name: v\r\n\r\n"))
            .expect(json_refusal),
        Case::new("settled: a head over the read buffer gets the JSON refusal", format!("{PUBLIC}X-Huge: {}\r\n\r\n", "a".repeat(40_000)))
            .expect(json_refusal),
        // Each forwarded line is checked against every option `Connection` lists.
        Case::new("settled: a Connection header of a thousand options is refused", format!(
            "{PUBLIC}Connection: {}\r\nContent-Length: 0\r\n\r\n",
            (0..1000).map(|i| format!("x{i}")).collect::<Vec<_>>().join(",")
        ))
        .expect(json_refusal),
        // Better Auth's session cookie, in spellings a browser never sends, beside the token:
        // neither reaches the task API (the invariants check every case for it).
        Case::new("settled: the session cookie stays at the gateway", format!(
            "{API}COOKIE: better-auth.session_token=s\r\ncOoKiE: theme=dark\r\nContent-Length: 2\r\n\r\n{{}}"
        ))
        .expect(|o| match o.protected.first() {
            Some(seen) if seen.headers.iter().all(|(n, _)| n != "cookie") => Ok(()),
            other => Err(format!("{other:?}")),
        }),
        // RFC 9113 §3.4: no switch to HTTP/2 once a connection has spoken HTTP/1.1, even when
        // what follows a request is exactly the preface.
        Case::new("settled: the HTTP/2 preface after a request is not HTTP/2", "GET /api/auth/one HTTP/1.1\r\nHost: gw\r\n\r\nPRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .expect(|o| {
                let statuses: Vec<u16> = o.received.answers.iter().map(|a| a.status).collect();
                match statuses.split_first() {
                    Some((200, rest)) if rest.iter().all(|s| (400..600).contains(s)) && o.received.trailing.is_empty() => Ok(()),
                    _ => Err(format!("statuses {statuses:?}, trailing {:?}", o.received.trailing)),
                }
            }),
    ]
}

fn statuses_are(observed: &Observed, expected: &[u16]) -> Result<(), String> {
    let statuses: Vec<u16> = observed.received.answers.iter().map(|a| a.status).collect();
    if statuses == expected {
        Ok(())
    } else {
        Err(format!("expected {expected:?}"))
    }
}

/// A 4xx with the gateway's JSON body and a request id.
fn json_refusal(observed: &Observed) -> Result<(), String> {
    let Some(answer) = observed.received.answers.first() else {
        return Err("no answer".to_owned());
    };
    let body: Result<serde_json::Value, _> = serde_json::from_slice(&answer.body);
    let detail = body
        .ok()
        .and_then(|b| b["detail"].as_str().map(str::to_owned));
    if (400..500).contains(&answer.status)
        && detail.is_some()
        && answer.header("x-request-id").is_some()
    {
        Ok(())
    } else {
        Err(format!(
            "{} {:?}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        ))
    }
}
