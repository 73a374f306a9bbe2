//! The lean HTTP/1.1 engine (`gateway/src/http1.rs`) on real sockets: pipelining and
//! keep-alive (one upstream connection per client connection, reused, replaced when the
//! upstream closed it, a lost request retried only when that is safe), the hand-off to hyper
//! mid-connection for requests outside its subset (and hyper refusing ambiguous framing),
//! every upstream answer framing (length, chunked with extensions and trailers, close-delimited,
//! 1xx, conflicting, cut short) through a raw-socket upstream, refusals of requests whose body
//! was not read, short bodies, HEAD, draining, and parity of what clients and upstreams see
//! with the hyper engine.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use gateway::{config::Http1Engine, request::PublicRoute};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};

use crate::{
    connections::wait_until_released,
    helpers::{
        assert_upstream_unavailable, spawn_gateway, spawn_gateway_before, spawn_gateway_with,
        TestGateway, ALLOWED_ORIGIN,
    },
    raw::{self, RawConnection, RawResponse},
    upstream::{EchoUpstream, Seen},
};

/// A bounded wait for something that should happen at once; only a failure waits this long.
const GUARD: Duration = Duration::from_secs(5);

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: gw\r\n\r\n")
}

fn targets(seen: &[Seen]) -> Vec<&str> {
    seen.iter().map(|seen| seen.target.as_str()).collect()
}

/// Sends `request` on `connection` and reads its answer, which must be a 200.
async fn expect_ok(connection: &mut RawConnection, request: &str) -> RawResponse {
    connection.write(request).await;
    let response = connection.read_response().await;
    assert_eq!(response.status, 200, "{request:?} → {response:?}");
    response
}

// ---------------------------------------------------------------------------------------
// Keep-alive, pipelining and the hand-off to hyper
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let gateway = spawn_gateway().await;
    let mut connection = RawConnection::open(gateway.address).await;
    // Both requests in one write: the second is already buffered while the first, and its
    // body, are handled.
    connection
        .write(
            "POST /api/auth/one HTTP/1.1\r\nHost: gw\r\nX-Request-Id: first\r\n\
             Content-Length: 5\r\n\r\nhello\
             GET /api/auth/two HTTP/1.1\r\nHost: gw\r\nX-Request-Id: second\r\n\r\n",
        )
        .await;
    let first = connection.read_response().await;
    let second = connection.read_response().await;
    assert_eq!((first.status, second.status), (200, 200));
    assert_eq!(first.header("x-request-id"), Some("first"));
    assert_eq!(second.header("x-request-id"), Some("second"));
    assert_eq!(first.body, r#"{"ok":true,"received":5}"#);

    let seen = gateway.upstream.seen();
    assert_eq!(targets(&seen), ["/api/auth/one", "/api/auth/two"]);
    assert_eq!(seen[0].body_len, 5);
}

#[tokio::test]
async fn sequential_requests_share_one_upstream_connection_over_tcp_or_a_unix_socket() {
    for upstream in [
        EchoUpstream::start().await,
        EchoUpstream::start_unix().await,
    ] {
        let gateway = spawn_gateway_before(upstream).await;
        let mut connection = RawConnection::open(gateway.address).await;
        for path in ["/api/auth/a", "/api/auth/b", "/api/auth/c"] {
            expect_ok(&mut connection, &get(path)).await;
        }
        // A body there and back, streamed through.
        connection
            .write("POST /api/auth/echo HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\n\r\nhello")
            .await;
        let echoed = connection.read_response().await;
        assert_eq!((echoed.status, echoed.body.as_str()), (200, "hello"));
        let seen = gateway.upstream.seen();
        let url = gateway.upstream.url();
        assert_eq!(
            targets(&seen),
            [
                "/api/auth/a",
                "/api/auth/b",
                "/api/auth/c",
                "/api/auth/echo"
            ],
            "{url}"
        );
        assert!(
            seen.iter().all(|request| request.peer == seen[0].peer),
            "{url}: more than one upstream connection: {:?}",
            seen.iter().map(|request| request.peer).collect::<Vec<_>>()
        );
    }
}

#[tokio::test]
async fn a_chunked_request_mid_connection_goes_to_hyper_which_serves_the_rest() {
    let gateway = spawn_gateway().await;
    let mut connection = RawConnection::open(gateway.address).await;
    expect_ok(&mut connection, &get("/api/auth/one")).await;
    // Outside the lean subset: handed to hyper with the bytes already read.
    let echoed = expect_ok(
        &mut connection,
        "POST /api/auth/echo HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n\
         5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(echoed.body, "hello world");
    expect_ok(&mut connection, &get("/api/auth/three")).await;
    assert_eq!(
        targets(&gateway.upstream.seen()),
        ["/api/auth/one", "/api/auth/echo", "/api/auth/three"]
    );
}

/// A chunked body hyper cannot decode is the client's fault: 400, as for a body shorter than
/// its length, not a 502 that would blame (and count against) the upstream.
#[tokio::test]
async fn a_malformed_chunked_body_is_400_not_an_upstream_failure() {
    let gateway = spawn_gateway().await;
    for (what, chunks) in [
        ("a size that is not hex", "5\r\nhello\r\nzz\r\n\r\n"),
        (
            "a size past u64",
            "5\r\nhello\r\nfffffffffffffffffff\r\n\r\n",
        ),
    ] {
        let mut connection = RawConnection::open(gateway.address).await;
        connection
            .write(format!(
                "POST /api/auth/upload HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n{chunks}"
            ))
            .await;
        let response = connection.read_response().await;
        assert_eq!(response.status, 400, "{what}: {response:?}");
        assert_eq!(
            response.body,
            r#"{"detail":"Bad request: the body ended early or was malformed"}"#
        );
    }
}

/// Content-Length and Transfer-Encoding together: hyper (RFC 9112 §6.1) reads the body as
/// chunked, drops the Content-Length and closes the connection after answering, so the
/// request a Content-Length reader would take for body is never served either way.
#[tokio::test]
async fn content_length_with_transfer_encoding_is_read_as_chunked_then_the_connection_closes() {
    let gateway = spawn_gateway().await;
    let mut connection = RawConnection::open(gateway.address).await;
    expect_ok(&mut connection, &get("/api/auth/before")).await;
    let tail = "0\r\n\r\nGET /api/auth/smuggled HTTP/1.1\r\nHost: gw\r\n\r\n";
    connection
        .write(format!(
            "POST /api/auth/cl-te HTTP/1.1\r\nHost: gw\r\nContent-Length: {}\r\n\
             Transfer-Encoding: chunked\r\n\r\n{tail}",
            tail.len()
        ))
        .await;
    let response = connection.read_response().await;
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.header("connection"), Some("close"));
    assert!(connection.ends_within(GUARD).await);

    let seen = gateway.upstream.seen();
    assert_eq!(targets(&seen), ["/api/auth/before", "/api/auth/cl-te"]);
    assert_eq!(seen[1].body_len, 0, "the body is the chunked one: empty");
    assert_ne!(
        seen[1].headers.get("content-length").map(|v| v.as_bytes()),
        Some(tail.len().to_string().as_bytes()),
        "the client's Content-Length reached the upstream"
    );
}

