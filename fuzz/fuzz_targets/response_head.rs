//! The lean engine's upstream response head reader (`parse_response`), on arbitrary upstream
//! bytes, to each request method that changes framing.
//!
//! Properties:
//! - Its body framing is the one RFC 9112 §6.3 gives, by a reference written here from the
//!   RFC's list, or the head is refused. A plain head (HTTP/1.0 or 1.1, not 101, at most one
//!   `Content-Length` of digits, no `Transfer-Encoding` or exactly `chunked`) is never refused.
//! - It never reuses an upstream connection whose end it cannot tell: HTTP/1.0, `Connection:
//!   close`, read-until-close and length-beside-chunked all close.
//! - What it relays parses back (httparse) as the same status and the upstream's lines minus
//!   exactly the hop-by-hop ones, those the gateway decides, those `Connection` names (never
//!   `Content-Length`), every length line replaced by one the gateway writes as a number
//!   where the length frames a body the client gets (not chunked, 204 or 304); so the
//!   client sees one framing, the one the engine relays by.

#![no_main]

use gateway::fuzzing::{parse_response, Framing, Parsed};
use http::Method;
use libfuzzer_sys::fuzz_target;

#[path = "reference/http.rs"]
mod reference;
use reference::{is, items, HOP_BY_HOP};

