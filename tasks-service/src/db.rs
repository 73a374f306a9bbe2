//! Connections to PostgreSQL: the URL (a secret), TLS when the URL asks for it, the pool and
//! the role every pooled connection runs as. Knows nothing about tasks.

use std::{
    fmt,
    str::FromStr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use deadpool_postgres::{HookError, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::{error::SqlState, Client, NoTls, SimpleQueryMessage, SimpleQueryRow};

pub use proto_shared::postgres_tls::{Tls, TlsError, TrustedCas};

/// The NOLOGIN role (created by the migrations) that pooled connections switch to when the
/// login role could bypass row-level security.
pub const RLS_ROLE: &str = "tasks_rls";

/// `DATABASE_URL`, and the CAs (`DATABASE_CA_FILE`) trusted for its server when they are not
/// the webpki roots. The CAs ride here rather than in [`DbSettings`] so that code building
/// settings by hand (the gateway's end-to-end tests) keeps compiling. May hold a password,
/// so `Debug` shows only where it points.
#[derive(Clone)]
pub struct DatabaseUrl(String, Option<TrustedCas>);

impl FromStr for DatabaseUrl {
    type Err = std::convert::Infallible;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Ok(Self(raw.to_owned(), None))
    }
}

impl DatabaseUrl {
    /// The same URL, its server verified against `cas` instead of the webpki roots.
    pub fn trusting(self, cas: TrustedCas) -> Self {
        Self(self.0, Some(cas))
    }

    /// The CAs from `DATABASE_CA_FILE`, if set.
    pub fn trusted_cas(&self) -> Option<&TrustedCas> {
        self.1.as_ref()
    }

    /// The parsed connection settings ([`proto_shared::postgres_tls::parse_url`]).
    pub fn pg_config(&self) -> Result<tokio_postgres::Config, String> {
        proto_shared::postgres_tls::parse_url(&self.0)
    }

    /// `host:port/dbname`, safe to log.
    pub fn redacted(&self) -> String {
        proto_shared::postgres_tls::redacted(&self.0)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

/// How the service talks to PostgreSQL.
#[derive(Debug, Clone)]
pub struct DbSettings {
    pub url: DatabaseUrl,
    pub pool_size: usize,
    pub connect_timeout: Duration,
    pub acquire_timeout: Duration,
    pub statement_timeout: Duration,
}

/// One connection outside the pool, as the login role (migrations need its rights).
pub async fn connect_direct(
    config: &tokio_postgres::Config,
    tls: &Tls,
) -> Result<Client, tokio_postgres::Error> {
    match tls {
        Tls::Plain => {
            let (client, connection) = config.connect(NoTls).await?;
            tokio::spawn(connection);
            Ok(client)
        }
        Tls::Rustls(tls) => {
            let (client, connection) = config.connect(tls.clone()).await?;
            tokio::spawn(connection);
            Ok(client)
        }
    }
}

/// TCP keepalive on pooled connections: the first probe after this long without traffic...
const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
/// ...then one every this long...
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// ...and the connection is dropped after this many unanswered.
const KEEPALIVE_RETRIES: u32 = 3;
/// How long data sent may go unacknowledged (`TCP_USER_TIMEOUT`) before the kernel drops the
/// connection: bounds a request written to a peer that vanished (failover, blackholed network).
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(20);

/// What the pool's connection set-up found about the login, for every transaction to repeat.
///
/// [`prepare_session`] sets the role and the timeouts for the session, once per pooled
/// connection. Behind a transaction-mode pooler (PgBouncer, a managed database's `-pooler`
/// host) a later transaction may run on a server connection that never saw those `SET`s: as
/// a login that bypasses row-level security, and with no statement timeout. So when the login
/// needed the switch, every transaction sets the role and the timeouts again, locally
/// ([`SessionPins::local_settings`]), in the statement that already sets its scope. Shared by
/// the pool (whose set-up records the need, for good) and the store (which reads it after
/// taking a connection, so after the first set-up has run). Cheap to clone.
#[derive(Debug, Clone)]
pub struct SessionPins {
    role_needed: Arc<AtomicBool>,
    local_settings: Arc<str>,
}

impl SessionPins {
    fn new(statement_timeout_ms: u128) -> Self {
        // set_config(.., true) is SET LOCAL: `role` is checked as SET ROLE is (membership, or
        // a superuser's session), and all three end with the transaction.
        let local_settings = format!(
            "set_config('role', '{RLS_ROLE}', true), \
             set_config('statement_timeout', '{statement_timeout_ms}', true), \
             set_config('idle_in_transaction_session_timeout', '{}', true)",
            idle_in_transaction_ms(statement_timeout_ms)
        );
        Self {
            role_needed: Arc::new(AtomicBool::new(false)),
            local_settings: local_settings.into(),
        }
    }

    /// Whether the login could bypass row-level security, so that every transaction must
    /// switch to [`RLS_ROLE`] itself.
    pub fn role_needed(&self) -> bool {
        self.role_needed.load(Ordering::Acquire)
    }

    /// `set_config` calls, comma-separated for a `SELECT` list, that set for the current
    /// transaction only what [`prepare_session`] set for the session: the role
    /// [`RLS_ROLE`], `statement_timeout` and `idle_in_transaction_session_timeout`.
    pub fn local_settings(&self) -> &str {
        &self.local_settings
    }

    fn record_role_needed(&self) {
        self.role_needed.store(true, Ordering::Release);
    }
}

/// Idle-in-transaction gets twice the statement budget: a stuck request releases its locks.
fn idle_in_transaction_ms(statement_timeout_ms: u128) -> u128 {
    statement_timeout_ms * 2
}

/// The pool. Every new connection gets the statement timeout and, if its login role could
/// bypass row-level security, `SET ROLE tasks_rls`; a connection that still could is refused.
/// The [`SessionPins`] say whether the role was needed, for the store to set it again in
/// every transaction.
///
/// The kernel gives up on a dead peer within about half a minute: TCP keepalive probes after
/// [`KEEPALIVE_IDLE`] (tokio-postgres' default is two hours) and [`TCP_USER_TIMEOUT`] for
/// unacknowledged writes, each unless `DATABASE_URL` sets it (`keepalives_idle`,
/// `keepalives_interval`, `keepalives_retries`, `tcp_user_timeout`). A socket that stays up
/// but unanswered (a hung server, a proxy that stopped forwarding) is for the store's
/// operation timeout to catch: it closes such a connection rather than returning it to the
/// pool (see `store.rs`).
pub fn build_pool(
    mut config: tokio_postgres::Config,
    tls: Tls,
    settings: &DbSettings,
) -> (Pool, SessionPins) {
    config.connect_timeout(settings.connect_timeout);
    detect_dead_peers(&mut config);
    // Fast recycling only checks the socket: `Clean` would run DISCARD ALL and drop the role.
    let manager_config = ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = match tls {
        Tls::Plain => Manager::from_config(config, NoTls, manager_config),
        Tls::Rustls(tls) => Manager::from_config(config, tls, manager_config),
    };
    let statement_timeout_ms = settings.statement_timeout.as_millis();
    let pins = SessionPins::new(statement_timeout_ms);
    let recorder = pins.clone();
    let pool = Pool::builder(manager)
        .max_size(settings.pool_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(settings.acquire_timeout))
        .create_timeout(Some(settings.connect_timeout))
        .recycle_timeout(Some(settings.connect_timeout))
        .post_create(deadpool_postgres::Hook::async_fn(move |client, _| {
            let recorder = recorder.clone();
            Box::pin(async move {
                prepare_session(client, statement_timeout_ms, &recorder)
                    .await
                    .map_err(|e| match e {
                        SessionError::Db(e) => HookError::Backend(e),
                        SessionError::CanBypassRls(role) => HookError::message(format!(
                            "database role {role} can bypass row-level security even after SET ROLE {RLS_ROLE}"
                        )),
                        SessionError::MayNotSwitch => HookError::message(format!(
                            "the database session can bypass row-level security (its login, or \
                             the role it starts as) and its login may not SET ROLE {RLS_ROLE}: \
                             log in as a role that cannot bypass it, or GRANT {RLS_ROLE} TO the login"
                        )),
                    })
            })
        }))
        .build()
        .expect("a runtime and a manager are set");
    (pool, pins)
}

/// Keepalive and `TCP_USER_TIMEOUT` as [`build_pool`] describes, where the URL set none.
fn detect_dead_peers(config: &mut tokio_postgres::Config) {
    // tokio-postgres cannot say whether the idle time was set, only what it is: its default.
    if config.get_keepalives_idle() == tokio_postgres::Config::new().get_keepalives_idle() {
        config.keepalives_idle(KEEPALIVE_IDLE);
    }
    if config.get_keepalives_interval().is_none() {
        config.keepalives_interval(KEEPALIVE_INTERVAL);
    }
    if config.get_keepalives_retries().is_none() {
        config.keepalives_retries(KEEPALIVE_RETRIES);
    }
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(TCP_USER_TIMEOUT);
    }
}

enum SessionError {
    Db(tokio_postgres::Error),
    CanBypassRls(String),
    /// The session could bypass the policy and its login may not `SET ROLE` [`RLS_ROLE`]: a
    /// login that is not a superuser but starts as one (migration 0002 grants the role only
    /// to the role it runs as).
    MayNotSwitch,
}

impl From<tokio_postgres::Error> for SessionError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Db(e)
    }
}

