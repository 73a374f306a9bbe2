//! The whole path: browser token → gateway → the real tasks-service on PostgreSQL. Each test
//! gets a fresh database on the machine's PostgreSQL, dropped at the end.

use std::{str::FromStr, time::Duration};

use gateway::upstream::Upstream;
use proto_shared::{Audience, Verifier};
use serde_json::{json, Value};
use tasks_service::db::{DatabaseUrl, DbSettings};
use tokio::sync::oneshot;

use crate::{
    helpers::{
        http2_client, readyz, spawn_gateway_with, start_gateway, TestGateway, ALLOWED_ORIGIN,
        IDENTITY_KEYS,
    },
    support::issuer::Issuer,
};

const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// tasks-service on its own fresh database, trusting the gateway's identity key.
struct TasksService {
    url: String,
    /// `unix:<path>` of its Unix socket, for one started with `start_on_socket`.
    socket_url: Option<String>,
    database: String,
    stop: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
}

async fn admin() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(ADMIN_URL, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|error| {
            panic!(
                "PostgreSQL is not reachable at {ADMIN_URL} ({error}); start it with: \
                 pg_ctlcluster --skip-systemctl-redirect 15 main start"
            )
        });
    tokio::spawn(connection);
    client
}

impl TasksService {
    async fn start() -> Self {
        Self::start_with(None).await
    }

    /// Listening on a Unix socket as well, as beside a sidecar in a pod.
    async fn start_on_socket() -> Self {
        let dir = std::env::temp_dir().join(format!("tasks-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&dir).unwrap();
        Self::start_with(Some(dir.join("http.sock"))).await
    }

    async fn start_with(socket: Option<std::path::PathBuf>) -> Self {
        let database = format!("gateway_e2e_{}", uuid::Uuid::new_v4().simple());
        admin()
            .await
            .batch_execute(&format!("CREATE DATABASE {database}"))
            .await
            .expect("CREATE DATABASE");
        let socket_url = socket
            .as_ref()
            .map(|path| format!("unix:{}", path.display()));
        let settings = tasks_service::Settings {
            listen: "127.0.0.1:0".parse().unwrap(),
            socket,
            db: DbSettings {
                url: DatabaseUrl::from_str(&format!(
                    "postgres://postgres@127.0.0.1:5432/{database}"
                ))
                .unwrap(),
                pool_size: 4,
                connect_timeout: Duration::from_secs(2),
                acquire_timeout: Duration::from_secs(2),
                statement_timeout: Duration::from_secs(5),
            },
            verifier: Verifier::new(IDENTITY_KEYS.parse().unwrap(), 30, Audience::default()),
            max_body_bytes: 64 * 1024,
            header_read_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
            shutdown_delay: Duration::ZERO,
        };
        let app = tasks_service::Application::build(settings)
            .await
            .expect("tasks-service starts");
        let url = format!("http://{}", app.local_addr());
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        Self {
            url,
            socket_url,
            database,
            stop: Some(stop),
            server,
        }
    }

    /// Stops the service and drops its database.
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.server).await;
        admin()
            .await
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.database
            ))
            .await
            .expect("DROP DATABASE");
    }
}

/// The real service commits to a PostgreSQL that parallel tests load with CREATE and DROP
/// DATABASE: give it the service's own budget, not the 1 s the echo upstream's tests use
/// (no test here is about the upstream timeout; `upstream_errors.rs` is).
const REAL_SERVICE_TIMEOUT: Duration = Duration::from_secs(10);

async fn gateway_in_front_of(service: &TasksService) -> TestGateway {
    let url = service.url.clone();
    spawn_gateway_with(move |s| {
        s.tasks_service = Upstream::parse(&url).unwrap();
        s.limits.upstream_timeout = REAL_SERVICE_TIMEOUT;
    })
    .await
}

