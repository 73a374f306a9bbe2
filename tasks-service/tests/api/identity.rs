//! Identity: only a valid credential from a key the service holds makes a request someone's.

use http::Method;
use proto_shared::{identity::unix_now, Verifier};
use serde_json::json;

use crate::helpers::{
    ring, spawn_app, spawn_app_with, Answer, ADMIN_URL, GATEWAY_KEY, REPORTS_KEY,
};

async fn answer(request: reqwest::RequestBuilder) -> Answer {
    Answer::from(request.send().await.unwrap()).await
}

#[tokio::test]
async fn no_identity_is_401_not_authenticated() {
    let app = spawn_app().await;
    for (method, path) in [
        (Method::GET, "/api/alice/tasks"),
        (Method::POST, "/api/alice/tasks"),
        (Method::GET, "/api/alice/tasks/1"),
        (Method::PUT, "/api/alice/tasks/1"),
        (Method::DELETE, "/api/alice/tasks/1"),
        (Method::PATCH, "/api/alice/tasks/1/complete"),
    ] {
        let answer = answer(app.raw(method.clone(), path)).await;
        assert_eq!(answer.status, 401, "{method} {path}");
        assert_eq!(answer.detail(), "Not authenticated");
        assert_eq!(answer.headers["www-authenticate"], "Bearer");
    }
}

#[tokio::test]
async fn a_spoofed_user_header_without_credential_is_401_and_never_used() {
    let app = spawn_app().await;
    let spoofed = answer(
        app.raw(Method::POST, "/api/alice/tasks")
            .header("x-user-id", "alice")
            .json(&json!({"title": "planted"})),
    )
    .await;
    assert_eq!(spoofed.status, 401);
    assert_eq!(spoofed.detail(), "Not authenticated");
    // Foreign identity headers mean nothing here.
    let foreign = answer(
        app.raw(Method::GET, "/api/alice/tasks")
            .header("x-forwarded-user", "alice")
            .header("remote-user", "alice"),
    )
    .await;
    assert_eq!(foreign.status, 401);
    assert_eq!(
        app.user("alice").list("").await.body,
        json!([]),
        "nothing was planted"
    );
}

#[tokio::test]
async fn unknown_keys_wrong_secrets_and_stale_credentials_are_401() {
    let app = spawn_app().await;
    let path = "/api/alice/tasks";
    let now = unix_now();
    let cases = [
        (
            "unknown key",
            "intruder:intruder-secret-0123456789abcdef-01",
            now,
        ),
        (
            "wrong secret",
            "gateway:not-the-gateway-secret-0123456789abcdef",
            now,
        ),
        ("expired", GATEWAY_KEY, now - 31),
        ("from the future", GATEWAY_KEY, now + 31),
    ];
    for (case, key, ts) in cases {
        let answer = answer(app.signed_with(key, Method::GET, path, "alice", ts)).await;
        assert_eq!(answer.status, 401, "{case}");
        assert_eq!(answer.detail(), "Not authenticated", "{case}");
    }
    assert_eq!(
        answer(app.signed_with(GATEWAY_KEY, Method::GET, path, "alice", now - 25))
            .await
            .status,
        200,
        "within the window"
    );
    let metrics = app.metrics_text().await;
    for line in [
        r#"tasks_identity_refusals_total{reason="unknown_key"} 1"#,
        r#"tasks_identity_refusals_total{reason="bad_signature"} 1"#,
        r#"tasks_identity_refusals_total{reason="stale"} 2"#,
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
    assert!(!metrics.contains("gateway-secret"));
}

#[tokio::test]
async fn a_credential_is_bound_to_method_path_query_and_user() {
    let app = spawn_app().await;
    let alice = app.user("alice");
    let id = alice.create_titled("mine").await;
    let task_path = format!("/api/alice/tasks/{id}");
    let sign = |method: Method, path: &str, user: &str| {
        proto_shared::Signer::new(&ring(GATEWAY_KEY)).sign(
            &method,
            path,
            &proto_shared::UserId::parse(user).unwrap(),
            unix_now(),
        )
    };
    let send = |method: Method, path: &str, identity: proto_shared::IdentityHeaders| {
        app.raw(method, path)
            .header("x-user-id", identity.user_id)
            .header("x-identity-credential", identity.credential)
    };
    // Signed for GET, sent as DELETE.
    let answer1 = answer(send(
        Method::DELETE,
        &task_path,
        sign(Method::GET, &task_path, "alice"),
    ))
    .await;
    assert_eq!(answer1.status, 401);
    // Signed for one path, sent to another.
    let other = "/api/alice/tasks/999";
    assert_eq!(
        answer(send(
            Method::GET,
            other,
            sign(Method::GET, &task_path, "alice")
        ))
        .await
        .status,
        401
    );
    // Query string added after signing.
    let listed = "/api/alice/tasks";
    let with_query = "/api/alice/tasks?status=completed";
    assert_eq!(
        answer(send(
            Method::GET,
            with_query,
            sign(Method::GET, listed, "alice")
        ))
        .await
        .status,
        401
    );
    // User header swapped after signing.
    let mut identity = sign(Method::GET, "/api/bob/tasks", "alice");
    identity.user_id = http::HeaderValue::from_static("bob");
    assert_eq!(
        answer(send(Method::GET, "/api/bob/tasks", identity))
            .await
            .status,
        401
    );
    // Identity headers sent twice.
    let identity = sign(Method::GET, listed, "alice");
    let doubled = send(Method::GET, listed, identity.clone()).header("x-user-id", "alice");
    assert_eq!(answer(doubled).await.status, 401);

    assert_eq!(alice.get(id).await.status, 200, "the task is untouched");
}

#[tokio::test]
async fn in_cluster_callers_sign_with_their_own_key() {
    let app = spawn_app().await;
    let now = unix_now();
    let created = answer(
        app.signed_with(REPORTS_KEY, Method::POST, "/api/alice/tasks", "alice", now)
            .json(&json!({"title": "from reports"})),
    )
    .await;
    assert_eq!(created.status, 201);
    assert_eq!(
        app.user("alice").list("").await.body[0]["title"],
        "from reports"
    );
}

#[tokio::test]
async fn rotated_keys_keep_working_until_removed() {
    const NEW: &str = "gw-2:second-gateway-secret-0123456789abcdef";
    // During rotation the service accepts both keys.
    let both = spawn_app_with(ADMIN_URL, |s| {
        s.verifier = Verifier::new(ring(&format!("{NEW},{GATEWAY_KEY}")), 30)
    })
    .await;
    for key in [NEW, GATEWAY_KEY] {
        let request = both.signed_with(key, Method::GET, "/api/alice/tasks", "alice", unix_now());
        assert_eq!(answer(request).await.status, 200, "{key}");
    }
    // After it, the old key is refused.
    let rotated = spawn_app_with(ADMIN_URL, |s| s.verifier = Verifier::new(ring(NEW), 30)).await;
    let old = rotated.signed_with(
        GATEWAY_KEY,
        Method::GET,
        "/api/alice/tasks",
        "alice",
        unix_now(),
    );
    assert_eq!(answer(old).await.status, 401);
    let new = rotated.signed_with(NEW, Method::GET, "/api/alice/tasks", "alice", unix_now());
    assert_eq!(answer(new).await.status, 200);
}
