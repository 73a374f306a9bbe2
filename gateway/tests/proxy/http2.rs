//! HTTP/2 clients (cleartext, prior knowledge) are served and forwarded upstream as HTTP/1.1,
//! and their connections cannot be held open by sending nothing, or half a request.

use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http_body_util::{BodyExt, Empty, Full};
use hyper::{body::Incoming, client::conn::http2::SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::{io::AsyncWriteExt, net::TcpStream, task::JoinHandle};

use crate::{
    helpers::{answering_once, http2_client, spawn_gateway, spawn_gateway_with, TestGateway},
    raw,
};

#[tokio::test]
async fn an_http2_prior_knowledge_client_is_proxied() {
    let gateway = spawn_gateway().await;
    let http2 = http2_client();
    let response = http2
        .get(gateway.url("/api/alice/tasks?x=1"))
        .bearer_auth(gateway.token("alice"))
        .header("x-user-id", "mallory")
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("x-request-id").is_some());
    let seen = gateway.upstream.only();
    assert_eq!(seen.version, http::Version::HTTP_11);
    assert_eq!(seen.target, "/api/alice/tasks?x=1");
    assert_eq!(seen.headers["x-user-id"], "alice");
    assert_eq!(
        seen.headers["x-forwarded-host"],
        gateway.address.to_string().as_str()
    );

    let missing = http2.get(gateway.url("/nowhere")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn an_http2_clients_cookie_fields_reach_the_upstream_as_one_line() {
    let gateway = spawn_gateway().await;
    let http2 = http2_client();
    let response = http2
        .get(gateway.url("/api/auth/get-session"))
        .header("cookie", "session=abc")
        .header("cookie", "theme=dark")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = gateway.upstream.only();
    let cookies: Vec<_> = seen.headers.get_all("cookie").iter().collect();
    assert_eq!(cookies, ["session=abc; theme=dark"]);
}

#[tokio::test]
async fn an_upstreams_trailers_never_reach_an_http2_client() {
    // A public upstream whose chunked answer ends in trailers that would forge the request
    // id, open CORS, set a cookie and leak an internal field.
    let (upstream, _answered) = answering_once(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntrailer: x-secret\r\n\
          transfer-encoding: chunked\r\nconnection: close\r\n\r\n\
          5\r\nhello\r\n0\r\nx-secret: internal\r\nx-request-id: forged\r\n\
          access-control-allow-origin: *\r\nset-cookie: a=b\r\n\r\n"
            .to_vec(),
    )
    .await;
    let gateway = spawn_gateway_with(|s| {
        s.public_routes =
            vec![gateway::request::PublicRoute::parse(&format!("/api/auth/={upstream}")).unwrap()];
    })
    .await;
    let mut connection = Http2Connection::open(&gateway).await;
    let request = http::Request::get(gateway.url("/api/auth/x"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = tokio::time::timeout(GUARD, connection.sender.send_request(request))
        .await
        .expect("an answer")
        .unwrap();
    assert_eq!(response.status(), 200);
    let collected = tokio::time::timeout(GUARD, response.into_body().collect())
        .await
        .expect("the whole body")
        .unwrap();
    assert_eq!(
        collected.trailers(),
        None,
        "the upstream's trailers were relayed"
    );
    assert_eq!(collected.to_bytes(), "hello");
}

// ---------------------------------------------------------------------------------------
// Time limits, which hyper's HTTP/2 server does not have of its own (`server/idle.rs`)
// ---------------------------------------------------------------------------------------

/// A bounded wait for something that should happen within a second or two.
const GUARD: Duration = Duration::from_secs(5);

/// The client preface and an empty SETTINGS frame, as an HTTP/2 client opens.
fn preface() -> Vec<u8> {
    let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    bytes.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    bytes
}

#[tokio::test]
async fn a_silent_http2_connection_is_closed_after_the_header_read_timeout() {
    let gateway = spawn_gateway().await; // header-read timeout: 1 s
    let mut stream = TcpStream::connect(gateway.address).await.unwrap();
    stream.write_all(&preface()).await.unwrap();
    assert!(
        raw::closed_within(&mut stream, GUARD).await,
        "a connection that never sent a request was kept"
    );
}

#[tokio::test]
async fn an_http2_header_block_that_never_ends_does_not_hold_the_connection() {
    let gateway = spawn_gateway().await;
    let mut stream = TcpStream::connect(gateway.address).await.unwrap();
    let mut bytes = preface();
    // HEADERS on stream 1 without END_HEADERS: the CONTINUATION that would finish it never
    // comes. Payload: `:method: GET`, HPACK static index 2.
    bytes.extend_from_slice(&[0, 0, 1, 1, 0, 0, 0, 0, 1, 0x82]);
    stream.write_all(&bytes).await.unwrap();
    assert!(
        raw::closed_within(&mut stream, GUARD).await,
        "an unfinished header block held the connection"
    );
    assert!(gateway.upstream.seen().is_empty());
}

/// A hyper HTTP/2 connection to the gateway.
struct Http2Connection {
    sender: SendRequest<Empty<Bytes>>,
    /// Drives the connection; ends when the gateway closes it.
    driver: JoinHandle<hyper::Result<()>>,
}

impl Http2Connection {
    async fn open(gateway: &TestGateway) -> Self {
        let stream = TcpStream::connect(gateway.address).await.unwrap();
        let (sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .unwrap();
        Self {
            sender,
            driver: tokio::spawn(connection),
        }
    }

    /// Sends a request to the upstream's `hold` path and waits until it is held there.
    async fn hold(
        &mut self,
        gateway: &TestGateway,
    ) -> JoinHandle<hyper::Result<Response<Incoming>>> {
        let request = http::Request::get(gateway.url("/api/auth/hold"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        let held = tokio::spawn(self.sender.send_request(request));
        gateway.upstream.wait_for_arrivals(1).await;
        held
    }

    /// Asserts that the gateway closes the connection (within [`GUARD`]).
    async fn assert_closed(self) {
        let ended = tokio::time::timeout(GUARD, self.driver).await;
        assert!(
            matches!(ended, Ok(Ok(Ok(())))),
            "the gateway kept the connection: {ended:?}"
        );
    }
}

/// The answer to a request held by the upstream, once released: it must be whole.
async fn assert_released(held: JoinHandle<hyper::Result<Response<Incoming>>>) {
    let response = held.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "held and released"
    );
}

#[tokio::test]
async fn an_http2_connection_is_closed_once_idle_but_not_while_a_request_is_in_flight() {
    let gateway = spawn_gateway_with(|s| {
        s.limits.idle_timeout = Duration::from_secs(1);
        s.limits.upstream_timeout = Duration::from_secs(10);
    })
    .await;
    let mut connection = Http2Connection::open(&gateway).await;

    // In flight for well over the idle timeout: the connection stays.
    let held = connection.hold(&gateway).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        !connection.driver.is_finished(),
        "closed with a request in flight"
    );
    gateway.upstream.release();
    assert_released(held).await;

    // Then idle: the gateway closes it.
    connection.assert_closed().await;
}

#[tokio::test]
async fn draining_lets_an_http2_request_finish_then_closes_the_connection() {
    let mut gateway =
        spawn_gateway_with(|s| s.limits.upstream_timeout = Duration::from_secs(10)).await;
    let mut connection = Http2Connection::open(&gateway).await;
    let held = connection.hold(&gateway).await;

    let stopped = gateway.shut_down();
    gateway.wait_until_not_accepting().await; // draining has begun
    gateway.upstream.release();
    assert_released(held).await;
    connection.assert_closed().await;
    tokio::time::timeout(GUARD, stopped)
        .await
        .expect("the gateway stops once drained")
        .unwrap();
}

/// An HTTP/2 connection whose client grants each stream `window` bytes at a time: a response
/// body's next bytes come only as the test reads it.
async fn narrow_window_connection(
    gateway: &TestGateway,
    window: u32,
) -> (SendRequest<Full<Bytes>>, JoinHandle<hyper::Result<()>>) {
    let stream = TcpStream::connect(gateway.address).await.unwrap();
    let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(window)
        .adaptive_window(false)
        .handshake(TokioIo::new(stream))
        .await
        .unwrap();
    (sender, tokio::spawn(connection))
}

/// Asks the echo upstream for an answer of `len` bytes; returns its head, the body unread.
async fn echo(
    gateway: &TestGateway,
    sender: &mut SendRequest<Full<Bytes>>,
    len: usize,
) -> Response<Incoming> {
    let request = http::Request::post(gateway.url("/api/auth/echo"))
        .body(Full::new(Bytes::from(vec![b'x'; len])))
        .unwrap();
    expect_ok(sender, request).await
}

/// Sends `request` and waits for its answer's head, which must be a 200.
async fn expect_ok(
    sender: &mut SendRequest<Full<Bytes>>,
    request: http::Request<Full<Bytes>>,
) -> Response<Incoming> {
    let response = tokio::time::timeout(GUARD, sender.send_request(request))
        .await
        .expect("the answer's head must come")
        .unwrap();
    assert_eq!(response.status(), 200);
    response
}

/// A client that takes part of an answer, then withholds the window for the rest while its
/// connection stays up, has that stream reset within the stall limit: the request gives back
/// its place among those in flight, and the connection goes on serving. (The socket never
/// backs up and hyper asks the body for nothing more while a frame waits for window, so
/// neither of the other stall limits sees it.)
#[tokio::test]
async fn an_http2_answer_held_back_by_a_withheld_window_is_reset() {
    // The stall limit (the upstream timeout) is 1 s.
    let gateway = spawn_gateway().await;
    // A window far smaller than the answer, never widened: the body is not read.
    let (mut sender, driver) = narrow_window_connection(&gateway, 16 * 1024).await;
    let response = echo(&gateway, &mut sender, 256 * 1024).await;

    // Its place is given back, though the client neither reads nor goes away...
    gateway
        .wait_for_metric("gateway_in_flight_requests", |v| v == 0.0)
        .await;
    // ... because the stream was reset, not finished.
    let body = tokio::time::timeout(GUARD, response.into_body().collect())
        .await
        .expect("a reset stream ends its body");
    assert!(body.is_err(), "the held-back answer came whole");
    let cut = r#"gateway_answers_cut_total{reason="window_withheld"}"#;
    assert_eq!(gateway.metric(cut).await, Some(1.0));

    // The connection itself was left alone.
    let request = http::Request::get(gateway.url("/api/auth/after"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    expect_ok(&mut sender, request).await;
    assert!(!driver.is_finished(), "the connection was closed");
}

/// The same for answers that fit in one frame, on a connection whose client grants one byte
/// of window and no more: hyper ends a stream's task once it has queued the frame that ends
/// the stream, so each such answer used to sit queued with h2, untimed, its place among the
/// requests in flight given back at once, while its memory stayed. Each is reset within the
/// stall limit now, and counted.
#[tokio::test]
async fn small_http2_answers_held_back_by_a_withheld_window_are_reset_too() {
    let gateway = spawn_gateway().await;
    let (mut sender, driver) = narrow_window_connection(&gateway, 1).await;
    let mut answers = Vec::new();
    for _ in 0..4 {
        answers.push(echo(&gateway, &mut sender, 8 * 1024).await);
    }
    let cut = r#"gateway_answers_cut_total{reason="window_withheld"}"#;
    gateway.wait_for_metric(cut, |v| v == 4.0).await;
    for answer in answers {
        let body = tokio::time::timeout(GUARD, answer.into_body().collect())
            .await
            .expect("a reset stream ends its body");
        assert!(body.is_err(), "a held-back answer came whole");
    }
    gateway
        .wait_for_metric("gateway_in_flight_requests", |v| v == 0.0)
        .await;
    assert!(!driver.is_finished(), "the connection was closed");
}

/// An HTTP/2 client's streams share its upstream connections, and one is kept for the next
/// stream as soon as its answer's head has come. A stream must not be sent over one still
/// carrying another stream's body (a download the client reads slowly, or not at all): it
/// would wait behind it, here for the 30 s stall limit, while a new connection answers at
/// once.
#[tokio::test]
async fn an_http2_stream_does_not_wait_behind_another_streams_download() {
    let gateway = spawn_gateway_with(|s| s.limits.upstream_timeout = Duration::from_secs(30)).await;
    let (mut sender, _driver) = narrow_window_connection(&gateway, 16 * 1024).await;
    let download = echo(&gateway, &mut sender, 256 * 1024).await;
    let request = http::Request::get(gateway.url("/api/auth/after"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let after = expect_ok(&mut sender, request).await;
    let body = tokio::time::timeout(GUARD, after.into_body().collect())
        .await
        .expect("the second answer's body must come")
        .unwrap();
    assert!(!body.to_bytes().is_empty());
    let peers: Vec<_> = gateway
        .upstream
        .seen()
        .iter()
        .map(|seen| seen.peer)
        .collect();
    assert_eq!(peers.len(), 2);
    assert_ne!(
        peers[0], peers[1],
        "the second stream went over the busy connection"
    );
    drop(download);
}

/// A burst of an HTTP/2 client's streams opens an upstream connection for each; once they
/// are answered the client connection keeps no more than a few of them (eight) for its next
/// requests, whatever the burst's size, and closes the rest, rather than hold them all
/// until the client leaves.
#[tokio::test]
async fn an_http2_client_keeps_a_few_upstream_connections_after_a_burst() {
    let gateway = spawn_gateway().await;
    // Those the readiness checks left parked by the HTTP/1.1 engine.
    let before = gateway.upstream.open_connections();
    let client = http2_client();
    let burst: Vec<_> = (0..20)
        .map(|_| {
            let request = client.get(gateway.url("/api/auth/hold")).send();
            tokio::spawn(request)
        })
        .collect();
    gateway.upstream.wait_for_arrivals(20).await;
    gateway.upstream.release();
    for answer in burst {
        assert_eq!(answer.await.unwrap().unwrap().status(), 200);
    }
    gateway.upstream.wait_for_open_at_most(before + 8).await;
    // The client connection is still up, and served over what it kept.
    let again = client
        .get(gateway.url("/api/auth/again"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);

    // A connection not kept is closed only once its answer is read: long answers still
    // streaming when the set is full arrive whole.
    let downloads: Vec<_> = (0..20)
        .map(|_| {
            let request = client
                .post(gateway.url("/api/auth/echo"))
                .body(vec![b'x'; 256 * 1024])
                .send();
            tokio::spawn(async move { request.await?.bytes().await })
        })
        .collect();
    for download in downloads {
        assert_eq!(download.await.unwrap().unwrap().len(), 256 * 1024);
    }
}

/// The limit is on waiting, not on the whole answer: a client that widens its window a little
/// at a time, each wait within the stall limit, gets its answer whole however long it takes.
#[tokio::test]
async fn an_http2_client_that_reads_slowly_but_steadily_gets_its_whole_answer() {
    // The stall limit: 2 s, each pause 300 ms, so a slow machine has 1.7 s of margin at
    // every step and the whole answer still takes more than twice the limit.
    let gateway = spawn_gateway_with(|s| s.limits.upstream_timeout = Duration::from_secs(2)).await;
    let (mut sender, _driver) = narrow_window_connection(&gateway, 16 * 1024).await;
    let started = std::time::Instant::now();
    let mut body = echo(&gateway, &mut sender, 256 * 1024).await.into_body();
    let mut received = 0;
    while let Some(frame) = tokio::time::timeout(GUARD, body.frame())
        .await
        .expect("the answer must keep coming")
    {
        let frame = frame.expect("a steady reader's answer was cut");
        received += frame.data_ref().map_or(0, Bytes::len);
        // A pause well within the stall limit before each widening of the window.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(received, 256 * 1024);
    let cut = r#"gateway_answers_cut_total{reason="window_withheld"}"#;
    assert_eq!(gateway.metric(cut).await, Some(0.0));
    assert!(
        started.elapsed() > Duration::from_secs(4),
        "the answer did not take longer than the stall limit, so this proved nothing"
    );
}

/// An HTTP/2 frame: its 9-byte header, then `payload`.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut bytes = vec![len[1], len[2], len[3], kind, flags];
    bytes.extend_from_slice(&stream.to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// A whole GET for `path` on `stream` (HEADERS with END_STREAM and END_HEADERS).
fn get_frame(stream: u32, path: &str) -> Vec<u8> {
    // HPACK: `:method: GET` and `:scheme: http` from the static table; `:path` and
    // `:authority` as literals without indexing (names 4 and 1 of the static table).
    let mut block = vec![0x82, 0x86, 0x04, u8::try_from(path.len()).unwrap()];
    block.extend_from_slice(path.as_bytes());
    block.extend_from_slice(&[0x01, 2]);
    block.extend_from_slice(b"gw");
    frame(0x1, 0x5, stream, &block)
}

/// The whole frames in `bytes`, in order: each one's type and payload.
fn frames(mut bytes: &[u8]) -> Vec<(u8, &[u8])> {
    let mut frames = Vec::new();
    while bytes.len() >= 9 {
        let len = usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]);
        let Some(payload) = bytes.get(9..9 + len) else {
            break;
        };
        frames.push((bytes[3], payload));
        bytes = &bytes[9 + len..];
    }
    frames
}

/// The gateway's first SETTINGS frame limits a connection to 128 streams at once (nginx's
/// default), not hyper's 200: an HTTP/2 client holds at most that many of the places
/// `MAX_CONCURRENT_REQUESTS` allows, and the streams of one connection that wait for window at
/// once share less of what it moves (`server/stall.rs`).
#[tokio::test]
async fn an_http2_connection_carries_at_most_128_streams_at_once() {
    let gateway = spawn_gateway().await;
    let mut stream = TcpStream::connect(gateway.address).await.unwrap();
    stream.write_all(&preface()).await.unwrap();
    let mut received = Vec::new();
    let settings = loop {
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(GUARD, tokio::io::AsyncReadExt::read(&mut stream, &mut buf))
            .await
            .expect("the gateway's SETTINGS must come")
            .unwrap();
        assert_ne!(n, 0, "closed before its SETTINGS");
        received.extend_from_slice(&buf[..n]);
        if let Some((_, payload)) = frames(&received).into_iter().find(|(kind, _)| *kind == 0x4) {
            break payload.to_vec();
        }
    };
    // Each setting: a 16-bit identifier, a 32-bit value; 0x3 is MAX_CONCURRENT_STREAMS.
    let max_streams = settings.chunks_exact(6).find_map(|setting| {
        (setting[..2] == [0, 3]).then(|| u32::from_be_bytes(setting[2..].try_into().unwrap()))
    });
    assert_eq!(max_streams, Some(128));
}

/// HTTP/2 "rapid reset" (CVE-2023-44487): a client that resets each stream as soon as it has
/// opened it never counts against the stream limit, yet each request costs the server the
/// start of its handling, and the upstream a request. Such a client has its connection closed
/// (GOAWAY with ENHANCE_YOUR_CALM) after a few, and few of its requests reach the upstream.
#[tokio::test]
async fn an_http2_client_that_resets_every_stream_it_opens_is_cut_off() {
    const STREAMS: u32 = 1000;
    let gateway = spawn_gateway().await;
    let stream = TcpStream::connect(gateway.address).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let mut bytes = preface();
    for n in 0..STREAMS {
        let id = 2 * n + 1;
        bytes.extend(get_frame(id, "/api/auth/rapid"));
        bytes.extend(frame(0x3, 0, id, &8u32.to_be_bytes())); // RST_STREAM, CANCEL
    }
    // The gateway may close before it has read them all.
    let writer = tokio::spawn(async move { write.write_all(&bytes).await });

    let mut received = Vec::new();
    let read_all = tokio::io::AsyncReadExt::read_to_end(&mut read, &mut received);
    let ended = tokio::time::timeout(GUARD, read_all).await;
    assert!(ended.is_ok(), "the connection was kept");
    let _ = writer.await;

    // A GOAWAY's payload: the last stream id, the error code, then any debug data.
    let goaway = frames(&received)
        .into_iter()
        .filter(|(kind, _)| *kind == 0x7)
        .find_map(|(_, payload)| Some(u32::from_be_bytes(payload.get(4..8)?.try_into().ok()?)));
    assert_eq!(goaway, Some(0xb), "no GOAWAY with ENHANCE_YOUR_CALM");
    let forwarded = gateway.upstream.seen().len();
    assert!(
        forwarded < 100,
        "{forwarded} of {STREAMS} reset requests reached the upstream"
    );
}
