//! Connections that never carry a request are closed, not held: one that sends nothing, one
//! that stops inside an HTTP/2 preface. The service speaks HTTP/1.1 only (see `server.rs`),
//! so an HTTP/2 client is refused rather than served without limits.

use std::time::Duration;

use tokio::{io::AsyncWriteExt, net::TcpStream};

use crate::helpers::{closed_within, spawn_app_with, TestApp, ADMIN_URL};

/// The header-read timeout the service gets in these tests.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(1);

/// How much later than the timeout the close may come on a loaded machine.
const MARGIN: Duration = Duration::from_secs(5);

/// The service with `HEADER_READ_TIMEOUT_SECS` at 1 (its default, 10, is long to wait out).
async fn spawn_app() -> TestApp {
    spawn_app_with(ADMIN_URL, |s| s.header_read_timeout = HEADER_READ_TIMEOUT).await
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_after_the_header_read_timeout() {
    let app = spawn_app().await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    assert!(
        closed_within(&mut stream, HEADER_READ_TIMEOUT + MARGIN).await,
        "a connection that never sent a byte was kept"
    );
}

#[tokio::test]
async fn a_connection_that_stops_inside_an_http2_preface_is_closed() {
    let app = spawn_app().await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    // The first 16 of the preface's 24 bytes: enough to look like HTTP/2, not enough to say.
    stream.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    assert!(
        closed_within(&mut stream, HEADER_READ_TIMEOUT + MARGIN).await,
        "a connection that stopped inside an HTTP/2 preface was kept"
    );
}

#[tokio::test]
async fn an_http2_client_is_refused() {
    let app = spawn_app().await;
    let http2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let refused = tokio::time::timeout(
        HEADER_READ_TIMEOUT + MARGIN,
        http2.get(app.url("/healthz")).send(),
    )
    .await
    .expect("refused at once, not left waiting");
    assert!(refused.is_err(), "served over HTTP/2: {refused:?}");
    // HTTP/1.1 on the same port is served as ever.
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}
