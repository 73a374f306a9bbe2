//! Migrations: several instances starting at once against one fresh database.

use tasks_service::Application;

use crate::helpers::{admin_client, create_database, test_settings, url_for, ADMIN_URL};

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
