//! The gateway's one configuration struct: every setting from a flag or its environment
//! variable (clap), checked once at start by [`Config::validate`] with a message that names
//! the variable to fix. Knows nothing about serving; `startup.rs` turns a [`Settings`] into a
//! running gateway.

use std::{fmt, net::SocketAddr, time::Duration};

use clap::{ArgAction, Parser};
use proto_shared::{
    postgres_tls::{self, Tls, TrustedCas},
    telemetry::LogFormat,
    Audience, KeyRing,
};

use crate::{
    auth::{Algorithm, AuthConfig},
    jwks::{loggable_url, JwksConfig},
    request::{PublicRoute, TrustedProxies},
    revocation::RevocationConfig,
    upstream::Upstream,
};

mod list_env;
mod transport;
pub use list_env::{env_listing, list_env_requested};

/// Command-line flags and environment variables. `--help` shows the variable of each, and
/// the value it has now except for settings that may carry a secret (`hide_env_values`).
/// Its `Debug` shows no value: the raw strings may hold a password; [`Settings`] is what
/// start-up may show.
#[derive(Clone, Parser)]
#[command(name = "gateway", version, about = "Auth sidecar for the task API")]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "GATEWAY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Address of the operators' listener: `/metrics` and `/healthz`. Keep it off the public
    /// network; the public listener does not serve `/metrics`.
    #[arg(long, env = "ADMIN_LISTEN", default_value = "127.0.0.1:9090")]
    pub admin_listen: SocketAddr,
    /// Upstream of the protected `/api/...` routes: `http://host:port`, or `unix:/path` for
    /// tasks-service's Unix socket (`TASKS_SOCKET`) in a volume the sidecar shares.
    #[arg(
        long,
        env = "TASKS_SERVICE_URL",
        default_value = "http://127.0.0.1:8081",
        hide_env_values = true
    )]
    pub tasks_service_url: String,
    /// Better Auth's base URL: sets the JWKS URL to $BETTER_AUTH_URL/api/auth/jwks and the
    /// issuer and audience to $BETTER_AUTH_URL unless they are set on their own.
    #[arg(long, env = "BETTER_AUTH_URL", hide_env_values = true)]
    pub better_auth_url: Option<String>,
    /// Where the issuer publishes its key set.
    #[arg(long, env = "JWKS_URL", hide_env_values = true)]
    pub jwks_url: Option<String>,
    /// Allow an http:// JWKS URL and issuer on a host that is not loopback, for an issuer
    /// reached inside a private network; logged as a warning at start. Otherwise they must be
    /// https://, or http:// to 127.0.0.0/8, ::1 or localhost.
    #[arg(long, env = "JWKS_ALLOW_INSECURE_HTTP", action = ArgAction::Set, default_value = "false")]
    pub jwks_allow_insecure_http: bool,
    /// Required `iss` claim.
    #[arg(long, env = "JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Accepted `aud` values, comma separated.
    #[arg(long, env = "JWT_AUDIENCE", value_delimiter = ',')]
    pub jwt_audience: Vec<String>,
    /// Allowed signing algorithms, comma separated.
    #[arg(
        long,
        env = "JWT_ALGORITHMS",
        value_delimiter = ',',
        default_value = "EdDSA,ES256,RS256,PS256,ES512"
    )]
    pub jwt_algorithms: Vec<String>,
    /// Clock slack for `exp`, `nbf` and `iat`, in seconds; at most 300.
    #[arg(long, env = "JWT_LEEWAY_SECS", default_value_t = 30)]
    pub jwt_leeway_secs: u64,
    /// Key set refresh interval when the issuer sends no Cache-Control max-age.
    #[arg(long, env = "JWKS_REFRESH_SECS", default_value_t = 300)]
    pub jwks_refresh_secs: u64,
    /// At most one key-set fetch per this many seconds is caused by unknown key ids; also the
    /// longest a token from a newly published key waits (or is refused) before it is fetched.
    #[arg(long, env = "JWKS_UNKNOWN_KID_COOLDOWN_SECS", default_value_t = 3)]
    pub jwks_unknown_kid_cooldown_secs: u64,
    /// How long the last good key set keeps serving while the issuer fails, counted from when
    /// its refresh was due (or from the first failed fetch, if later): a healthy issuer never
    /// makes keys unavailable. 0: no grace once a due refresh has failed.
    #[arg(long, env = "JWKS_STALE_IF_ERROR_SECS", default_value_t = 86_400)]
    pub jwks_stale_if_error_secs: u64,
    /// The most keys a fetched key set may hold; a larger one is refused whole and the last
    /// good set keeps serving. Better Auth publishes one key more than its grace period over
    /// its rotation interval (721 rotating hourly with its default 30-day grace). The
    /// response may hold 1 KiB a key (at least 64 KiB).
    #[arg(long, env = "JWKS_MAX_KEYS", default_value_t = JwksConfig::DEFAULT_MAX_KEYS)]
    pub jwks_max_keys: usize,
    /// Number of verified tokens remembered.
    #[arg(long, env = "TOKEN_CACHE_CAPACITY", default_value_t = 100_000)]
    pub token_cache_capacity: u64,
    /// Identity signing keys, `key_id:secret[,key_id:secret...]`; the first one signs.
    #[arg(
        long,
        env = "IDENTITY_KEYS",
        value_name = "IDENTITY_KEYS",
        hide_env_values = true
    )]
    pub identity_keys: Secret,
    /// The audience signed into every identity credential: the one tasks-service (its
    /// IDENTITY_AUDIENCE) that may accept it.
    #[arg(long, env = "IDENTITY_AUDIENCE", default_value = Audience::DEFAULT)]
    pub identity_audience: String,
    /// How often to prove that tasks-service accepts the gateway's credential (a signed GET
    /// /whoami), in seconds; while it refuses it, /readyz says not ready. 0: never.
    #[arg(long, env = "IDENTITY_PROBE_SECS", default_value_t = 10)]
    pub identity_probe_secs: u64,
    /// Better Auth's PostgreSQL database, where sign-outs and bans are recorded
    /// (deploy/better-auth/revocation.sql): with it, revoked sessions and users are refused
    /// within a second. Unset: a token stays valid until it expires.
    #[arg(
        long,
        env = "REVOCATION_DATABASE_URL",
        value_name = "REVOCATION_DATABASE_URL",
        hide_env_values = true
    )]
    pub revocation_database_url: Option<Secret>,
    /// PEM file of CA certificates trusted instead of the webpki roots for TLS to
    /// REVOCATION_DATABASE_URL's server (a private CA); needs sslmode=require (or verify-full)
    /// in that URL.
    #[arg(
        long,
        env = "REVOCATION_DATABASE_CA_FILE",
        value_name = "REVOCATION_DATABASE_CA_FILE"
    )]
    pub revocation_database_ca_file: Option<std::path::PathBuf>,
    /// The longest an API token lives, in seconds (Better Auth's JWT expiration): revocations
    /// are remembered this long plus JWT_LEEWAY_SECS, and a token whose life (`iat` to
    /// `exp`) is longer than that, or that has no `iat`, is refused. At most 30 days.
    #[arg(long, env = "REVOCATION_TOKEN_LIFETIME_SECS", default_value_t = 900)]
    pub revocation_token_lifetime_secs: u64,
    /// How long the gateway keeps serving after losing the revocation feed, in seconds,
    /// before protected requests get 503.
    #[arg(long, env = "REVOCATION_STALE_SECS", default_value_t = 30)]
    pub revocation_stale_secs: u64,
    /// With revocation on, refuse tokens without a `sid` claim (the session they were issued
    /// for): signing out cannot end them. false: serve them, counted in
    /// gateway_revocation_tokens_without_session_total.
    #[arg(long, env = "REVOCATION_REQUIRE_SID", action = ArgAction::Set, default_value = "true")]
    pub revocation_require_sid: bool,
    /// Public path prefixes and their upstreams, `prefix=http://host:port`, comma separated.
    #[arg(
        long,
        env = "PUBLIC_ROUTES",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub public_routes: Vec<String>,
    /// Browser origins allowed to call the API with credentials, comma separated.
    #[arg(long, env = "CORS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub cors_allowed_origins: Vec<String>,
    /// Addresses and networks (`10.0.0.0/8`, `fd00::/8`, `192.0.2.1`) of the proxies in front
    /// of the gateway, comma separated: only from these is a client's `X-Forwarded-For`
    /// believed (back to the first address not among them), which upstreams such as Better
    /// Auth read as the client's address. Unset: none, right when clients reach the gateway
    /// directly; behind an ingress or load balancer, list it, or every client shares its
    /// address (and Better Auth's per-address rate limits). Networks wider than a `/8` are refused,
    /// and in IPv6 wider than a `/32` outside `fc00::/7` and `fe80::/10`: they would let any
    /// client choose its address.
    #[arg(long, env = "TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,
    /// Pass the client's credentials (its `Authorization` and `Cookie` headers) to protected
    /// upstreams. Off: they see the signed identity alone, never a token or a session cookie.
    #[arg(long, env = "FORWARD_AUTHORIZATION", action = ArgAction::Set, default_value = "false")]
    pub forward_authorization: bool,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: u64,
    /// Largest request head (request line and headers) accepted, in bytes.
    #[arg(long, env = "MAX_HEADER_BYTES", default_value_t = 16 * 1024)]
    pub max_header_bytes: usize,
    /// Seconds a client has to send a complete request head; for HTTP/2, to send its first
    /// request, and to finish after the gateway has closed an idle connection (one shed to
    /// make room under `MAX_CONNECTIONS` gets half a second).
    #[arg(long, env = "HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,
    /// Seconds a client connection may stay open with no request in flight (HTTP/2 and the
    /// lean HTTP/1.1 engine; hyper's HTTP/1.1 counts idle time against the header-read timeout).
    #[arg(long, env = "IDLE_TIMEOUT_SECS", default_value_t = 75)]
    pub idle_timeout_secs: u64,
    /// Seconds to wait for an upstream's response headers, and the longest an answer may
    /// make no progress (the upstream giving none of its body, or the client taking none)
    /// before its connection is closed; on HTTP/2, before its stream is reset (a client
    /// granting the stream less than 16 KiB of window in that time).
    #[arg(long, env = "UPSTREAM_TIMEOUT_SECS", default_value_t = 30)]
    pub upstream_timeout_secs: u64,
    /// What serves HTTP/1.1 connections: `lean` (the gateway's own engine for the common
    /// case, handing anything else to hyper) or `hyper` (hyper for everything).
    #[arg(
        long,
        env = "HTTP1_ENGINE",
        value_enum,
        default_value = "lean",
        hide_possible_values = true
    )]
    pub http1_engine: Http1Engine,
    /// Tokio worker threads; 0 means one per CPU available to the process (affinity and
    /// cgroup quota included), as nginx's `worker_processes auto`. With one, the runtime is
    /// single-threaded. In the default layout they cost nothing while the load fits on one:
    /// it gathers there.
    #[arg(long, env = "WORKER_THREADS", default_value_t = 0)]
    pub worker_threads: usize,
    /// How two or more workers share the load (with one, every layout is the same
    /// single-threaded runtime): `balanced` (one single-threaded runtime and `SO_REUSEPORT`
    /// listener per worker, as nginx's workers run, with connections moved between workers
    /// between requests: all to one while the load fits there, the way a sidecar beside its
    /// service costs least, spread when that one is saturated), `per-core` (the same without
    /// moves: a connection stays on the worker that accepted it), `shared` (one work-stealing
    /// runtime, one listener) or `per-core-shared-accept` (per-core, one listener). See
    /// `workers.rs`.
    #[arg(
        long,
        env = "RUNTIME_LAYOUT",
        value_enum,
        default_value = "balanced",
        hide_possible_values = true
    )]
    pub runtime_layout: RuntimeLayout,
    /// Requests handled at once (the `gateway_in_flight_requests` gauge); beyond it a request
    /// bound upstream gets 503 at once. `/healthz` and `/readyz` count and are never refused.
    #[arg(long, env = "MAX_CONCURRENT_REQUESTS", default_value_t = 1024)]
    pub max_concurrent_requests: usize,
    /// Client connections open at once on the public listener. At the cap, the connection
    /// idle between requests the longest is closed to make room; if none is idle, the new
    /// connection is closed unanswered. Unset: half the open-file limit (raised to the hard
    /// limit at start), less a reserve, and at most one per 64 KiB of the container's memory
    /// limit less 64 MiB; logged at start.
    #[arg(long, env = "MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Seconds in-flight requests get to finish after SIGTERM or SIGINT.
    #[arg(long, env = "SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,
    /// Seconds to keep accepting after SIGTERM or SIGINT, with `/readyz` saying not ready,
    /// before draining: load balancers (Kubernetes' endpoints, kube-proxy, an ingress) take a
    /// few seconds to stop sending a stopping pod new connections, which would be refused
    /// meanwhile. At most 300.
    #[arg(long, env = "SHUTDOWN_DELAY_SECS", default_value_t = 0)]
    pub shutdown_delay_secs: u64,
    /// `json` or `pretty`.
    #[arg(long, env = "LOG_FORMAT", default_value = "pretty")]
    pub log_format: LogFormat,
    /// Log filter, e.g. `info,gateway=debug` (a bare word must be a level or one of this
    /// project's crates; anything else stops the gateway at start: write `hyper=trace`).
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub rust_log: String,
    /// Print `NAME<TAB>required|optional<TAB>default` for every variable read, then exit.
    #[arg(long)]
    pub list_env: bool,
}

