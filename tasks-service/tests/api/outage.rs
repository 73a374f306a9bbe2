//! The database stopped and restarted under the running service. Uses a private PostgreSQL
//! cluster (initdb + pg_ctl) so the machine's shared server is never stopped.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use http::Method;
use serde_json::json;

use crate::helpers::{spawn_app_with, Answer};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A throw-away PostgreSQL cluster; stopped and deleted on drop.
struct PrivateCluster {
    dir: PathBuf,
    port: u16,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false)
}

/// Runs a PostgreSQL tool, as the `postgres` user when we are root (PostgreSQL refuses root).
fn pg_tool(tool: &str, args: &[&str]) -> std::process::Output {
    let path = format!("{PG_BIN}/{tool}");
    assert!(
        Path::new(&path).exists(),
        "{path} is missing: install PostgreSQL 15 server binaries (apt-get install postgresql-15)"
    );
    let mut command = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", &path]);
        c
    } else {
        Command::new(&path)
    };
    command.args(args).output().expect("run a PostgreSQL tool")
}

impl PrivateCluster {
    fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("tasks-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            let status = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&dir)
                .status()
                .unwrap();
            assert!(status.success(), "chown the cluster directory to postgres");
        }
        let data = dir.join("data");
        let out = pg_tool(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = Self { dir, port };
        cluster.pg_ctl_start();
        cluster
    }

    fn pg_ctl_start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log");
        let data = self.data();
        let out = pg_tool(
            "pg_ctl",
            &[
                "-D",
                &data,
                "-o",
                &options,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn stop_immediately(&self) {
        let out = pg_tool(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn data(&self) -> String {
        self.dir.join("data").to_string_lossy().into_owned()
    }

    fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = pg_tool(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

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
