//! The second line of isolation, tested on its own: row-level security on a pooled connection,
//! with queries that deliberately forget `WHERE user_id`.

use tokio_postgres::error::SqlState;

use crate::helpers::spawn_app;

#[tokio::test]
async fn pooled_connections_run_as_a_role_that_cannot_bypass_the_policy() {
    let app = spawn_app().await;
    let client = app.state.store.pool().get().await.unwrap();
    let row = client
        .query_one(
            "SELECT current_user::text, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "tasks_rls");
    assert!(!row.get::<_, bool>(1) && !row.get::<_, bool>(2));
    let forced: bool = client
        .query_one(
            "SELECT relforcerowsecurity FROM pg_class WHERE relname = 'tasks'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(forced);
}

#[tokio::test]
async fn a_query_without_where_sees_only_the_scoped_users_rows() {
    let app = spawn_app().await;
    for user in ["alice", "bob"] {
        for i in 0..3 {
            app.user(user).create_titled(&format!("{user} {i}")).await;
        }
    }
    let mut client = app.state.store.pool().get().await.unwrap();

    let tx = client.transaction().await.unwrap();
    tx.execute("SELECT set_config('app.user_id', $1, true)", &[&"alice"])
        .await
        .unwrap();
    let owners: Vec<String> = tx
        .query("SELECT user_id FROM tasks", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(owners, ["alice", "alice", "alice"]);
    // Unscoped writes cannot reach bob's rows either.
    let touched = tx
        .execute("UPDATE tasks SET completed = true", &[])
        .await
        .unwrap();
    assert_eq!(touched, 3);
    let deleted = tx
        .execute("DELETE FROM tasks WHERE user_id = 'bob'", &[])
        .await
        .unwrap();
    assert_eq!(deleted, 0);
    tx.rollback().await.unwrap();

    // With the setting unset (it is transaction-local), nothing is visible at all.
    let tx = client.transaction().await.unwrap();
    let visible: i64 = tx
        .query_one("SELECT count(*) FROM tasks", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(visible, 0);
    tx.rollback().await.unwrap();
}

#[tokio::test]
async fn inserting_a_row_for_another_user_is_refused_by_with_check() {
    let app = spawn_app().await;
    let mut client = app.state.store.pool().get().await.unwrap();
    let tx = client.transaction().await.unwrap();
    tx.execute("SELECT set_config('app.user_id', $1, true)", &[&"alice"])
        .await
        .unwrap();
    let error = tx
        .execute(
            "INSERT INTO tasks (user_id, title) VALUES ('bob', 'planted')",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(
        error.code(),
        Some(&SqlState::INSUFFICIENT_PRIVILEGE),
        "{error}"
    );
    drop(tx);
    assert_eq!(app.user("bob").list("").await.body, serde_json::json!([]));
}
