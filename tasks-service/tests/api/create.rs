//! POST /api/{user_id}/tasks: success and every kind of bad body.

use http::Method;
use serde_json::json;

use crate::helpers::{spawn_app, Answer};

#[tokio::test]
async fn creating_a_task_returns_201_with_the_stored_task() {
    let app = spawn_app().await;
    let alice = app.user("alice");
    let answer = alice
        .create(json!({"title": "  Buy milk  ", "description": "2 litres", "extra": true}))
        .await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    let task = &answer.body;
    assert!(task["id"].as_i64().unwrap() > 0);
    assert_eq!(task["user_id"], "alice");
    assert_eq!(task["title"], "Buy milk", "trimmed");
    assert_eq!(task["description"], "2 litres");
    assert_eq!(task["completed"], false);
    let created = task["created_at"].as_str().unwrap();
    assert!(created.ends_with('Z'), "RFC 3339 in UTC: {created}");
    let fraction = created.split('.').nth(1).unwrap_or_default();
    assert_eq!(
        fraction.len(),
        "123456Z".len(),
        "always microseconds: {created}"
    );
    chrono::DateTime::parse_from_rfc3339(created).unwrap();
    assert_eq!(task["updated_at"], task["created_at"]);
    assert!(task.get("extra").is_none());

    // Committed before the answer: readable at once.
    let fetched = alice.get(task["id"].as_i64().unwrap()).await;
    assert_eq!(fetched.status, 200);
    assert_eq!(&fetched.body, task);
}

#[tokio::test]
async fn description_is_optional_and_may_be_null() {
    let app = spawn_app().await;
    let alice = app.user("alice");
    for body in [
        json!({"title": "a"}),
        json!({"title": "b", "description": null}),
    ] {
        let answer = alice.create(body).await;
        assert_eq!(answer.status, 201);
        assert_eq!(answer.body["description"], serde_json::Value::Null);
    }
}

#[tokio::test]
async fn invalid_fields_get_422_with_every_problem_listed() {
    let app = spawn_app().await;
    let alice = app.user("alice");
    let cases = [
        (json!({}), vec![("body.title", "missing")]),
        (
            json!({"title": "   "}),
            vec![("body.title", "string_too_short")],
        ),
        (
            json!({"title": "x".repeat(201)}),
            vec![("body.title", "string_too_long")],
        ),
        (
            json!({"title": "a\u{7}b"}),
            vec![("body.title", "value_error")],
        ),
        (
            json!({"title": "a\u{0}b"}),
            vec![("body.title", "value_error")],
        ),
        (json!({"title": 5}), vec![("body.title", "string_type")]),
        (
            json!({"title": "ok", "description": "d".repeat(1001)}),
            vec![("body.description", "string_too_long")],
        ),
        (
            json!({"title": null, "description": 3}),
            vec![
                ("body.title", "string_type"),
                ("body.description", "string_type"),
            ],
        ),
        (json!([1, 2]), vec![("body", "model_attributes_type")]),
        (json!("title"), vec![("body", "model_attributes_type")]),
    ];
    for (body, expected) in cases {
        let answer = alice.create(body.clone()).await;
        assert_eq!(answer.status, 422, "{body}: {:?}", answer.body);
        let expected: Vec<(String, String)> = expected
            .into_iter()
            .map(|(l, k)| (l.into(), k.into()))
            .collect();
        assert_eq!(answer.field_errors(), expected, "{body}");
    }
    // 200 characters of a two-byte letter is fine: the limit is in characters.
    assert_eq!(
        alice.create(json!({"title": "é".repeat(200)})).await.status,
        201
    );
    assert_eq!(alice.list("").await.body.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn malformed_json_is_422_json_invalid() {
    let app = spawn_app().await;
    let path = app.user("alice").path("");
    let answer = Answer::from(
        app.signed_body(Method::POST, &path, "alice", "{\"title\": ")
            .header("content-type", "application/json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 422);
    assert_eq!(
        answer.field_errors(),
        [("body".to_owned(), "json_invalid".to_owned())]
    );
}

#[tokio::test]
async fn empty_body_is_422_missing() {
    let app = spawn_app().await;
    let path = app.user("alice").path("");
    let answer = Answer::from(
        app.signed(Method::POST, &path, "alice")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 422);
    assert_eq!(
        answer.field_errors(),
        [("body".to_owned(), "missing".to_owned())]
    );
    // FastAPI takes a JSON `null` body for no body at all.
    let answer = app.user("alice").create(serde_json::Value::Null).await;
    assert_eq!(answer.status, 422);
    assert_eq!(
        answer.field_errors(),
        [("body".to_owned(), "missing".to_owned())]
    );
}

#[tokio::test]
async fn a_body_that_is_not_declared_json_is_415() {
    let app = spawn_app().await;
    let path = app.user("alice").path("");
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut request = app.signed_body(Method::POST, &path, "alice", r#"{"title":"x"}"#);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let answer = Answer::from(request.send().await.unwrap()).await;
        assert_eq!(answer.status, 415, "{content_type:?}");
        assert!(answer.detail().contains("application/json"));
    }
    let ok = app
        .signed_body(Method::POST, &path, "alice", r#"{"title":"x"}"#)
        .header("content-type", "application/json; charset=utf-8")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 201);
}

#[tokio::test]
async fn an_oversized_body_is_413_and_nothing_is_stored() {
    let app = spawn_app().await;
    let alice = app.user("alice");
    let padding = "p".repeat(70 * 1024);
    let answer = alice
        .create(json!({"title": "big", "padding": padding}))
        .await;
    assert_eq!(answer.status, 413);
    assert_eq!(answer.detail(), "Request body too large");
    assert_eq!(alice.list("").await.body, json!([]));
}
