//! The identity the upstream receives is the gateway's, never the client's.

use gateway::config::Http1Engine;
use http::Method;
use proto_shared::{headers, identity::unix_now};

use crate::{
    helpers::{proven_user, spawn_gateway, spawn_gateway_with, verifier},
    raw,
};

#[tokio::test]
async fn spoofed_identity_headers_in_any_spelling_are_replaced_by_a_valid_credential() {
    let gateway = spawn_gateway().await;
    let token = gateway.token("alice");
    let request = format!(
        "GET /api/alice/tasks?status=all HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {token}\r\n\
         X-User-Id: mallory\r\nx_user_id: mallory\r\nX_USER_ID: mallory\r\n\
         X-Identity-Credential: v1;kid=gw-test;ts=1;sig=AA\r\nx_identity_credential: forged\r\n\
         X-Forwarded-User: mallory\r\nRemote-User: mallory\r\nX-Remote-User: mallory\r\n\
         Connection: close\r\n\r\n"
    );
    let response = raw::send(gateway.address, &request).await;
    assert_eq!(response.status, 200, "{response:?}");

    let seen = gateway.upstream.only();
    for name in seen.headers.keys() {
        let identity_like = headers::is_identity_header(name.as_str());
        let ours = *name == headers::USER_ID || *name == headers::IDENTITY_CREDENTIAL;
        assert!(!identity_like || ours, "{name} reached the upstream");
    }
    assert_eq!(seen.headers.get_all(headers::USER_ID).iter().count(), 1);
    assert_eq!(
        seen.headers
            .get_all(headers::IDENTITY_CREDENTIAL)
            .iter()
            .count(),
        1
    );
    assert_eq!(proven_user(&seen), "alice");
    assert_eq!(seen.target, "/api/alice/tasks?status=all");
}

#[tokio::test]
async fn each_request_on_a_kept_alive_connection_carries_its_own_tokens_user() {
    // The connection remembers its last token; a different one must never borrow its user.
    let gateway = spawn_gateway().await;
    let mut connection = raw::RawConnection::open(gateway.address).await;
    let users = ["alice", "alice", "bob", "alice", "bob", "bob"];
    for user in users {
        let token = gateway.token(user);
        connection
            .write(format!(
                "GET /api/{user}/tasks HTTP/1.1\r\nHost: gw\r\n\
                 Authorization: Bearer {token}\r\n\r\n"
            ))
            .await;
        assert_eq!(connection.read_response().await.status, 200, "{user}");
    }
    // A token that differs from the last one only in its signature is refused.
    let token = gateway.token("bob");
    let forged = format!("{}A", &token[..token.len() - 1]);
    let forged = if forged == token {
        format!("{}B", &token[..token.len() - 1])
    } else {
        forged
    };
    connection
        .write(format!(
            "GET /api/bob/tasks HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {forged}\r\n\r\n"
        ))
        .await;
    assert_eq!(connection.read_response().await.status, 401);

    let seen = gateway.upstream.seen();
    assert_eq!(
        seen.len(),
        users.len(),
        "the forged request never reached it"
    );
    for (request, user) in seen.iter().zip(users) {
        assert_eq!(proven_user(request), user);
        assert_eq!(request.target, format!("/api/{user}/tasks"));
    }
}

#[tokio::test]
async fn neither_the_token_nor_the_session_cookie_is_forwarded_to_the_api_by_default() {
    let gateway = spawn_gateway().await;
    let response = gateway
        .http
        .get(gateway.url("/api/alice/tasks"))
        .bearer_auth(gateway.token("alice"))
        // A same-origin page's fetch sends Better Auth's session cookie along.
        .header("Cookie", "better-auth.session_token=abc.def")
        .header("cookie", "theme=dark")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = gateway.upstream.only();
    assert!(seen.headers.get("authorization").is_none());
    assert!(seen.headers.get("cookie").is_none(), "{:?}", seen.headers);
}

/// The same, with the header's name in letter cases a client library would never send
/// (reqwest lower-cases names), over HTTP/1.1 as written, and over HTTP/2 as separate
/// `cookie` fields, on both engines.
#[tokio::test]
async fn a_cookie_in_any_spelling_or_split_over_http2_fields_stays_at_the_gateway() {
    let gateway = spawn_gateway().await;
    let token = gateway.token("alice");
    let mut connection = crate::raw::RawConnection::open(gateway.address).await;
    connection
        .write(format!(
            "GET /api/alice/tasks HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {token}\r\n\
             COOKIE: better-auth.session_token=abc.def\r\ncOoKiE: theme=dark\r\n\r\n"
        ))
        .await;
    assert_eq!(connection.read_response().await.status, 200);
    let seen = gateway.upstream.only();
    assert!(seen.headers.get("cookie").is_none(), "{:?}", seen.headers);

    let response = crate::helpers::http2_client()
        .get(gateway.url("/api/alice/tasks"))
        .bearer_auth(&token)
        .header("cookie", "better-auth.session_token=abc.def")
        .header("cookie", "theme=dark")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = gateway.upstream.seen().pop().unwrap();
    assert!(seen.headers.get("cookie").is_none(), "{:?}", seen.headers);
}