/// A `Connection` header naming `Content-Length` (RFC 9110 §7.6.1 forbids it) must not part
/// a body from its length: the upstream would read the body as a request of its own, which
/// the gateway never authenticated nor stripped of a client's identity headers.
#[tokio::test]
async fn connection_cannot_take_the_length_from_a_body_and_smuggle_it_as_a_request() {
    for engine in [Http1Engine::Lean, Http1Engine::Hyper] {
        let gateway = spawn_gateway_with(|s| s.http1_engine = engine).await;
        let smuggled = "GET /api/victim/tasks HTTP/1.1\r\nHost: x\r\nx-user-id: victim\r\n\r\n";
        let mut connection = RawConnection::open(gateway.address).await;
        let echoed = expect_ok(
            &mut connection,
            &format!(
                "POST /api/auth/echo HTTP/1.1\r\nHost: gw\r\nConnection: Content-Length\r\n\
                 Content_Length: 0\r\nContent-Length: {}\r\n\r\n{smuggled}",
                smuggled.len()
            ),
        )
        .await;
        assert_eq!(
            echoed.body, smuggled,
            "{engine:?}: the body did not arrive as one"
        );
        expect_ok(&mut connection, &get("/api/auth/after")).await;
        let seen = gateway.upstream.seen();
        assert_eq!(
            targets(&seen),
            ["/api/auth/echo", "/api/auth/after"],
            "{engine:?}"
        );
        assert!(
            seen[0].headers.get("content_length").is_none(),
            "{engine:?}"
        );
    }
}

#[tokio::test]
async fn ambiguous_or_malformed_framing_is_refused_by_hyper_before_the_upstream() {
    let gateway = spawn_gateway().await;
    for (name, request) in [
        (
            "two different lengths",
            "POST /api/auth/two HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\n\
             Content-Length: 6\r\n\r\nhello!",
        ),
        (
            "a signed length",
            "POST /api/auth/plus HTTP/1.1\r\nHost: gw\r\nContent-Length: +5\r\n\r\nhello",
        ),
        (
            "an obs-fold line",
            "GET /api/auth/folded HTTP/1.1\r\nHost: gw\r\nX-Folded: a\r\n b\r\n\r\n",
        ),
    ] {
        // Each on a connection the lean engine has served already, so hyper takes over
        // mid-connection.
        let mut connection = RawConnection::open(gateway.address).await;
        expect_ok(&mut connection, &get("/api/auth/before")).await;
        connection.write(request).await;
        let response = connection.read_response().await;
        assert_eq!(response.status, 400, "{name}: {response:?}");
        assert!(connection.ends_within(GUARD).await, "{name}");
    }
    let seen = gateway.upstream.seen();
    assert!(
        seen.iter()
            .all(|request| request.target == "/api/auth/before"),
        "{:?}",
        targets(&seen)
    );
}

/// The hand-off gives hyper the unread bytes; were they sniffed for the HTTP/2 preface again,
/// a client could turn an HTTP/1.1 connection into HTTP/2 after its first request (and that
/// HTTP/2 session would multiplex over upstream connections meant for one request at a
/// time). Like any HTTP/1.1 server (RFC 9113 §3.4), both engines refuse the preface there.
#[tokio::test]
async fn an_http2_preface_after_an_http1_request_is_not_served_as_http2() {
    for engine in [Http1Engine::Hyper, Http1Engine::Lean] {
        let gateway = spawn_gateway_with(|s| s.http1_engine = engine).await;
        let mut connection = RawConnection::open(gateway.address).await;
        expect_ok(&mut connection, &get("/api/auth/one")).await;
        // The preface and an empty SETTINGS frame, as an HTTP/2 client opens.
        let mut preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        preface.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        connection.write(&preface).await;
        // Enough to tell an HTTP/1.1 status line from HTTP/2 frames; nothing if it closes.
        let answer = connection.read_some(10).await;
        assert!(
            answer.is_empty() || answer.starts_with(b"HTTP/1.1 4"),
            "{engine:?}: an HTTP/1.1 connection answered the HTTP/2 preface with {:?}",
            String::from_utf8_lossy(&answer)
        );

        // The preface alone, in the same write as a request: what the lean engine hands on
        // after the request is exactly the preface, and still not HTTP/2.
        let mut connection = RawConnection::open(gateway.address).await;
        connection
            .write(format!(
                "{}PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
                get("/api/auth/one")
            ))
            .await;
        assert_eq!(connection.read_response().await.status, 200, "{engine:?}");
        let answer = connection.read_some(10).await;
        assert!(
            answer.is_empty() || answer.starts_with(b"HTTP/1.1 4"),
            "{engine:?}: the preface after a request in one write was answered with {:?}",
            String::from_utf8_lossy(&answer)
        );
    }
}