/// Which engine serves HTTP/1.1 connections (HTTP/2 is always hyper's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Http1Engine {
    /// `http1.rs`, with hyper for requests outside its subset.
    Lean,
    /// hyper for every request.
    Hyper,
}

/// How the worker threads share connections (issue 17; `workers.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RuntimeLayout {
    /// As `PerCore`, with connections moved between workers by load, between requests.
    Balanced,
    /// One current-thread runtime per worker, each accepting on its own listener.
    PerCore,
    /// One multi-threaded (work-stealing) runtime accepting on one listener.
    Shared,
    /// One current-thread runtime per worker, all accepting from one shared listener.
    PerCoreSharedAccept,
}

/// A secret setting: `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself; call only where it is consumed.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(raw: &str) -> Self {
        Self(raw.to_owned())
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Ok(raw.into())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A setting that cannot be used; the message names the variable to fix.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

fn invalid(variable: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        problem: problem.into(),
    }
}

/// The configuration after validation: typed, complete and consistent.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    /// The operators' listener (`/metrics`, `/healthz`).
    pub admin_listen: SocketAddr,
    pub tasks_service: Upstream,
    pub public_routes: Vec<PublicRoute>,
    pub auth: AuthConfig,
    pub identity_keys: KeyRing,
    pub identity_audience: Audience,
    /// Zero: no probe.
    pub identity_probe_interval: Duration,
    pub cors_allowed_origins: Vec<String>,
    pub trusted_proxies: TrustedProxies,
    pub forward_authorization: bool,
    pub limits: Limits,
    pub http1_engine: Http1Engine,
    /// At least 1.
    pub worker_threads: usize,
    pub runtime_layout: RuntimeLayout,
    /// Variables whose http:// URL to a non-loopback host `JWKS_ALLOW_INSECURE_HTTP` let
    /// through; `startup.rs` warns about each.
    pub insecure_http: Vec<&'static str>,
}

