//! The whole path: browser token → gateway → the real tasks-service on PostgreSQL. Each test
//! gets a fresh database on the machine's PostgreSQL, dropped at the end.

use std::{str::FromStr, time::Duration};

use gateway::proxy::Upstream;
use proto_shared::Verifier;
use serde_json::{json, Value};
use tasks_service::db::{DatabaseUrl, DbSettings};
use tokio::sync::oneshot;

use crate::helpers::{spawn_gateway_with, TestGateway, ALLOWED_ORIGIN, IDENTITY_KEYS};

const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// tasks-service on its own fresh database, trusting the gateway's identity key.
struct TasksService {
    url: String,
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
        let database = format!("gateway_e2e_{}", uuid::Uuid::new_v4().simple());
        admin()
            .await
            .batch_execute(&format!("CREATE DATABASE {database}"))
            .await
            .expect("CREATE DATABASE");
        let settings = tasks_service::Settings {
            listen: "127.0.0.1:0".parse().unwrap(),
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
            verifier: Verifier::new(IDENTITY_KEYS.parse().unwrap(), 30),
            max_body_bytes: 64 * 1024,
            shutdown_grace: Duration::from_secs(10),
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

async fn gateway_in_front_of(service: &TasksService) -> TestGateway {
    let url = service.url.clone();
    spawn_gateway_with(move |s| s.tasks_service = Upstream::parse(&url).unwrap()).await
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

#[tokio::test]
async fn create_list_toggle_and_delete_through_the_gateway() {
    let service = TasksService::start().await;
    let gateway = gateway_in_front_of(&service).await;
    use reqwest::Method;

    let (status, created) = call(
        &gateway,
        "alice",
        Method::POST,
        "/api/alice/tasks",
        Some(json!({"title": "Buy milk", "description": "2 litres"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
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
        let body = Some(json!({ "title": title }));
        let (status, _) = call(
            &gateway,
            "alice",
            reqwest::Method::POST,
            "/api/alice/tasks",
            body,
        )
        .await;
        assert_eq!(status, 201);
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

    let (status, alices) = call(
        &gateway,
        "alice",
        Method::POST,
        "/api/alice/tasks",
        Some(json!({"title": "Alice's secret"})),
    )
    .await;
    assert_eq!(status, 201);
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
