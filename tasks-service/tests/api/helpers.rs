//! `spawn_app()`: the service on port 0 against a fresh database, plus clients that sign
//! requests the way the gateway does. The database is dropped when the `TestApp` is.

use std::{net::SocketAddr, str::FromStr, time::Duration};

use http::Method;
use proto_shared::{identity::unix_now, Audience, BodyDigest, KeyRing, Signer, UserId, Verifier};
use serde_json::Value;
use tasks_service::{
    db::{DatabaseUrl, DbSettings},
    Application, Settings,
};
use tokio::{
    io::{AsyncRead, AsyncReadExt},
    sync::oneshot,
};

/// The gateway's key and an in-cluster caller's key; the service accepts both.
pub const GATEWAY_KEY: &str = "gateway:gateway-secret-0123456789abcdef-0123";
pub const REPORTS_KEY: &str = "reports:reports-secret-0123456789abcdef-0123";

/// The machine's PostgreSQL, as the test harness's superuser.
pub const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub fn ring(spec: &str) -> KeyRing {
    spec.parse().expect("test key specs are valid")
}

/// A running service and its private database.
pub struct TestApp {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    pub db_name: String,
    pub state: tasks_service::AppState,
    shutdown: Option<oneshot::Sender<()>>,
    pub server: Option<tokio::task::JoinHandle<()>>,
    admin_url: String,
}

/// Settings for a test: short timeouts so outage tests finish quickly.
pub fn test_settings(database_url: &str) -> Settings {
    Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        socket: None,
        db: DbSettings {
            url: DatabaseUrl::from_str(database_url).unwrap(),
            pool_size: 4,
            connect_timeout: Duration::from_millis(1500),
            acquire_timeout: Duration::from_millis(1500),
            statement_timeout: Duration::from_millis(3000),
        },
        verifier: Verifier::new(
            ring(&format!("{GATEWAY_KEY},{REPORTS_KEY}")),
            30,
            Audience::default(),
        ),
        max_body_bytes: 64 * 1024,
        header_read_timeout: Duration::from_secs(10),
        shutdown_grace: Duration::from_secs(10),
        shutdown_delay: Duration::ZERO,
    }
}

/// Creates a fresh database on the server at `admin_url` (a URL to an existing database).
pub async fn create_database(admin_url: &str) -> String {
    let name = format!("tasks_test_{}", uuid::Uuid::new_v4().simple());
    let client = admin_client(admin_url).await;
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("CREATE DATABASE");
    name
}

/// A connection as the superuser, failing with what to do when PostgreSQL is down.
pub async fn admin_client(admin_url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is not reachable at {admin_url} ({e}). Start it with: \
                 pg_ctlcluster --skip-systemctl-redirect 15 main start"
            )
        });
    tokio::spawn(connection);
    client
}

/// Waits until `sessions` sessions of the database `observer` is connected to wait on a lock,
/// failing with `what` after `within`.
pub async fn until_waiting_on_locks(
    observer: &tokio_postgres::Client,
    sessions: i64,
    within: Duration,
    what: &str,
) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let blocked: i64 = observer
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if blocked == sessions {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} never waited on the lock ({blocked} of {sessions} did)"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The task ids of a list answer's body, in its order.
pub fn ids(list: &Value) -> Vec<i64> {
    list.as_array()
        .expect("a JSON array")
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect()
}

/// `admin_url` with its database name replaced.
pub fn url_for(admin_url: &str, db_name: &str) -> String {
    let (base, _) = admin_url.rsplit_once('/').expect("URL has a database");
    format!("{base}/{db_name}")
}

/// The service on a fresh database of the machine's PostgreSQL.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(ADMIN_URL, |_| {}).await
}

/// The service on a fresh database of the server at `admin_url`, settings adjusted first.
pub async fn spawn_app_with(admin_url: &str, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_on(admin_url, |db_name| url_for(admin_url, db_name), adjust).await
}