/// Sends a request as `user` (a token from the fake issuer) and returns status and JSON body.
async fn call(
    gateway: &TestGateway,
    user: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = gateway
        .http
        .request(method, gateway.url(path))
        .bearer_auth(gateway.token(user));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Creates a task as `user` on their own path, asserting 201; returns the created task.
async fn create(gateway: &TestGateway, user: &str, task: Value) -> Value {
    let path = format!("/api/{user}/tasks");
    let (status, created) = call(gateway, user, reqwest::Method::POST, &path, Some(task)).await;
    assert_eq!(status, 201, "{created}");
    created
}

#[tokio::test]
async fn create_list_toggle_and_delete_through_the_gateway() {
    let service = TasksService::start().await;
    let gateway = gateway_in_front_of(&service).await;
    use reqwest::Method;

    let created = create(
        &gateway,
        "alice",
        json!({"title": "Buy milk", "description": "2 litres"}),
    )
    .await;
    assert_eq!(created["title"], "Buy milk");
    assert_eq!(created["user_id"], "alice");
    assert_eq!(created["completed"], false);
    let id = created["id"].to_string().trim_matches('"').to_owned();

    let (status, listed) = call(&gateway, "alice", Method::GET, "/api/alice/tasks", None).await;
    assert_eq!(status, 200);
    assert_eq!(listed.as_array().unwrap().len(), 1);

    let toggle = format!("/api/alice/tasks/{id}/complete");
    let (status, toggled) = call(&gateway, "alice", Method::PATCH, &toggle, None).await;
    assert_eq!(status, 200, "{toggled}");
    assert_eq!(toggled["completed"], true);

    let (status, _) = call(
        &gateway,
        "alice",
        Method::DELETE,
        &format!("/api/alice/tasks/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (_, listed) = call(&gateway, "alice", Method::GET, "/api/alice/tasks", None).await;
    assert_eq!(listed, json!([]));

    // Without a token nothing reaches the service.
    let anonymous = gateway
        .http
        .get(gateway.url("/api/alice/tasks"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    drop(gateway);
    service.stop().await;
}

#[tokio::test]
async fn a_cross_origin_page_can_read_the_lists_total_and_paging_links() {
    let service = TasksService::start().await;
    let gateway = gateway_in_front_of(&service).await;
    for title in ["one", "two", "three"] {
        create(&gateway, "alice", json!({ "title": title })).await;
    }
    let listed = gateway
        .http
        .get(gateway.url("/api/alice/tasks?status=pending&limit=2"))
        .bearer_auth(gateway.token("alice"))
        .header("origin", ALLOWED_ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    let headers = listed.headers();
    assert_eq!(headers["x-total-count"], "3");
    assert_eq!(
        headers["link"],
        "</api/alice/tasks?status=pending&sort=created&limit=2&offset=2>; rel=\"next\""
    );
    let exposed: Vec<&str> = headers["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .split(", ")
        .collect();
    assert!(
        exposed.contains(&"x-total-count") && exposed.contains(&"link"),
        "a browser may read them only when exposed: {exposed:?}"
    );

    drop(gateway);
    service.stop().await;
}

#[tokio::test]
async fn two_users_never_see_each_others_tasks() {
    let service = TasksService::start().await;
    let gateway = gateway_in_front_of(&service).await;
    use reqwest::Method;

    let alices = create(&gateway, "alice", json!({"title": "Alice's secret"})).await;
    let id = alices["id"].to_string().trim_matches('"').to_owned();

    let (status, bobs) = call(&gateway, "bob", Method::GET, "/api/bob/tasks", None).await;
    assert_eq!((status, bobs), (200, json!([])));
    // Bob naming Alice's task under his own id: the service finds nothing of his.
    let (status, _) = call(
        &gateway,
        "bob",
        Method::GET,
        &format!("/api/bob/tasks/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = call(
        &gateway,
        "bob",
        Method::DELETE,
        &format!("/api/bob/tasks/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    // Bob's token on Alice's path: refused at the gateway.
    let (status, _) = call(&gateway, "bob", Method::GET, "/api/alice/tasks", None).await;
    assert_eq!(status, 403);

    let (_, still) = call(&gateway, "alice", Method::GET, "/api/alice/tasks", None).await;
    assert_eq!(
        still.as_array().unwrap().len(),
        1,
        "Alice's task survived Bob"
    );

    drop(gateway);
    service.stop().await;
}

#[tokio::test]
async fn over_a_unix_socket_the_probe_the_api_and_isolation_all_hold() {
    let service = TasksService::start_on_socket().await;
    let socket_url = service.socket_url.clone().unwrap();
    let socket = socket_url.strip_prefix("unix:").unwrap().to_owned();
    // The identity probe goes over the socket too, and tasks-service accepts it there.
    let gateway = gateway_accepted_by(&socket_url).await;
    use reqwest::Method;

    let created = create(&gateway, "alice", json!({"title": "by socket"})).await;
    let id = created["id"].as_i64().unwrap();
    // HTTP/2 from the client: hyper's engine, and its own upstream connections.
    let http2 = http2_client();
    for client in [&gateway.http, &http2] {
        let listed = client
            .get(gateway.url("/api/alice/tasks"))
            .bearer_auth(gateway.token("alice"))
            .send()
            .await
            .unwrap();
        assert_eq!(listed.status(), 200);
        let listed: Value = listed.json().await.unwrap();
        assert_eq!(listed[0]["id"], id);
    }
    let (status, _) = call(
        &gateway,
        "bob",
        Method::GET,
        &format!("/api/bob/tasks/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 404, "still sealed per user");

    // The service gone: its socket file with it, and the gateway answers 502, not a hang.
    service.stop().await;
    assert!(!std::path::Path::new(&socket).exists());
    let (status, body) = call(&gateway, "alice", Method::GET, "/api/alice/tasks", None).await;
    assert_eq!(status, 502, "{body}");
    let _ = std::fs::remove_dir_all(std::path::Path::new(&socket).parent().unwrap());
}

/// A gateway in front of `url` probing it every 50 ms, once tasks-service has accepted its
/// identity credential and the gateway is ready.
async fn gateway_accepted_by(url: &str) -> TestGateway {
    let gateway = start_gateway(Issuer::start().await, |s| {
        s.tasks_service = Upstream::parse(url).unwrap();
        s.identity_probe_interval = Duration::from_millis(50);
        s.limits.upstream_timeout = REAL_SERVICE_TIMEOUT;
    })
    .await;
    gateway
        .wait_for_metric("gateway_upstream_identity", |v| v == 1.0)
        .await;
    gateway.wait_ready().await;
    gateway
}

#[tokio::test]
async fn readiness_says_so_by_name_when_tasks_service_refuses_the_gateways_credential() {
    let service = TasksService::start().await;
    let url = service.url.clone();
    let other_key = "gateway:another-secret-0123456789abcdef-0123";
    type Adjust = fn(&mut gateway::Settings, &str);
    let slips: [(&str, Adjust); 2] = [
        ("another key", |s, key| {
            s.identity_keys = key.parse().unwrap()
        }),
        ("another audience", |s, _| {
            s.identity_audience = Audience::parse("billing").unwrap()
        }),
    ];
    for (slip, adjust) in slips {
        let gateway = start_gateway(Issuer::start().await, |s| {
            s.tasks_service = Upstream::parse(&url).unwrap();
            s.identity_probe_interval = Duration::from_millis(50);
            adjust(s, other_key);
        })
        .await;
        gateway
            .wait_for_metric("gateway_upstream_identity", |v| v == 0.0)
            .await;
        let (status, body) = readyz(&gateway).await;
        assert_eq!(status, 503, "{slip}");
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.contains("tasks-service refuses the gateway's identity credential"),
            "{slip}: {detail}"
        );
    }

    // Keys and audience agree: ready, and the probe says why.
    let agreeing = gateway_accepted_by(&url).await;

    // tasks-service gone: its own probe says so; the gateway's readiness keeps its verdict.
    service.stop().await;
    let unreachable = r#"gateway_upstream_identity_probes_total{result="unreachable"}"#;
    agreeing.wait_for_metric(unreachable, |v| v >= 2.0).await;
    assert_eq!(readyz(&agreeing).await.0, 200);
}

#[tokio::test]
async fn the_probe_follows_no_redirect_with_its_signed_credential() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Where a redirect would send the probe: it answers 200 to anything.
    let elsewhere = crate::upstream::EchoUpstream::start().await;
    let redirect = format!(
        "HTTP/1.1 302 Found\r\nlocation: {}/ok\r\ncontent-length: 0\r\n\r\n",
        elsewhere.url()
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut chunk = [0; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&chunk[..n]),
                }
            }
            let _ = stream.write_all(redirect.as_bytes()).await;
        }
    });
    let gateway = start_gateway(Issuer::start().await, |s| {
        s.tasks_service = Upstream::parse(&url).unwrap();
        s.identity_probe_interval = Duration::from_millis(50);
    })
    .await;
    let inconclusive = r#"gateway_upstream_identity_probes_total{result="inconclusive"}"#;
    gateway.wait_for_metric(inconclusive, |v| v >= 3.0).await;
    assert!(
        elsewhere.seen().is_empty(),
        "the credential went to the redirect's target"
    );
    assert_eq!(
        gateway.metric("gateway_upstream_identity").await,
        Some(-1.0),
        "a redirect says nothing about whether tasks-service accepts the credential"
    );
}
