//! The database away or refusing work under the running service: stopped and restarted (on a
//! private cluster, so the machine's shared server is never stopped), or read-only as a
//! primary demoted during a failover is. Either way the service answers 503, never 500.

use std::time::Duration;

use http::Method;
use serde_json::json;

use crate::{
    cluster::PrivateCluster,
    helpers::{admin_client, ids, spawn_app, spawn_app_with, Answer, ADMIN_URL},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_stopped_and_restarted_under_the_running_service() {
    let cluster = PrivateCluster::start();
    let app = spawn_app_with(&cluster.admin_url(), |_| {}).await;
    let alice = app.user("alice");

    let mut acknowledged = Vec::new();
    for i in 0..5 {
        acknowledged.push(alice.create_titled(&format!("before {i}")).await);
    }

    cluster.stop_immediately();
    // While it is down: every create gets a 503 within a bounded time, never a hang.
    for i in 0..3 {
        let answer = tokio::time::timeout(
            Duration::from_secs(15),
            alice.create(json!({"title": format!("during {i}")})),
        )
        .await
        .expect("a bounded answer while the database is down");
        assert_eq!(answer.status, 503, "{:?}", answer.body);
        assert_eq!(answer.detail(), "Service unavailable");
    }
    let ready = Answer::from(app.raw(Method::GET, "/readyz").send().await.unwrap()).await;
    assert_eq!(ready.status, 503);
    assert_eq!(
        Answer::from(app.raw(Method::GET, "/healthz").send().await.unwrap())
            .await
            .status,
        200,
        "alive even when not ready"
    );

    cluster.pg_ctl_start();
    // The service recovers by itself: poll readiness with a deadline.
    app.until_readyz(200, Duration::from_secs(30), "not ready 30 s after restart")
        .await;
    for i in 0..3 {
        acknowledged.push(alice.create_titled(&format!("after {i}")).await);
    }

    // Every task whose create returned 201 is still there; none of the 503s were stored.
    let listed = alice.list("?limit=500").await;
    let mut listed_ids = ids(&listed.body);
    listed_ids.sort_unstable();
    acknowledged.sort_unstable();
    assert_eq!(listed_ids, acknowledged);
    drop(app);
    drop(cluster);
}

#[tokio::test]
async fn a_read_only_database_answers_writes_503_and_keeps_the_data() {
    let app = spawn_app().await;
    let alice = app.user("alice");
    let id = alice.create_titled("written before the failover").await;
    let before = alice.list("").await;

    // As a primary demoted during a failover: every new session is read-only.
    admin_client(ADMIN_URL)
        .await
        .batch_execute(&format!(
            "ALTER DATABASE {} SET default_transaction_read_only = on",
            app.db_name
        ))
        .await
        .unwrap();
    // The setting applies to new sessions only: empty the pool so the next request opens one.
    app.state.store.pool().retain(|_, _| false);

    let created = alice.create(json!({"title": "during the failover"})).await;
    assert_eq!(created.status, 503, "{:?}", created.body);
    assert_eq!(created.body, json!({"detail": "Service unavailable"}));
    let completed = alice.complete(id, None).await;
    assert_eq!(completed.status, 503, "{:?}", completed.body);
    assert_eq!(completed.detail(), "Service unavailable");

    // Reads still work, and show nothing changed.
    let after = alice.list("").await;
    assert_eq!(after.status, 200);
    assert_eq!(after.body, before.body);
}
