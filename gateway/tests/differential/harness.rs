//! Two gateways, one per HTTP/1.1 engine, each in front of its own recording upstreams (the
//! protected task API and the public `/api/auth/` prefix), sharing one fake issuer; and the
//! running of one case on both at once. Not for: judging the outcome (`check.rs`).

use std::{net::SocketAddr, time::Duration};

use gateway::{
    auth::Algorithm,
    config::{Http1Engine, Limits, RuntimeLayout, Settings},
    request::{PublicRoute, TrustedProxies},
    upstream::Upstream,
    Application,
};
use proto_shared::{Audience, KeyRing, Verifier};
use tokio::task::JoinHandle;

use crate::{
    client::{self, Received},
    corpus::Case,
    recorder::{Recorder, Seen},
    support::issuer::Issuer,
};

pub const IDENTITY_KEYS: &str = "gw-diff:0123456789abcdef0123456789abcdef";
/// The user every corpus token is for; only `/api/alice/...` may reach the task API.
pub const USER: &str = "alice";
/// Replaced in a case's bytes by a fresh valid token for [`USER`].
pub const TOKEN: &[u8] = b"{TOKEN}";

/// One engine's gateway and what stands behind it.
pub struct Side {
    pub engine: Http1Engine,
    pub address: SocketAddr,
    pub protected: Recorder,
    pub public: Recorder,
    /// Remembers nonces across the run, so a credential replayed anywhere is caught.
    pub verifier: Verifier,
    server: JoinHandle<()>,
}

impl Drop for Side {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub struct Pair {
    pub lean: Side,
    pub hyper: Side,
    issuer: Issuer,
}

/// What one engine made of one case.
#[derive(Debug)]
pub struct Observed {
    pub received: Received,
    pub protected: Vec<Seen>,
    pub public: Vec<Seen>,
}

impl Observed {
    pub fn summary(&self) -> String {
        let statuses: Vec<u16> = self.received.answers.iter().map(|a| a.status).collect();
        let targets = |seen: &[Seen]| {
            seen.iter()
                .map(|s| match &s.garbage {
                    Some(_) => "<garbage>".to_owned(),
                    None => format!("{} {}", s.method, s.target),
                })
                .collect::<Vec<_>>()
        };
        format!(
            "answers {statuses:?}{}{}, api {:?}, public {:?}",
            if self.received.hung { " (hung)" } else { "" },
            if self.received.trailing.is_empty() {
                String::new()
            } else {
                format!(" + {} unparsable bytes", self.received.trailing.len())
            },
            targets(&self.protected),
            targets(&self.public)
        )
    }
}

pub struct Outcome {
    pub lean: Observed,
    pub hyper: Observed,
}

/// How the gateways reach their protected upstream.
#[derive(Debug, Clone, Copy)]
pub enum Transport {
    Tcp,
    /// A Unix socket, as a sidecar reaches tasks-service in its pod.
    Unix,
}

impl Pair {
    pub async fn start(transport: Transport) -> Self {
        let issuer = Issuer::start().await;
        let lean = Side::start(&issuer, Http1Engine::Lean, transport).await;
        let hyper = Side::start(&issuer, Http1Engine::Hyper, transport).await;
        Self {
            lean,
            hyper,
            issuer,
        }
    }

    /// Runs `case` on both engines at once.
    pub async fn run(&self, case: &Case) -> Outcome {
        let token = self.issuer.token_for(Algorithm::EdDsa, USER);
        let bytes = replace(&case.request, TOKEN, token.as_bytes());
        let (lean, hyper) = tokio::join!(self.lean.run(case, &bytes), self.hyper.run(case, &bytes));
        Outcome { lean, hyper }
    }
}

impl Side {
    async fn start(issuer: &Issuer, engine: Http1Engine, transport: Transport) -> Self {
        let protected = match transport {
            Transport::Tcp => Recorder::start().await,
            Transport::Unix => Recorder::start_unix(),
        };
        let public = Recorder::start().await;
        let settings = Settings {
            listen: "127.0.0.1:0".parse().unwrap(),
            admin_listen: "127.0.0.1:0".parse().unwrap(),
            tasks_service: Upstream::parse(&protected.url()).unwrap(),
            public_routes: vec![
                PublicRoute::parse(&format!("/api/auth/={}", public.url())).unwrap()
            ],
            auth: issuer.auth_config(),
            identity_keys: IDENTITY_KEYS.parse().unwrap(),
            identity_audience: Audience::default(),
            identity_probe_interval: Duration::ZERO,
            cors_allowed_origins: vec!["https://app.example".to_owned()],
            trusted_proxies: TrustedProxies::default(),
            forward_authorization: false,
            limits: limits(),
            http1_engine: engine,
            worker_threads: 1,
            runtime_layout: RuntimeLayout::Balanced,
            insecure_http: Vec::new(),
        };
        let application = Application::build(settings).await.expect("gateway builds");
        let address = application.address();
        let server = tokio::spawn(application.run_until_stopped(std::future::pending()));
        let side = Self {
            engine,
            address,
            protected,
            public,
            verifier: Verifier::new(
                IDENTITY_KEYS.parse::<KeyRing>().unwrap(),
                60,
                Audience::default(),
            ),
            server,
        };
        side.wait_ready().await;
        side
    }

    /// Polls `/readyz` until it answers 200 (10 s deadline): the signing keys are loaded.
    async fn wait_ready(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let received = client::exchange(
                self.address,
                b"GET /readyz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
                false,
            )
            .await;
            if received.answers.first().is_some_and(|a| a.status == 200) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{:?} gateway never became ready",
                self.engine
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn run(&self, case: &Case, bytes: &[u8]) -> Observed {
        self.protected.reset(case.reply.clone());
        self.public.reset(case.reply.clone());
        let received = client::exchange(self.address, bytes, case.keep_open).await;
        Observed {
            received,
            protected: self.protected.seen(),
            public: self.public.seen(),
        }
    }
}

/// Short timeouts, so that the few cases that wait on one end in two seconds; not shorter,
/// because every other case's whole exchange must fit in them on a loaded CI machine, where
/// one engine timing out and the other not would read as a disagreement between them.
fn limits() -> Limits {
    Limits {
        max_body_bytes: 64 * 1024,
        max_header_bytes: 8 * 1024,
        header_read_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(2),
        upstream_timeout: Duration::from_secs(2),
        max_concurrent_requests: 64,
        max_connections: 1024,
        shutdown_grace: Duration::from_secs(1),
        shutdown_delay: Duration::ZERO,
    }
}

fn replace(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len() + with.len());
    let mut rest = haystack;
    while let Some(at) = rest.windows(needle.len()).position(|w| w == needle) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(with);
        rest = &rest[at + needle.len()..];
    }
    out.extend_from_slice(rest);
    out
}
