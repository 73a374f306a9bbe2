//! Starting a whole gateway in-process on port 0, in front of a fake issuer and an echo
//! upstream, plus the clients the tests talk to it with.

use std::{net::SocketAddr, time::Duration};

use gateway::{
    auth::Algorithm,
    config::{Http1Engine, Limits, RuntimeLayout, Settings},
    request::{PublicRoute, TrustedProxies},
    upstream::Upstream,
    Application,
};
use proto_shared::{identity::unix_now, Audience, KeyRing, Verifier};
use tokio::{sync::oneshot, task::JoinHandle};

use crate::{
    support::issuer::Issuer,
    upstream::{EchoUpstream, Seen},
};

/// The identity key ring the gateway signs with and the upstream verifies with.
pub const IDENTITY_KEYS: &str = "gw-test:0123456789abcdef0123456789abcdef";
/// The browser origin the test gateway trusts.
pub const ALLOWED_ORIGIN: &str = "https://app.example";

/// A running gateway with its issuer and upstream. Shuts the gateway down when dropped.
pub struct TestGateway {
    pub address: SocketAddr,
    /// The admin listener (`/metrics`, `/healthz`).
    pub admin_address: SocketAddr,
    pub issuer: Issuer,
    pub upstream: EchoUpstream,
    pub http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(server) = &self.server {
            server.abort();
        }
    }
}

/// The engine serving HTTP/1.1 in this test binary's gateways: the lean one in `proxy`, hyper
/// in `proxy_hyper`, the same tests built once more (gateway/Cargo.toml). A test that needs one
/// engine, or compares both, sets `http1_engine` itself.
pub const ENGINE: Http1Engine = if same(env!("CARGO_CRATE_NAME"), "proxy_hyper") {
    Http1Engine::Hyper
} else {
    Http1Engine::Lean
};

const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Test-sized limits: small enough to hit quickly, large enough for ordinary requests.
pub fn test_limits() -> Limits {
    Limits {
        max_body_bytes: 1024 * 1024,
        max_header_bytes: 8 * 1024,
        header_read_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(30),
        upstream_timeout: Duration::from_secs(1),
        max_concurrent_requests: 64,
        max_connections: 1024,
        shutdown_grace: Duration::from_secs(5),
        shutdown_delay: Duration::ZERO,
    }
}

/// Settings for a gateway in front of `issuer` and `upstream`: `/api/auth/` is public and,
/// like `/api/`, goes to the echo upstream.
pub fn test_settings(issuer: &Issuer, upstream: &EchoUpstream) -> Settings {
    Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        tasks_service: Upstream::parse(&upstream.url()).unwrap(),
        public_routes: vec![PublicRoute::parse(&format!("/api/auth/={}", upstream.url())).unwrap()],
        auth: issuer.auth_config(),
        identity_keys: IDENTITY_KEYS.parse().unwrap(),
        identity_audience: Audience::default(),
        identity_probe_interval: Duration::ZERO,
        cors_allowed_origins: vec![ALLOWED_ORIGIN.to_owned()],
        trusted_proxies: TrustedProxies::default(),
        forward_authorization: false,
        limits: test_limits(),
        http1_engine: ENGINE,
        worker_threads: 1,
        // The default layout; one worker, so that tests capturing the test thread's logs or
        // pausing its clock see every connection (workers.rs runs several).
        runtime_layout: RuntimeLayout::Balanced,
        insecure_http: Vec::new(),
    }
}

/// A gateway with default test settings, its signing keys loaded.
pub async fn spawn_gateway() -> TestGateway {
    spawn_gateway_with(|_| {}).await
}

/// A gateway whose settings `adjust` changed first; waits until it is ready.
pub async fn spawn_gateway_with(adjust: impl FnOnce(&mut Settings)) -> TestGateway {
    let gateway = start_gateway(Issuer::start().await, adjust).await;
    gateway.wait_ready().await;
    gateway
}

/// A gateway in front of `issuer`, not waiting for its keys.
pub async fn start_gateway(issuer: Issuer, adjust: impl FnOnce(&mut Settings)) -> TestGateway {
    start_gateway_before(issuer, EchoUpstream::start().await, adjust).await
}

/// A gateway with default test settings in front of `upstream`, its signing keys loaded.
pub async fn spawn_gateway_before(upstream: EchoUpstream) -> TestGateway {
    let gateway = start_gateway_before(Issuer::start().await, upstream, |_| {}).await;
    gateway.wait_ready().await;
    gateway
}