/// What one client may ask of the gateway, and how long things may take.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: u64,
    pub max_header_bytes: usize,
    pub header_read_timeout: Duration,
    /// How long a client connection may stay open with no request in flight.
    pub idle_timeout: Duration,
    pub upstream_timeout: Duration,
    pub max_concurrent_requests: usize,
    /// Client connections open at once (`connection/cap.rs` says what happens at it).
    pub max_connections: usize,
    pub shutdown_grace: Duration,
    /// How long the gateway keeps accepting, not ready, after it is asked to stop.
    pub shutdown_delay: Duration,
}

impl Limits {
    /// How many bytes a connection may buffer while reading a head: well above
    /// `max_header_bytes`, because hyper refuses a head larger than its read buffer with a bare
    /// 431 and the request path should answer the usual case with a JSON body. hyper's HTTP/1
    /// buffer cannot be smaller than 8 KiB.
    pub fn read_buffer_size(&self) -> usize {
        (self.max_header_bytes * 2).max(16 * 1024)
    }
}

impl Config {
    /// Checks every setting and derives the typed ones, naming the variable of the first
    /// that cannot be used. Never echoes a secret.
    pub fn validate(&self) -> Result<Settings, ConfigError> {
        let tasks_service = Upstream::parse(&self.tasks_service_url)
            .map_err(|problem| invalid("TASKS_SERVICE_URL", problem))?;
        let public_routes = self
            .public_routes
            .iter()
            .filter(|entry| !entry.trim().is_empty())
            .map(|entry| PublicRoute::parse(entry.trim()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|problem| invalid("PUBLIC_ROUTES", problem))?;
        let identity_keys = self
            .identity_keys
            .expose()
            .parse::<KeyRing>()
            .map_err(|error| invalid("IDENTITY_KEYS", error.to_string()))?;
        let identity_audience = Audience::parse(&self.identity_audience).ok_or_else(|| {
            invalid(
                "IDENTITY_AUDIENCE",
                "must be 1 to 128 of A-Z a-z 0-9 . _ : / -",
            )
        })?;
        let cors_allowed_origins = self.cors_origins()?;
        let trusted_proxies =
            TrustedProxies::parse(self.trusted_proxies.iter().map(String::as_str))
                .map_err(|problem| invalid("TRUSTED_PROXIES", problem))?;
        let limits = self.limits()?;
        if self.admin_listen == self.listen && self.listen.port() != 0 {
            return Err(invalid("ADMIN_LISTEN", "must differ from GATEWAY_LISTEN"));
        }
        let (auth, insecure_http) = self.auth_config()?;
        Ok(Settings {
            listen: self.listen,
            admin_listen: self.admin_listen,
            tasks_service,
            public_routes,
            auth,
            identity_keys,
            identity_audience,
            // 0 turns the probe off; any other value is bounded as every duration is.
            identity_probe_interval: at_most_a_day(
                "IDENTITY_PROBE_SECS",
                self.identity_probe_secs,
            )?,
            cors_allowed_origins,
            trusted_proxies,
            forward_authorization: self.forward_authorization,
            limits,
            http1_engine: self.http1_engine,
            worker_threads: match self.worker_threads {
                0 => std::thread::available_parallelism().map_or(1, usize::from),
                threads => threads,
            },
            runtime_layout: self.runtime_layout,
            insecure_http,
        })
    }

    /// The token settings, and the variables let through by `JWKS_ALLOW_INSECURE_HTTP`.
    fn auth_config(&self) -> Result<(AuthConfig, Vec<&'static str>), ConfigError> {
        let base = self
            .better_auth_url
            .as_deref()
            .map(|url| url.trim().trim_end_matches('/'))
            .filter(|url| !url.is_empty());
        if let Some(base) = base {
            check_http_url("BETTER_AUTH_URL", base, Credentials::Refused)?;
        }
        let missing = |variable: &'static str| {
            invalid(
                variable,
                "not set; set BETTER_AUTH_URL, or all of JWKS_URL, JWT_ISSUER and JWT_AUDIENCE",
            )
        };
        // Each URL is judged under the variable the operator set, which names what to fix.
        let (jwks_url, jwks_variable) = match (&self.jwks_url, base) {
            (Some(url), _) => (url.trim().to_owned(), "JWKS_URL"),
            (None, Some(base)) => (JwksConfig::better_auth_url(base), "BETTER_AUTH_URL"),
            (None, None) => return Err(missing("JWKS_URL")),
        };
        check_http_url(jwks_variable, &jwks_url, Credentials::Allowed)?;
        let (issuer, issuer_variable) = match (&self.jwt_issuer, base) {
            (Some(issuer), _) if !issuer.trim().is_empty() => {
                (issuer.trim().to_owned(), "JWT_ISSUER")
            }
            (Some(_), _) => return Err(invalid("JWT_ISSUER", "is empty")),
            (None, Some(base)) => (base.to_owned(), "BETTER_AUTH_URL"),
            (None, None) => return Err(missing("JWT_ISSUER")),
        };
        let mut insecure_http = Vec::new();
        for (variable, url) in [(jwks_variable, &jwks_url), (issuer_variable, &issuer)] {
            if transport::needs_opt_in(url) && !insecure_http.contains(&variable) {
                if !self.jwks_allow_insecure_http {
                    return Err(invalid(variable, transport::refusal(url)));
                }
                insecure_http.push(variable);
            }
        }
        let mut audiences: Vec<String> = self
            .jwt_audience
            .iter()
            .map(|aud| aud.trim().to_owned())
            .filter(|aud| !aud.is_empty())
            .collect();
        if audiences.is_empty() {
            audiences.push(base.ok_or_else(|| missing("JWT_AUDIENCE"))?.to_owned());
        }
        let algorithms = self
            .jwt_algorithms
            .iter()
            .map(|name| parse_algorithm(name.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        if algorithms.is_empty() {
            return Err(invalid("JWT_ALGORITHMS", "lists no algorithm"));
        }
        let refresh = positive_secs("JWKS_REFRESH_SECS", self.jwks_refresh_secs)?;
        let leeway = self.leeway()?;
        let defaults = JwksConfig::for_url(jwks_url);
        let auth = AuthConfig {
            jwks: JwksConfig {
                refresh_interval: refresh,
                // Keep the max-age bounds around a refresh interval set outside them.
                min_refresh_interval: defaults.min_refresh_interval.min(refresh),
                max_refresh_interval: defaults.max_refresh_interval.max(refresh),
                // Zero would let every unknown kid cause a fetch: the issuer unprotected.
                unknown_kid_cooldown: positive_secs(
                    "JWKS_UNKNOWN_KID_COOLDOWN_SECS",
                    self.jwks_unknown_kid_cooldown_secs,
                )?,
                // Any value, 0 included (see its doc comment and `jwks.rs`).
                stale_if_error: Duration::from_secs(self.jwks_stale_if_error_secs),
                max_keys: self.jwks_max_keys()?,
                max_response_bytes: JwksConfig::response_bytes_for(self.jwks_max_keys),
                ..defaults
            },
            issuer,
            audiences,
            algorithms,
            leeway,
            token_cache_capacity: self.token_cache_capacity,
            revocation: self.revocation_config(leeway)?,
        };
        Ok((auth, insecure_http))
    }

    /// `JWKS_MAX_KEYS`, bounded: at least one key, and at most 100,000 (a 100 MB response).
    fn jwks_max_keys(&self) -> Result<usize, ConfigError> {
        match self.jwks_max_keys {
            1..=100_000 => Ok(self.jwks_max_keys),
            _ => Err(invalid("JWKS_MAX_KEYS", "must be between 1 and 100000")),
        }
    }

    /// `JWT_LEEWAY_SECS`, bounded: the spec promises a small leeway and tasks-service caps its
    /// own clock skew at the same 300 s; beyond it, a long-expired token would pass as late,
    /// and the revocation window (lifetime plus leeway) could overflow.
    fn leeway(&self) -> Result<Duration, ConfigError> {
        if self.jwt_leeway_secs > MAX_LEEWAY_SECS {
            return Err(invalid(
                "JWT_LEEWAY_SECS",
                format!("must be at most {MAX_LEEWAY_SECS} seconds"),
            ));
        }
        Ok(Duration::from_secs(self.jwt_leeway_secs))
    }

    fn revocation_config(&self, leeway: Duration) -> Result<Option<RevocationConfig>, ConfigError> {
        let Some(url) = &self.revocation_database_url else {
            return Ok(None);
        };
        let url = url.expose().trim();
        // Set but blank is a slip (an unfilled secret, a stray `=`), not a choice: silently
        // running without revocation would keep signed-out tokens valid. Off is asked for by
        // leaving the variable unset, as JWT_ISSUER's empty value is refused too.
        if url.is_empty() {
            return Err(invalid(
                "REVOCATION_DATABASE_URL",
                "is empty; unset it to run without revocation",
            ));
        }
        // Never echo the URL: it may hold a password.
        let pg = postgres_tls::parse_url(url)
            .map_err(|problem| invalid("REVOCATION_DATABASE_URL", problem))?;
        let cas = match &self.revocation_database_ca_file {
            // Fail closed: naming a CA file says the operator expects TLS.
            Some(_) if !postgres_tls::wants_tls(&pg) => {
                return Err(invalid(
                    "REVOCATION_DATABASE_CA_FILE",
                    "is set, but REVOCATION_DATABASE_URL does not ask for TLS: add \
                     sslmode=require (or verify-full) to it, or unset REVOCATION_DATABASE_CA_FILE",
                ))
            }
            Some(path) => Some(
                TrustedCas::from_pem_file(path)
                    .map_err(|problem| invalid("REVOCATION_DATABASE_CA_FILE", problem))?,
            ),
            None => None,
        };
        let tls = Tls::for_config(&pg, cas.as_ref())
            .map_err(|e| invalid("REVOCATION_DATABASE_URL", e.to_string()))?;
        let lifetime = self.revocation_token_lifetime_secs;
        if !(1..=MAX_TOKEN_LIFETIME_SECS).contains(&lifetime) {
            return Err(invalid(
                "REVOCATION_TOKEN_LIFETIME_SECS",
                format!("must be between 1 and {MAX_TOKEN_LIFETIME_SECS} seconds (30 days)"),
            ));
        }
        // Bounded above, so the sum cannot overflow.
        let window = Duration::from_secs(lifetime) + leeway;
        Ok(Some(RevocationConfig {
            database_url: url.to_owned(),
            window,
            leeway,
            stale_after: at_most_a_day("REVOCATION_STALE_SECS", self.revocation_stale_secs)?,
            require_session: self.revocation_require_sid,
            tls,
        }))
    }

    fn cors_origins(&self) -> Result<Vec<String>, ConfigError> {
        let mut origins = Vec::new();
        for origin in self.cors_allowed_origins.iter().map(|o| o.trim()) {
            if origin.is_empty() {
                continue;
            }
            let well_formed = (origin.starts_with("http://") || origin.starts_with("https://"))
                && !origin.ends_with('/')
                && http::HeaderValue::from_str(origin).is_ok()
                && origin
                    .parse::<http::Uri>()
                    .is_ok_and(|uri| uri.path_and_query().is_none_or(|pq| pq.as_str() == "/"));
            if !well_formed {
                return Err(invalid(
                    "CORS_ALLOWED_ORIGINS",
                    format!("{origin:?} is not an origin like https://app.example.com"),
                ));
            }
            origins.push(origin.to_owned());
        }
        Ok(origins)
    }

    fn limits(&self) -> Result<Limits, ConfigError> {
        if !(1024..=MAX_HEADER_BYTES).contains(&self.max_header_bytes) {
            return Err(invalid(
                "MAX_HEADER_BYTES",
                format!("must be between 1024 and {MAX_HEADER_BYTES}"),
            ));
        }
        if self.max_body_bytes > MAX_BODY_BYTES {
            return Err(invalid(
                "MAX_BODY_BYTES",
                format!(
                    "must be at most {MAX_BODY_BYTES} (a signed body is held whole, once per \
                     request in flight)"
                ),
            ));
        }
        if self.max_concurrent_requests == 0 {
            return Err(invalid("MAX_CONCURRENT_REQUESTS", "must be at least 1"));
        }
        if self.shutdown_delay_secs > MAX_SHUTDOWN_DELAY_SECS {
            return Err(invalid(
                "SHUTDOWN_DELAY_SECS",
                format!("must be at most {MAX_SHUTDOWN_DELAY_SECS}"),
            ));
        }
        let max_connections =
            max_connections(self.max_connections, open_file_limit(), memory_limit())?;
        Ok(Limits {
            max_body_bytes: self.max_body_bytes,
            max_header_bytes: self.max_header_bytes,
            header_read_timeout: positive_secs(
                "HEADER_READ_TIMEOUT_SECS",
                self.header_read_timeout_secs,
            )?,
            idle_timeout: positive_secs("IDLE_TIMEOUT_SECS", self.idle_timeout_secs)?,
            upstream_timeout: positive_secs("UPSTREAM_TIMEOUT_SECS", self.upstream_timeout_secs)?,
            max_concurrent_requests: self.max_concurrent_requests,
            max_connections,
            shutdown_grace: at_most_a_day("SHUTDOWN_GRACE_SECS", self.shutdown_grace_secs)?,
            shutdown_delay: Duration::from_secs(self.shutdown_delay_secs),
        })
    }
}

/// The largest `SHUTDOWN_DELAY_SECS`: a few seconds is what load balancers need; minutes
/// would be a typo that holds every rollout up.
const MAX_SHUTDOWN_DELAY_SECS: u64 = 300;

/// The longest any duration setting may be: a day. More is a typo, and the request path adds
/// these to the clock, where one near `u64::MAX` seconds would overflow and panic.
const MAX_DURATION_SECS: u64 = 86_400;

/// The largest `REVOCATION_TOKEN_LIFETIME_SECS`: 30 days, beyond any session a token stands
/// for (Better Auth's JWTs live 15 minutes by default; its sessions 7 days).
const MAX_TOKEN_LIFETIME_SECS: u64 = 30 * 86_400;

/// The largest `MAX_HEADER_BYTES`: 1 MiB (a connection's read buffer is twice it).
const MAX_HEADER_BYTES: usize = 1024 * 1024;

/// The largest `MAX_BODY_BYTES`: 64 MiB, held whole for every signed request in flight.
const MAX_BODY_BYTES: u64 = 64 * 1024 * 1024;

/// The largest `JWT_LEEWAY_SECS`: the bound of tasks-service's `IDENTITY_MAX_SKEW_SECS`.
const MAX_LEEWAY_SECS: u64 = 300;

/// Open files kept aside from client connections and their upstream sockets: the listeners,
/// the shared upstream pool for HTTP/2, the JWKS and revocation connections, logs.
const RESERVED_FILES: u64 = 256;

/// The process's open-file limit (the soft one, which `accept` runs into); `None` when there
/// is none.
fn open_file_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// Raises the soft open-file limit to the hard one, as nginx's `worker_rlimit_nofile` and Go's
/// runtime do: the soft limit is often a login shell's or systemd's 1024, where the default
/// `MAX_CONNECTIONS` would be 384. Call before [`Config::validate`], which reads the limit.
/// Returns the limit now in force (`None`: none).
pub fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        // Refused (a platform whose hard limit exceeds what it lets a process set): the soft
        // limit stays, and the default follows it.
        let _ = setrlimit(Resource::Nofile, raised);
    }
    open_file_limit()
}