#[tokio::test]
async fn the_token_and_the_cookie_are_forwarded_when_configured() {
    let gateway = spawn_gateway_with(|s| s.forward_authorization = true).await;
    let token = gateway.token("alice");
    gateway
        .http
        .get(gateway.url("/api/alice/tasks"))
        .bearer_auth(&token)
        .header("Cookie", "better-auth.session_token=abc.def")
        .send()
        .await
        .unwrap();
    let seen = gateway.upstream.only();
    assert_eq!(seen.headers["authorization"], format!("Bearer {token}"));
    assert_eq!(seen.headers["cookie"], "better-auth.session_token=abc.def");
}

#[tokio::test]
async fn a_token_for_one_user_on_another_users_path_is_forbidden() {
    let gateway = spawn_gateway().await;
    for path in ["/api/bob/tasks", "/api/alic%65x/tasks", "/api/%ff/tasks"] {
        let response = gateway
            .http
            .post(gateway.url(path))
            .bearer_auth(gateway.token("alice"))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{path}");
        assert_eq!(
            crate::helpers::detail(response).await,
            "Forbidden: the path names another user"
        );
    }
    assert!(gateway.upstream.seen().is_empty());
}

#[tokio::test]
async fn a_path_naming_no_user_is_404_not_another_user() {
    let gateway = spawn_gateway().await;
    for path in ["/api/", "/api//tasks", "/api//tasks/1"] {
        for token in [Some(gateway.token("alice")), None] {
            let mut request = gateway.http.post(gateway.url(path)).body("{}");
            if let Some(token) = &token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            assert_eq!(
                response.status(),
                404,
                "{path} (token: {})",
                token.is_some()
            );
            assert_eq!(crate::helpers::detail(response).await, "Not Found");
        }
    }
    assert!(gateway.upstream.seen().is_empty());
}