async fn start_gateway_before(
    issuer: Issuer,
    upstream: EchoUpstream,
    adjust: impl FnOnce(&mut Settings),
) -> TestGateway {
    let mut settings = test_settings(&issuer, &upstream);
    adjust(&mut settings);
    let application = Application::build(settings).await.expect("gateway builds");
    let address = application.address();
    let admin_address = application.admin_address();
    let (shutdown, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestGateway {
        address,
        admin_address,
        issuer,
        upstream,
        // Idle connections are dropped well before the test gateway's 1 s header-read
        // timeout closes them: else a request sent on one just as the gateway closes it is
        // reset (the keep-alive race every HTTP/1.1 client has), which a flood of requests
        // on a loaded machine hit once in a CI run.
        http: reqwest::Client::builder()
            .no_proxy()
            .pool_idle_timeout(Duration::from_millis(500))
            .build()
            .unwrap(),
        shutdown: Some(shutdown),
        server: Some(server),
    }
}

impl TestGateway {
    /// `http://<gateway>/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// A valid EdDSA token for `user`.
    pub fn token(&self, user: &str) -> String {
        self.issuer.token_for(Algorithm::EdDsa, user)
    }

    /// Returns once the gateway refuses new connections: its listener is closed and it drains
    /// (5 s deadline).
    pub async fn wait_until_not_accepting(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while tokio::net::TcpStream::connect(self.address).await.is_ok() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "still accepting after shutdown"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// `http://<admin listener>/<path>`.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin_address)
    }

    /// The gateway's `/metrics` page, from the admin listener.
    pub async fn metrics(&self) -> String {
        let response = self
            .http
            .get(self.admin_url("/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }

    /// The value of the un-labelled or labelled series `series` (the text before the value).
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let text = self.metrics().await;
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .map(|value| value.trim().parse().expect("a number"))
    }

    /// Polls `series` until its value `holds` (10 s deadline).
    pub async fn wait_for_metric(&self, series: &str, holds: impl Fn(f64) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let now = self.metric(series).await;
            if now.is_some_and(&holds) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{series} stayed at {now:?} for 10 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Polls `/readyz` until it answers 200 (10 s deadline).
    pub async fn wait_ready(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let status = self
                .http
                .get(self.url("/readyz"))
                .send()
                .await
                .map(|r| r.status());
            if matches!(status, Ok(s) if s == 200) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "gateway never became ready: {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Starts the graceful shutdown; the returned handle completes when the gateway stopped.
    pub fn shut_down(&mut self) -> JoinHandle<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.server.take().expect("shut down once")
    }
}

/// The verifier tasks-service would use with the test key ring. Tests make it after the
/// gateway has signed what it checks, so it is told it has been remembering for the whole
/// window: credentials signed a second before it was made are not `signed_before_start`.
pub fn verifier() -> Verifier {
    Verifier::new(
        IDENTITY_KEYS.parse::<KeyRing>().unwrap(),
        60,
        Audience::default(),
    )
    .remembering_since(unix_now() - 60)
}

/// The user the gateway's credential on `seen` proves, checked as tasks-service checks it.
pub fn proven_user(seen: &Seen) -> String {
    verifier()
        .verify(
            &seen.method,
            &seen.target,
            &seen.headers,
            &seen.body,
            unix_now(),
        )
        .expect("the upstream accepts the gateway's credential")
        .expect("the credential proves a user")
        .as_str()
        .to_owned()
}

/// Asserts the gateway's answer when an upstream fails: 502 with its JSON body.
pub async fn assert_upstream_unavailable(response: reqwest::Response) {
    assert_eq!(response.status(), 502);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(detail(response).await, "Bad gateway: upstream unavailable");
}

/// The JSON body of an error response, `detail` field.
pub async fn detail(response: reqwest::Response) -> String {
    let body: serde_json::Value = response.json().await.expect("a JSON body");
    body["detail"].as_str().expect("a string detail").to_owned()
}

/// `/readyz`'s status and JSON body.
pub async fn readyz(gateway: &TestGateway) -> (u16, serde_json::Value) {
    let response = gateway
        .http
        .get(gateway.url("/readyz"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// An upstream for one request, scripted byte for byte: it reads the request head (not the
/// body), writes `answer` and closes. Returns its URL and a signal sent once it has answered.
pub async fn answering_once(answer: Vec<u8>) -> (String, oneshot::Receiver<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (answered, answered_rx) = oneshot::channel();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut seen = Vec::new();
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
            let mut chunk = [0; 4096];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the gateway sent the head");
            seen.extend_from_slice(&chunk[..n]);
        }
        stream.write_all(&answer).await.unwrap();
        drop(stream);
        let _ = answered.send(());
    });
    (url, answered_rx)
}

/// A client that speaks HTTP/2 from its first byte (prior knowledge, cleartext).
pub fn http2_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap()
}
