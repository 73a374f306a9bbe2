//! Routing: the gateway's own endpoints, public prefixes, the protected API and 404s, and
//! the request targets and hosts refused before any route.

use gateway::config::Http1Engine;

use crate::helpers::{detail, spawn_gateway, spawn_gateway_with};

#[tokio::test]
async fn unknown_paths_are_404_json_without_reaching_an_upstream() {
    let gateway = spawn_gateway().await;
    for path in ["/", "/apix", "/api", "/healthz/x", "/metrics2"] {
        let response = gateway.http.get(gateway.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(detail(response).await, "Not Found");
    }
    assert!(gateway.upstream.seen().is_empty());
}

#[tokio::test]
async fn health_and_readiness_answer_without_a_token() {
    let gateway = spawn_gateway().await;
    let health = gateway
        .http
        .get(gateway.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready = gateway
        .http
        .get(gateway.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let post = gateway
        .http
        .post(gateway.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(
        post.headers()["allow"],
        "GET, HEAD",
        "RFC 9110: a 405 says what is allowed"
    );
    // (/metrics is on the admin listener: see admin.rs.)
    for path in ["/healthz", "/readyz"] {
        let traced = gateway
            .http
            .request(reqwest::Method::TRACE, gateway.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(traced.status(), 405, "{path}");
        assert_eq!(traced.headers()["allow"], "GET, HEAD", "{path}");
    }
}

#[tokio::test]
async fn dot_segments_are_refused_so_a_public_prefix_cannot_reach_the_api() {
    let gateway = spawn_gateway().await;
    for path in [
        "/api/auth/../alice/tasks",
        "/api/auth/%2e%2E/alice/tasks",
        "/api/./x",
        // Separators an upstream may see once it decodes, or reads `\` as `/`.
        "/api/auth/..%2Falice/tasks",
        "/api/auth/..%5calice/tasks",
        "/api/auth/..\\alice/tasks",
    ] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n");
        let response = crate::raw::send(gateway.address, &request).await;
        assert_eq!(response.status, 400, "{path}: {response:?}");
        assert_eq!(response.header("content-type"), Some("application/json"));
        assert!(response.body.contains("dot segments"), "{response:?}");
    }
    assert!(gateway.upstream.seen().is_empty());
}

#[tokio::test]
async fn a_missing_repeated_or_invalid_host_is_refused() {
    for engine in [Http1Engine::Lean, Http1Engine::Hyper] {
        let gateway = spawn_gateway_with(|s| s.http1_engine = engine).await;
        for (what, host_lines) in [
            ("user info", "Host: victim@gw\r\n"),
            ("a path", "Host: gw/api/victim\r\n"),
            ("no Host", ""),
            ("two Host lines", "Host: gw\r\nHost: other\r\n"),
        ] {
            let request =
                format!("GET /api/auth/x HTTP/1.1\r\n{host_lines}Connection: close\r\n\r\n");
            let response = crate::raw::send(gateway.address, &request).await;
            assert_eq!(response.status, 400, "{engine:?}, {what}: {response:?}");
            assert!(response.body.contains("Host header"), "{response:?}");
        }
        assert!(gateway.upstream.seen().is_empty(), "{engine:?}");
        // HTTP/1.0 may leave it out; the host the client addressed then is unknown.
        let response = crate::raw::send(gateway.address, "GET /api/auth/x HTTP/1.0\r\n\r\n").await;
        assert_eq!(response.status, 200, "{engine:?}: {response:?}");
        let seen = gateway.upstream.seen();
        assert!(seen[0].headers.get("x-forwarded-host").is_none());
    }
}

#[tokio::test]
async fn metrics_count_requests_by_route_class_and_refusals_by_reason() {
    let gateway = spawn_gateway().await;
    let token = gateway.token("alice");
    gateway
        .http
        .get(gateway.url("/api/bob/tasks"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    gateway
        .http
        .get(gateway.url("/api/alice/tasks"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    gateway
        .http
        .get(gateway.url("/secret/path"))
        .send()
        .await
        .unwrap();
    gateway
        .http
        .get(gateway.url("/api/alice/tasks"))
        .send()
        .await
        .unwrap();

    let text = gateway.metrics().await;
    for expected in [
        r#"gateway_requests_total{route="api",status="403"} 1"#,
        r#"gateway_requests_total{route="api",status="200"} 1"#,
        r#"gateway_requests_total{route="not_found",status="404"} 1"#,
        r#"gateway_refusals_total{reason="forbidden_user"} 1"#,
        r#"gateway_refusals_total{reason="missing"} 1"#,
        r#"gateway_upstream_latency_seconds_count{route="api"} 1"#,
        "gateway_in_flight_requests",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    assert!(
        !text.contains("/secret/path"),
        "raw paths must not become labels"
    );
    assert!(!text.contains(&token), "a token leaked into the metrics");
}

#[tokio::test]
async fn connect_and_asterisk_targets_are_refused_and_never_forwarded() {
    for engine in [Http1Engine::Lean, Http1Engine::Hyper] {
        let gateway = spawn_gateway_with(|settings| settings.http1_engine = engine).await;
        let token = gateway.token("alice");
        for target in ["gw:443", "*", "127.0.0.1:80"] {
            for method in ["CONNECT", "OPTIONS", "GET"] {
                let request = format!(
                    "{method} {target} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {token}\r\n\
                     Connection: close\r\n\r\n"
                );
                let response = crate::raw::send(gateway.address, &request).await;
                assert!(
                    (400..500).contains(&response.status),
                    "{engine:?} {method} {target}: {response:?}"
                );
            }
        }
        assert!(
            gateway.upstream.seen().is_empty(),
            "{engine:?} forwarded a request"
        );
    }
}

#[tokio::test]
async fn connect_is_refused_on_every_route_and_never_forwarded() {
    for engine in [Http1Engine::Lean, Http1Engine::Hyper] {
        let gateway = spawn_gateway_with(|settings| settings.http1_engine = engine).await;
        let token = gateway.token("alice");
        for target in ["/api/alice/tasks", "/api/auth/get-session"] {
            let request = format!(
                "CONNECT {target} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {token}\r\n\
                 Content-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let response = crate::raw::send(gateway.address, &request).await;
            assert_eq!(response.status, 501, "{engine:?} {target}: {response:?}");
            let body: serde_json::Value = serde_json::from_str(&response.body).unwrap();
            assert_eq!(
                body["detail"],
                "Not implemented: the gateway does not relay CONNECT"
            );
        }
        assert!(
            gateway.upstream.seen().is_empty(),
            "{engine:?} forwarded a request"
        );
    }
}
