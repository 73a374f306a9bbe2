//! Upstream refused → 502, upstream too slow → 504, each with a JSON body.

use std::time::Duration;

use gateway::proxy::Upstream;

use crate::helpers::{assert_upstream_unavailable, detail, spawn_gateway, spawn_gateway_with};

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