/// RFC 9112 §6.3, for a response: `None` where the RFC says the message is invalid (or where
/// it leaves the choice to the recipient and a careful one refuses).
fn rfc_framing(status: u16, method: &Method, headers: &[httparse::Header<'_>]) -> Option<Framing> {
    // 1. HEAD, 1xx, 204, 304: no body, whatever the header fields say.
    if *method == Method::HEAD || (100..200).contains(&status) || status == 204 || status == 304 {
        return Some(Framing::Empty);
    }
    // 3. Transfer-Encoding: chunked last means chunked; otherwise read until close.
    let codings: Vec<&[u8]> = headers
        .iter()
        .filter(|line| is(line.name.as_bytes(), "transfer-encoding"))
        .flat_map(|line| items(line.value))
        .collect();
    let te_lines = headers
        .iter()
        .any(|line| is(line.name.as_bytes(), "transfer-encoding"));
    if te_lines {
        return Some(match codings.last() {
            Some(last) if is(last, "chunked") => Framing::Chunked,
            _ => Framing::UntilClose,
        });
    }
    // 5. Content-Length: all values (a list, or repeated lines) the same valid number, else invalid.
    let mut length = None;
    for line in headers
        .iter()
        .filter(|line| is(line.name.as_bytes(), "content-length"))
    {
        for item in line.value.split(|&b| b == b',') {
            let item = item.trim_ascii();
            if item.is_empty() || !item.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let value: u64 = std::str::from_utf8(item).ok()?.parse().ok()?;
            if length.is_some_and(|known| known != value) {
                return None;
            }
            length = Some(value);
        }
    }
    // 8. Otherwise until the connection closes.
    Some(length.map_or(Framing::UntilClose, Framing::Length))
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, raw)) = data.split_first() else {
        return;
    };
    let method = match selector % 4 {
        0 => Method::GET,
        1 => Method::HEAD,
        2 => Method::POST,
        _ => Method::DELETE,
    };
    let mut out = Vec::new();
    let verdict = parse_response(raw, &method, &mut out);

    let mut lines = [httparse::EMPTY_HEADER; 100];
    let mut reference = httparse::Response::new(&mut lines);
    let parsed = reference.parse(raw);
    let (head, len) = match verdict {
        Ok(Parsed::Partial) => {
            assert!(
                matches!(parsed, Ok(httparse::Status::Partial)),
                "engine waits, httparse says {parsed:?}"
            );
            return;
        }
        Ok(Parsed::NotOurs) => panic!("a response is never NotOurs"),
        Err(_) => {
            // Refused: fine, unless it was a plain head with nothing to refuse.
            if let Ok(httparse::Status::Complete(_)) = parsed {
                let plain_version = matches!(reference.version, Some(0 | 1));
                let status = reference.code.unwrap_or(0);
                let lengths: Vec<&[u8]> = reference
                    .headers
                    .iter()
                    .filter(|line| is(line.name.as_bytes(), "content-length"))
                    .map(|line| line.value)
                    .collect();
                let te: Vec<&[u8]> = reference
                    .headers
                    .iter()
                    .filter(|line| is(line.name.as_bytes(), "transfer-encoding"))
                    .map(|line| line.value)
                    .collect();
                let plain = plain_version
                    && (100..1000).contains(&status)
                    && status != 101
                    && lengths.len() <= 1
                    && lengths.iter().all(|v| {
                        !v.is_empty() && v.len() <= 19 && v.iter().all(u8::is_ascii_digit)
                    })
                    && (te.is_empty() || (te.len() == 1 && is(te[0].trim_ascii(), "chunked")));
                assert!(!plain, "a plain response head was refused");
            }
            return;
        }
        Ok(Parsed::Complete(head, len)) => (head, len),
    };
    let Ok(httparse::Status::Complete(expected_len)) = parsed else {
        panic!("engine read a head httparse reads as {parsed:?}");
    };
    assert_eq!(len, expected_len);
    let status = reference.code.unwrap();
    assert_eq!(head.status.as_u16(), status);
    assert_ne!(status, 101, "a 101 nobody asked for was taken");
    let headers = &*reference.headers;
    let rfc =
        rfc_framing(status, &method, headers).expect("engine took framing the RFC calls invalid");
    assert_eq!(head.framing, rfc, "framing differs from RFC 9112 §6.3");

    let has = |name: &str| headers.iter().any(|line| is(line.name.as_bytes(), name));
    let connection_names: Vec<&[u8]> = headers
        .iter()
        .filter(|line| is(line.name.as_bytes(), "connection"))
        .flat_map(|line| items(line.value))
        .collect();
    let must_close = reference.version == Some(0)
        || connection_names.iter().any(|named| is(named, "close"))
        || head.framing == Framing::UntilClose
        || (head.framing == Framing::Chunked && has("content-length"));
    assert!(
        !must_close || head.close,
        "an upstream connection that must close is kept"
    );

    if (100..200).contains(&status) {
        assert!(out.is_empty(), "an informational head was relayed");
        return;
    }
    // What the client gets, parsed back.
    out.extend_from_slice(b"\r\n");
    let mut relayed_lines = [httparse::EMPTY_HEADER; 100];
    let mut relayed = httparse::Response::new(&mut relayed_lines);
    assert_eq!(
        relayed.parse(&out),
        Ok(httparse::Status::Complete(out.len())),
        "relayed head does not parse"
    );
    assert_eq!(relayed.code, Some(status));
    assert_eq!(relayed.version, Some(1));
    // 204 and 304 have no body to measure, and a chunked body's length is not the one sent.
    let unframed_length = head.framing == Framing::Chunked || status == 204 || status == 304;
    let mut expected: Vec<(&[u8], &[u8])> = headers
        .iter()
        .map(|line| (line.name.as_bytes(), line.value))
        .filter(|(name, _)| {
            let gateway_decides = is(name, "transfer-encoding")
                || is(name, "x-request-id")
                || (name.len() >= 15 && is(&name[..15], "access-control-"));
            let named = connection_names
                .iter()
                .any(|named| named.eq_ignore_ascii_case(name));
            !(HOP_BY_HOP.iter().any(|hop| is(name, hop))
                || gateway_decides
                || named
                || is(name, "content-length"))
        })
        .collect();
    // The declared length (every line agrees, or the head was refused) goes once, as its
    // number, after the other lines, wherever it frames what the client gets.
    let declared = headers
        .iter()
        .find(|line| is(line.name.as_bytes(), "content-length"))
        .map(|line| {
            std::str::from_utf8(line.value)
                .unwrap()
                .parse::<u64>()
                .unwrap()
        });
    let written = declared.filter(|_| !unframed_length).map(|n| n.to_string());
    if let Some(written) = &written {
        expected.push((b"content-length", written.as_bytes()));
    }
    let got: Vec<(&[u8], &[u8])> = relayed
        .headers
        .iter()
        .map(|line| (line.name.as_bytes(), line.value))
        .collect();
    assert_eq!(got, expected, "relayed lines differ from the rule");
    assert!(!got.iter().any(|(name, _)| is(name, "transfer-encoding")));
    if let Framing::Length(n) = head.framing {
        assert_eq!(
            written,
            Some(n.to_string()),
            "the framing length is not relayed"
        );
    }
    assert_eq!(head.dated, got.iter().any(|(name, _)| is(name, "date")));
});
