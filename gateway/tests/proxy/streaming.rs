//! Bodies are streamed both ways, never buffered whole: the upstream sees the first bytes of
//! a request before the client has sent the rest, and the client sees the first bytes of a
//! response before the upstream has sent the rest.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{combinators::BoxBody, BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use tokio::sync::mpsc;

use crate::helpers::{spawn_gateway, spawn_gateway_with, TestGateway};

type ClientBody = BoxBody<Bytes, std::io::Error>;

/// A request body fed chunk by chunk through the returned sender; ends when it is dropped.
pub fn channel_body() -> (mpsc::Sender<Bytes>, ClientBody) {
    let (sender, receiver) = mpsc::channel::<Bytes>(1);
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let chunk = receiver.recv().await?;
        Some((Ok::<_, std::io::Error>(Frame::data(chunk)), receiver))
    });
    (sender, BodyExt::boxed(StreamBody::new(stream)))
}

/// POSTs `body` (chunked, no Content-Length) to the gateway over HTTP/1.1.
pub async fn post(gateway: &TestGateway, path: &str, body: ClientBody) -> Response<Incoming> {
    let client = Client::builder(TokioExecutor::new()).build_http::<ClientBody>();
    let request = Request::post(gateway.url(path)).body(body).unwrap();
    tokio::time::timeout(Duration::from_secs(30), client.request(request))
        .await
        .expect("the gateway answers within 30 s")
        .expect("the gateway answers")
}

#[tokio::test]
async fn the_upstream_receives_the_first_chunk_before_the_client_sends_the_last() {
    let gateway = spawn_gateway_with(|s| s.limits.max_body_bytes = 8 * 1024 * 1024).await;
    let (sender, body) = channel_body();
    let response = tokio::spawn({
        let url = gateway.url("/api/auth/first-chunk");
        async move {
            let client = Client::builder(TokioExecutor::new()).build_http::<ClientBody>();
            client
                .request(Request::post(url).body(body).unwrap())
                .await
                .unwrap()
        }
    });
    let first_chunk = gateway.upstream.first_chunk();
    sender
        .send(Bytes::from(vec![b'a'; 64 * 1024]))
        .await
        .unwrap();
    // Only once the upstream has the first chunk does the client send the rest: a buffering
    // gateway would wait for the end and this would never complete.
    first_chunk.await;
    for _ in 0..63 {
        sender
            .send(Bytes::from(vec![b'b'; 64 * 1024]))
            .await
            .unwrap();
    }
    drop(sender);
    let response = tokio::time::timeout(Duration::from_secs(30), response)
        .await
        .expect("the request finishes")
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(gateway.upstream.only().body_len, 64 * 64 * 1024);
}

#[tokio::test]
async fn the_client_receives_the_first_chunk_before_the_upstream_sends_the_last() {
    let gateway = spawn_gateway().await;
    let mut response = gateway
        .http
        .get(gateway.url("/api/auth/drip"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let first = tokio::time::timeout(Duration::from_secs(10), response.chunk())
        .await
        .expect("the first chunk arrives while the upstream still holds the rest")
        .unwrap()
        .unwrap();
    assert_eq!(first, "first;");
    gateway.upstream.release();
    let rest = response.bytes().await.unwrap();
    assert_eq!(rest, "rest");
}

#[tokio::test]
async fn a_64_mib_body_streams_up_and_back_intact() {
    const CHUNK: usize = 256 * 1024;
    const CHUNKS: usize = 256; // 64 MiB
    let gateway = spawn_gateway_with(|s| s.limits.max_body_bytes = 64 * 1024 * 1024).await;
    let (sender, body) = channel_body();
    let feeder = tokio::spawn(async move {
        for i in 0..CHUNKS {
            let chunk = Bytes::from(vec![(i % 251) as u8; CHUNK]);
            sender.send(chunk).await.unwrap();
        }
    });
    let response = post(&gateway, "/api/auth/echo", body).await;
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut received = 0usize;
    let mut checksum = 0u64;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            checksum += data.iter().map(|&b| u64::from(b)).sum::<u64>();
            received += data.len();
        }
    }
    feeder.await.unwrap();
    let expected: u64 = (0..CHUNKS).map(|i| (i % 251) as u64 * CHUNK as u64).sum();
    assert_eq!(received, CHUNK * CHUNKS);
    assert_eq!(checksum, expected);
}