/// The first row of a simple query's answer (the rest of it is command tags).
pub(crate) fn first_row(answer: &[SimpleQueryMessage]) -> Option<&SimpleQueryRow> {
    answer.iter().find_map(|message| match message {
        SimpleQueryMessage::Row(row) => Some(row),
        _ => None,
    })
}

/// Whether the login or the role its session starts as could bypass row-level security.
///
/// `session_user`, because behind a transaction-mode pooler this query may run on a server
/// connection that another client's set-up left switched to [`RLS_ROLE`], which cannot; and
/// `current_user` as well, because a session can start as a more privileged role than its
/// login (`options=-c role=postgres` in the URL, `ALTER ROLE app SET role = ...`), and it is
/// that role the statements run as. An answer of no row at all counts as "could" (fail closed).
const LOGIN_BYPASSES_RLS: &str = "SELECT coalesce(bool_or(rolsuper OR rolbypassrls), true) \
     FROM pg_roles WHERE rolname IN (session_user, current_user)";

/// The switch and the proof that it took, sent as one simple-query message: one implicit
/// transaction, so one server connection even behind a transaction-mode pooler.
fn switch_and_check() -> String {
    format!(
        "SET ROLE {RLS_ROLE}; \
         SELECT current_user, rolsuper OR rolbypassrls \
         FROM pg_roles WHERE rolname = current_user"
    )
}

