//! HTTP/2 clients (cleartext, prior knowledge) are served and forwarded upstream as HTTP/1.1,
//! and their connections cannot be held open by sending nothing, or half a request.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::{io::AsyncWriteExt, net::TcpStream};

use crate::{
    helpers::{spawn_gateway, spawn_gateway_with},
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

#[tokio::test]
async fn an_http2_connection_is_closed_once_idle_but_not_while_a_request_is_in_flight() {
    let gateway = spawn_gateway_with(|s| {
        s.limits.idle_timeout = Duration::from_secs(1);
        s.limits.upstream_timeout = Duration::from_secs(10);
    })
    .await;
    let stream = TcpStream::connect(gateway.address).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let mut connection = tokio::spawn(connection);
    let request = |path: &str| {
        http::Request::get(gateway.url(path))
            .body(Empty::<Bytes>::new())
            .unwrap()
    };

    // In flight for well over the idle timeout: the connection stays.
    let held = sender.send_request(request("/api/auth/hold"));
    let held = tokio::spawn(held);
    gateway.upstream.wait_for_arrivals(1).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(!connection.is_finished(), "closed with a request in flight");
    gateway.upstream.release();
    let response = held.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "held and released"
    );

    // Then idle: the gateway closes it.
    let ended = tokio::time::timeout(GUARD, &mut connection).await;
    assert!(
        matches!(ended, Ok(Ok(Ok(())))),
        "an idle connection was kept: {ended:?}"
    );
}

#[tokio::test]
async fn draining_lets_an_http2_request_finish_then_closes_the_connection() {
    let mut gateway =
        spawn_gateway_with(|s| s.limits.upstream_timeout = Duration::from_secs(10)).await;
    let stream = TcpStream::connect(gateway.address).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let connection = tokio::spawn(connection);
    let request = http::Request::get(gateway.url("/api/auth/hold"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let held = tokio::spawn(sender.send_request(request));
    gateway.upstream.wait_for_arrivals(1).await;

    let stopped = gateway.shut_down();
    gateway.wait_until_not_accepting().await; // draining has begun
    gateway.upstream.release();
    let response = held.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "held and released"
    );
    let ended = tokio::time::timeout(GUARD, connection).await;
    assert!(matches!(ended, Ok(Ok(Ok(())))), "{ended:?}");
    tokio::time::timeout(GUARD, stopped)
        .await
        .expect("the gateway stops once drained")
        .unwrap();
}
