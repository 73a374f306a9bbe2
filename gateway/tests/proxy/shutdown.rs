//! Graceful shutdown: stop accepting, finish what is in flight.

use std::time::Duration;

use crate::helpers::spawn_gateway_with;

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
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(gateway.address)
        .await
        .is_ok()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still accepting after shutdown"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
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