// ---------------------------------------------------------------------------------------
// Upstream answer framing, through an upstream that writes raw bytes
// ---------------------------------------------------------------------------------------

/// An upstream that sends more than its answer frames is out of step with its connection:
/// the surplus, or what it sends later, would be read as the next answer on it. The
/// connection is not kept, not even by way of an idle client connection parking it for
/// another client (`http1/upstream.rs`), which used to drop the surplus and hand the
/// connection on.
#[tokio::test]
async fn an_upstream_connection_that_sent_more_than_its_answer_is_not_reused() {
    let scripted = ScriptedUpstream::start(|_| {
        Reply::Keep(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokXX".to_vec())
    })
    .await;
    let gateway = gateway_before(&scripted).await;
    let mut alice = RawConnection::open(gateway.address).await;
    let response = expect_ok(&mut alice, &get("/api/raw/a")).await;
    assert_eq!(response.body, "ok");

    // Alice's connection goes idle and lets go of its upstream connections.
    wait_until_released(&gateway, Http1Engine::Lean, 1).await;
    let mut bob = RawConnection::open(gateway.address).await;
    let response = expect_ok(&mut bob, &get("/api/raw/b")).await;
    assert_eq!(response.body, "ok");
    assert_eq!(
        scripted.connections(),
        [0, 1],
        "bob's request went over the connection that had sent too much"
    );
}

/// hyper answers a head it cannot read with a bare head of its own, which the gateway
/// replaces with its JSON refusal (`server/refusals.rs`). A frame of a relayed body that reads
/// exactly like such a head, written on its own, is not one: it goes out unchanged, the
/// answer's length holds, and the connection serves its next request in step. On both
/// engines, and hyper's is the one that writes body frames as writes of their own.
#[tokio::test]
async fn a_body_frame_that_reads_like_a_bare_refusal_is_relayed_unchanged() {
    const LOOKALIKE: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\r\n";
    let scripted = ScriptedUpstream::start(|_| {
        Reply::Paced(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 32\r\n\r\nabcd".to_vec(),
            LOOKALIKE.to_vec(),
        ])
    })
    .await;
    for engine in [Http1Engine::Hyper, Http1Engine::Lean] {
        let gateway = gateway_before_on(&scripted, engine).await;
        let mut connection = RawConnection::open(gateway.address).await;
        // HTTP/1.0 keep-alive: served by hyper on either engine.
        let request = "GET /api/raw/a HTTP/1.0\r\nHost: gw\r\nConnection: keep-alive\r\n\r\n";
        for _ in 0..2 {
            connection.write(request).await;
            let response = connection.read_response().await;
            assert_eq!(response.status, 200, "{engine:?}");
            assert_eq!(
                response.wire,
                [b"abcd".as_slice(), LOOKALIKE].concat(),
                "{engine:?}"
            );
        }
        // A real refusal on the same connection is still the gateway's.
        connection
            .write("GET /api/raw/a HTTP/1.1\r\nHost: gw\r\nBad Header\r\n\r\n")
            .await;
        let refusal = connection.read_response().await;
        assert_eq!(refusal.status, 400, "{engine:?}");
        assert!(
            refusal.header("x-request-id").is_some(),
            "{engine:?}: {refusal:?}"
        );
    }
}

const CHUNKED_WITH_EXTRAS: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\
    Content-Type: text/plain\r\n\r\n\
    5;name=value\r\nhello\r\n6 ; quoted=\"a;b\"\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n";