async fn prepare_session(
    client: &Client,
    statement_timeout_ms: u128,
    pins: &SessionPins,
) -> Result<(), SessionError> {
    client
        .batch_execute(&format!(
            "SET statement_timeout = {statement_timeout_ms}; \
             SET idle_in_transaction_session_timeout = {}",
            idle_in_transaction_ms(statement_timeout_ms)
        ))
        .await?;
    let row = client.query_one(LOGIN_BYPASSES_RLS, &[]).await?;
    if !row.get::<_, bool>(0) {
        return Ok(());
    }
    let answer = match client.simple_query(&switch_and_check()).await {
        Err(e) if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) => {
            return Err(SessionError::MayNotSwitch);
        }
        answer => answer?,
    };
    match first_row(&answer) {
        Some(row) if row.get(1) == Some("f") => {}
        // Anything but a plain "cannot" is refused.
        row => {
            let role = row.and_then(|row| row.get(0)).unwrap_or(RLS_ROLE);
            return Err(SessionError::CanBypassRls(role.to_owned()));
        }
    }
    pins.record_role_needed();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let url: DatabaseUrl = "postgres://user:hunter2@db.example:6543/app?sslmode=require"
            .parse()
            .unwrap();
        let shown = format!("{url:?}");
        assert_eq!(shown, "DatabaseUrl(db.example:6543/app)");
    }

    #[test]
    fn pooled_connections_give_up_on_a_dead_peer_in_seconds() {
        let mut config: tokio_postgres::Config = "postgres://user@db.example/app".parse().unwrap();
        detect_dead_peers(&mut config);
        assert!(config.get_keepalives());
        assert_eq!(config.get_keepalives_idle(), KEEPALIVE_IDLE);
        assert_eq!(config.get_keepalives_interval(), Some(KEEPALIVE_INTERVAL));
        assert_eq!(config.get_keepalives_retries(), Some(KEEPALIVE_RETRIES));
        assert_eq!(config.get_tcp_user_timeout(), Some(&TCP_USER_TIMEOUT));
    }

    #[test]
    fn dead_peer_settings_in_the_url_are_kept() {
        let mut config: tokio_postgres::Config = "postgres://user@db.example/app\
            ?keepalives_idle=60&keepalives_interval=7&keepalives_retries=9&tcp_user_timeout=45"
            .parse()
            .unwrap();
        detect_dead_peers(&mut config);
        assert_eq!(config.get_keepalives_idle(), Duration::from_secs(60));
        assert_eq!(
            config.get_keepalives_interval(),
            Some(Duration::from_secs(7))
        );
        assert_eq!(config.get_keepalives_retries(), Some(9));
        assert_eq!(
            config.get_tcp_user_timeout(),
            Some(&Duration::from_secs(45))
        );
    }
}
