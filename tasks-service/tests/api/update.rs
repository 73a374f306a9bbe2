//! PUT /api/{user_id}/tasks/{id}, PATCH .../complete and DELETE.

use http::Method;
use serde_json::json;

use crate::helpers::{
    admin_client, spawn_app, spawn_app_with, until_waiting_on_locks, url_for, Answer, ADMIN_URL,
};

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
async fn a_bad_task_id_and_a_bad_body_are_reported_together() {
    let app = spawn_app().await;
    let alice = app.user("alice");
    let answer = alice
        .send(Method::PUT, &alice.path("/abc"), Some(json!({"title": 5})))
        .await;
    assert_eq!(answer.status, 422);
    assert_eq!(
        answer.field_errors(),
        [
            ("path.task_id".to_owned(), "int_parsing".to_owned()),
            ("body.title".to_owned(), "string_type".to_owned())
        ]
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
    assert_eq!(
        alice.complete(id, Some(json!(null))).await.body["completed"],
        true,
        "a JSON null body is no body, as FastAPI takes it: it toggles"
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

/// Two writes to one task: the one that began first but waited for the other's row lock
/// writes last, and its `updated_at` must not go back before the other's (the transaction's
/// start time would): `sort=updated` and caches keyed on it depend on it only moving forward.
#[tokio::test]
async fn updated_at_never_goes_back_when_writes_to_a_task_wait_on_each_other() {
    // The PUT's wait for the lock counts against the statement timeout: give it time for
    // the watching below and the other write's commit on a loaded machine.
    let app = spawn_app_with(ADMIN_URL, |s| {
        s.db.statement_timeout = std::time::Duration::from_secs(30)
    })
    .await;
    let alice = app.user("alice");
    let id = alice.create_titled("contended").await;
    let watcher = admin_client(&url_for(ADMIN_URL, &app.db_name)).await;
    // The other writer, holding the row's lock (as superuser, past row-level security).
    let mut other = admin_client(&url_for(ADMIN_URL, &app.db_name)).await;
    let other = other.transaction().await.unwrap();
    other
        .execute("SELECT 1 FROM tasks WHERE id = $1 FOR UPDATE", &[&id])
        .await
        .unwrap();
    // This request's transaction begins now and waits for the lock.
    let waiting = tokio::spawn({
        let request = app.signed_body(
            Method::PUT,
            &format!("/api/alice/tasks/{id}"),
            "alice",
            json!({"title": "second"}).to_string(),
        );
        async move {
            let response = request
                .header("content-type", "application/json")
                .send()
                .await
                .unwrap();
            Answer::from(response).await
        }
    });
    until_waiting_on_locks(&watcher, 1, std::time::Duration::from_secs(10), "the PUT").await;
    // The other write commits first, later than the waiting one began.
    let first: chrono::DateTime<chrono::Utc> = other
        .query_one(
            "UPDATE tasks SET title = 'first', updated_at = clock_timestamp() \
             WHERE id = $1 RETURNING updated_at",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    other.commit().await.unwrap();
    let second = waiting.await.unwrap();
    assert_eq!(second.status, 200);
    assert_eq!(second.body["title"], "second");
    let second: chrono::DateTime<chrono::Utc> =
        second.body["updated_at"].as_str().unwrap().parse().unwrap();
    assert!(second >= first, "updated_at went back: {second} < {first}");
}