/// The memory the process's cgroup (its container) may use, if it has a limit: cgroup v2's
/// `memory.max`, else v1's `memory.limit_in_bytes` (which says "none" with a huge number).
fn memory_limit() -> Option<u64> {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()?
            .trim()
            .parse::<u64>()
            .ok()
    };
    read("/sys/fs/cgroup/memory.max")
        .or_else(|| read("/sys/fs/cgroup/memory/memory.limit_in_bytes").filter(|&n| n < 1 << 62))
}

/// Memory budgeted per client connection for the default `MAX_CONNECTIONS` under a memory
/// limit: an idle connection costs ~9 KiB on the lean engine but 50–70 KB on hyper's (HTTP/2
/// with prior knowledge, or a request the lean engine hands over; `specs/spec.md`), and a busy
/// one its buffers, its upstream connection and both sockets' kernel buffers, which a
/// container's limit counts too. Without this bound a container's open-file limit (often
/// 1,048,576) made the default half a million connections, and a flood of them an
/// out-of-memory kill long before the cap would shed.
const MEMORY_PER_CONNECTION: u64 = 64 * 1024;

/// Memory kept aside from connections under a memory limit, for everything else the process
/// holds (the token cache, the revocation set, the runtime): 64 MiB, or half a smaller limit.
const MEMORY_RESERVE: u64 = 64 * 1024 * 1024;

