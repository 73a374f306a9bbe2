//! Upstream refused → 502, upstream too slow → 504, each with a JSON body.

use std::time::Duration;

use gateway::{config::Http1Engine, request::PublicRoute, upstream::Upstream};

use crate::{
    helpers::{
        answering_once, assert_upstream_unavailable, detail, spawn_gateway, spawn_gateway_with,
    },
    raw::RawConnection,
};

/// A local port with nothing listening on it.
async fn closed_port() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{address}")
}

#[tokio::test]
async fn an_upstream_that_refuses_connections_is_502() {
    let down = closed_port().await;
    let gateway = spawn_gateway_with(|s| s.tasks_service = Upstream::parse(&down).unwrap()).await;
    let response = gateway
        .http
        .get(gateway.url("/api/alice/tasks"))
        .bearer_auth(gateway.token("alice"))
        .send()
        .await
        .unwrap();
    assert_upstream_unavailable(response).await;
}

#[tokio::test]
async fn an_upstream_that_does_not_answer_in_time_is_504() {
    let gateway = spawn_gateway().await; // upstream timeout: 1 s
    let response = tokio::time::timeout(
        Duration::from_secs(10),
        gateway.http.get(gateway.url("/api/auth/hang")).send(),
    )
    .await
    .expect("the upstream timeout must bound the wait")
    .unwrap();
    assert_eq!(response.status(), 504);
    assert_eq!(
        detail(response).await,
        "Gateway timeout: upstream did not answer in time"
    );
}

/// On a kept-alive connection, each request's upstream timeout counts from that request:
/// an earlier request's deadline (which the engine's timer may still hold, `http1/deadline.rs`)
/// does not cut a later one short.
#[tokio::test]
async fn the_upstream_timeout_counts_from_each_request_on_a_kept_alive_connection() {
    let gateway = spawn_gateway().await; // upstream timeout: 1 s
    let mut connection = RawConnection::open(gateway.address).await;
    connection
        .write("GET /api/auth/session HTTP/1.1\r\nHost: gw\r\n\r\n")
        .await;
    assert_eq!(connection.read_response().await.status, 200);
    // The first request's deadline falls half a second into the second's wait (and the
    // connection stays in use: its release comes after 1 s without a request).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = tokio::time::Instant::now();
    connection
        .write("GET /api/auth/hang HTTP/1.1\r\nHost: gw\r\n\r\n")
        .await;
    let response = tokio::time::timeout(Duration::from_secs(10), connection.read_response())
        .await
        .expect("the upstream timeout must bound the wait");
    assert_eq!(response.status, 504);
    let waited = sent.elapsed();
    assert!(
        waited >= Duration::from_secs(1),
        "504 after {waited:?}, upstream timeout 1 s"
    );
}

#[tokio::test]
async fn an_upstream_that_drops_the_connection_is_502() {
    let gateway = spawn_gateway().await;
    let response = gateway
        .http
        .get(gateway.url("/api/auth/reset"))
        .send()
        .await
        .unwrap();
    assert_upstream_unavailable(response).await;
    // The broken upstream connection is replaced: the next request, on the same client
    // connection, gets a fresh one.
    let next = gateway
        .http
        .get(gateway.url("/api/auth/session"))
        .send()
        .await
        .unwrap();
    assert_eq!(next.status(), 200);
}

#[tokio::test]
async fn after_a_timeout_the_next_request_does_not_wait_on_the_stuck_upstream_connection() {
    let gateway = spawn_gateway().await; // upstream timeout: 1 s
    let session = gateway.url("/api/auth/session");
    assert_eq!(
        gateway.http.get(&session).send().await.unwrap().status(),
        200
    );
    let hung = gateway.http.get(gateway.url("/api/auth/hang")).send();
    assert_eq!(hung.await.unwrap().status(), 504);
    // reqwest keeps its one connection to the gateway; were the upstream connection that is
    // still waiting on /hang reused, this would time out too.
    let next = tokio::time::timeout(Duration::from_secs(10), gateway.http.get(&session).send())
        .await
        .expect("the upstream timeout must bound the wait")
        .unwrap();
    assert_eq!(next.status(), 200);
}

/// An upstream that answers 422 as soon as it has read the request head, as tasks-service does
/// for a bad path before it reads the body, and then closes without reading the rest.
async fn upstream_answering_before_the_body() -> (String, tokio::sync::oneshot::Receiver<()>) {
    let body = r#"{"detail":[{"type":"int_parsing","loc":["path","task_id"],"msg":"bad"}]}"#;
    let answer = format!(
        "HTTP/1.1 422 Unprocessable Entity\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    answering_once(answer.into_bytes()).await
}

#[tokio::test]
async fn an_upstream_that_answers_before_reading_the_body_is_relayed_not_502() {
    for engine in [Http1Engine::Lean, Http1Engine::Hyper] {
        upstream_answering_early_is_relayed(engine).await;
    }
}

/// A public route, whose body streams (a signed one is read whole before anything goes
/// upstream, so its upstream cannot answer early).
async fn upstream_answering_early_is_relayed(engine: Http1Engine) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (upstream, answered) = upstream_answering_before_the_body().await;
    let gateway = spawn_gateway_with(|s| {
        s.public_routes = vec![PublicRoute::parse(&format!("/api/auth/={upstream}")).unwrap()];
        s.http1_engine = engine;
    })
    .await;
    let body_len = 512 * 1024;
    let mut client = tokio::net::TcpStream::connect(gateway.address)
        .await
        .unwrap();
    let head = format!(
        "PUT /api/auth/x HTTP/1.1\r\nhost: gateway\r\n\
         content-type: application/json\r\ncontent-length: {body_len}\r\n\r\n"
    );
    client.write_all(head.as_bytes()).await.unwrap();
    client.write_all(&[b' '; 1024]).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), answered)
        .await
        .expect("the upstream gets the head")
        .unwrap();
    // The rest of the body now meets a closed upstream connection. The gateway closes the
    // client's connection after the answer, but reads the body's rest first (within bounds),
    // so that the close does not reset the answer away before the client reads it.
    let rest = vec![b' '; body_len - 1024];
    let written = client.write_all(&rest).await;
    assert!(
        written.is_ok(),
        "{engine:?}: the rest of the body was refused: {written:?}"
    );
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 422"),
        "{engine:?}: the upstream's early answer, not a 502: {answer}"
    );
}
