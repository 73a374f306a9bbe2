//! Builds a whole gateway from validated [`Settings`]: binds the public and admin listeners,
//! creates the metrics registry, starts the authenticator and assembles the request path.
//! Tests call [`Application::build`] with port 0 and drive [`Application::run_until_stopped`]
//! with their own shutdown future.

use std::{future::Future, io, net::SocketAddr, sync::Arc};

use prometheus_client::registry::Registry;
use proto_shared::Signer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    admin,
    auth::Authenticator,
    config::{Http1Engine, Limits, Settings},
    cors::Cors,
    metrics::Metrics,
    proxy::{Forwarder, Proxy, ProxyParts},
    request::Router,
    upstream_probe::UpstreamProbe,
    workers::{self, Listeners},
};

/// The Tokio runtime for `worker_threads` workers. With one, a single-threaded runtime: it
/// does without the work-stealing queues and their atomics, which a gateway limited to one
/// CPU (a common sidecar size) would pay for on every wake-up and gain nothing from.
pub fn runtime(worker_threads: usize) -> io::Result<tokio::runtime::Runtime> {
    let mut builder = if worker_threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(worker_threads);
        builder
    };
    builder.enable_all().build()
}

/// A gateway bound to its port, ready to serve.
#[derive(Debug)]
pub struct Application {
    listeners: Listeners,
    address: SocketAddr,
    admin_listener: TcpListener,
    admin_address: SocketAddr,
    registry: Arc<Registry>,
    proxy: Proxy,
    limits: Limits,
    http1_engine: Http1Engine,
    /// Cancelled when draining starts: connections close once their answer is sent.
    draining: CancellationToken,
    /// Cancelled when asked to stop: `/readyz` says not ready (a child of `draining`).
    stopping: CancellationToken,
    background: CancellationToken,
}

impl Application {
    /// Binds `settings.listen` and assembles the gateway. Must run inside a Tokio runtime
    /// (the authenticator starts its key fetching here).
    pub async fn build(settings: Settings) -> io::Result<Self> {
        let listeners = Listeners::bind(
            settings.listen,
            settings.runtime_layout,
            settings.worker_threads,
        )
        .await
        .map_err(|error| cannot_listen("GATEWAY_LISTEN", settings.listen, error))?;
        let address = listeners.local_addr()?;
        tracing::info!(
            layout = ?settings.runtime_layout,
            workers = settings.worker_threads,
            max_connections = settings.limits.max_connections,
            "runtime layout and connection cap"
        );
        let admin_listener = TcpListener::bind(settings.admin_listen)
            .await
            .map_err(|error| cannot_listen("ADMIN_LISTEN", settings.admin_listen, error))?;
        let admin_address = admin_listener.local_addr()?;
        for variable in &settings.insecure_http {
            tracing::warn!(
                variable,
                "JWKS_ALLOW_INSECURE_HTTP: fetching signing keys over plain http to a host \
                 that is not loopback; safe only if the network in between is private"
            );
        }
        if settings.auth.revocation.is_none() {
            // Off is a choice (a Better Auth without the revocation SQL, a test stack), but
            // also what a misspelt variable gives: said at every start, and shown as a gauge.
            tracing::warn!(
                "REVOCATION_DATABASE_URL is not set: a signed-out session's tokens keep working \
                 until they expire; set it to Better Auth's database (deploy/better-auth/README.md)"
            );
        }
        let mut registry = Registry::default();
        let revocation_enabled = prometheus_client::metrics::gauge::Gauge::<i64>::default();
        revocation_enabled.set(i64::from(settings.auth.revocation.is_some()));
        registry.register(
            "gateway_revocation_enabled",
            "1 when sign-out and bans end tokens at once (REVOCATION_DATABASE_URL set), 0 when \
             tokens stay valid until they expire",
            revocation_enabled,
        );
        let metrics = Metrics::register(&mut registry);
        let background = CancellationToken::new();
        let authenticator =
            Authenticator::start(settings.auth.clone(), &mut registry, background.clone());
        let draining = CancellationToken::new();
        // Not ready from the stop signal on, while still accepting for SHUTDOWN_DELAY_SECS;
        // a child, so that draining always says not ready too.
        let stopping = draining.child_token();
        let signer = Signer::new(&settings.identity_keys, settings.identity_audience.clone());
        let upstream_probe = UpstreamProbe::start(
            &settings.tasks_service,
            signer.clone(),
            settings.identity_probe_interval,
            &mut registry,
            background.clone(),
        );
        let registry = Arc::new(registry);
        let proxy = Proxy::new(ProxyParts {
            router: Router::new(settings.public_routes.clone()),
            tasks_service: settings.tasks_service.clone(),
            cors: Cors::new(&settings.cors_allowed_origins),
            authenticator,
            signer,
            upstream_probe,
            forwarder: Forwarder::new(settings.limits.upstream_timeout),
            metrics,
            limits: settings.limits,
            forward_authorization: settings.forward_authorization,
            trusted_proxies: settings.trusted_proxies.clone(),
            stopping: stopping.clone(),
        });
        Ok(Self {
            listeners,
            address,
            admin_listener,
            admin_address,
            registry,
            proxy,
            limits: settings.limits,
            http1_engine: settings.http1_engine,
            draining,
            stopping,
            background,
        })
    }

    /// The request handler the listeners will serve with: for tests that drive an engine over
    /// a connection of their own.
    pub fn proxy(&self) -> &Proxy {
        &self.proxy
    }

    /// The address actually bound (the port is the kernel's choice when 0 was asked for).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The admin listener's address (`/metrics`, `/healthz`).
    pub fn admin_address(&self) -> SocketAddr {
        self.admin_address
    }

    /// Serves until `shutdown` completes, then drains in-flight requests on both listeners
    /// within the grace period and stops the background key refresh.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) {
        tracing::info!(address = %self.address, admin = %self.admin_address, "gateway listening");
        // One shutdown for both listeners: the public one's future fires it for the admin one.
        let stop = CancellationToken::new();
        let (stopping, delay) = (self.stopping, self.limits.shutdown_delay);
        let public = workers::serve(
            self.listeners,
            self.proxy,
            self.limits,
            self.http1_engine,
            self.draining,
            async {
                let not_ready = async {
                    shutdown.await;
                    stopping.cancel();
                };
                proto_shared::shutdown::delayed(not_ready, delay).await;
                stop.cancel();
            },
        );
        let admin = admin::serve(
            self.admin_listener,
            self.registry,
            self.limits,
            stop.cancelled(),
        );
        tokio::join!(public, admin);
        self.background.cancel();
        tracing::info!("gateway stopped");
    }
}

/// A bind error that says which setting and address it was: "address in use" alone does not
/// tell the public listener from the admin one.
fn cannot_listen(variable: &str, address: std::net::SocketAddr, error: io::Error) -> io::Error {
    io::Error::new(
        error.kind(),
        format!("{variable}: cannot listen on {address}: {error}"),
    )
}
