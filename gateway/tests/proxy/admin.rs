//! The operators' listener: `/metrics` is served there and nowhere else, `/healthz` on both,
//! `/readyz` where the probes look (the public listener), and both listeners stop together.

use std::time::Duration;

use crate::helpers::{detail, spawn_gateway};

#[tokio::test]
async fn metrics_are_not_served_on_the_public_listener() {
    let gateway = spawn_gateway().await;
    for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
        let response = gateway
            .http
            .request(method.clone(), gateway.url("/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{method}");
    }
    let response = gateway
        .http
        .get(gateway.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(detail(response).await, "Not Found");
    assert!(gateway.upstream.seen().is_empty());
}

#[tokio::test]
async fn the_admin_listener_serves_metrics_and_health_only() {
    let gateway = spawn_gateway().await;
    let metrics = gateway
        .http
        .get(gateway.admin_url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(metrics.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = metrics.text().await.unwrap();
    // The key-set metrics come from the same registry as the request metrics.
    assert!(text.contains("gateway_jwks_keys "), "{text}");
    assert!(text.contains("gateway_in_flight_requests"), "{text}");

    let health = gateway
        .http
        .get(gateway.admin_url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    for path in ["/readyz", "/api/user-1/tasks", "/api/auth/x", "/"] {
        let response = gateway
            .http
            .get(gateway.admin_url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(detail(response).await, "Not Found");
    }
    let post = gateway
        .http
        .post(gateway.admin_url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
    assert!(gateway.upstream.seen().is_empty(), "nothing was forwarded");
}

#[tokio::test]
async fn the_admin_listener_stops_with_the_gateway() {
    let mut gateway = spawn_gateway().await;
    let admin = gateway.admin_address;
    assert!(tokio::net::TcpStream::connect(admin).await.is_ok());
    let stopped = gateway.shut_down();
    tokio::time::timeout(Duration::from_secs(10), stopped)
        .await
        .expect("both listeners stop")
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(admin).await.is_err(),
        "the admin listener still accepts after shutdown"
    );
}
