//! Each limit: body size (declared and while streaming), head size, header-read and idle
//! timeouts and the concurrency cap.

use std::time::Duration;

use bytes::Bytes;
use gateway::config::Http1Engine;
use tokio::{io::AsyncWriteExt, net::TcpStream};

use crate::{
    helpers::{detail, spawn_gateway, spawn_gateway_with},
    raw::{self, RawConnection},
    streaming,
};

#[tokio::test]
async fn a_declared_body_over_the_limit_is_413_before_reaching_the_upstream() {
    let gateway = spawn_gateway_with(|s| s.limits.max_body_bytes = 1000).await;
    let response = gateway
        .http
        .post(gateway.url("/api/auth/sign-up"))
        .body(vec![b'x'; 1001])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(detail(response).await, "Request body too large");
    assert!(gateway.upstream.seen().is_empty());

    let exact = gateway
        .http
        .post(gateway.url("/api/auth/sign-up"))
        .body(vec![b'x'; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(exact.status(), 200);
}

#[tokio::test]
async fn a_streamed_body_over_the_limit_is_cut_off_with_413() {
    let gateway = spawn_gateway_with(|s| s.limits.max_body_bytes = 64 * 1024).await;
    let (sender, body) = streaming::channel_body();
    let request = streaming::post(&gateway, "/api/auth/upload", body);
    let feeder = tokio::spawn(async move {
        for _ in 0..16 {
            // 16 × 8 KiB = 128 KiB, twice the limit, without a Content-Length.
            if sender
                .send(Bytes::from(vec![b'x'; 8 * 1024]))
                .await
                .is_err()
            {
                break; // the gateway stopped reading: expected once over the limit
            }
        }
    });
    let response = request.await;
    assert_eq!(response.status(), 413);
    feeder.await.unwrap();
    // The upstream never got a complete oversized body.
    for seen in gateway.upstream.seen() {
        assert!(
            seen.body_len == usize::MAX || seen.body_len <= 64 * 1024,
            "{seen:?}"
        );
    }
}

#[tokio::test]
async fn headers_over_the_limit_are_431() {
    let gateway = spawn_gateway().await;
    let response = gateway
        .http
        .get(gateway.url("/api/auth/session"))
        .header("x-padding", "p".repeat(9 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 431);
    assert_eq!(detail(response).await, "Request header fields too large");

    // Far beyond: refused by hyper itself while reading, still 431.
    let huge = format!(
        "GET /api/auth/session HTTP/1.1\r\nHost: gw\r\nX-Padding: {}\r\nConnection: close\r\n\r\n",
        "p".repeat(64 * 1024)
    );
    let response = raw::send(gateway.address, &huge).await;
    assert_eq!(response.status, 431);
    assert!(gateway.upstream.seen().is_empty());
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let gateway = spawn_gateway().await; // header-read timeout: 1 s
    let mut slow = TcpStream::connect(gateway.address).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: gw\r\nX-Slow: ")
        .await
        .unwrap();
    assert!(
        raw::closed_within(&mut slow, Duration::from_secs(5)).await,
        "a slow client kept its connection"
    );
    let mut silent = TcpStream::connect(gateway.address).await.unwrap();
    assert!(
        raw::closed_within(&mut silent, Duration::from_secs(5)).await,
        "a silent client kept its connection"
    );
}

/// Opens a kept-alive connection on `engine` (header-read timeout 1 s, idle timeout 4 s),
/// answers one request on it, and says how long after the request was sent the idle
/// connection was closed (up to 10 s). Timers never fire early, so the time is at least the
/// timeout that closed it; a slow machine can only add to it.
async fn idle_connection_lifetime(engine: Http1Engine) -> Duration {
    let gateway = spawn_gateway_with(|s| {
        s.http1_engine = engine;
        s.limits.idle_timeout = Duration::from_secs(4);
    })
    .await;
    let mut connection = RawConnection::open(gateway.address).await;
    let sent = tokio::time::Instant::now();
    connection
        .write("GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n")
        .await;
    assert_eq!(connection.read_response().await.status, 200);
    assert!(
        raw::closed_within(&mut connection.stream, Duration::from_secs(10)).await,
        "{engine:?}: the idle connection was still open after 10 s"
    );
    sent.elapsed()
}

#[tokio::test]
async fn an_idle_keep_alive_connection_lasts_the_idle_timeout_not_the_header_read_timeout() {
    // Closed by the idle timeout (4 s), not the header-read timeout (1 s).
    let lifetime = idle_connection_lifetime(Http1Engine::Lean).await;
    assert!(
        (Duration::from_secs(4)..Duration::from_secs(8)).contains(&lifetime),
        "closed after {lifetime:?}, idle timeout 4 s"
    );
}

/// The idle timeout counts from the connection's last request, not its first: each request
/// moves it on (the engine moves its timer only when it fires early, `http1/deadline.rs`).
/// The lean engine's: hyper has no idle timeout of its own (the test after this).
#[tokio::test]
async fn the_idle_timeout_counts_from_the_last_request() {
    let gateway = spawn_gateway_with(|s| {
        s.http1_engine = Http1Engine::Lean;
        s.limits.idle_timeout = Duration::from_secs(3);
    })
    .await;
    let mut connection = RawConnection::open(gateway.address).await;
    let request = "GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n";
    connection.write(request).await;
    assert_eq!(connection.read_response().await.status, 200);
    // Well within the first request's release (1 s), so the connection stays in use with the
    // timers it had for the first request.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let last = tokio::time::Instant::now();
    connection.write(request).await;
    assert_eq!(connection.read_response().await.status, 200);
    assert!(
        raw::closed_within(&mut connection.stream, Duration::from_secs(10)).await,
        "the idle connection was still open after 10 s"
    );
    let lifetime = last.elapsed();
    // Timers never fire early: closed about 2.5 s after the last request means the first
    // request's deadline closed it. A slow machine can only add to the time.
    assert!(
        (Duration::from_secs(3)..Duration::from_secs(8)).contains(&lifetime),
        "closed {lifetime:?} after the last request, idle timeout 3 s"
    );
}

#[tokio::test]
async fn on_connections_hyper_serves_idle_time_counts_against_the_header_read_timeout() {
    // hyper 1 starts its header-read timer as soon as it waits for the next head, and has no
    // idle timer of its own (specs/research.md): the shorter, safe bound.
    let lifetime = idle_connection_lifetime(Http1Engine::Hyper).await;
    assert!(
        (Duration::from_secs(1)..Duration::from_millis(3500)).contains(&lifetime),
        "closed after {lifetime:?}, header-read timeout 1 s"
    );
}

#[tokio::test]
async fn beyond_the_concurrency_cap_requests_get_503_at_once() {
    let gateway = spawn_gateway_with(|s| {
        s.limits.max_concurrent_requests = 1;
        s.limits.upstream_timeout = Duration::from_secs(10);
    })
    .await;
    let held = tokio::spawn({
        let http = gateway.http.clone();
        let url = gateway.url("/api/auth/hold");
        async move { http.get(url).send().await.unwrap().status() }
    });
    gateway.upstream.wait_for_arrivals(1).await;

    let refused = gateway
        .http
        .get(gateway.url("/api/auth/other"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_eq!(detail(refused).await, "Service overloaded, retry later");
    // The gateway's own endpoints stay reachable under load.
    let health = gateway
        .http
        .get(gateway.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    gateway.upstream.release();
    assert_eq!(held.await.unwrap(), 200);
    let after = gateway
        .http
        .get(gateway.url("/api/auth/other"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        after.status(),
        200,
        "the permit is returned when the response ends"
    );
}

/// A signed request's body is read whole before it is signed, within the upstream timeout:
/// a client that announces a body and stops sending it gets 408, on either engine, and the
/// upstream sees nothing. (A body that came with its head is signed without waiting.)
#[tokio::test]
async fn a_signed_body_that_stops_arriving_gets_408_within_the_upstream_timeout() {
    for engine in [Http1Engine::Lean, Http1Engine::Hyper] {
        let gateway = spawn_gateway_with(|s| {
            s.http1_engine = engine;
            s.limits.upstream_timeout = Duration::from_millis(400);
        })
        .await;
        let token = gateway.token("alice");
        let mut connection = RawConnection::open(gateway.address).await;
        connection
            .write(format!(
                "POST /api/alice/tasks HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {token}\r\n\
                 Content-Type: application/json\r\nContent-Length: 20\r\n\r\n{{\"title\":"
            ))
            .await;
        let response = tokio::time::timeout(Duration::from_secs(5), connection.read_response())
            .await
            .unwrap_or_else(|_| panic!("{engine:?}: no answer to a stalled body"));
        assert_eq!(response.status, 408, "{engine:?}");
        assert!(gateway.upstream.seen().is_empty(), "{engine:?}");

        // The whole body with its head: signed and forwarded at once. On a gateway with time
        // to spare, so that a slow machine's pause cannot pass for waiting: one that waited
        // for more body would leave `read_response` to its own guard.
        let gateway = spawn_gateway_with(|s| {
            s.http1_engine = engine;
            s.limits.upstream_timeout = Duration::from_secs(10);
        })
        .await;
        let token = gateway.token("alice");
        let mut connection = RawConnection::open(gateway.address).await;
        let body = r#"{"title":"buy milk"}"#;
        connection
            .write(raw::post_with_token(
                "/api/alice/tasks",
                &token,
                "application/json",
                body,
            ))
            .await;
        assert_eq!(connection.read_response().await.status, 200, "{engine:?}");
        assert_eq!(gateway.upstream.seen().len(), 1, "{engine:?}");
    }
}

/// A streamed (public) body that stops arriving is the client's delay too: 408, counted as a
/// body timeout, not a 504 that blames (and alarms about) the upstream, on either engine.
#[tokio::test]
async fn a_streamed_body_that_stops_arriving_gets_408_not_an_upstream_timeout() {
    for engine in [Http1Engine::Lean, Http1Engine::Hyper] {
        let gateway = spawn_gateway_with(|s| {
            s.http1_engine = engine;
            s.limits.upstream_timeout = Duration::from_millis(400);
        })
        .await;
        let mut connection = RawConnection::open(gateway.address).await;
        connection
            .write(
                "POST /api/auth/sign-in/email HTTP/1.1\r\nHost: gw\r\n\
                 Content-Type: application/json\r\nContent-Length: 20\r\n\r\n{\"email\":",
            )
            .await;
        let response = tokio::time::timeout(Duration::from_secs(5), connection.read_response())
            .await
            .unwrap_or_else(|_| panic!("{engine:?}: no answer to a stalled body"));
        assert_eq!(response.status, 408, "{engine:?}: {response:?}");
        let metrics = gateway.metrics().await;
        assert!(
            metrics.contains(r#"reason="body_timeout"} 1"#),
            "{engine:?}: {metrics}"
        );
        assert!(
            !metrics.contains("upstream_timeout"),
            "{engine:?}: {metrics}"
        );
    }
}

/// The in-flight gauge is the count the concurrency cap reads: a request that left it raised
/// would shrink the cap for good. After answers of every kind (forwarded, refused before and
/// after authentication, at the cap, the gateway's own), on both engines, it is back at 0,
/// and the cap of one admits a request again.
#[tokio::test]
async fn every_answer_gives_back_its_place_in_the_in_flight_count() {
    for engine in [Http1Engine::Lean, Http1Engine::Hyper] {
        let gateway = spawn_gateway_with(|s| {
            s.limits.max_concurrent_requests = 1;
            s.http1_engine = engine;
        })
        .await;
        let token = gateway.token("alice");
        let get = |path: &str, token: Option<&str>| {
            let request = gateway.http.get(gateway.url(path));
            let request = match token {
                Some(token) => request.bearer_auth(token),
                None => request,
            };
            async move { request.send().await.unwrap().status().as_u16() }
        };
        let held = tokio::spawn(get("/api/auth/hold", None));
        gateway.upstream.wait_for_arrivals(1).await;
        assert_eq!(
            get("/api/alice/tasks", Some(&token)).await,
            503,
            "{engine:?}"
        );
        assert_eq!(get("/healthz", None).await, 200, "{engine:?}");
        gateway.upstream.release();
        assert_eq!(held.await.unwrap(), 200, "{engine:?}");

        let outcomes = [
            ("/api/alice/tasks", Some(token.as_str()), 200),
            ("/api/alice/tasks", None, 401),
            ("/api/bob/tasks", Some(token.as_str()), 403),
            ("/nowhere", None, 404),
            ("/healthz", None, 200),
        ];
        for (path, token, status) in outcomes {
            assert_eq!(get(path, token).await, status, "{engine:?} {path}");
            wait_for_no_request_in_flight(&gateway).await;
            assert_eq!(
                get("/api/alice/tasks", Some(&gateway.token("alice"))).await,
                200,
                "{engine:?}: the cap of one refused a request after {path} ({status})"
            );
            wait_for_no_request_in_flight(&gateway).await;
        }
    }
}

/// Polls the gauge until it reads 0 (5 s deadline): the answer reaches the client a moment
/// before its guard is dropped.
async fn wait_for_no_request_in_flight(gateway: &crate::helpers::TestGateway) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let metrics = gateway.metrics().await;
        if metrics
            .lines()
            .any(|line| line == "gateway_in_flight_requests 0")
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "requests still counted in flight:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
