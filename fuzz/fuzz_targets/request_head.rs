//! The lean engine's request head reader (`parse_request`), its subset decision and the head
//! it forwards (`write_request`), on arbitrary client bytes.
//!
//! Properties, each against httparse (the parser hyper uses) and a reference written here:
//! - The engine takes a head exactly when httparse reads a complete head of the same length
//!   and that head is in the subset the engine's doc promises: HTTP/1.1, an origin-form
//!   target, not CONNECT, no `Transfer-Encoding`, `Expect` or `Upgrade`, no `Connection:
//!   upgrade`, and at most one `Content-Length` of plain digits. Everything else is hyper's.
//! - What it forwards parses back (httparse) whole, as one message: the same method, the
//!   target without its fragment, HTTP/1.1, one `Host` (the upstream's), the client's lines
//!   minus exactly what the gateway strips, in order, then the gateway's own headers, each
//!   once; one framing (the body's length as the number the engine framed it by, written by
//!   the gateway in place of the client's line, or none; never `Transfer-Encoding`); no CR,
//!   LF or NUL inside any line.

#![no_main]

use gateway::fuzzing::{
    parse_request, write_request, ClientAddr, ClientHead, Forwarding, Parsed, RequestHead,
    TrustedProxies,
};
use http::HeaderValue;
use libfuzzer_sys::fuzz_target;
use proto_shared::RequestId;

#[path = "reference/http.rs"]
mod reference;
use reference::{is, items, HOP_BY_HOP};

const IDENTITY: [&str; 10] = [
    "x-user-id",
    "x-identity-credential",
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-preferred-username",
    "x-auth-request-user",
    "x-auth-request-email",
    "x-remote-user",
    "remote-user",
    "x-authenticated-user",
];
/// The gateway's own headers, and the client's address as other headers spell it (the
/// gateway states it in `X-Forwarded-For` alone).
const SET_BY_GATEWAY: [&str; 6] = [
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-request-id",
    "forwarded",
    "x-real-ip",
];
const UPSTREAM_HOST: &str = "upstream.internal:8081";

/// The subset the engine's doc says it serves, judged on httparse's reading of the head.
fn in_lean_subset(request: &httparse::Request<'_, '_>) -> bool {
    if request.version != Some(1) {
        return false;
    }
    let (Some(method), Some(target)) = (request.method, request.path) else {
        return false;
    };
    if method == "CONNECT" || !target.starts_with('/') {
        return false;
    }
    if http::uri::PathAndQuery::try_from(target).is_err()
        || http::Method::from_bytes(method.as_bytes()).is_err()
    {
        return false;
    }
    let mut lengths = 0;
    for line in request.headers.iter() {
        let name = line.name.as_bytes();
        if is(name, "transfer-encoding") || is(name, "expect") || is(name, "upgrade") {
            return false;
        }
        if is(name, "content-length") {
            lengths += 1;
            let value = line.value;
            if lengths > 1
                || value.is_empty()
                || value.len() > 19
                || !value.iter().all(u8::is_ascii_digit)
            {
                return false;
            }
        }
        if is(name, "connection") && items(line.value).any(|item| is(item, "upgrade")) {
            return false;
        }
    }
    true
}

/// Whether a client line named `name` must not reach the upstream, by the rules in
/// `proxy/forwarding.rs`'s doc: identity, hop-by-hop, named by `Connection` (but never
/// `Content-Length`), set by the gateway, `Host`, `Transfer-Encoding`, `Authorization`; a
/// name with `_` is judged as written with `-` too, and a `Content_Length` never travels;
/// the client's `Content-Length` line neither, as the gateway writes the length itself.
fn stripped(name: &[u8], connection_names: &[Vec<u8>]) -> bool {
    if name.contains(&b'_') {
        let dashed: Vec<u8> = name
            .iter()
            .map(|&b| if b == b'_' { b'-' } else { b })
            .collect();
        if is(&dashed, "content-length") || stripped(&dashed, connection_names) {
            return true;
        }
    }
    IDENTITY.iter().any(|known| is(name, known))
        || HOP_BY_HOP.iter().any(|known| is(name, known))
        || SET_BY_GATEWAY.iter().any(|known| is(name, known))
        || is(name, "host")
        || is(name, "transfer-encoding")
        || is(name, "authorization")
        || is(name, "content-length")
        || (!is(name, "content-length")
            && connection_names
                .iter()
                .any(|named| named.eq_ignore_ascii_case(name)))
}

