//! Graceful shutdown: stop accepting, finish what is in flight, and say not ready meanwhile.

use std::time::Duration;

use gateway::config::Http1Engine;

use crate::{
    helpers::{spawn_gateway, spawn_gateway_with, ENGINE},
    raw::RawConnection,
};

#[tokio::test]
async fn an_in_flight_request_finishes_after_shutdown_begins() {
    let mut gateway =
        spawn_gateway_with(|s| s.limits.upstream_timeout = Duration::from_secs(10)).await;
    let in_flight = tokio::spawn({
        let http = gateway.http.clone();
        let url = gateway.url("/api/auth/hold");
        async move {
            let response = http.get(url).send().await.unwrap();
            (response.status(), response.text().await.unwrap())
        }
    });
    gateway.upstream.wait_for_arrivals(1).await;

    let stopped = gateway.shut_down();
    // New connections are refused once the listener is closed.
    gateway.wait_until_not_accepting().await;
    assert!(
        !stopped.is_finished(),
        "must wait for the in-flight request"
    );

    gateway.upstream.release();
    let (status, body) = in_flight.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(body, "held and released");
    tokio::time::timeout(Duration::from_secs(10), stopped)
        .await
        .expect("the gateway stops once drained")
        .unwrap();
}

#[tokio::test]
async fn a_stopping_gateway_says_not_ready_but_accepts_and_serves_for_its_delay() {
    let mut gateway =
        spawn_gateway_with(|s| s.limits.shutdown_delay = Duration::from_secs(2)).await;
    let stopped = gateway.shut_down();
    // Load balancers are still letting go of the pod: a new connection is served, while
    // /readyz tells them to stop sending more.
    let fresh = reqwest::Client::builder().no_proxy().build().unwrap();
    let ready = fresh.get(gateway.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let listed = fresh
        .get(gateway.url("/api/alice/tasks"))
        .bearer_auth(gateway.token("alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    assert!(!stopped.is_finished(), "stopped before its delay was over");
    gateway.wait_until_not_accepting().await;
    tokio::time::timeout(Duration::from_secs(10), stopped)
        .await
        .expect("the gateway stops once the delay is over and it has drained")
        .unwrap();
}

#[tokio::test]
async fn readyz_says_shutting_down_once_draining_has_begun() {
    let mut gateway = spawn_gateway().await;
    let mut connection = RawConnection::open(gateway.address).await;
    connection
        .write("GET /readyz HTTP/1.1\r\nHost: gw\r\n\r\n")
        .await;
    assert_eq!(connection.read_response().await.status, 200);

    // A request that arrived before draining is answered (not reset by the close), and
    // draining has begun by the time it is whole. hyper's graceful shutdown takes a connection
    // whose head is still arriving for an idle one and closes it (specs/spec.md, "Where the
    // engines differ"); the lean engine waits for the head.
    connection
        .write("GET /readyz HTTP/1.1\r\nHost: gw\r\n")
        .await;
    let stopped = gateway.shut_down();
    gateway.wait_until_not_accepting().await;
    if ENGINE == Http1Engine::Hyper {
        assert!(connection.ends_within(Duration::from_secs(5)).await);
        tokio::time::timeout(Duration::from_secs(5), stopped)
            .await
            .expect("the gateway stops once drained")
            .unwrap();
        return;
    }
    connection.write("\r\n").await;
    let response = connection.read_response().await;
    assert_eq!(response.status, 503, "{response:?}");
    assert_eq!(response.body, r#"{"detail":"Not ready: shutting down"}"#);
    assert_eq!(response.header("connection"), Some("close"));
    tokio::time::timeout(Duration::from_secs(5), stopped)
        .await
        .expect("the gateway stops once drained")
        .unwrap();
}