/// The service on a fresh database of the server at `admin_url`, reached through the URL
/// `service_url` makes from the database's name (e.g. with `sslmode=require`).
pub async fn spawn_app_on(
    admin_url: &str,
    service_url: impl FnOnce(&str) -> String,
    adjust: impl FnOnce(&mut Settings),
) -> TestApp {
    let db_name = create_database(admin_url).await;
    let service_url = service_url(&db_name);
    start_app(admin_url, db_name, &service_url, adjust).await
}

/// The service on the existing database `db_name` (dropped with the `TestApp`), reached
/// through `service_url`.
pub async fn start_app(
    admin_url: &str,
    db_name: String,
    service_url: &str,
    adjust: impl FnOnce(&mut Settings),
) -> TestApp {
    let mut settings = test_settings(service_url);
    adjust(&mut settings);
    let app = Application::build(settings)
        .await
        .expect("the service starts");
    let addr = app.local_addr();
    let state = app.state().clone();
    let (tx, rx) = oneshot::channel();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        http: reqwest::Client::new(),
        db_name,
        state,
        shutdown: Some(tx),
        server: Some(server),
        admin_url: admin_url.to_owned(),
    }
}

impl TestApp {
    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.addr)
    }

    /// An unsigned request.
    pub fn raw(&self, method: Method, path_and_query: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path_and_query))
    }

    /// Polls `/readyz` until it answers `status`, failing with `what` after `within`.
    pub async fn until_readyz(&self, status: u16, within: Duration, what: &str) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let answered = self
                .raw(Method::GET, "/readyz")
                .send()
                .await
                .unwrap()
                .status();
            if answered == status {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The Prometheus text `/metrics` serves right now.
    pub async fn metrics_text(&self) -> String {
        let response = self.raw(Method::GET, "/metrics").send().await.unwrap();
        response.text().await.unwrap()
    }

    /// A bodiless request signed for `user` with `key` (a `key_id:secret` spec) at time `ts`.
    pub fn signed_with(
        &self,
        key: &str,
        method: Method,
        path_and_query: &str,
        user: &str,
        ts: i64,
    ) -> reqwest::RequestBuilder {
        self.signed_body_with(key, method, path_and_query, user, Vec::new(), ts)
    }

    /// A request carrying `body`, signed for `user` with `key` at time `ts` for the service's
    /// audience, as the gateway signs it.
    pub fn signed_body_with(
        &self,
        key: &str,
        method: Method,
        path_and_query: &str,
        user: &str,
        body: Vec<u8>,
        ts: i64,
    ) -> reqwest::RequestBuilder {
        let user = UserId::parse(user).unwrap();
        let identity = Signer::new(&ring(key), Audience::default()).sign(
            &method,
            path_and_query,
            &user,
            BodyDigest::of(&body),
            ts,
        );
        let request = self
            .raw(method, path_and_query)
            .header(proto_shared::headers::USER_ID, identity.user_id)
            .header(
                proto_shared::headers::IDENTITY_CREDENTIAL,
                identity.credential,
            );
        if body.is_empty() {
            request
        } else {
            request.body(body)
        }
    }

    /// A bodiless request signed now by the gateway key for `user`.
    pub fn signed(
        &self,
        method: Method,
        path_and_query: &str,
        user: &str,
    ) -> reqwest::RequestBuilder {
        self.signed_with(GATEWAY_KEY, method, path_and_query, user, unix_now())
    }

    /// A request carrying `body`, signed now by the gateway key for `user` (no
    /// `Content-Type`: the caller sets the one it tests).
    pub fn signed_body(
        &self,
        method: Method,
        path_and_query: &str,
        user: &str,
        body: impl Into<Vec<u8>>,
    ) -> reqwest::RequestBuilder {
        let body = body.into();
        self.signed_body_with(GATEWAY_KEY, method, path_and_query, user, body, unix_now())
    }

    /// A client acting as `user` through the gateway.
    pub fn user(&self, user: &str) -> UserClient<'_> {
        UserClient {
            app: self,
            user: user.to_owned(),
        }
    }

    /// Stops the server (in-flight requests finish) and waits for it, with a deadline.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(10), server)
                .await
                .expect("the server stops within 10 s")
                .expect("the server task does not panic");
        }
    }

    /// Sends the shutdown signal without waiting.
    pub fn signal_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // Drop runs outside async context (or inside a runtime we must not block), so drop
        // the database from a thread with its own runtime; FORCE ends leftover connections.
        let admin_url = self.admin_url.clone();
        let db_name = self.db_name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok((client, connection)) =
                    tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await
                {
                    tokio::spawn(connection);
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"))
                        .await;
                }
            });
        });
        let _ = dropped.join();
    }
}