/// `MAX_CONNECTIONS`, or its default under `file_limit` and `memory_limit`: each client
/// connection holds its socket and, while it uses one, a socket to its upstream (the HTTP/1.1
/// engines keep one per connection), so half of what the reserve leaves, and no more than
/// the memory limit holds at [`MEMORY_PER_CONNECTION`] after [`MEMORY_RESERVE`]. A set value
/// above the file limit
/// could never be reached: `accept` would fail first, with no policy, so it is refused; a set
/// value is not held to the memory budget, which is only an estimate.
fn max_connections(
    set: Option<usize>,
    file_limit: Option<u64>,
    memory_limit: Option<u64>,
) -> Result<usize, ConfigError> {
    let as_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    let by_memory = memory_limit.map_or(usize::MAX, |bytes| {
        let for_connections = bytes - MEMORY_RESERVE.min(bytes / 2);
        as_usize((for_connections / MEMORY_PER_CONNECTION).max(1))
    });
    let default = |by_files: usize| Ok(by_files.min(by_memory));
    match (set, file_limit) {
        (Some(0), _) => Err(invalid("MAX_CONNECTIONS", "must be at least 1")),
        (Some(set), Some(limit)) if set as u64 > limit => Err(invalid(
            "MAX_CONNECTIONS",
            format!(
                "is more than the open-file limit ({limit}); raise it (ulimit -n, LimitNOFILE) \
                 or lower MAX_CONNECTIONS"
            ),
        )),
        (Some(set), _) => Ok(set),
        (None, Some(limit)) => default(as_usize((limit.saturating_sub(RESERVED_FILES) / 2).max(1))),
        // No file limit: still a bound, so that memory is.
        (None, None) => default(100_000),
    }
}

