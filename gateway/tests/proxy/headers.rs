//! Hop-by-hop headers, `Connection`, `X-Forwarded-*` and the request id, on the way up and
//! on the way back.

use proto_shared::{headers, identity::unix_now};

use gateway::{config::Http1Engine, request::TrustedProxies};

use crate::{
    helpers::{spawn_gateway, spawn_gateway_with, verifier},
    raw,
};

/// Every header line going upstream is checked against each option `Connection` lists, so a
/// `Connection` of thousands of options would make each request cost milliseconds: one longer
/// than 256 bytes is refused before any work, with the gateway's own 400; a long but ordinary
/// list of options still passes.
#[tokio::test]
async fn a_connection_header_of_thousands_of_options_is_refused() {
    let gateway = spawn_gateway().await;
    let token = gateway.token("alice");
    let request = |connection: &str| {
        format!(
            "GET /api/alice/tasks HTTP/1.1\r\nHost: gw.example\r\nAuthorization: Bearer {token}\r\n\
             Connection: {connection}\r\n\r\n"
        )
    };
    let mut connection = raw::RawConnection::open(gateway.address).await;
    // 1,000 options, within the 8 KiB head the test gateway allows.
    let options = (0..1000)
        .map(|i| format!("x{i}"))
        .collect::<Vec<_>>()
        .join(",");
    connection.write(request(&options)).await;
    let refused = connection.read_response().await;
    assert_eq!(refused.status, 400, "{refused:?}");
    assert!(
        refused.body.contains("Connection header is too long"),
        "{refused:?}"
    );
    assert!(refused.header("x-request-id").is_some());
    assert!(gateway.upstream.seen().is_empty());

    let ordinary = "keep-alive, Upgrade, TE, X-Private, X-Other-Private, HTTP2-Settings";
    connection.write(request(ordinary)).await;
    assert_eq!(connection.read_response().await.status, 200);
}

#[tokio::test]
async fn hop_by_hop_and_connection_named_headers_do_not_reach_the_upstream() {
    let gateway = spawn_gateway().await;
    let token = gateway.token("alice");
    // The client tries to make the upstream drop the gateway's own headers via Connection.
    let request = format!(
        "GET /api/alice/tasks HTTP/1.1\r\nHost: gw.example\r\nAuthorization: Bearer {token}\r\n\
         Connection: close, X-Private, x-user-id, X-Identity-Credential, x-request-id, x-forwarded-for\r\n\
         X-Private: drop me\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nUpgrade: websocket\r\n\
         Proxy-Authorization: Basic Zm9vOmJhcg==\r\nProxy-Connection: keep-alive\r\n\
         X-Kept: kept\r\n\r\n"
    );
    let response = raw::send(gateway.address, &request).await;
    assert_eq!(response.status, 200, "{response:?}");

    let seen = gateway.upstream.only();
    for gone in [
        "x-private",
        "keep-alive",
        "te",
        "upgrade",
        "proxy-authorization",
        "proxy-connection",
    ] {
        assert!(
            seen.headers.get(gone).is_none(),
            "{gone} reached the upstream"
        );
    }
    assert_eq!(seen.headers["x-kept"], "kept");
    // Connection is the upstream hop's own (keep-alive), never the client's list.
    let connection = seen
        .headers
        .get("connection")
        .map(|v| v.to_str().unwrap().to_owned());
    assert!(
        connection
            .as_deref()
            .is_none_or(|v| !v.to_ascii_lowercase().contains("x-user-id")),
        "{connection:?}"
    );
    // The gateway's headers survived and still verify.
    assert!(seen.headers.get(headers::REQUEST_ID).is_some());
    assert!(seen.headers.get("x-forwarded-for").is_some());
    let verified = verifier()
        .verify(
            &http::Method::GET,
            &seen.target,
            &seen.headers,
            &seen.body,
            unix_now(),
        )
        .unwrap();
    assert_eq!(verified.unwrap().as_str(), "alice");
}

/// Upstreams read `X-Forwarded-For` as the client's address (Better Auth, for its
/// per-address sign-in limits): a client that could put one there could try as often as it
/// has addresses to name. So a client's chain is believed only from a trusted proxy, and
/// the gateway sends the one address it stands behind.
#[tokio::test]
async fn forwarded_headers_describe_the_client() {
    for engine in [Http1Engine::Lean, Http1Engine::Hyper] {
        for (trusted, forwarded_for) in [
            ("", "127.0.0.1"),
            ("10.0.0.0/8", "127.0.0.1"),
            ("10.0.0.0/8, 127.0.0.1", "203.0.113.9"),
        ] {
            let gateway = spawn_gateway_with(|settings| {
                settings.http1_engine = engine;
                settings.trusted_proxies = TrustedProxies::parse(trusted.split(',')).unwrap();
            })
            .await;
            let response = gateway
                .http
                .get(gateway.url("/api/auth/session"))
                .header("host", "app.example:8443")
                .header("x-forwarded-for", "198.51.100.1, 203.0.113.9")
                .header("x-forwarded-proto", "https")
                .header("forwarded", "for=198.51.100.1")
                .header("x-real-ip", "198.51.100.1")
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            let seen = gateway.upstream.only();
            assert_eq!(
                seen.headers["x-forwarded-for"], forwarded_for,
                "{engine:?}, trusting {trusted:?}"
            );
            for dropped in ["forwarded", "x-real-ip"] {
                assert!(seen.headers.get(dropped).is_none(), "{dropped} travelled");
            }
            assert_eq!(seen.headers["x-forwarded-proto"], "http");
            assert_eq!(seen.headers["x-forwarded-host"], "app.example:8443");
            // The upstream is addressed by its own authority.
            assert_eq!(
                seen.headers["host"],
                gateway.upstream.url().trim_start_matches("http://")
            );
        }
    }
}

#[tokio::test]
async fn a_sane_request_id_is_kept_forwarded_and_echoed() {
    let gateway = spawn_gateway().await;
    let response = gateway
        .http
        .get(gateway.url("/api/auth/session"))
        .header("x-request-id", "req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "req-42");
    assert_eq!(gateway.upstream.only().headers["x-request-id"], "req-42");
}

#[tokio::test]
async fn a_missing_or_insane_request_id_is_replaced_by_a_generated_one() {
    let gateway = spawn_gateway().await;
    let response = gateway
        .http
        .get(gateway.url("/api/auth/session"))
        .header("x-request-id", "x".repeat(200))
        .send()
        .await
        .unwrap();
    let echoed = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(echoed.len(), 36, "a UUID: {echoed}");
    assert_eq!(
        gateway.upstream.only().headers["x-request-id"],
        echoed.as_str()
    );
    // Error responses carry one too.
    let missing = gateway
        .http
        .get(gateway.url("/nowhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.headers()["x-request-id"].len(), 36);
}

#[tokio::test]
async fn upstream_hop_by_hop_and_cors_headers_are_not_passed_back() {
    let gateway = spawn_gateway().await;
    let response = gateway
        .http
        .get(gateway.url("/api/auth/session"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    assert!(headers.get("x-upstream-private").is_none());
    assert!(headers.get("keep-alive").is_none());
    assert!(headers.get("access-control-allow-origin").is_none());
    assert_eq!(headers["content-type"], "application/json");
    // The gateway's request id replaces the upstream's; its Vary joins the upstream's.
    let ids: Vec<_> = headers.get_all("x-request-id").iter().collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].len(), 36, "{ids:?}");
    let vary: Vec<_> = headers.get_all("vary").iter().collect();
    assert_eq!(vary, ["accept", "Origin"]);
}
