//! Routes, methods, path user ids, request ids: what happens before a handler runs.

use http::Method;
use serde_json::json;

use crate::helpers::{spawn_app, Answer};

#[tokio::test]
async fn unknown_routes_are_404_even_without_identity() {
    let app = spawn_app().await;
    for path in [
        "/",
        "/api",
        "/api/alice",
        "/api/alice/task",
        "/api/alice/tasks/1/done",
        "/api//tasks",
    ] {
        let answer = Answer::from(app.raw(Method::GET, path).send().await.unwrap()).await;
        assert_eq!(answer.status, 404, "{path}");
        assert_eq!(answer.detail(), "Not Found");
    }
}

#[tokio::test]
async fn wrong_methods_are_405_with_allow_before_identity() {
    let app = spawn_app().await;
    for (method, path, allow) in [
        (Method::DELETE, "/api/alice/tasks", "GET, POST"),
        (Method::PATCH, "/api/alice/tasks/1", "GET, PUT, DELETE"),
        (Method::POST, "/api/alice/tasks/1", "GET, PUT, DELETE"),
        (Method::GET, "/api/alice/tasks/1/complete", "PATCH"),
        (Method::POST, "/healthz", "GET"),
    ] {
        let answer = Answer::from(app.raw(method.clone(), path).send().await.unwrap()).await;
        assert_eq!(answer.status, 405, "{method} {path}");
        assert_eq!(answer.detail(), "Method Not Allowed");
        assert_eq!(answer.headers["allow"], allow);
    }
}

#[tokio::test]
async fn a_path_user_other_than_the_verified_one_is_403() {
    let app = spawn_app().await;
    let answer = Answer::from(
        app.signed(Method::GET, "/api/bob/tasks", "alice")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 403);
    assert_eq!(
        answer.detail(),
        "Not authorized to access this user's tasks"
    );
}

#[tokio::test]
async fn invalid_path_user_ids_are_422() {
    let app = spawn_app().await;
    let long = "a".repeat(256);
    for (segment, kind) in [
        (long.as_str(), "string_too_long"),
        ("a%00b", "value_error"),
        ("a%0Ab", "value_error"),
        ("%ZZ", "value_error"),
    ] {
        let path = format!("/api/{segment}/tasks");
        let answer = Answer::from(
            app.signed(Method::GET, &path, "alice")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(answer.status, 422, "{segment}");
        assert_eq!(
            answer.field_errors(),
            [("path.user_id".to_owned(), kind.to_owned())]
        );
    }
}

#[tokio::test]
async fn user_ids_with_reserved_characters_round_trip() {
    let app = spawn_app().await;
    let odd = app.user("user@example.com/ü x");
    let id = odd.create_titled("odd").await;
    let task = odd.get(id).await;
    assert_eq!(task.status, 200);
    assert_eq!(task.body["user_id"], "user@example.com/ü x");
}

#[tokio::test]
async fn the_request_id_is_echoed_or_generated_on_every_answer() {
    let app = spawn_app().await;
    for (method, path) in [
        (Method::GET, "/healthz"),
        (Method::GET, "/nope"),
        (Method::GET, "/api/a/tasks"),
    ] {
        let response = app
            .raw(method.clone(), path)
            .header("x-request-id", "trace-123")
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["x-request-id"], "trace-123", "{path}");
        let response = app.raw(method, path).send().await.unwrap();
        let generated = response.headers()["x-request-id"].to_str().unwrap();
        assert_eq!(generated.len(), 36, "a UUID: {generated}");
    }
}

#[tokio::test]
async fn health_readiness_and_metrics_need_no_identity() {
    let app = spawn_app().await;
    let alice = app.user("alice");
    let id = alice.create_titled("count me").await;
    assert_eq!(alice.get(id).await.status, 200);
    assert_eq!(
        app.raw(Method::GET, "/api/alice/tasks")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    let health = Answer::from(app.raw(Method::GET, "/healthz").send().await.unwrap()).await;
    assert_eq!(
        (health.status, health.body.clone()),
        (200, json!({"status": "ok"}))
    );
    let ready = Answer::from(app.raw(Method::GET, "/readyz").send().await.unwrap()).await;
    assert_eq!(
        (ready.status, ready.body.clone()),
        (200, json!({"status": "ready"}))
    );

    let metrics = app.metrics_text().await;
    for expected in [
        r#"tasks_http_requests_total{route="/api/{user_id}/tasks",method="POST",status="201"} 1"#,
        r#"tasks_http_requests_total{route="/api/{user_id}/tasks/{id}",method="GET",status="200"} 1"#,
        r#"tasks_identity_refusals_total{reason="no_identity"} 1"#,
        "tasks_http_request_duration_seconds_bucket",
        "tasks_db_pool_size ",
        "tasks_db_pool_available ",
        "tasks_db_pool_waiting ",
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected} in\n{metrics}"
        );
    }
    assert!(!metrics.contains("alice"), "raw paths never become labels");
}

#[tokio::test]
async fn a_refused_request_with_a_body_closes_the_connection_and_says_so() {
    let app = spawn_app().await;
    let alice = app.user("alice");
    let body = json!({"title": "x"});
    // Refused on the path, before the body is read: hyper closes such a connection after
    // answering, so the answer must say so or a pooling proxy reuses a dead connection.
    // (Any refusal of a request with a body says so: which ones read it is not known here.)
    for (method, path, status) in [
        (Method::PUT, "/not-a-number", 422),
        (Method::DELETE, "/1", 404),
        (Method::POST, "", 201),
    ] {
        let answer = app
            .signed_body(method.clone(), &alice.path(path), "alice", body.to_string())
            .header("content-type", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), status, "{method} {path}");
        let close = answer
            .headers()
            .get("connection")
            .map(|v| v.to_str().unwrap().to_owned());
        if status == 201 {
            assert_eq!(close, None, "a body read and accepted keeps the connection");
        } else {
            assert_eq!(close.as_deref(), Some("close"), "{method} {path}");
        }
    }
}