#[tokio::test]
async fn a_chunked_answer_is_rechunked_without_extensions_or_trailers() {
    let scripted = ScriptedUpstream::start(|_| Reply::Keep(CHUNKED_WITH_EXTRAS.to_vec())).await;
    let gateway = gateway_before(&scripted).await;

    // A real client decodes it, and its connection carries a second request.
    for _ in 0..2 {
        let response = gateway
            .http
            .get(gateway.url("/api/raw/chunked"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "hello world");
    }
    // Both over one upstream connection: the body's end was found exactly.
    assert_eq!(scripted.connections(), [0, 0]);

    // On the wire: plain chunks, no extension, no trailer.
    let mut connection = RawConnection::open(gateway.address).await;
    for _ in 0..2 {
        let response = expect_ok(&mut connection, &get("/api/raw/chunked")).await;
        assert_eq!(response.header("transfer-encoding"), Some("chunked"));
        assert_eq!(response.header("connection"), None);
        assert_eq!(response.body, "hello world");
        let wire = String::from_utf8_lossy(&response.wire);
        assert!(
            !wire.contains(';') && !wire.contains("X-Trailer"),
            "{wire:?}"
        );
    }
}

/// A body the upstream ends by closing reaches the client in chunks, whole, and the client's
/// connection carries on, on both engines, and from an HTTP/1.0 upstream too (hyper's path
/// had relayed its version, so the client read an unframed HTTP/1.0 answer and lost the
/// connection).
#[tokio::test]
async fn a_close_delimited_answer_is_relayed_whole_in_chunks_and_the_client_connection_stays() {
    let body = "0123456789".repeat(10 * 1024); // 100 KiB: many reads
    for version in ["HTTP/1.1", "HTTP/1.0"] {
        let answer = format!("{version} 200 OK\r\nContent-Type: text/plain\r\n\r\n{body}");
        let scripted = ScriptedUpstream::start(move |_| Reply::Close(answer.clone().into())).await;
        for engine in [Http1Engine::Lean, Http1Engine::Hyper] {
            let gateway = gateway_before_on(&scripted, engine).await;
            let mut connection = RawConnection::open(gateway.address).await;
            for _ in 0..2 {
                let response = expect_ok(&mut connection, &get("/api/raw/until-close")).await;
                let context = format!("{version} upstream, {engine:?}");
                assert_eq!(
                    response.header("transfer-encoding"),
                    Some("chunked"),
                    "{context}"
                );
                assert_eq!(response.header("connection"), None, "{context}");
                assert_eq!(response.header("content-length"), None, "{context}");
                assert_eq!(response.body.len(), body.len(), "{context}");
                assert!(response.body == body, "{context}: the body arrived altered");
            }
        }
    }
}

#[tokio::test]
async fn an_informational_answer_is_skipped() {
    let scripted = ScriptedUpstream::start(|_| {
        Reply::Keep(
            b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n\
              HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                .to_vec(),
        )
    })
    .await;
    let gateway = gateway_before(&scripted).await;
    let mut connection = RawConnection::open(gateway.address).await;
    for _ in 0..2 {
        let response = expect_ok(&mut connection, &get("/api/raw/hints")).await;
        assert_eq!(response.body, "ok");
        assert_eq!(response.header("link"), None, "the 103's headers leaked");
    }
}

/// The length frames an answer whatever the upstream's `Connection` names; a length beside
/// chunked framing, or on a 204, goes. Either way the client finds where each answer ends,
/// and the next answer on its connection is its own.
#[tokio::test]
async fn an_answer_keeps_exactly_the_length_that_frames_it() {
    for engine in [Http1Engine::Lean, Http1Engine::Hyper] {
        let scripted = ScriptedUpstream::start(|arrival| {
            Reply::Keep(if arrival.line.contains("/named") {
                b"HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 6\r\n\r\n\
                  ABCDEF"
                    .to_vec()
            } else if arrival.line.contains("/both") {
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n\
                  5\r\nHELLO\r\n0\r\n\r\n"
                    .to_vec()
            } else {
                b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n".to_vec()
            })
        })
        .await;
        let gateway = gateway_before_on(&scripted, engine).await;
        let mut connection = RawConnection::open(gateway.address).await;
        for _ in 0..2 {
            let named = expect_ok(&mut connection, &get("/api/raw/named")).await;
            assert_eq!(named.header("content-length"), Some("6"), "{engine:?}");
            assert_eq!(named.body, "ABCDEF", "{engine:?}");
            connection.write(get("/api/raw/empty")).await;
            let empty = connection.read_response().await;
            assert_eq!(empty.status, 204, "{engine:?}");
            assert_eq!(empty.header("content-length"), None, "{engine:?}");
        }
        // Last: a message with both framings is not trusted for another on its connection.
        let both = expect_ok(&mut connection, &get("/api/raw/both")).await;
        assert_eq!(both.body, "HELLO", "{engine:?}");
        assert_eq!(both.header("content-length"), None, "{engine:?}");
    }
}

#[tokio::test]
async fn conflicting_content_lengths_from_the_upstream_are_502() {
    let scripted = ScriptedUpstream::start(|_| {
        Reply::Keep(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd".to_vec(),
        )
    })
    .await;
    let gateway = gateway_before(&scripted).await;
    let response = gateway
        .http
        .get(gateway.url("/api/raw/two-lengths"))
        .send()
        .await
        .unwrap();
    assert_upstream_unavailable(response).await;
}

#[tokio::test]
async fn an_answer_cut_short_by_the_upstream_ends_the_client_connection() {
    let scripted = ScriptedUpstream::start(|_| {
        Reply::Close(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".to_vec())
    })
    .await;
    let gateway = gateway_before(&scripted).await;
    let response = gateway
        .http
        .get(gateway.url("/api/raw/short"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = tokio::time::timeout(GUARD, response.bytes())
        .await
        .expect("the truncation must end the body, not stall it");
    assert!(body.is_err(), "a truncated body read as complete: {body:?}");
}

/// A chunk-size line with something other than `;` after its whitespace is refused by hyper;
/// the lean engine had read it as an extension and relayed the body whole. Both engines now
/// end the answer the same way: never as a complete body.
#[tokio::test]
async fn a_chunk_size_with_junk_after_its_whitespace_is_refused_by_both_engines() {
    for size_line in ["5 junk", "5 6"] {
        let answer = format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{size_line}\r\nhello\r\n0\r\n\r\n"
        );
        let mut outcomes = Vec::new();
        for engine in [Http1Engine::Lean, Http1Engine::Hyper] {
            let answer = answer.clone().into_bytes();
            let scripted = ScriptedUpstream::start(move |_| Reply::Keep(answer.clone())).await;
            let gateway = gateway_before_on(&scripted, engine).await;
            let mut client = TcpStream::connect(gateway.address).await.unwrap();
            client
                .write_all(get("/api/raw/junk").as_bytes())
                .await
                .unwrap();
            let mut received = Vec::new();
            tokio::time::timeout(GUARD, client.read_to_end(&mut received))
                .await
                .expect("the answer must end, not stall")
                .ok();
            let text = String::from_utf8_lossy(&received).into_owned();
            let complete = text.ends_with("0\r\n\r\n") && text.contains("hello");
            assert!(!complete, "{engine:?} relayed {size_line:?} whole: {text}");
            outcomes.push(text.split(' ').nth(1).map(str::to_owned));
        }
        assert_eq!(
            outcomes[0], outcomes[1],
            "{size_line:?}: the engines differ"
        );
    }
}

#[tokio::test]
async fn an_answer_whose_body_stops_coming_ends_the_client_connection() {
    for engine in [Http1Engine::Lean, Http1Engine::Hyper] {
        // Ten bytes of a hundred, then nothing, the upstream connection left open.
        let scripted = ScriptedUpstream::start(|_| {
            Reply::Keep(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789".to_vec())
        })
        .await;
        let gateway = gateway_before_on(&scripted, engine).await;
        let mut connection = RawConnection::open(gateway.address).await;
        connection.write(get("/api/raw/stalls")).await;
        // Within the stall limit (the upstream timeout, 1 s here) and not for ever.
        assert!(
            raw::closed_within(&mut connection.stream, GUARD).await,
            "{engine:?}: a stalled answer must end its connection"
        );
        gateway
            .wait_for_metric("gateway_in_flight_requests", |v| v == 0.0)
            .await;
        // Counted, as the upstream's doing.
        let cut = r#"gateway_answers_cut_total{reason="upstream_stalled"}"#;
        assert_eq!(gateway.metric(cut).await, Some(1.0), "{engine:?}");
        let cut = r#"gateway_answers_cut_total{reason="client_stalled"}"#;
        assert_eq!(gateway.metric(cut).await, Some(0.0), "{engine:?}");
    }
}

#[tokio::test]
async fn a_client_that_takes_none_of_its_answer_is_cut_off() {
    // An answer far larger than what the sockets between gateway and client can hold.
    let mut answer = b"HTTP/1.1 200 OK\r\nContent-Length: 33554432\r\n\r\n".to_vec();
    answer.resize(answer.len() + (32 << 20), b'x');
    let answer = Arc::new(answer);
    for engine in [Http1Engine::Lean, Http1Engine::Hyper] {
        let scripted = ScriptedUpstream::start({
            let answer = answer.clone();
            move |_| Reply::Keep(answer.to_vec())
        })
        .await;
        let gateway = gateway_before_on(&scripted, engine).await;
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut client = socket.connect(gateway.address).await.unwrap();
        client
            .write_all(get("/api/raw/big").as_bytes())
            .await
            .unwrap();
        // The answer is under way, then stuck on the client, which reads nothing...
        gateway
            .wait_for_metric("gateway_in_flight_requests", |v| v == 1.0)
            .await;
        // ... and within the stall limit the gateway gives up its place.
        gateway
            .wait_for_metric("gateway_in_flight_requests", |v| v == 0.0)
            .await;
        let mut received = Vec::new();
        let _ = tokio::time::timeout(GUARD, client.read_to_end(&mut received)).await;
        assert!(
            received.len() < answer.len(),
            "{engine:?}: the whole answer arrived ({} bytes)",
            received.len()
        );
        // Counted, as the client's doing.
        let cut = r#"gateway_answers_cut_total{reason="client_stalled"}"#;
        assert_eq!(gateway.metric(cut).await, Some(1.0), "{engine:?}");
    }
}

#[tokio::test]
async fn an_upstream_connection_closed_while_idle_is_replaced() {
    for engine in [Http1Engine::Lean, Http1Engine::Hyper] {
        // Every answer is complete and says nothing of closing; after answering a `/last`
        // request the upstream closes anyway, as one does when its keep-alive timeout passes.
        let scripted = ScriptedUpstream::start(|arrival| {
            let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec();
            if arrival.line.contains("/last") {
                Reply::Close(ok)
            } else {
                Reply::Keep(ok)
            }
        })
        .await;
        let gateway = gateway_before_on(&scripted, engine).await;
        let mut connection = RawConnection::open(gateway.address).await;
        expect_ok(&mut connection, &get("/api/raw/first")).await;
        expect_ok(&mut connection, &get("/api/raw/last")).await;
        scripted.wait_closed(1).await;
        expect_ok(&mut connection, &get("/api/raw/last")).await;
        scripted.wait_closed(2).await;
        // Not idempotent, so never sent twice: right only because the closed connection was
        // found out before sending.
        expect_ok(
            &mut connection,
            "PATCH /api/raw/last HTTP/1.1\r\nHost: gw\r\n\r\n",
        )
        .await;
        // Reused while open, replaced once closed.
        assert_eq!(scripted.connections(), [0, 0, 1, 2], "{engine:?}");
    }
}

#[tokio::test]
async fn a_request_lost_on_a_reused_connection_is_retried_only_if_idempotent() {
    for engine in [Http1Engine::Lean, Http1Engine::Hyper] {
        // Each connection answers its first request, then closes on the second without an
        // answer: the race of a request sent just as the upstream closed an idle connection.
        let scripted = ScriptedUpstream::start(|arrival| match arrival.nth {
            0 => Reply::Keep(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()),
            _ => Reply::Close(Vec::new()),
        })
        .await;
        let gateway = gateway_before_on(&scripted, engine).await;
        let mut connection = RawConnection::open(gateway.address).await;
        expect_ok(&mut connection, &get("/api/raw/a")).await;
        // Lost on connection 0, sent again on connection 1.
        expect_ok(&mut connection, &get("/api/raw/b")).await;
        // Lost on connection 1; the upstream may have acted on it, so it is not sent again.
        connection
            .write("PATCH /api/raw/c HTTP/1.1\r\nHost: gw\r\n\r\n")
            .await;
        let refused = connection.read_response().await;
        assert_eq!(refused.status, 502, "{engine:?}: {refused:?}");
        assert_eq!(
            scripted.arrivals(),
            [
                (0, "GET /api/raw/a HTTP/1.1".to_owned()),
                (0, "GET /api/raw/b HTTP/1.1".to_owned()),
                (1, "GET /api/raw/b HTTP/1.1".to_owned()),
                (1, "PATCH /api/raw/c HTTP/1.1".to_owned()),
            ],
            "{engine:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Request bodies the gateway does not forward
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_refusal_skips_a_body_already_received_and_keeps_the_connection() {
    let gateway = spawn_gateway().await;
    let mut connection = RawConnection::open(gateway.address).await;
    // A body that reads as a request: were it not skipped, it would be served as one.
    let smuggled = get("/api/auth/smuggled");
    let body = format!("{smuggled}{}", "x".repeat(1024 - smuggled.len()));
    connection
        .write(format!(
            "POST /api/u1/tasks HTTP/1.1\r\nHost: gw\r\nContent-Type: text/plain\r\n\
             Content-Length: 1024\r\n\r\n{body}"
        ))
        .await;
    let refused = connection.read_response().await;
    assert_eq!(refused.status, 401, "{refused:?}");
    assert_eq!(refused.header("connection"), None);
    expect_ok(&mut connection, &get("/api/auth/next")).await;
    assert_eq!(targets(&gateway.upstream.seen()), ["/api/auth/next"]);
}

#[tokio::test]
async fn a_refusal_while_a_large_body_is_still_coming_is_read_whole_before_the_close() {
    let gateway = spawn_gateway().await; // max body: 1 MiB
    let (read, mut write) = TcpStream::connect(gateway.address)
        .await
        .unwrap()
        .into_split();
    write
        .write_all(b"POST /api/u1/tasks HTTP/1.1\r\nHost: gw\r\nContent-Length: 4194304\r\n\r\n")
        .await
        .unwrap();
    // The client goes on sending its 4 MiB regardless, as simple clients do.
    let feeder = tokio::spawn(async move {
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..64 {
            if write.write_all(&chunk).await.is_err() {
                break; // the gateway closed: expected
            }
        }
    });
    let mut connection = RawConnection::over(read);
    let refused = connection.read_response().await;
    assert_eq!(refused.status, 413, "{refused:?}");
    assert_eq!(refused.header("connection"), Some("close"));
    assert!(
        refused.body.contains("Request body too large"),
        "{refused:?}"
    );
    assert!(connection.ends_within(GUARD).await);
    tokio::time::timeout(GUARD, feeder)
        .await
        .expect("the feeder is stopped by the close")
        .unwrap();
    assert!(gateway.upstream.seen().is_empty());
}

#[tokio::test]
async fn a_body_shorter_than_its_content_length_is_refused_and_counted() {
    let gateway = spawn_gateway().await;
    let mut connection = RawConnection::open(gateway.address).await;
    connection
        .write("POST /api/auth/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 1000\r\n\r\n0123456789")
        .await;
    connection.stream.shutdown().await.unwrap();
    let refused = connection.read_response().await;
    assert_eq!(refused.status, 400, "{refused:?}");
    assert_eq!(
        refused.body,
        r#"{"detail":"Bad request: the body ended early or was malformed"}"#
    );

    let metrics = gateway.metrics().await;
    for expected in [
        r#"gateway_refusals_total{reason="incomplete_body"} 1"#,
        r#"gateway_requests_total{route="public",status="400"} 1"#,
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected:?} in\n{metrics}"
        );
    }
    assert!(
        !metrics.contains(r#"gateway_requests_total{route="public",status="200"}"#),
        "{metrics}"
    );
    // Whatever reached the upstream was never a complete request.
    for seen in gateway.upstream.seen() {
        assert_eq!(seen.body_len, usize::MAX, "{seen:?}");
    }
}

// ---------------------------------------------------------------------------------------
// HEAD, parity with hyper, draining
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn an_answer_to_head_has_no_body_on_the_wire() {
    let gateway = spawn_gateway().await;
    let mut connection = RawConnection::open(gateway.address).await;
    connection
        .write("HEAD /api/auth/x HTTP/1.1\r\nHost: gw\r\n\r\n")
        .await;
    let head = connection.read_head_response().await;
    assert_eq!(head.status, 200, "{head:?}");
    // Had any body bytes followed the head, this response would not parse.
    let next = expect_ok(&mut connection, &get("/api/auth/y")).await;
    assert_eq!(next.body, r#"{"ok":true,"received":0}"#);
    let seen = gateway.upstream.seen();
    assert_eq!(seen[0].method, http::Method::HEAD);
    assert_eq!(seen[0].peer, seen[1].peer);
}

/// One answer of the parity run: status, sorted headers, body.
type Answer = (u16, Vec<(String, String)>, String);

/// A request of the parity run: `{token}` in a header stands for a valid token for alice.
struct ParityRequest {
    method: &'static str,
    path: &'static str,
    headers: &'static [&'static str],
    body: &'static str,
}

const PARITY: &[ParityRequest] = &[
    ParityRequest {
        method: "GET",
        path: "/api/auth/session?x=1",
        headers: &[],
        body: "",
    },
    ParityRequest {
        method: "GET",
        path: "/api/alice/tasks",
        headers: &["Authorization: Bearer {token}"],
        body: "",
    },
    ParityRequest {
        method: "POST",
        path: "/api/alice/tasks",
        headers: &[
            "Authorization: Bearer {token}",
            "Content-Type: application/json",
        ],
        body: r#"{"title":"milk"}"#,
    },
    ParityRequest {
        method: "GET",
        path: "/api/alice/tasks?spoofed",
        headers: &[
            "Authorization: Bearer {token}",
            "X-User-Id: mallory",
            "x_identity_credential: v1;kid=gw-test;ts=1;sig=AA",
            "Origin: https://app.example",
        ],
        body: "",
    },
    ParityRequest {
        method: "OPTIONS",
        path: "/api/alice/tasks",
        headers: &[
            "Origin: https://app.example",
            "Access-Control-Request-Method: POST",
            "Access-Control-Request-Headers: authorization, content-type",
        ],
        body: "",
    },
    ParityRequest {
        method: "GET",
        path: "/api/alice/tasks",
        headers: &["Origin: https://app.example"],
        body: "",
    },
    ParityRequest {
        method: "HEAD",
        path: "/api/auth/session",
        headers: &[],
        body: "",
    },
    ParityRequest {
        method: "GET",
        path: "/nowhere",
        headers: &[],
        body: "",
    },
];

/// What one engine did with [`PARITY`]: per request the status, the sorted response headers
/// (date and request id values blanked) and the body; then what the upstream saw, with the
/// values that differ by nature (request id, signed credential, the upstream's port) blanked.
#[derive(Debug, PartialEq)]
struct Observed {
    answers: Vec<Answer>,
    upstream: Vec<String>,
}

async fn observe(engine: Http1Engine) -> Observed {
    let gateway = spawn_gateway_with(|s| s.http1_engine = engine).await;
    let token = gateway.token("alice");
    let mut connection = RawConnection::open(gateway.address).await;
    let mut answers = Vec::new();
    for request in PARITY {
        let mut raw = format!(
            "{} {} HTTP/1.1\r\nHost: gw\r\n",
            request.method, request.path
        );
        for header in request.headers {
            raw += &header.replace("{token}", &token);
            raw += "\r\n";
        }
        if !request.body.is_empty() {
            raw += &format!("Content-Length: {}\r\n", request.body.len());
        }
        raw += "\r\n";
        raw += request.body;
        connection.write(&raw).await;
        let response = if request.method == "HEAD" {
            connection.read_head_response().await
        } else {
            connection.read_response().await
        };
        let mut body = response.body.clone();
        if let Some(id) = response.header("x-request-id") {
            body = body.replace(id, "<request id>");
        }
        let mut headers: Vec<(String, String)> = response
            .headers
            .iter()
            .map(|(name, value)| match name.as_str() {
                "date" | "x-request-id" => (name.clone(), "*".to_owned()),
                _ => (name.clone(), value.clone()),
            })
            .collect();
        headers.sort();
        answers.push((response.status, headers, body));
    }
    let upstream_authority = gateway.upstream.url().replace("http://", "");
    // Each signed request's credential judged against the exact body the upstream received:
    // both engines must frame and sign alike, so a body read differently shows up here.
    let verifier = crate::helpers::verifier();
    let upstream = gateway
        .upstream
        .seen()
        .iter()
        .map(|seen| {
            let credential = match seen.headers.get("x-identity-credential") {
                None => "none".to_owned(),
                Some(_) => match verifier.verify(
                    &seen.method,
                    &seen.target,
                    &seen.headers,
                    &seen.body,
                    proto_shared::identity::unix_now(),
                ) {
                    Ok(Some(user)) => format!("verified for {}", user.as_str()),
                    Ok(None) => "none".to_owned(),
                    Err(error) => format!("refused: {}", error.reason()),
                },
            };
            let mut headers: Vec<String> = seen
                .headers
                .iter()
                .filter(|(name, _)| {
                    !matches!(name.as_str(), "x-request-id" | "x-identity-credential")
                })
                .map(|(name, value)| {
                    let value = value
                        .to_str()
                        .unwrap()
                        .replace(&upstream_authority, "<upstream>");
                    format!("{name}: {value}")
                })
                .collect();
            headers.sort();
            format!(
                "{} {} {:?} body={} credential={credential} {headers:#?}",
                seen.method, seen.target, seen.version, seen.body_len
            )
        })
        .collect();
    Observed { answers, upstream }
}

#[tokio::test]
async fn the_lean_and_hyper_engines_answer_alike() {
    let lean = observe(Http1Engine::Lean).await;
    let hyper = observe(Http1Engine::Hyper).await;
    for (i, (lean, hyper)) in lean.answers.iter().zip(&hyper.answers).enumerate() {
        let request = &PARITY[i];
        assert_eq!(
            lean, hyper,
            "{} {}: the engines answered differently (left: lean, right: hyper)",
            request.method, request.path
        );
    }
    assert_eq!(
        lean.upstream, hyper.upstream,
        "the upstream saw different requests (left: lean, right: hyper)"
    );
    // The run covered what it meant to: five requests forwarded, the rest answered here.
    assert_eq!(lean.upstream.len(), 5, "{:#?}", lean.upstream);
    let signed = lean
        .upstream
        .iter()
        .filter(|seen| seen.contains("credential=verified for alice"))
        .count();
    assert_eq!(
        signed, 3,
        "every API request verifies against its body: {:#?}",
        lean.upstream
    );
    let statuses: Vec<u16> = lean.answers.iter().map(|answer| answer.0).collect();
    assert_eq!(statuses, [200, 200, 200, 200, 204, 401, 200, 404]);
    assert!(lean.answers[5].1.contains(&(
        "access-control-allow-origin".to_owned(),
        ALLOWED_ORIGIN.to_owned()
    )));
}

#[tokio::test]
async fn an_idle_keep_alive_connection_closes_when_draining_starts() {
    let mut gateway = spawn_gateway().await;
    let mut connection = RawConnection::open(gateway.address).await;
    expect_ok(&mut connection, &get("/api/auth/x")).await;
    let stopped = gateway.shut_down();
    assert!(
        raw::closed_within(&mut connection.stream, Duration::from_secs(2)).await,
        "an idle connection held the drain"
    );
    tokio::time::timeout(GUARD, stopped)
        .await
        .expect("the gateway stops once drained")
        .unwrap();
}

#[tokio::test]
async fn an_answer_in_flight_when_draining_starts_closes_its_connection() {
    let mut gateway =
        spawn_gateway_with(|s| s.limits.upstream_timeout = Duration::from_secs(10)).await;
    let mut connection = RawConnection::open(gateway.address).await;
    connection.write(get("/api/auth/hold")).await;
    gateway.upstream.wait_for_arrivals(1).await;
    let stopped = gateway.shut_down();
    gateway.wait_until_not_accepting().await; // draining has begun
    gateway.upstream.release();
    let response = connection.read_response().await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body, "held and released");
    assert_eq!(response.header("connection"), Some("close"));
    assert!(connection.ends_within(GUARD).await);
    tokio::time::timeout(GUARD, stopped)
        .await
        .expect("the gateway stops once drained")
        .unwrap();
}

// ---------------------------------------------------------------------------------------
// A scripted upstream: raw bytes, for framings a hyper upstream never sends
// ---------------------------------------------------------------------------------------

/// A gateway with `/api/raw/` routed (public) to `scripted`.
async fn gateway_before(scripted: &ScriptedUpstream) -> TestGateway {
    gateway_before_on(scripted, Http1Engine::Lean).await
}

/// The same, with `engine` serving HTTP/1.1.
async fn gateway_before_on(scripted: &ScriptedUpstream, engine: Http1Engine) -> TestGateway {
    let route = PublicRoute::parse(&format!("/api/raw/=http://{}", scripted.address)).unwrap();
    spawn_gateway_with(|s| {
        s.public_routes.push(route);
        s.http1_engine = engine;
    })
    .await
}

/// A request as the scripted upstream read it.
#[derive(Debug, Clone)]
struct Arrival {
    /// Which accepted connection, from 0.
    connection: usize,
    /// Which request on that connection, from 0.
    nth: usize,
    /// The request line.
    line: String,
}

/// What the scripted upstream does about a request.
enum Reply {
    /// Write these bytes and wait for the next request.
    Keep(Vec<u8>),
    /// Write these bytes (maybe none) and close the connection.
    Close(Vec<u8>),
    /// Write each part in turn, a pause between, and wait for the next request: parts that
    /// reach the gateway as reads of their own.
    Paced(Vec<Vec<u8>>),
}

type Script = dyn Fn(&Arrival) -> Reply + Send + Sync;

/// An upstream that reads request heads (and `Content-Length` bodies) and answers each with
/// the bytes its script gives. Stops when dropped.
struct ScriptedUpstream {
    address: SocketAddr,
    arrivals: Arc<Mutex<Vec<Arrival>>>,
    /// How many connections the upstream has closed itself.
    closed: watch::Receiver<usize>,
    server: JoinHandle<()>,
}

impl Drop for ScriptedUpstream {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl ScriptedUpstream {
    async fn start(script: impl Fn(&Arrival) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let (closed_sender, closed) = watch::channel(0);
        let script: Arc<Script> = Arc::new(script);
        let server = tokio::spawn({
            let arrivals = arrivals.clone();
            let closed = Arc::new(closed_sender);
            async move {
                for connection in 0.. {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    tokio::spawn(serve_script(
                        stream,
                        connection,
                        script.clone(),
                        arrivals.clone(),
                        closed.clone(),
                    ));
                }
            }
        });
        Self {
            address,
            arrivals,
            closed,
            server,
        }
    }

    /// Each request so far as (connection, request line).
    fn arrivals(&self) -> Vec<(usize, String)> {
        let arrivals = self.arrivals.lock().unwrap();
        arrivals
            .iter()
            .map(|arrival| (arrival.connection, arrival.line.clone()))
            .collect()
    }

    /// The connection each request so far came over.
    fn connections(&self) -> Vec<usize> {
        let arrivals = self.arrivals.lock().unwrap();
        arrivals.iter().map(|arrival| arrival.connection).collect()
    }

    /// Waits until the upstream has closed `n` connections itself.
    async fn wait_closed(&self, n: usize) {
        let mut closed = self.closed.clone();
        tokio::time::timeout(GUARD, closed.wait_for(|closed| *closed >= n))
            .await
            .expect("the scripted upstream did not close in time")
            .unwrap();
    }
}

async fn serve_script(
    mut stream: TcpStream,
    connection: usize,
    script: Arc<Script>,
    arrivals: Arc<Mutex<Vec<Arrival>>>,
    closed: Arc<watch::Sender<usize>>,
) {
    let mut buf = Vec::new();
    for nth in 0.. {
        let Some(line) = read_request(&mut stream, &mut buf).await else {
            return; // the gateway closed it
        };
        let arrival = Arrival {
            connection,
            nth,
            line,
        };
        let reply = script(&arrival);
        // Recorded before answering, so a test that has the answer also sees the arrival.
        arrivals.lock().unwrap().push(arrival);
        match reply {
            Reply::Keep(bytes) => {
                if stream.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Reply::Paced(parts) => {
                for (i, part) in parts.iter().enumerate() {
                    if i > 0 {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    if stream.write_all(part).await.is_err() {
                        return;
                    }
                }
            }
            Reply::Close(bytes) => {
                let _ = stream.write_all(&bytes).await;
                drop(stream);
                closed.send_modify(|closed| *closed += 1);
                return;
            }
        }
    }
}

/// Reads one request (head and `Content-Length` body) and returns its request line; `None`
/// when the connection ends first.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    let head_len = loop {
        if let Some(at) = buf.windows(4).position(|window| window == b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0u8; 8192];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_len]).into_owned();
    let body_len: usize = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, value)| value.trim().parse().unwrap());
    while buf.len() < head_len + body_len {
        let mut chunk = [0u8; 8192];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    buf.drain(..head_len + body_len);
    Some(head.lines().next().unwrap_or_default().to_owned())
}