/// Acting as one user through the gateway: every request signed for that user.
pub struct UserClient<'a> {
    pub app: &'a TestApp,
    pub user: String,
}

/// Whether the peer closes `stream` (a read gives end of file or an error) within `within`;
/// bytes sent before the close, such as an error response, are read and ignored.
pub async fn closed_within(stream: &mut (impl AsyncRead + Unpin), within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_elapsed) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

/// A response's status and JSON body (`Value::Null` when empty).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub headers: http::HeaderMap,
}

impl Answer {
    pub async fn from(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("a response body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)))
        };
        Self {
            status,
            body,
            headers,
        }
    }

    /// The `detail` message.
    pub fn detail(&self) -> &str {
        self.body["detail"]
            .as_str()
            .unwrap_or_else(|| panic!("no detail message: {}", self.body))
    }

    /// `(loc joined by '.', type)` of each field error.
    pub fn field_errors(&self) -> Vec<(String, String)> {
        self.body["detail"]
            .as_array()
            .unwrap_or_else(|| panic!("no field errors: {}", self.body))
            .iter()
            .map(|e| {
                let loc: Vec<&str> = e["loc"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p.as_str().unwrap())
                    .collect();
                (loc.join("."), e["type"].as_str().unwrap().to_owned())
            })
            .collect()
    }
}

impl UserClient<'_> {
    pub fn path(&self, rest: &str) -> String {
        let user = UserId::parse(&self.user).unwrap();
        format!("/api/{}/tasks{rest}", user.to_path_segment())
    }

    pub async fn send(&self, method: Method, path_and_query: &str, body: Option<Value>) -> Answer {
        let request = match body {
            None => self.app.signed(method, path_and_query, &self.user),
            Some(body) => self
                .app
                .signed_body(method, path_and_query, &self.user, body.to_string())
                .header("content-type", "application/json"),
        };
        Answer::from(request.send().await.expect("the service answers")).await
    }

    pub async fn list(&self, query: &str) -> Answer {
        self.send(Method::GET, &self.path(query), None).await
    }

    pub async fn create(&self, body: Value) -> Answer {
        self.send(Method::POST, &self.path(""), Some(body)).await
    }

    /// Creates a task titled `title` and returns its id, asserting 201.
    pub async fn create_titled(&self, title: &str) -> i64 {
        let answer = self.create(serde_json::json!({ "title": title })).await;
        assert_eq!(answer.status, 201, "{:?}", answer.body);
        answer.body["id"].as_i64().unwrap()
    }

    pub async fn get(&self, id: i64) -> Answer {
        self.send(Method::GET, &self.path(&format!("/{id}")), None)
            .await
    }

    pub async fn update(&self, id: i64, body: Value) -> Answer {
        self.send(Method::PUT, &self.path(&format!("/{id}")), Some(body))
            .await
    }

    pub async fn delete(&self, id: i64) -> Answer {
        self.send(Method::DELETE, &self.path(&format!("/{id}")), None)
            .await
    }

    pub async fn complete(&self, id: i64, body: Option<Value>) -> Answer {
        self.send(Method::PATCH, &self.path(&format!("/{id}/complete")), body)
            .await
    }
}
