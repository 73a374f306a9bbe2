//! The head parser and writer: the subset served, framing, what is relayed, and properties
//! over arbitrary bytes.

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use proto_shared::RequestId;

use super::*;
use crate::request::{ClientAddr, TrustedProxies};

fn request(raw: &str) -> Parsed<RequestHead> {
    parse(raw.as_bytes())
}

fn parse(raw: &[u8]) -> Parsed<RequestHead> {
    let mut head = RequestHead::default();
    match parse_request(raw, &mut head) {
        Parsed::Complete((), len) => Parsed::Complete(head, len),
        Parsed::Partial => Parsed::Partial,
        Parsed::NotOurs => Parsed::NotOurs,
    }
}

#[test]
fn the_common_case_is_read_in_place() {
    let raw = "POST /api/u1/tasks?x=1 HTTP/1.1\r\nHost: gw\r\nX-Mixed-Case: v\r\n\
               Content-Length: 5\r\nConnection: keep-alive, close\r\n\r\nhello";
    let Parsed::Complete(head, len) = request(raw) else {
        panic!("expected a complete head");
    };
    assert_eq!(len, raw.len() - 5);
    assert_eq!(head.method(), Method::POST);
    assert_eq!(head.target(), "/api/u1/tasks?x=1");
    assert_eq!(head.path(), "/api/u1/tasks");
    let mixed = HeaderName::from_static("x-mixed-case");
    assert_eq!(head.value(mixed), Some(&b"v"[..]));
    assert_eq!(head.host(), Some(&b"gw"[..]));
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
    let (undated, _) = relayed(
        "HTTP/1.1 200 OK\r\nConnection: date\r\nDate: Mon, 30 Nov 2026 13:00:00 GMT\r\n\
         Content-Length: 0\r\n\r\n",
        Method::GET,
    );
    assert!(
        !undated.dated,
        "a Date the Connection header names is not relayed"
    );
    assert_eq!(
        relayed_head,
        "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nSet-Cookie: a=1\r\n\
         Date: Mon, 30 Nov 2026 13:00:00 GMT\r\nSet-Cookie: b=2\r\ncontent-length: 2\r\n"
    );
}

/// As hyper's path relays them (`proxy::settle_response_framing`): one length line, the
/// number; none on a 304.
#[test]
fn the_length_is_relayed_once_as_its_number() {
    let (_, twice) = relayed(
        "HTTP/1.1 200 OK\r\nContent-Length: 02\r\nContent-Length: 2\r\n\r\n",
        Method::GET,
    );
    assert_eq!(twice, "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n");
    let (head, not_modified) = relayed(
        "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nETag: \"x\"\r\n\r\n",
        Method::GET,
    );
    assert_eq!(head.framing, Framing::Empty);
    assert_eq!(not_modified, "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n");
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
    let raw = "PATCH /api/u1/tasks/1/complete#top HTTP/1.1\r\nHost: gw\r\nX_User-Id: spoof\r\n\
               Content-Type: application/json\r\nConnection: X-Drop\r\nx-drop: 1\r\n\r\n";
    let Parsed::Complete(head, _) = request(raw) else {
        panic!("expected a complete head");
    };
    let client = ClientAddr::new("10.0.0.7:5000".parse().unwrap());
    let id = RequestId::from_value(Some(b"r1"));
    let forwarding = Forwarding::new(&head, &client, &TrustedProxies::default(), &id, false);
    let mut out = Vec::new();
    write_request(
        &mut out,
        &head,
        &forwarding,
        &HeaderValue::from_static("up:8081"),
    );
    let expected = "PATCH /api/u1/tasks/1/complete HTTP/1.1\r\nhost: up:8081\r\n\
                    Content-Type: application/json\r\nx-forwarded-for: 10.0.0.7\r\n\
                    x-forwarded-proto: http\r\nx-forwarded-host: gw\r\nx-request-id: r1\r\n\r\n";
    assert_eq!(String::from_utf8(out.clone()).unwrap(), expected);
    out.clear();
    write_response(&mut out, StatusCode::NOT_FOUND, &HeaderMap::new());
    assert_eq!(out, b"HTTP/1.1 404 Not Found\r\n\r\n");
}

mod properties {
    //! Whatever a client sends, the engine either leaves it to hyper or takes it with
    //! framing it can stand behind: the invariants hold for every head it accepts.

    use super::*;
    use proptest::prelude::*;

    /// Longer than the 63 bytes a name's length bit tells apart.
    const LONG_NAME: &str =
        "X-LongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLong";

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
            2 => pick(
                &["Authorization", "X-Request-Id", "X_Request_Id", LONG_NAME, "Origin"],
                &["Bearer a.b.c", "r1", ""],
            ),
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
            if let Parsed::Complete(head, _) = parse(&bytes) {
                // Relayed as bytes, so each line must be what `http` would have accepted.
                for (name, value) in head.lines() {
                    prop_assert!(HeaderName::from_bytes(name).is_ok(), "{:?}", name);
                    prop_assert!(HeaderValue::from_bytes(value).is_ok(), "{:?}", value);
                }
            }
            let _ = parse_response(&bytes, &Method::GET, &mut Vec::new());
            let _ = parse_response(&bytes, &Method::HEAD, &mut Vec::new());
        }

        #[test]
        fn an_accepted_request_has_framing_only_one_way_to_read(raw in request_head()) {
            let Parsed::Complete(head, len) = parse(raw.as_bytes()) else {
                return Ok(());
            };
            prop_assert_eq!(len, raw.len());
            prop_assert!(raw.contains(" HTTP/1.1\r\n"));
            prop_assert!(head.path().starts_with('/'));
            prop_assert_ne!(head.method(), Method::CONNECT);
            for (name, value) in head.lines() {
                prop_assert!(HeaderName::from_bytes(name).is_ok(), "{:?}", name);
                prop_assert!(HeaderValue::from_bytes(value).is_ok(), "{:?}", value);
            }
            // The quick lookup finds exactly what a scan of every line finds.
            for name in ["authorization", "x-request-id", "origin", "host", "connection", LONG_NAME] {
                let name = HeaderName::from_bytes(name.as_bytes()).unwrap();
                let scanned: Vec<&[u8]> = head
                    .lines()
                    .filter(|(sent, _)| sent.eq_ignore_ascii_case(name.as_str().as_bytes()))
                    .map(|(_, value)| value)
                    .collect();
                prop_assert_eq!(head.values(name.clone()).collect::<Vec<_>>(), scanned, "{}", name);
            }
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
