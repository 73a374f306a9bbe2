//! The stack as `docker compose -f deploy/compose.yaml up --wait` runs it, reached only through
//! the gateway's published port: the same API scenario and browser test as against processes,
//! and a `docker compose restart tasks-service` under load that must lose no acknowledged
//! write.
//!
//! These need that running stack, so a plain `cargo test` lists them as ignored;
//! scripts/test-containers.sh brings the stack up and runs them with `--ignored`, naming it in
//! `E2E_GATEWAY_URL` (the published gateway), `E2E_DEMO_PORT` (a host port whose origin the
//! stack trusts), `E2E_COMPOSE` (the compose command the stack was started with) and
//! `E2E_JWT_ALG`.

use std::{
    process::Command,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use e2e::{
    better_auth::Session,
    browser::{run_browser_test, BrowserTarget},
    process::Process,
    scenarios::two_users_drive_all_six_endpoints_and_stay_isolated,
    stack::repo_root,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn required(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run these tests through scripts/test-containers.sh")
    })
}

fn gateway_url() -> String {
    required("E2E_GATEWAY_URL").trim_end_matches('/').to_owned()
}

/// `E2E_COMPOSE` plus `args`, run from the repository root.
fn compose(args: &[&str]) -> Command {
    let line = required("E2E_COMPOSE");
    let mut words = line.split_whitespace();
    let mut command = Command::new(words.next().expect("E2E_COMPOSE names a command"));
    command.args(words).args(args).current_dir(repo_root());
    command
}

/// The containers' last log lines, for a failure message.
fn container_logs() -> String {
    match compose(&["logs", "--no-color", "--tail", "40"]).output() {
        Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned(),
        Err(e) => format!("(could not read the container logs: {e})"),
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the compose stack: scripts/test-containers.sh runs it"]
async fn the_task_api_works_through_the_published_gateway_port() {
    let alg = std::env::var("E2E_JWT_ALG").unwrap_or_else(|_| "EdDSA".to_owned());
    two_users_drive_all_six_endpoints_and_stay_isolated(&gateway_url(), &alg, &container_logs)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the compose stack: scripts/test-containers.sh runs it"]
async fn the_demo_page_works_against_the_containers_in_headless_chromium() {
    let gateway = gateway_url();
    let port = required("E2E_DEMO_PORT");
    let demo_dir = repo_root().join("deploy/demo");
    let mut serve = Command::new("node");
    serve
        .arg("serve.mjs")
        .current_dir(&demo_dir)
        .env("DEMO_PORT", &port);
    let log_dir = repo_root().join("target/e2e/logs/containers");
    let mut demo = Process::spawn("demo", serve, &log_dir);
    let demo_url = format!("http://127.0.0.1:{port}/");
    demo.wait_ready(&demo_url, Duration::from_secs(30)).await;
    // Better Auth too is reached through the gateway: its public /api/auth/ route.
    let target = BrowserTarget {
        auth_url: gateway.clone(),
        api_url: gateway,
        demo_url,
    };
    let screenshot = repo_root().join("target/e2e/demo-containers.png");
    run_browser_test(target, &screenshot, &container_logs).await;
}

/// Writes acknowledged before and after the restart; requests during it may fail, but none
/// that got a 201 may be missing afterwards.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the compose stack: scripts/test-containers.sh runs it"]
async fn restarting_tasks_service_under_load_loses_no_acknowledged_write() {
    const WRITERS: usize = 4;
    const BEFORE: usize = 40;
    const AFTER_PER_WRITER: usize = 10;
    const DEADLINE: Duration = Duration::from_secs(120);

    let gateway = gateway_url();
    let alice = Session::sign_up(&gateway, "restart").await;
    let token = alice.token().await;
    let tasks = format!("{gateway}/api/{}/tasks", alice.user_id);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    let acknowledged: Arc<Mutex<Vec<(i64, String)>>> = Arc::default();
    let refused = Arc::new(AtomicUsize::new(0));
    let restarted = Arc::new(AtomicBool::new(false));
    let after: Arc<[AtomicUsize; WRITERS]> = Arc::new(Default::default());
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();

    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let (http, tasks, token) = (http.clone(), tasks.clone(), token.clone());
        let (acknowledged, refused, restarted, after, stop) = (
            acknowledged.clone(),
            refused.clone(),
            restarted.clone(),
            after.clone(),
            stop.clone(),
        );
        writers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) && started.elapsed() < DEADLINE {
                n += 1;
                let title = format!("writer {writer} write {n}");
                let answer = http
                    .post(&tasks)
                    .bearer_auth(&token)
                    .json(&json!({ "title": title }))
                    .send()
                    .await;
                let created = match answer {
                    Ok(response) if response.status() == StatusCode::CREATED => {
                        response.json::<Value>().await.ok()
                    }
                    _ => None,
                };
                match created.and_then(|body| body["id"].as_i64()) {
                    Some(id) => {
                        acknowledged.lock().unwrap().push((id, title));
                        if restarted.load(Ordering::SeqCst) {
                            after[writer].fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    None => {
                        refused.fetch_add(1, Ordering::SeqCst);
                        // Not a pacing sleep: a refused request returns at once while the
                        // service is down, and this keeps that from becoming a busy loop.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }));
    }

    let poll = || tokio::time::sleep(Duration::from_millis(50));
    while acknowledged.lock().unwrap().len() < BEFORE {
        assert!(
            started.elapsed() < DEADLINE,
            "only {} writes acknowledged before the restart\n{}",
            acknowledged.lock().unwrap().len(),
            container_logs()
        );
        poll().await;
    }
    let restart_started = Instant::now();
    let status = tokio::task::spawn_blocking(|| compose(&["restart", "tasks-service"]).status())
        .await
        .unwrap()
        .expect("run docker compose restart");
    assert!(
        status.success(),
        "docker compose restart tasks-service failed: {status}"
    );
    let restart_took = restart_started.elapsed();
    restarted.store(true, Ordering::SeqCst);
    while after
        .iter()
        .any(|n| n.load(Ordering::SeqCst) < AFTER_PER_WRITER)
    {
        assert!(
            started.elapsed() < DEADLINE,
            "writes did not resume after the restart within {DEADLINE:?}\n{}",
            container_logs()
        );
        poll().await;
    }
    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.await.unwrap();
    }

    let acknowledged = acknowledged.lock().unwrap().clone();
    let stored = all_tasks(&http, &tasks, &token).await;
    let missing: Vec<_> = acknowledged
        .iter()
        .filter(|(id, title)| {
            !stored
                .iter()
                .any(|t| t["id"].as_i64() == Some(*id) && t["title"] == title.as_str())
        })
        .collect();
    println!(
        "restart under load: {} writes acknowledged, {} refused or failed while tasks-service \
         restarted ({restart_took:.1?}), {} stored, {} missing",
        acknowledged.len(),
        refused.load(Ordering::SeqCst),
        stored.len(),
        missing.len()
    );
    assert!(missing.is_empty(), "acknowledged writes lost: {missing:?}");
}

/// Every task of the user, page by page.
async fn all_tasks(http: &reqwest::Client, tasks: &str, token: &str) -> Vec<Value> {
    const PAGE: usize = 100;
    let mut out = Vec::new();
    loop {
        let page: Vec<Value> = http
            .get(format!("{tasks}?limit={PAGE}&offset={}", out.len()))
            .bearer_auth(token)
            .send()
            .await
            .expect("reach the gateway")
            .error_for_status()
            .expect("list the tasks")
            .json()
            .await
            .expect("a JSON list");
        let last = page.len() < PAGE;
        out.extend(page);
        if last {
            return out;
        }
    }
}