/// A duration setting of 1 second to a day.
fn positive_secs(variable: &'static str, secs: u64) -> Result<Duration, ConfigError> {
    if secs == 0 {
        return Err(invalid(variable, "must be at least 1 second"));
    }
    at_most_a_day(variable, secs)
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config").finish_non_exhaustive()
    }
}

/// A duration setting of at most a day ([`MAX_DURATION_SECS`]).
fn at_most_a_day(variable: &'static str, secs: u64) -> Result<Duration, ConfigError> {
    if secs > MAX_DURATION_SECS {
        return Err(invalid(
            variable,
            format!("must be at most {MAX_DURATION_SECS} seconds (a day)"),
        ));
    }
    Ok(Duration::from_secs(secs))
}

fn check_http_url(
    variable: &'static str,
    url: &str,
    credentials: Credentials,
) -> Result<(), ConfigError> {
    // Masked: the value may carry a `user:password@` that does not belong in a log.
    let shown = || loggable_url(url);
    let uri = url.parse::<http::Uri>().ok().filter(|uri| {
        matches!(uri.scheme_str(), Some("http" | "https")) && uri.authority().is_some()
    });
    let Some(uri) = uri else {
        return Err(invalid(
            variable,
            format!("{:?} is not an http(s) URL", shown()),
        ));
    };
    // The URL is fetched by reqwest, which reads it with the `url` crate: where that reads
    // another host (or none), the value is not what it looks like (`https://gw:ab/cd@auth`
    // is host `gw` with port `ab` to `http::Uri`, an error to `url`), so it is refused here
    // rather than failing, password and all, at every fetch.
    let parsed = reqwest::Url::parse(url).ok();
    let same_host = parsed.as_ref().is_some_and(|parsed| {
        parsed
            .host_str()
            .zip(uri.host())
            .is_some_and(|(a, b)| same_host_text(a, b))
    });
    if !same_host {
        return Err(invalid(
            variable,
            format!(
                "{:?} does not read as one URL: the parsers disagree on its host (percent-encode \
                 any '/', '?', '#' or '@' in a user or password)",
                shown()
            ),
        ));
    }
    let has_credentials =
        parsed.is_some_and(|parsed| !parsed.username().is_empty() || parsed.password().is_some());
    if has_credentials && credentials == Credentials::Refused {
        return Err(invalid(
            variable,
            format!(
                "{:?} carries a user or password (user:password@); it names the issuer and \
                 the audience, which tokens carry in the clear: give the URL without them \
                 (JWKS_URL may carry them)",
                shown()
            ),
        ));
    }
    Ok(())
}

/// Whether two readings of a URL's host name the same host: the same text in any letter
/// case, or the same address however written (`url` writes `[0:0::1]` as `[::1]`; `http::Uri`
/// keeps the text). Shorthand IPv4 (`127.1`), which only `url` expands, is refused.
fn same_host_text(a: &str, b: &str) -> bool {
    let ip = |host: &str| {
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .ok()
    };
    a.eq_ignore_ascii_case(b) || ip(a).is_some_and(|a| Some(a) == ip(b))
}

/// Whether a URL setting may carry a `user:password@`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Credentials {
    Allowed,
    Refused,
}

fn parse_algorithm(name: &str) -> Result<Algorithm, ConfigError> {
    Ok(match name {
        "EdDSA" | "Ed25519" => Algorithm::EdDsa,
        "ES256" => Algorithm::Es256,
        "ES512" => Algorithm::Es512,
        "RS256" => Algorithm::Rs256,
        "PS256" => Algorithm::Ps256,
        other => {
            return Err(invalid(
                "JWT_ALGORITHMS",
                format!("{other:?} is not one of EdDSA, ES256, ES512, RS256, PS256"),
            ))
        }
    })
}

#[cfg(test)]
mod tests;
