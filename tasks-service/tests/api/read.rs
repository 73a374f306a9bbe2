//! GET /api/{user_id}/tasks (filters, sorts, paging) and GET /api/{user_id}/tasks/{id}.

use serde_json::json;

use crate::helpers::{ids, spawn_app};

#[tokio::test]
async fn an_empty_list_is_an_empty_array() {
    let app = spawn_app().await;
    let answer = app.user("alice").list("").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, json!([]));
}

#[tokio::test]
async fn lists_filter_by_status_and_sort_four_ways() {
    let app = spawn_app().await;
    let alice = app.user("alice");
    // Mixed case: `sort=title` is case-insensitive (byte order would put "Banana" first).
    let banana = alice.create_titled("Banana").await;
    let apple = alice.create_titled("apple").await;
    let cherry = alice.create_titled("cherry").await;
    assert_eq!(alice.complete(apple, None).await.status, 200);
    // banana is updated last, so it leads `sort=updated`.
    assert_eq!(
        alice
            .update(banana, json!({"description": "ripe"}))
            .await
            .status,
        200
    );

    assert_eq!(ids(&alice.list("").await.body), [banana, apple, cherry]);
    assert_eq!(
        ids(&alice.list("?sort=created").await.body),
        [banana, apple, cherry]
    );
    assert_eq!(
        ids(&alice.list("?sort=-created").await.body),
        [cherry, apple, banana]
    );
    assert_eq!(
        ids(&alice.list("?sort=title").await.body),
        [apple, banana, cherry]
    );
    assert_eq!(
        ids(&alice.list("?sort=updated").await.body),
        [banana, apple, cherry]
    );
    assert_eq!(ids(&alice.list("?status=completed").await.body), [apple]);
    assert_eq!(
        ids(&alice.list("?status=pending").await.body),
        [banana, cherry]
    );
    assert_eq!(
        ids(&alice.list("?status=all&sort=-created").await.body),
        [cherry, apple, banana]
    );
}

#[tokio::test]
async fn limit_and_offset_page_through_the_list() {
    let app = spawn_app().await;
    let alice = app.user("alice");
    let mut all = Vec::new();
    for i in 0..5 {
        all.push(alice.create_titled(&format!("t{i}")).await);
    }
    assert_eq!(ids(&alice.list("?limit=2").await.body), all[..2]);
    assert_eq!(ids(&alice.list("?limit=2&offset=2").await.body), all[2..4]);
    assert_eq!(ids(&alice.list("?limit=500&offset=4").await.body), all[4..]);
    assert_eq!(ids(&alice.list("?offset=10").await.body), Vec::<i64>::new());
}

#[tokio::test]
async fn bad_query_parameters_are_422_with_their_location() {
    let app = spawn_app().await;
    let alice = app.user("alice");
    for (query, loc, kind) in [
        ("?status=done", "query.status", "enum"),
        ("?sort=name", "query.sort", "enum"),
        ("?limit=0", "query.limit", "greater_than_equal"),
        ("?limit=501", "query.limit", "less_than_equal"),
        ("?limit=ten", "query.limit", "int_parsing"),
        ("?offset=-1", "query.offset", "greater_than_equal"),
        ("?offset=1.5", "query.offset", "int_parsing"),
        (
            "?offset=99999999999999999999",
            "query.offset",
            "less_than_equal",
        ),
        // Beyond 64 bits, judged by the field's own bounds, as pydantic does.
        (
            "?offset=-99999999999999999999",
            "query.offset",
            "greater_than_equal",
        ),
        (
            "?limit=99999999999999999999",
            "query.limit",
            "less_than_equal",
        ),
    ] {
        let answer = alice.list(query).await;
        assert_eq!(answer.status, 422, "{query}");
        assert_eq!(
            answer.field_errors(),
            [(loc.to_owned(), kind.to_owned())],
            "{query}"
        );
    }
    let answer = alice.list("?status=x&limit=x").await;
    assert_eq!(answer.field_errors().len(), 2, "every problem is reported");
    assert_eq!(
        alice.list("?unknown=1").await.status,
        200,
        "unknown parameters are ignored"
    );
}

#[tokio::test]
async fn getting_a_missing_task_is_404() {
    let app = spawn_app().await;
    let answer = app.user("alice").get(123456).await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.detail(), "Task not found");
}

/// FastAPI matches its routes against the decoded path, so a task id spelled with escapes is
/// that task, as every client that escapes more than it must expects.
#[tokio::test]
async fn a_task_id_spelled_with_percent_escapes_is_that_task() {
    let app = spawn_app().await;
    let alice = app.user("alice");
    let id = alice.create_titled("escaped").await;
    let spelled: String = id
        .to_string()
        .bytes()
        .map(|d| format!("%{d:02X}"))
        .collect();
    let answer = alice
        .send(http::Method::GET, &alice.path(&format!("/{spelled}")), None)
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body["id"], id);
    // Decoded, what is not an integer is still refused as one.
    let answer = alice
        .send(http::Method::GET, &alice.path("/%31%2E5"), None)
        .await;
    assert_eq!(answer.status, 422, "{answer:?}");
    assert_eq!(
        answer.field_errors(),
        [("path.task_id".to_owned(), "int_parsing".to_owned())]
    );
}

#[tokio::test]
async fn task_ids_that_are_not_positive_integers_are_422() {
    let app = spawn_app().await;
    let alice = app.user("alice");
    for (raw, kind) in [
        ("abc", "int_parsing"),
        ("1.5", "int_parsing"),
        ("0", "greater_than"),
        ("-4", "greater_than"),
        ("9223372036854775808", "less_than_equal"),
    ] {
        for (method, suffix) in [
            (http::Method::GET, ""),
            (http::Method::DELETE, ""),
            (http::Method::PATCH, "/complete"),
        ] {
            let answer = alice
                .send(
                    method.clone(),
                    &alice.path(&format!("/{raw}{suffix}")),
                    None,
                )
                .await;
            assert_eq!(answer.status, 422, "{method} {raw}");
            assert_eq!(
                answer.field_errors(),
                [("path.task_id".to_owned(), kind.to_owned())],
                "{method} {raw}"
            );
        }
    }
    let answer = alice.update(0, json!({"title": "x"})).await;
    assert_eq!(answer.status, 422);
}
