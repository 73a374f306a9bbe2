//! The binary and the process around the service: start-up errors and warnings, `--list-env`
//! and graceful shutdown with a request in flight.

use std::{process::Command, time::Duration};

use proto_shared::{identity::unix_now, Audience, BodyDigest, Signer, UserId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{ring, spawn_app, spawn_app_with, ADMIN_URL, GATEWAY_KEY};

const BINARY: &str = env!("CARGO_BIN_EXE_tasks-service");

fn closed_port() -> u16 {
    // Bind then drop: nothing listens there afterwards.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn a_missing_identity_keys_is_reported_by_its_variable_not_as_flag_usage() {
    let output = Command::new(BINARY)
        .env_clear()
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/tasks")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.trim_end(),
        "tasks-service: invalid configuration: IDENTITY_KEYS: required, not set \
         (set the variable, or pass --identity-keys)"
    );
}

#[test]
fn the_log_filter_flag_is_rust_log_as_in_the_gateway() {
    let help = Command::new(BINARY).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--rust-log <RUST_LOG>"), "{help}");
}

#[test]
fn an_unreachable_database_at_start_exits_non_zero_naming_database_url() {
    let output = Command::new(BINARY)
        .env_clear()
        .env("IDENTITY_KEYS", GATEWAY_KEY)
        .env(
            "DATABASE_URL",
            format!(
                "postgres://postgres:s3cret@127.0.0.1:{}/tasks",
                closed_port()
            ),
        )
        .env("TASKS_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
    assert!(stderr.contains("refused"), "{stderr}");
    assert!(
        !stderr.contains("s3cret"),
        "the password never appears: {stderr}"
    );
}

#[test]
fn a_database_that_accepts_and_never_answers_ends_the_start_within_the_connect_timeout() {
    // Accepts (the kernel completes the handshake) and never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let mut child = Command::new(BINARY)
        .env_clear()
        .env("IDENTITY_KEYS", GATEWAY_KEY)
        .env(
            "DATABASE_URL",
            format!("postgres://postgres@127.0.0.1:{port}/tasks"),
        )
        .env("DB_CONNECT_TIMEOUT_MS", "1000")
        .env("TASKS_LISTEN", "127.0.0.1:0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Generous: the bound is 1 s; before, the process waited for good.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("still starting after 30 s against a database that never answers");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(silent);
    assert!(!status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
    assert!(stderr.contains("did not complete its start-up"), "{stderr}");
}

/// The JSON log lines at WARN the binary writes to stderr with `extra` in its environment,
/// on a closed database port: the process ends right after starting, so its whole stderr can
/// be read, and start-up warnings come before the database is tried.
fn start_up_warnings(extra: &[(&str, &str)]) -> Vec<serde_json::Value> {
    let output = Command::new(BINARY)
        .env_clear()
        .env("IDENTITY_KEYS", GATEWAY_KEY)
        .env(
            "DATABASE_URL",
            format!("postgres://postgres@127.0.0.1:{}/tasks", closed_port()),
        )
        .env("TASKS_LISTEN", "127.0.0.1:0")
        .env("LOG_FORMAT", "json")
        .envs(extra.iter().copied())
        .output()
        .unwrap();
    assert!(!output.status.success(), "the database port is closed");
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| event["level"] == "WARN")
        .collect()
}

/// The WARN messages of [`start_up_warnings`] that name `IDENTITY_ACCEPT_V1`.
fn v1_warnings(extra: &[(&str, &str)]) -> Vec<String> {
    start_up_warnings(extra)
        .iter()
        .filter_map(|event| event["message"].as_str())
        .filter(|message| message.contains("IDENTITY_ACCEPT_V1"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn accepting_v1_credentials_is_warned_about_once_at_start() {
    let warnings = v1_warnings(&[("IDENTITY_ACCEPT_V1", "true")]);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    for says in [
        "not bound to the request body, the audience or single use",
        "unset IDENTITY_ACCEPT_V1 once every caller signs v2",
    ] {
        assert!(
            warnings[0].contains(says),
            "{:?} lacks {says:?}",
            warnings[0]
        );
    }
}

#[test]
fn refusing_v1_credentials_is_not_warned_about() {
    assert_eq!(v1_warnings(&[]), Vec::<String>::new());
    assert_eq!(
        v1_warnings(&[("IDENTITY_ACCEPT_V1", "false")]),
        Vec::<String>::new()
    );
}

#[test]
fn bad_configuration_names_the_variable_and_hides_secrets() {
    let output = Command::new(BINARY)
        .env_clear()
        .env("IDENTITY_KEYS", "gw:too-short-secret")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("IDENTITY_KEYS"), "{stderr}");
    assert!(!stderr.contains("too-short-secret"), "{stderr}");
}

#[test]
fn list_env_prints_every_variable_without_needing_any() {
    let output = Command::new(BINARY)
        .env_clear()
        .arg("--list-env")
        .output()
        .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let names: Vec<&str> = stdout
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    for name in [
        "TASKS_LISTEN",
        "DATABASE_URL",
        "IDENTITY_KEYS",
        "LOG_FORMAT",
        "RUST_LOG",
        "MAX_BODY_BYTES",
    ] {
        assert!(names.contains(&name), "{name} missing from\n{stdout}");
    }
    assert!(
        stdout.lines().all(|l| l.split('\t').count() == 3),
        "{stdout}"
    );
    assert!(stdout.contains("IDENTITY_KEYS\trequired\t\n"));
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish_then_stops() {
    let mut app = spawn_app().await;
    let path = "/api/alice/tasks";
    let body = br#"{"title":"finished during shutdown"}"#;
    let identity = Signer::new(&ring(GATEWAY_KEY), Audience::default()).sign(
        &http::Method::POST,
        path,
        &UserId::parse("alice").unwrap(),
        BodyDigest::of(body),
        unix_now(),
    );
    // Send the head and half the body, so the request is in flight.
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nx-user-id: {}\r\nx-identity-credential: {}\r\n\r\n",
        body.len(),
        identity.user_id.to_str().unwrap(),
        identity.credential.to_str().unwrap()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..10]).await.unwrap();
    // Connections are accepted in order, so once a later connection is answered ours has been
    // accepted and (the test runtime being single-threaded) its request head read.
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);

    app.signal_shutdown();
    stream.write_all(&body[10..]).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .expect("the in-flight request is answered, then the connection closes")
        .unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    app.stop().await;
    assert!(
        tokio::net::TcpStream::connect(app.addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn shutdown_stops_after_the_grace_period_even_if_a_request_stalls() {
    let mut app = spawn_app_with(ADMIN_URL, |settings| {
        settings.shutdown_grace = Duration::from_secs(1);
    })
    .await;
    let path = "/api/alice/tasks";
    // The body never completes, so its digest never gets checked.
    let identity = Signer::new(&ring(GATEWAY_KEY), Audience::default()).sign(
        &http::Method::POST,
        path,
        &UserId::parse("alice").unwrap(),
        BodyDigest::EMPTY,
        unix_now(),
    );
    // A head promising 100 bytes, then 10 of them and nothing more: the request never ends.
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
         content-length: 100\r\nx-user-id: {}\r\nx-identity-credential: {}\r\n\r\n",
        identity.user_id.to_str().unwrap(),
        identity.credential.to_str().unwrap()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(b"{\"title\": ").await.unwrap();
    // Once a later connection is answered, ours has been accepted and its head read.
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);

    // stop() itself gives up after 10 s; with a 1 s grace the service must be gone well before.
    let started = std::time::Instant::now();
    app.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "shutdown waited {:?} on a stalled request despite a 1 s grace",
        started.elapsed()
    );
    assert!(
        tokio::net::TcpStream::connect(app.addr).await.is_err(),
        "no longer accepting"
    );
    drop(stream);
}

#[tokio::test]
async fn a_stopping_service_keeps_accepting_for_its_shutdown_delay() {
    let mut app = spawn_app_with(ADMIN_URL, |settings| {
        settings.shutdown_delay = Duration::from_secs(2);
    })
    .await;
    app.signal_shutdown();
    // The gateway beside it may still open a connection while load balancers let go of the
    // pod: a fresh one is answered, and the service signs nobody in on the way.
    let fresh = reqwest::Client::new();
    let health = fresh.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let unsigned = fresh.get(app.url("/api/alice/tasks")).send().await.unwrap();
    assert_eq!(unsigned.status(), 401);
    app.stop().await;
    assert!(
        tokio::net::TcpStream::connect(app.addr).await.is_err(),
        "no longer accepting once the delay is over"
    );
}
