//! The database stopped and restarted under the running service, on a private cluster so the
//! machine's shared server is never stopped.

use std::time::Duration;

use http::Method;
use serde_json::json;

use crate::{
    cluster::PrivateCluster,
    helpers::{spawn_app_with, Answer},
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
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = app
            .raw(Method::GET, "/readyz")
            .send()
            .await
            .unwrap()
            .status();
        if status == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not ready 30 s after restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for i in 0..3 {
        acknowledged.push(alice.create_titled(&format!("after {i}")).await);
    }

    // Every task whose create returned 201 is still there; none of the 503s were stored.
    let listed = alice.list("?limit=500").await;
    let mut ids: Vec<i64> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    ids.sort_unstable();
    acknowledged.sort_unstable();
    assert_eq!(ids, acknowledged);
    drop(app);
    drop(cluster);
}