fuzz_target!(|data: &[u8]| {
    let mut head = RequestHead::default();
    let verdict = parse_request(data, &mut head);

    let mut lines = [httparse::EMPTY_HEADER; 100];
    let mut request = httparse::Request::new(&mut lines);
    let reference = request.parse(data);
    match (&verdict, &reference) {
        (Parsed::Partial, Ok(httparse::Status::Partial)) => return,
        (Parsed::Partial, other) => panic!("engine waits for more, httparse says {other:?}"),
        (Parsed::Complete((), len), Ok(httparse::Status::Complete(expected))) => {
            assert_eq!(len, expected, "head length differs from httparse");
            assert!(
                in_lean_subset(&request),
                "engine took a head outside its subset"
            );
        }
        (Parsed::Complete(..), other) => panic!("engine took a head httparse reads as {other:?}"),
        (Parsed::NotOurs, Ok(httparse::Status::Complete(_))) => {
            assert!(
                !in_lean_subset(&request),
                "engine left a head in its subset to hyper"
            );
            return;
        }
        (Parsed::NotOurs, _) => return,
    }

    // The engine took it: check what it forwards.
    let connection_names: Vec<Vec<u8>> = request
        .headers
        .iter()
        .filter(|line| is(line.name.as_bytes(), "connection"))
        .flat_map(|line| items(line.value).map(<[u8]>::to_vec))
        .collect();
    let sent: Vec<(&[u8], &[u8])> = request
        .headers
        .iter()
        .map(|line| (line.name.as_bytes(), line.value))
        .collect();
    let expected_lines: Vec<(&[u8], &[u8])> = sent
        .iter()
        .copied()
        .filter(|(name, _)| !stripped(name, &connection_names))
        .collect();
    let target = request.path.unwrap();
    let target = target.split('#').next().unwrap();
    assert_eq!(head.target(), target);
    assert_eq!(head.method().as_str(), request.method.unwrap());
    assert!(
        head.lines().eq(sent.iter().copied()),
        "the head's lines are not the client's"
    );

    let client = ClientAddr::new("192.0.2.7:40000".parse().unwrap());
    let id = RequestId::from_value(Some(b"fuzz-request"));
    let forwarding = Forwarding::new(&head, &client, &TrustedProxies::default(), &id, false);
    let mut out = Vec::new();
    write_request(
        &mut out,
        &head,
        &forwarding,
        &HeaderValue::from_static(UPSTREAM_HOST),
    );

    let mut out_lines = [httparse::EMPTY_HEADER; 120];
    let mut forwarded = httparse::Request::new(&mut out_lines);
    let Ok(httparse::Status::Complete(len)) = forwarded.parse(&out) else {
        panic!(
            "the forwarded head does not parse: {:?}",
            String::from_utf8_lossy(&out)
        );
    };
    assert_eq!(len, out.len(), "the forwarded head is not one message");
    assert_eq!(forwarded.method, request.method);
    assert_eq!(forwarded.path, Some(target));
    assert_eq!(forwarded.version, Some(1));
    for line in forwarded.headers.iter() {
        assert!(
            !line.value.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)),
            "CR, LF or NUL in a value"
        );
    }
    let got: Vec<(&[u8], &[u8])> = forwarded
        .headers
        .iter()
        .map(|line| (line.name.as_bytes(), line.value))
        .collect();
    let (host, rest) = got.split_first().expect("a Host line");
    assert_eq!(*host, (&b"host"[..], UPSTREAM_HOST.as_bytes()));
    let (client_part, own) = rest.split_at(expected_lines.len());
    assert_eq!(
        client_part,
        &expected_lines[..],
        "forwarded client lines differ from the rule"
    );
    let own_names: Vec<&[u8]> = own.iter().map(|(name, _)| *name).collect();
    let mut expected_own: Vec<&[u8]> = Vec::new();
    let sent_length = sent.iter().any(|(name, _)| is(name, "content-length"));
    if sent_length {
        expected_own.push(b"content-length");
    }
    expected_own.extend([&b"x-forwarded-for"[..], b"x-forwarded-proto"]);
    if head.host().is_some() {
        expected_own.push(b"x-forwarded-host");
    }
    expected_own.push(b"x-request-id");
    assert_eq!(own_names, expected_own);
    // No proxy is trusted here: the client's address is the peer's, whatever it sent.
    let forwarded_for = own
        .iter()
        .find(|(name, _)| is(name, "x-forwarded-for"))
        .map(|(_, value)| *value);
    assert_eq!(
        forwarded_for,
        Some(&b"192.0.2.7"[..]),
        "a client's X-Forwarded-For was believed"
    );
    // One framing: the length the engine read, as a plain number, or none.
    let lengths: Vec<&[u8]> = got
        .iter()
        .filter(|(name, _)| is(name, "content-length"))
        .map(|(_, value)| *value)
        .collect();
    let sent_lengths: Vec<&[u8]> = sent
        .iter()
        .filter(|(name, _)| is(name, "content-length"))
        .map(|(_, value)| *value)
        .collect();
    assert_eq!(lengths.len(), sent_lengths.len());
    assert!(lengths.len() <= 1);
    let number = |value: &[u8]| std::str::from_utf8(value).unwrap().parse::<u64>().unwrap();
    let body_len = sent_lengths.first().map_or(0, |value| number(value));
    assert_eq!(head.body_len, body_len);
    if let Some(written) = lengths.first() {
        assert_eq!(
            *written,
            body_len.to_string().as_bytes(),
            "the length is not canonical"
        );
    }
    for (name, _) in &got {
        let dashed: Vec<u8> = name
            .iter()
            .map(|&b| if b == b'_' { b'-' } else { b })
            .collect();
        assert!(
            !is(&dashed, "transfer-encoding"),
            "a Transfer-Encoding went upstream"
        );
        // A name that reads as Content-Length once dashed must be Content-Length itself.
        assert!(
            !is(&dashed, "content-length") || is(name, "content-length"),
            "a Content_Length went upstream"
        );
        assert!(
            !IDENTITY.iter().any(|known| is(&dashed, known)),
            "a client identity header went upstream"
        );
        assert!(
            !HOP_BY_HOP.iter().any(|known| is(&dashed, known)),
            "a hop-by-hop header went upstream"
        );
    }
    let close = connection_names.iter().any(|named| is(named, "close"));
    assert_eq!(head.close, close);
});
