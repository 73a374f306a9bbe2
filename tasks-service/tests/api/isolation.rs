//! Cross-user isolation on all six endpoints: bob never sees or touches alice's tasks.

use http::Method;
use serde_json::json;

use crate::helpers::{spawn_app, Answer};

#[tokio::test]
async fn another_user_gets_404_or_403_on_every_route_and_nothing_changes() {
    let app = spawn_app().await;
    let alice = app.user("alice");
    let bob = app.user("bob");
    let id = alice.create_titled("alice's secret").await;
    let bobs = bob.create_titled("bob's own").await;
    let original = alice.get(id).await.body;

    // Through his own path, alice's task does not exist for bob.
    assert_eq!(bob.get(id).await.status, 404);
    assert_eq!(bob.update(id, json!({"title": "pwned"})).await.status, 404);
    assert_eq!(bob.complete(id, None).await.status, 404);
    assert_eq!(
        bob.complete(id, Some(json!({"completed": true})))
            .await
            .status,
        404
    );
    assert_eq!(bob.delete(id).await.status, 404);
    let bob_list = bob.list("?status=all").await.body;
    assert_eq!(bob_list.as_array().unwrap().len(), 1);
    assert_eq!(bob_list[0]["id"], bobs);

    // Through alice's path, bob is forbidden outright.
    let routes = [
        (Method::GET, "/api/alice/tasks".to_owned(), None),
        (
            Method::POST,
            "/api/alice/tasks".to_owned(),
            Some(json!({"title": "planted"})),
        ),
        (Method::GET, format!("/api/alice/tasks/{id}"), None),
        (
            Method::PUT,
            format!("/api/alice/tasks/{id}"),
            Some(json!({"title": "pwned"})),
        ),
        (Method::DELETE, format!("/api/alice/tasks/{id}"), None),
        (
            Method::PATCH,
            format!("/api/alice/tasks/{id}/complete"),
            None,
        ),
    ];
    for (method, path, body) in routes {
        let answer = bob.send(method.clone(), &path, body).await;
        assert_eq!(answer.status, 403, "{method} {path}");
    }

    // Alice's task is exactly as it was, and her list holds only her task.
    assert_eq!(alice.get(id).await.body, original);
    let list = alice.list("").await.body;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["user_id"], "alice");
}

#[tokio::test]
async fn lists_never_mix_users_whatever_the_filter() {
    let app = spawn_app().await;
    let (alice, bob) = (app.user("alice"), app.user("bob"));
    for i in 0..3 {
        alice.create_titled(&format!("a{i}")).await;
        let id = bob.create_titled(&format!("b{i}")).await;
        bob.complete(id, None).await;
    }
    for query in [
        "",
        "?status=completed",
        "?status=pending",
        "?sort=title",
        "?sort=updated",
        "?sort=-created",
    ] {
        let answer: Answer = alice.list(query).await;
        for task in answer.body.as_array().unwrap() {
            assert_eq!(task["user_id"], "alice", "{query}");
        }
    }
    assert_eq!(alice.list("?status=completed").await.body, json!([]));
}
