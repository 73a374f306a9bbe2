//! The Unix socket a gateway sidecar reaches the service by (`TASKS_SOCKET`): the same API
//! and the same identity check as over TCP, a file only its owner and group may open, and
//! one left by a dead process replaced, never one in use or one that is not a socket; and a
//! connection over it that sends nothing is closed, as over TCP.

use std::{
    os::unix::fs::{FileTypeExt, PermissionsExt},
    path::{Path, PathBuf},
    time::Duration,
};

use http::Method;
use tasks_service::listener::{BindError, Listeners};

use crate::helpers::{closed_within, spawn_app_with, Answer, ADMIN_URL};

/// A fresh directory for one test's socket, removed when dropped.
struct SocketDir(PathBuf);

impl SocketDir {
    fn new() -> Self {
        let dir =
            std::env::temp_dir().join(format!("tasks-sock-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&dir).unwrap();
        Self(dir)
    }

    fn path(&self) -> PathBuf {
        self.0.join("http.sock")
    }
}

impl Drop for SocketDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn unix_client(path: &Path) -> reqwest::Client {
    reqwest::Client::builder()
        .unix_socket(path)
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_socket_serves_the_api_behind_the_same_identity_check() {
    let dir = SocketDir::new();
    let socket = dir.path();
    let mut app = spawn_app_with(ADMIN_URL, |s| s.socket = Some(socket.clone())).await;
    let meta = std::fs::metadata(&socket).expect("the socket file exists while serving");
    assert!(meta.file_type().is_socket());
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o660,
        "owner and group only"
    );

    // Every request below goes over the socket: the client connects nowhere else.
    app.http = unix_client(&socket);
    let alice = app.user("alice");
    let id = alice.create_titled("over the socket").await;
    let listed = alice.list("").await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body[0]["id"], id);
    assert_eq!(
        app.user("bob").get(id).await.status,
        404,
        "still scoped to its user"
    );

    let unsigned = Answer::from(
        app.raw(Method::GET, "/api/alice/tasks")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        unsigned.status, 401,
        "the socket is no way around the credential"
    );
    assert_eq!(unsigned.detail(), "Not authenticated");

    // TCP still serves, for probes and in-cluster callers.
    let over_tcp = reqwest::get(format!("http://{}/healthz", app.addr))
        .await
        .unwrap();
    assert_eq!(over_tcp.status(), 200);

    app.stop().await;
    assert!(!socket.exists(), "the socket file goes with the service");
}

#[tokio::test]
async fn a_stale_socket_is_replaced_but_a_live_one_or_another_file_is_refused() {
    let dir = SocketDir::new();
    let socket = dir.path();
    let any_port = "127.0.0.1:0".parse().unwrap();

    // Left by a process that died without removing it: bound, then closed.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    let listeners = Listeners::bind(any_port, Some(&socket))
        .await
        .expect("a stale socket file is replaced");

    let error = Listeners::bind(any_port, Some(&socket)).await.unwrap_err();
    assert!(
        matches!(&error, BindError::Unix { problem, .. } if problem.contains("another process is serving")),
        "{error}"
    );
    assert!(error.to_string().starts_with("TASKS_SOCKET: "), "{error}");
    drop(listeners);
    assert!(!socket.exists(), "removed by the listener that made it");

    std::fs::write(&socket, "not a socket").unwrap();
    let error = Listeners::bind(any_port, Some(&socket)).await.unwrap_err();
    assert!(error.to_string().contains("is not a socket"), "{error}");
    assert_eq!(
        std::fs::read_to_string(&socket).unwrap(),
        "not a socket",
        "left alone"
    );
}

#[tokio::test]
async fn a_connection_over_the_socket_that_sends_nothing_is_closed() {
    let dir = SocketDir::new();
    let socket = dir.path();
    let timeout = Duration::from_secs(1);
    let app = spawn_app_with(ADMIN_URL, |s| {
        s.socket = Some(socket.clone());
        s.header_read_timeout = timeout;
    })
    .await;
    let mut stream = tokio::net::UnixStream::connect(&socket).await.unwrap();
    assert!(
        closed_within(&mut stream, timeout + Duration::from_secs(5)).await,
        "a connection that never sent a byte was kept"
    );
    drop(app);
}
