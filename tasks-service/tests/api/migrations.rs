//! Migrations: several instances starting at once against one fresh database.

use tasks_service::Application;

use serde_json::json;

use crate::helpers::{admin_client, create_database, start_app, test_settings, url_for, ADMIN_URL};

#[tokio::test]
async fn several_instances_starting_at_once_migrate_exactly_once() {
    let db_name = create_database(ADMIN_URL).await;
    let url = url_for(ADMIN_URL, &db_name);
    let starts = (0..4).map(|_| Application::build(test_settings(&url)));
    let apps = futures_util::future::join_all(starts).await;
    for app in &apps {
        assert!(app.is_ok(), "{:?}", app.as_ref().err());
    }
    drop(apps);

    let client = admin_client(&url).await;
    let versions: Vec<i32> = client
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, [1, 2]);
    let policies: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_policies WHERE tablename = 'tasks'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(policies, 1);
    drop(client);

    // A restart applies nothing new.
    let again = Application::build(test_settings(&url)).await.unwrap();
    drop(again);
    let admin = admin_client(ADMIN_URL).await;
    admin
        .batch_execute(&format!("DROP DATABASE {db_name} WITH (FORCE)"))
        .await
        .unwrap();
}

/// The least-privilege deployment: the service logs in as the owner of its database, who may
/// not create roles and whom the forced policy binds as it is. The migrations must not need
/// what that login lacks (creating `tasks_rls` had been refused to it, and the start with it).
#[tokio::test]
async fn the_owner_of_its_database_without_createrole_migrates_and_serves() {
    let owner = format!("tasks_owner_{}", uuid::Uuid::new_v4().simple());
    let db_name = format!("tasks_test_{}", uuid::Uuid::new_v4().simple());
    let admin = admin_client(ADMIN_URL).await;
    for statement in [
        format!("CREATE ROLE {owner} LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB NOBYPASSRLS"),
        format!("CREATE DATABASE {db_name} OWNER {owner}"),
    ] {
        admin.batch_execute(&statement).await.unwrap();
    }
    let service_url = format!("postgres://{owner}@127.0.0.1:5432/{db_name}");
    let app = start_app(ADMIN_URL, db_name, &service_url, |_| {}).await;
    let alice = app.user("alice");
    assert_eq!(alice.create(json!({"title": "mine"})).await.status, 201);
    assert_eq!(alice.list("").await.body.as_array().unwrap().len(), 1);
    assert_eq!(app.user("bob").list("").await.body, json!([]));
    drop(app); // drops the database
    admin
        .batch_execute(&format!("DROP ROLE IF EXISTS {owner}"))
        .await
        .unwrap();
}

/// The table's checks count characters as Unicode code points, which holds only in a UTF8
/// database: on another encoding a valid title would be refused by the database (a 500), so the
/// service refuses to start there, before creating anything in it.
#[tokio::test]
async fn a_database_not_encoded_in_utf8_is_refused_before_anything_is_created() {
    let name = format!("tasks_test_{}", uuid::Uuid::new_v4().simple());
    let admin = admin_client(ADMIN_URL).await;
    admin
        .batch_execute(&format!(
            "CREATE DATABASE {name} ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' \
             TEMPLATE template0"
        ))
        .await
        .unwrap();
    let url = url_for(ADMIN_URL, &name);

    let message = Application::build(test_settings(&url))
        .await
        .expect_err("a SQL_ASCII database is refused")
        .to_string();
    assert!(message.starts_with("DATABASE_URL:"), "{message}");
    assert!(message.contains("is encoded as SQL_ASCII"), "{message}");
    assert!(message.contains("ENCODING 'UTF8'"), "{message}");
    let tables: i64 = admin_client(&url)
        .await
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 0, "nothing was created");

    admin
        .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .unwrap();
}