#[tokio::test]
async fn a_percent_encoded_user_id_matches_its_decoded_token_subject() {
    let gateway = spawn_gateway().await;
    let response = gateway
        .http
        .get(gateway.url("/api/user%20one/tasks"))
        .bearer_auth(gateway.token("user one"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = gateway.upstream.only();
    assert_eq!(proven_user(&seen), "user one");
}

#[tokio::test]
async fn public_routes_need_no_token_but_still_lose_identity_headers() {
    let gateway = spawn_gateway().await;
    let request = "POST /api/auth/sign-in/email HTTP/1.1\r\nHost: gw\r\n\
         Authorization: Bearer not-checked-here\r\nX-User-Id: mallory\r\nx_identity_credential: f\r\n\
         Cookie: better-auth.session_token=abc\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
    let response = raw::send(gateway.address, request).await;
    assert_eq!(response.status, 200, "{response:?}");
    let seen = gateway.upstream.only();
    assert!(seen.headers.get(headers::USER_ID).is_none());
    assert!(seen.headers.get("x_identity_credential").is_none());
    assert!(seen.headers.get(headers::IDENTITY_CREDENTIAL).is_none());
    // Better Auth needs its own headers and cookies.
    assert_eq!(seen.headers["authorization"], "Bearer not-checked-here");
    assert_eq!(seen.headers["cookie"], "better-auth.session_token=abc");
    assert_eq!(seen.body_len, 2);
    assert_eq!(seen.method, Method::POST);
}

#[tokio::test]
async fn the_credential_covers_the_body_the_upstream_receives_on_both_engines() {
    for engine in [Http1Engine::Lean, Http1Engine::Hyper] {
        let gateway = spawn_gateway_with(|s| s.http1_engine = engine).await;
        let token = gateway.token("alice");
        let mut connection = raw::RawConnection::open(gateway.address).await;
        // A body framed by length (the lean engine's), then a chunked one (hyper's, which
        // the lean engine hands over), then none, on one connection.
        let length_framed = r#"{"title":"by length"}"#;
        connection
            .write(raw::post_with_token(
                "/api/alice/tasks",
                &token,
                "application/json",
                length_framed,
            ))
            .await;
        assert_eq!(connection.read_response().await.status, 200, "{engine:?}");
        connection
            .write(format!(
                "PUT /api/alice/tasks/7 HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {token}\r\n\
                 Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\
                 9\r\n{{\"title\":\r\n9\r\n\"chunked\"\r\n1\r\n}}\r\n0\r\n\r\n"
            ))
            .await;
        assert_eq!(connection.read_response().await.status, 200, "{engine:?}");
        connection
            .write(format!(
                "DELETE /api/alice/tasks/7 HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {token}\r\n\r\n"
            ))
            .await;
        assert_eq!(connection.read_response().await.status, 200, "{engine:?}");

        let seen = gateway.upstream.seen();
        let bodies: [&[u8]; 3] = [length_framed.as_bytes(), br#"{"title":"chunked"}"#, b""];
        assert_eq!(seen.len(), bodies.len(), "{engine:?}");
        // One verifier for all: a nonce used twice would be refused as a replay.
        let verifier = verifier();
        for (request, body) in seen.iter().zip(bodies) {
            assert_eq!(request.body, body, "{engine:?}: the body arrives whole");
            let other_body = b"{\"title\":\"swapped\"}";
            assert_eq!(
                verifier.verify(
                    &request.method,
                    &request.target,
                    &request.headers,
                    other_body,
                    unix_now()
                ),
                Err(proto_shared::IdentityError::BodyMismatch),
                "{engine:?} {}",
                request.method
            );
            let verified = verifier
                .verify(
                    &request.method,
                    &request.target,
                    &request.headers,
                    body,
                    unix_now(),
                )
                .unwrap_or_else(|e| panic!("{engine:?} {}: {e}", request.method));
            assert_eq!(verified.unwrap().as_str(), "alice");
            assert_eq!(
                verifier.verify(
                    &request.method,
                    &request.target,
                    &request.headers,
                    body,
                    unix_now()
                ),
                Err(proto_shared::IdentityError::Replayed),
                "{engine:?}: a credential is good for one request"
            );
        }
    }
}

/// A signed body larger than any socket's send buffer (4 MiB at most here), which the lean
/// engine reads whole and then writes upstream behind its head in one vectored write: the
/// kernel takes it in parts, and the write must go on where each part ended. The upstream
/// must get every byte in order, under a credential that verifies for exactly that body.
#[tokio::test]
async fn a_signed_body_larger_than_a_send_buffer_reaches_the_upstream_whole_on_both_engines() {
    // Each 8-byte entry names its own position: a byte lost, repeated or moved shows.
    let body: String = (0..2_000_000).map(|i| format!("{i:07},")).collect();
    for engine in [Http1Engine::Lean, Http1Engine::Hyper] {
        let gateway = spawn_gateway_with(|s| {
            s.http1_engine = engine;
            s.limits.max_body_bytes = 32 * 1024 * 1024;
        })
        .await;
        let token = gateway.token("alice");
        let mut connection = raw::RawConnection::open(gateway.address).await;
        connection
            .write(raw::post_with_token(
                "/api/alice/tasks",
                &token,
                "text/plain",
                &body,
            ))
            .await;
        assert_eq!(connection.read_response().await.status, 200, "{engine:?}");
        let seen = gateway.upstream.seen();
        let [request] = seen.as_slice() else {
            panic!("{engine:?}: {} requests reached the upstream", seen.len());
        };
        assert_eq!(request.body.len(), body.len(), "{engine:?}");
        assert!(
            request.body == body.as_bytes(),
            "{engine:?}: the body arrived altered"
        );
        let verified = verifier()
            .verify(
                &request.method,
                &request.target,
                &request.headers,
                &request.body,
                unix_now(),
            )
            .unwrap_or_else(|e| panic!("{engine:?}: {e}"));
        assert_eq!(verified.unwrap().as_str(), "alice");
    }
}

#[tokio::test]
async fn a_signed_body_over_the_limit_or_cut_short_never_reaches_the_upstream() {
    for engine in [Http1Engine::Lean, Http1Engine::Hyper] {
        let gateway = spawn_gateway_with(|s| {
            s.http1_engine = engine;
            s.limits.max_body_bytes = 64;
        })
        .await;
        let token = gateway.token("alice");
        // Chunked, so the size is only known once the body is read.
        let big = "x".repeat(100);
        let response = raw::send(
            gateway.address,
            &format!(
                "POST /api/alice/tasks HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {token}\r\n\
                 Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n64\r\n{big}\r\n0\r\n\r\n"
            ),
        )
        .await;
        assert_eq!(response.status, 413, "{engine:?}");
        // A length promised and not kept: the client gives up half way.
        let mut stream = tokio::net::TcpStream::connect(gateway.address)
            .await
            .unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream
            .write_all(
                format!(
                    "POST /api/alice/tasks HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {token}\r\n\
                     Content-Length: 40\r\n\r\n{{\"title\":"
                )
                .as_bytes(),
            )
            .await
            .unwrap();
        stream.shutdown().await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stream.read_to_end(&mut answer),
        )
        .await
        .expect("the gateway answers or closes")
        .unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
            "{engine:?}: {answer}"
        );
        assert!(gateway.upstream.seen().is_empty(), "{engine:?}");
    }
}
