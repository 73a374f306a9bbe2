//! HTTP/2 clients (cleartext, prior knowledge) are served and forwarded upstream as HTTP/1.1,
//! and their connections cannot be held open by sending nothing, or half a request.

use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http_body_util::{BodyExt, Empty};
use hyper::{body::Incoming, client::conn::http2::SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::{io::AsyncWriteExt, net::TcpStream, task::JoinHandle};

use crate::{
    helpers::{spawn_gateway, spawn_gateway_with, TestGateway},
    raw,
};

#[tokio::test]
async fn an_http2_prior_knowledge_client_is_proxied() {
    let gateway = spawn_gateway().await;
    let http2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
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
