//! Building the service from validated settings: connect, migrate, open the pool, check the
//! role, bind. [`Application::run_until_stopped`] serves until the shutdown future resolves.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use proto_shared::telemetry::error_chain;

use crate::{
    config::Settings,
    db::{self, Tls},
    listener::{BindError, Listeners},
    metrics::Metrics,
    migrations, routes, server,
    state::AppState,
    store::{Store, StoreError},
};

/// Why the service could not start. Each message names the variable to look at.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("DATABASE_URL: {0}")]
    Url(String),
    #[error("DATABASE_URL, DATABASE_CA_FILE: TLS set-up failed: {0}")]
    Tls(#[from] db::TlsError),
    #[error(
        "DATABASE_URL: cannot connect to the database at {target}: {}",
        error_chain(source)
    )]
    Connect {
        target: String,
        source: tokio_postgres::Error,
    },
    #[error(
        "DATABASE_URL: the database at {target} accepted the connection but did not complete \
         its start-up within {after:?} (DB_CONNECT_TIMEOUT_MS)"
    )]
    Unanswered { target: String, after: Duration },
    #[error(
        "DATABASE_URL: migrating the database at {target} failed: {}",
        error_chain(source)
    )]
    Migrate {
        target: String,
        source: tokio_postgres::Error,
    },
    #[error(
        "DATABASE_URL: refusing to serve from the database at {target} without its second line \
         of isolation: {lapse}"
    )]
    RowSecurity {
        target: String,
        lapse: migrations::RowSecurityLapse,
    },
    #[error(
        "DATABASE_URL: the database at {target} is encoded as {encoding}; tasks-service needs \
         UTF8 (titles are checked as Unicode characters): create it with ENCODING 'UTF8'"
    )]
    Encoding { target: String, encoding: String },
    #[error("DATABASE_URL: pooled connections to {target} are unusable: {source}")]
    Pool { target: String, source: StoreError },
    #[error(transparent)]
    Bind(#[from] BindError),
}

/// A built service, bound and ready to serve.
#[derive(Debug)]
pub struct Application {
    listeners: Listeners,
    state: AppState,
}

impl Application {
    /// Connects to the database (failing fast if it is unreachable), refuses one not encoded
    /// in UTF8, applies migrations,
    /// checks that row-level security on `tasks` is still enabled, forced and has its policy,
    /// opens the pool and proves a pooled connection cannot bypass row-level security.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let target = settings.db.url.redacted();
        let mut pg_config = settings.db.url.pg_config().map_err(StartupError::Url)?;
        pg_config.connect_timeout(settings.db.connect_timeout);
        let tls = Tls::for_config(&pg_config, settings.db.url.trusted_cas())?;

        // The driver's connect timeout bounds the socket's connect only: a server that accepts
        // and then says nothing would hold the start here for good.
        let after = settings.db.connect_timeout;
        let mut client = tokio::time::timeout(after, db::connect_direct(&pg_config, &tls))
            .await
            .map_err(|_| StartupError::Unanswered {
                target: target.clone(),
                after,
            })?
            .map_err(|source| StartupError::Connect {
                target: target.clone(),
                source,
            })?;
        let migrating = |source| StartupError::Migrate {
            target: target.clone(),
            source,
        };
        // Before anything is created in it.
        let encoding = migrations::encoding_not_utf8(&client)
            .await
            .map_err(migrating)?;
        if let Some(encoding) = encoding {
            return Err(StartupError::Encoding {
                target: target.clone(),
                encoding,
            });
        }
        let applied = migrations::run(&mut client).await.map_err(migrating)?;
        // An operator may have undone what the migrations set up (they are not run again).
        let lapse = migrations::row_security_lapse(&client)
            .await
            .map_err(migrating)?;
        drop(client);
        if !applied.is_empty() {
            tracing::info!(?applied, "migrations applied");
        }
        if let Some(lapse) = lapse {
            return Err(StartupError::RowSecurity { target, lapse });
        }

        let (pool, pins) = db::build_pool(pg_config, tls, &settings.db);
        // Bounds a whole store call: waiting for a connection, then the statement.
        let op_timeout =
            settings.db.acquire_timeout + settings.db.statement_timeout + Duration::from_secs(1);
        let store = Store::new(pool, pins, op_timeout);
        store.ping().await.map_err(|source| StartupError::Pool {
            target: target.clone(),
            source,
        })?;

        let listeners = Listeners::bind(settings.listen, settings.socket.as_deref()).await?;
        let state = AppState {
            store,
            verifier: Arc::new(settings.verifier),
            metrics: Metrics::new(),
            max_body_bytes: settings.max_body_bytes,
            header_read_timeout: settings.header_read_timeout,
            shutdown_grace: settings.shutdown_grace,
            shutdown_delay: settings.shutdown_delay,
        };
        Ok(Self { listeners, state })
    }

    /// The bound address (useful when listening on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listeners.local_addr()
    }

    /// The shared state, e.g. to reach the pool in tests.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, lets in-flight requests finish, closes the pool.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) {
        run(self.listeners, self.state, shutdown).await;
    }
}

/// Serves `state` on `listeners` until `shutdown`; then closes the pool.
pub async fn run(listeners: Listeners, state: AppState, shutdown: impl Future<Output = ()>) {
    let socket = listeners
        .socket_path()
        .map(|path| path.display().to_string());
    tracing::info!(addr = %listeners.local_addr(), socket, "listening");
    let filter = routes::routes(state.clone());
    let metrics = state.metrics.clone();
    server::serve(
        listeners,
        filter,
        metrics,
        state.header_read_timeout,
        state.shutdown_grace,
        proto_shared::shutdown::delayed(shutdown, state.shutdown_delay),
    )
    .await;
    state.store.pool().close();
    tracing::info!("stopped");
}
