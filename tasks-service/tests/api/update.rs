//! PUT /api/{user_id}/tasks/{id}, PATCH .../complete and DELETE.

use http::Method;
use serde_json::json;

use crate::helpers::{spawn_app, Answer};

#[tokio::test]
async fn put_is_a_partial_update_that_bumps_updated_at() {
    let app = spawn_app().await;
    let alice = app.user("alice");
    let created = alice
        .create(json!({"title": "Draft", "description": "first"}))
        .await
        .body;
    let id = created["id"].as_i64().unwrap();

    let answer = alice.update(id, json!({"title": " Final "})).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["title"], "Final");
    assert_eq!(
        answer.body["description"], "first",
        "absent fields are unchanged"
    );
    assert_eq!(answer.body["completed"], false);
    assert_eq!(answer.body["created_at"], created["created_at"]);
    let before =
        chrono::DateTime::parse_from_rfc3339(created["updated_at"].as_str().unwrap()).unwrap();
    let after =
        chrono::DateTime::parse_from_rfc3339(answer.body["updated_at"].as_str().unwrap()).unwrap();
    assert!(after > before, "updated_at moves forward");

    let answer = alice
        .update(id, json!({"description": null, "completed": true}))
        .await;
    assert_eq!(
        answer.body["description"],
        serde_json::Value::Null,
        "null clears"
    );
    assert_eq!(answer.body["completed"], true);
    assert_eq!(answer.body["title"], "Final");

    assert_eq!(
        alice.get(id).await.body,
        answer.body,
        "the update was stored"
    );
}

#[tokio::test]
async fn put_validates_like_create() {
    let app = spawn_app().await;
    let alice = app.user("alice");
    let id = alice.create_titled("keep").await;
    for (body, loc, kind) in [
        (json!({"title": ""}), "body.title", "string_too_short"),
        (json!({"title": null}), "body.title", "string_type"),
        (
            json!({"description": "x".repeat(1001)}),
            "body.description",
            "string_too_long",
        ),
        (json!({"completed": "yes"}), "body.completed", "bool_type"),
        (json!(7), "body", "model_attributes_type"),
    ] {
        let answer = alice.update(id, body.clone()).await;
        assert_eq!(answer.status, 422, "{body}");
        assert_eq!(
            answer.field_errors(),
            [(loc.to_owned(), kind.to_owned())],
            "{body}"
        );
    }
    assert_eq!(alice.get(id).await.body["title"], "keep");
    assert_eq!(
        alice.update(999_999, json!({"title": "x"})).await.status,
        404
    );
}

#[tokio::test]
async fn patch_complete_toggles_without_a_body_and_sets_with_one() {
    let app = spawn_app().await;
    let alice = app.user("alice");
    let id = alice.create_titled("toggle me").await;
    assert_eq!(alice.complete(id, None).await.body["completed"], true);
    assert_eq!(alice.complete(id, None).await.body["completed"], false);
    // Setting is idempotent: a retried request leaves the same state.
    for _ in 0..2 {
        let answer = alice.complete(id, Some(json!({"completed": true}))).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body["completed"], true);
    }
    assert_eq!(
        alice.complete(id, Some(json!({}))).await.body["completed"],
        false,
        "{{}} toggles"
    );
    let answer = alice.complete(id, Some(json!({"completed": "no"}))).await;
    assert_eq!(answer.status, 422);
    assert_eq!(
        answer.field_errors(),
        [("body.completed".to_owned(), "bool_type".to_owned())]
    );
    assert_eq!(alice.complete(999_999, None).await.status, 404);
}

#[tokio::test]
async fn patch_complete_with_a_non_json_body_is_415() {
    let app = spawn_app().await;
    let alice = app.user("alice");
    let id = alice.create_titled("t").await;
    let path = alice.path(&format!("/{id}/complete"));
    let answer = Answer::from(
        app.signed_body(Method::PATCH, &path, "alice", "completed")
            .header("content-type", "text/plain")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 415);
    assert_eq!(alice.get(id).await.body["completed"], false);
}

#[tokio::test]
async fn delete_answers_204_with_no_body_then_the_task_is_gone() {
    let app = spawn_app().await;
    let alice = app.user("alice");
    let id = alice.create_titled("bye").await;
    let response = app
        .signed(Method::DELETE, &alice.path(&format!("/{id}")), "alice")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert!(response.bytes().await.unwrap().is_empty());
    assert_eq!(alice.get(id).await.status, 404);
    assert_eq!(alice.delete(id).await.status, 404, "deleting twice is 404");
}
