//! The second line of isolation, tested on its own: row-level security on a pooled connection,
//! with queries that deliberately forget `WHERE user_id`.

use std::time::Duration;

use http::Method;
use serde_json::json;
use tasks_service::Application;
use tokio_postgres::error::SqlState;

use crate::{
    cluster::PrivateCluster,
    helpers::{
        admin_client, create_database, spawn_app, spawn_app_with, start_app, test_settings,
        url_for, Answer, ADMIN_URL,
    },
};

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

    // With the setting unset (it is transaction-local), nothing is visible at all. On this
    // connection, which has run a scoped transaction, it reads as '' rather than NULL: the
    // policy then relies on no row having an empty user_id, which the table's check forbids.
    let tx = client.transaction().await.unwrap();
    let setting: Option<String> = tx
        .query_one("SELECT current_setting('app.user_id', true)", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(setting.as_deref(), Some(""));
    let visible: i64 = tx
        .query_one("SELECT count(*) FROM tasks", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(visible, 0);
    // The policy's WITH CHECK would let '' = '' through: the table's check is what refuses.
    refused_insert(&tx, "", SqlState::CHECK_VIOLATION).await;
    drop(tx);
}

/// Inserts a task owned by `owner` in `tx` and asserts PostgreSQL refuses it with `code`.
async fn refused_insert(tx: &tokio_postgres::Transaction<'_>, owner: &str, code: SqlState) {
    let error = tx
        .execute(
            "INSERT INTO tasks (user_id, title) VALUES ($1, 'planted')",
            &[&owner],
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(&code), "{owner:?}: {error}");
}

#[tokio::test]
async fn inserting_a_row_for_another_user_is_refused_by_with_check() {
    let app = spawn_app().await;
    let mut client = app.state.store.pool().get().await.unwrap();
    let tx = client.transaction().await.unwrap();
    tx.execute("SELECT set_config('app.user_id', $1, true)", &[&"alice"])
        .await
        .unwrap();
    refused_insert(&tx, "bob", SqlState::INSUFFICIENT_PRIVILEGE).await;
    drop(tx);
    assert_eq!(app.user("bob").list("").await.body, serde_json::json!([]));
}

#[tokio::test]
async fn the_service_refuses_to_start_if_its_role_could_bypass_the_policy() {
    // Altering the cluster-wide role would break every other test on the shared server, so
    // this happens on a private cluster.
    let cluster = PrivateCluster::start();
    let admin_url = cluster.admin_url();
    drop(spawn_app_with(&admin_url, |_| {}).await); // creates tasks_rls
    admin_client(&admin_url)
        .await
        .batch_execute("ALTER ROLE tasks_rls BYPASSRLS")
        .await
        .unwrap();
    let db_name = create_database(&admin_url).await;
    let error = Application::build(test_settings(&url_for(&admin_url, &db_name)))
        .await
        .expect_err("a role that bypasses RLS is refused");
    let message = error.to_string();
    assert!(message.starts_with("DATABASE_URL:"), "{message}");
    assert!(
        message.contains("can bypass row-level security"),
        "{message}"
    );
}

/// A login that cannot bypass the policy may still start its sessions as a role that can
/// (`options=-c role=...` in the URL, `ALTER ROLE ... SET role`), and the statements run as that
/// role: it is the one judged. Without the membership to switch away from it the service refuses
/// to start; with it, pooled connections run as `tasks_rls` and an unscoped query sees nothing.
#[tokio::test]
async fn a_login_that_starts_as_a_privileged_role_is_judged_by_that_role() {
    let login = format!("tasks_login_{}", uuid::Uuid::new_v4().simple());
    let admin = admin_client(ADMIN_URL).await;
    admin
        .batch_execute(&format!(
            "CREATE ROLE {login} LOGIN NOSUPERUSER NOBYPASSRLS; GRANT postgres TO {login}"
        ))
        .await
        .unwrap();
    let db_name = create_database(ADMIN_URL).await;
    let url = format!("postgres://{login}@127.0.0.1:5432/{db_name}?options=-c%20role%3Dpostgres");

    let message = Application::build(test_settings(&url))
        .await
        .expect_err("a session that starts as a superuser and cannot switch is refused")
        .to_string();
    assert!(message.starts_with("DATABASE_URL:"), "{message}");
    assert!(message.contains("may not SET ROLE tasks_rls"), "{message}");

    admin
        .batch_execute(&format!("GRANT tasks_rls TO {login}"))
        .await
        .unwrap();
    let app = start_app(ADMIN_URL, db_name, &url, |_| {}).await;
    for user in ["alice", "bob"] {
        app.user(user).create_titled(user).await;
    }
    let mut client = app.state.store.pool().get().await.unwrap();
    let tx = client.transaction().await.unwrap();
    let row = tx
        .query_one("SELECT current_user::text, count(*) FROM tasks", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "tasks_rls");
    assert_eq!(
        row.get::<_, i64>(1),
        0,
        "an unscoped query sees no one's rows"
    );
    drop(tx);
    drop(client);
    drop(app);
    // The role owns nothing (its sessions created everything as postgres) and its grants go
    // with it; the app's drop has ended its sessions with the database, but retry a moment in
    // case the server has not yet let go of them.
    for _ in 0..100 {
        if admin
            .batch_execute(&format!("DROP ROLE {login}"))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("role {login} could not be dropped");
}

/// Behind a transaction-mode pooler (PgBouncer, a managed database's `-pooler` host) a request
/// may run on a server connection that never ran the pool's session-level `SET ROLE` and
/// `SET statement_timeout`. Simulated here on the one connection of a pool of one, reset to
/// the login (a superuser) between requests: each request still runs as `tasks_rls` under
/// the policy, with the statement timeout.
#[tokio::test]
async fn a_transaction_on_a_connection_that_lost_its_session_role_still_runs_under_the_policy() {
    let app = spawn_app_with(ADMIN_URL, |settings| settings.db.pool_size = 1).await;
    // Seams on this test's database only: columns the service never names, filled in by
    // whoever inserts, and a policy that hides alice's row titled "hidden" from every read.
    let admin = admin_client(&url_for(ADMIN_URL, &app.db_name)).await;
    admin
        .batch_execute(
            "ALTER TABLE tasks ADD COLUMN seen_role TEXT DEFAULT current_user, \
                 ADD COLUMN seen_timeout TEXT DEFAULT current_setting('statement_timeout'); \
             CREATE POLICY hidden_from_reads ON tasks AS RESTRICTIVE FOR SELECT \
                 USING (title <> 'hidden')",
        )
        .await
        .unwrap();
    let hidden: i64 = admin
        .query_one(
            "INSERT INTO tasks (user_id, title) VALUES ('alice', 'hidden') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);

    // What a pooler may hand over: a server connection without the session's settings.
    let client = app.state.store.pool().get().await.unwrap();
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    client
        .batch_execute(
            "RESET ROLE; RESET statement_timeout; RESET idle_in_transaction_session_timeout",
        )
        .await
        .unwrap();
    drop(client);

    let alice = app.user("alice");
    let created = alice.create_titled("visible").await;
    let row = admin
        .query_one(
            "SELECT seen_role, seen_timeout FROM tasks WHERE id = $1",
            &[&created],
        )
        .await
        .unwrap();
    let seen: (String, String) = (row.get(0), row.get(1));
    assert_eq!(seen, ("tasks_rls".to_owned(), "3s".to_owned()));
    let listed = alice.list("").await;
    assert_eq!(listed.status, 200, "{listed:?}");
    let titles: Vec<&str> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["visible"], "the policy is in force on reads");
    assert_eq!(alice.get(hidden).await.status, 404);

    // The requests ran on that very connection, and what they set ended with them.
    let client = app.state.store.pool().get().await.unwrap();
    let row = client
        .query_one(
            "SELECT pg_backend_pid(), current_user::text, current_setting('statement_timeout')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), pid);
    assert_eq!(row.get::<_, String>(1), "postgres");
    assert_eq!(row.get::<_, String>(2), "0");
}

/// Undoes what migration 0002 set up, as an operator might, on the database at `url`.
async fn undo(url: &str, statements: &str) {
    admin_client(url)
        .await
        .batch_execute(statements)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_service_refuses_to_start_once_row_level_security_is_not_in_force() {
    let db_name = create_database(ADMIN_URL).await;
    let url = url_for(ADMIN_URL, &db_name);
    // A first start migrates.
    drop(Application::build(test_settings(&url)).await.unwrap());

    undo(&url, "ALTER TABLE tasks NO FORCE ROW LEVEL SECURITY").await;
    let error = Application::build(test_settings(&url))
        .await
        .expect_err("a table whose owner bypasses the policy is refused");
    let message = error.to_string();
    assert!(message.starts_with("DATABASE_URL:"), "{message}");
    assert!(
        message.contains("row-level security is not forced on table tasks"),
        "{message}"
    );
    assert!(
        message.contains("ALTER TABLE tasks FORCE ROW LEVEL SECURITY"),
        "{message}"
    );

    undo(
        &url,
        "ALTER TABLE tasks FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY; \
         DROP POLICY tasks_owner_only ON tasks",
    )
    .await;
    let message = Application::build(test_settings(&url))
        .await
        .expect_err("a table without its policy is refused")
        .to_string();
    assert!(
        message.contains("row-level security is disabled on table tasks"),
        "{message}"
    );
    assert!(
        message.contains("policy tasks_owner_only on table tasks is missing"),
        "{message}"
    );
    assert!(!message.contains("not forced"), "{message}");

    admin_client(ADMIN_URL)
        .await
        .batch_execute(&format!("DROP DATABASE {db_name} WITH (FORCE)"))
        .await
        .unwrap();
}

#[tokio::test]
async fn readiness_fails_while_row_level_security_is_not_in_force() {
    let app = spawn_app().await;
    let url = url_for(ADMIN_URL, &app.db_name);
    app.until_readyz(200, Duration::from_secs(5), "not ready at start")
        .await;

    undo(&url, "ALTER TABLE tasks NO FORCE ROW LEVEL SECURITY").await;
    let ready = Answer::from(app.raw(Method::GET, "/readyz").send().await.unwrap()).await;
    assert_eq!(ready.status, 503, "{ready:?}");
    assert_eq!(ready.body, json!({"detail": "Service unavailable"}));

    undo(&url, "ALTER TABLE tasks FORCE ROW LEVEL SECURITY").await;
    let ready = Answer::from(app.raw(Method::GET, "/readyz").send().await.unwrap()).await;
    assert_eq!(ready.status, 200, "{ready:?}");

    undo(&url, "DROP POLICY tasks_owner_only ON tasks").await;
    let ready = Answer::from(app.raw(Method::GET, "/readyz").send().await.unwrap()).await;
    assert_eq!(ready.status, 503, "{ready:?}");
}
