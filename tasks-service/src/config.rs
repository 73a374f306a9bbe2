//! Configuration: one clap struct, every field readable from the environment (so `--help`
//! names the variable), validated once at start with messages naming the variable to fix.
//! `--list-env` prints the variables from clap's own definition of this struct.

use std::{fmt, net::SocketAddr, path::PathBuf, str::FromStr, time::Duration};

use clap::{CommandFactory, Parser};
use proto_shared::{telemetry::LogFormat, Audience, KeyRing, Verifier, MAX_SOCKET_PATH};
use tokio_postgres::config::SslMode;

use crate::db::{DatabaseUrl, DbSettings, TrustedCas};

/// Everything the binary reads from flags or the environment.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "tasks-service",
    version,
    about = "The task API on PostgreSQL; trusts only identities signed by the gateway."
)]
pub struct Config {
    /// Address to listen on.
    #[arg(
        long,
        env = "TASKS_LISTEN",
        value_name = "TASKS_LISTEN",
        default_value = "127.0.0.1:8081"
    )]
    pub listen: SocketAddr,

    /// Also listen on this Unix domain socket (mode 0660), for a gateway sidecar in the same
    /// pod: its TASKS_SERVICE_URL=unix:<this path>, the socket in a volume both mount.
    #[arg(long, env = "TASKS_SOCKET", value_name = "TASKS_SOCKET")]
    pub socket: Option<PathBuf>,

    /// PostgreSQL URL; `sslmode=require` (or verify-full) turns on TLS, verified against the
    /// webpki roots or DATABASE_CA_FILE; to a host that is not loopback it must name its
    /// `sslmode` (`disable` for plain text on a private network).
    #[arg(
        long,
        env = "DATABASE_URL",
        value_name = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/tasks",
        hide_env_values = true
    )]
    pub database_url: DatabaseUrl,

    /// PEM file of CA certificates trusted instead of the webpki roots for TLS to PostgreSQL
    /// (a server with a private CA); needs `sslmode=require` (or verify-full) in DATABASE_URL.
    #[arg(long, env = "DATABASE_CA_FILE", value_name = "DATABASE_CA_FILE")]
    pub database_ca_file: Option<PathBuf>,

    /// Accepted identity keys: `key_id:secret[,key_id:secret...]`, secrets of 32 bytes or more.
    #[arg(
        long,
        env = "IDENTITY_KEYS",
        value_name = "IDENTITY_KEYS",
        hide_env_values = true
    )]
    pub identity_keys: IdentityKeys,

    /// How far a credential's timestamp may be from this server's clock, in seconds.
    #[arg(
        long,
        env = "IDENTITY_MAX_SKEW_SECS",
        value_name = "IDENTITY_MAX_SKEW_SECS",
        default_value_t = 30
    )]
    pub identity_max_skew_secs: u32,

    /// The audience this service accepts credentials for; signers (the gateway, in-cluster
    /// callers) must name the same one. Give each replica its own (e.g. tasks-service/POD)
    /// when its gateway sidecar signs for it alone.
    #[arg(
        long,
        env = "IDENTITY_AUDIENCE",
        value_name = "IDENTITY_AUDIENCE",
        default_value = Audience::DEFAULT
    )]
    pub identity_audience: String,

    /// Also accept v1 credentials (no body digest, audience or single use), counted in
    /// identity_v1_accepted_total; only while signers are being upgraded to v2.
    #[arg(
        long,
        env = "IDENTITY_ACCEPT_V1",
        value_name = "IDENTITY_ACCEPT_V1",
        action = clap::ArgAction::Set,
        default_value = "false"
    )]
    pub identity_accept_v1: bool,

    /// Most credentials remembered at once to refuse their replay (about 70 bytes each);
    /// when full, new credentials are refused with 503 until old ones expire.
    #[arg(
        long,
        env = "IDENTITY_REPLAY_CAPACITY",
        value_name = "IDENTITY_REPLAY_CAPACITY",
        default_value_t = Verifier::DEFAULT_REPLAY_CAPACITY
    )]
    pub identity_replay_capacity: usize,

    /// Most of those credentials any one user may hold at once; past it, that user's
    /// requests are refused with 429 until its old ones expire, and no one else's are.
    /// Default: a hundredth of IDENTITY_REPLAY_CAPACITY, at least 100 (or all of a smaller
    /// one).
    #[arg(
        long,
        env = "IDENTITY_REPLAY_PER_USER",
        value_name = "IDENTITY_REPLAY_PER_USER"
    )]
    pub identity_replay_per_user: Option<usize>,

    /// Most database connections held at once.
    #[arg(
        long,
        env = "DB_POOL_SIZE",
        value_name = "DB_POOL_SIZE",
        default_value_t = 16
    )]
    pub db_pool_size: usize,

    /// Longest wait for a new database connection, in milliseconds.
    #[arg(
        long,
        env = "DB_CONNECT_TIMEOUT_MS",
        value_name = "DB_CONNECT_TIMEOUT_MS",
        default_value_t = 2000
    )]
    pub db_connect_timeout_ms: u64,

    /// Longest wait for a free pooled connection, in milliseconds.
    #[arg(
        long,
        env = "DB_ACQUIRE_TIMEOUT_MS",
        value_name = "DB_ACQUIRE_TIMEOUT_MS",
        default_value_t = 2000
    )]
    pub db_acquire_timeout_ms: u64,

    /// PostgreSQL statement_timeout for every query, in milliseconds.
    #[arg(
        long,
        env = "DB_STATEMENT_TIMEOUT_MS",
        value_name = "DB_STATEMENT_TIMEOUT_MS",
        default_value_t = 5000
    )]
    pub db_statement_timeout_ms: u64,

    /// Largest request body accepted, in bytes; larger ones get 413.
    #[arg(
        long,
        env = "MAX_BODY_BYTES",
        value_name = "MAX_BODY_BYTES",
        default_value_t = 65536
    )]
    pub max_body_bytes: u64,

    /// How long shutdown waits for in-flight requests, in seconds, before stopping anyway
    /// (under Kubernetes' default 30 s termination grace).
    #[arg(
        long,
        env = "SHUTDOWN_GRACE_SECS",
        value_name = "SHUTDOWN_GRACE_SECS",
        default_value_t = 25
    )]
    pub shutdown_grace_secs: u64,

    /// How long to keep accepting after SIGTERM or SIGINT before draining, in seconds: the
    /// gateway beside it may still open connections while it drains, and load balancers take
    /// a few seconds to let go of a stopping pod. 0 to 300.
    #[arg(
        long,
        env = "SHUTDOWN_DELAY_SECS",
        value_name = "SHUTDOWN_DELAY_SECS",
        default_value_t = 0
    )]
    pub shutdown_delay_secs: u64,

    /// How long a client may take to send a request head, counted from when its connection
    /// opens or its last response was sent, in seconds: a silent, slow or idle connection is
    /// closed after it.
    #[arg(
        long,
        env = "HEADER_READ_TIMEOUT_SECS",
        value_name = "HEADER_READ_TIMEOUT_SECS",
        default_value_t = 10
    )]
    pub header_read_timeout_secs: u64,

    /// Log format: `json` or `pretty`.
    #[arg(
        long,
        env = "LOG_FORMAT",
        value_name = "LOG_FORMAT",
        default_value = "pretty"
    )]
    pub log_format: LogFormat,

    /// Log filter (tracing EnvFilter syntax; a bare word must be a level or one of this
    /// project's crates, anything else stops the service at start: write `hyper=trace`).
    /// tokio_postgres logs server NOTICEs at info.
    #[arg(
        long = "rust-log",
        env = "RUST_LOG",
        value_name = "RUST_LOG",
        default_value = "info,tokio_postgres=warn"
    )]
    pub log_filter: String,

    /// Print `NAME<TAB>required|optional<TAB>default` for every environment variable read,
    /// then exit.
    #[arg(long, exclusive = true)]
    pub list_env: bool,
}

/// The raw `IDENTITY_KEYS` text. Parsed in [`Config::validate`] rather than by clap, because
/// clap echoes a refused value in its error and this one holds secrets.
#[derive(Clone)]
pub struct IdentityKeys(String);

impl FromStr for IdentityKeys {
    type Err = std::convert::Infallible;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Ok(Self(raw.to_owned()))
    }
}

impl fmt::Debug for IdentityKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdentityKeys(<redacted>)")
    }
}

/// A configuration value that cannot work; the message names the variable.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

/// The validated configuration the service is built from.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub socket: Option<PathBuf>,
    pub db: DbSettings,
    pub verifier: Verifier,
    pub max_body_bytes: u64,
    pub header_read_timeout: Duration,
    pub shutdown_grace: Duration,
    pub shutdown_delay: Duration,
}

fn check(ok: bool, variable: &'static str, problem: &str) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError {
            variable,
            problem: problem.to_owned(),
        })
    }
}

impl Config {
    /// Checks every value and builds the [`Settings`], or names the first variable to fix.
    pub fn validate(&self) -> Result<Settings, ConfigError> {
        let ring: KeyRing = self.identity_keys.0.parse().map_err(|e| ConfigError {
            variable: "IDENTITY_KEYS",
            problem: format!("{e}"),
        })?;
        let skew = self.identity_max_skew_secs;
        check(
            (1..=300).contains(&skew),
            "IDENTITY_MAX_SKEW_SECS",
            "must be 1 to 300 seconds",
        )?;
        let audience = Audience::parse(&self.identity_audience).ok_or_else(|| ConfigError {
            variable: "IDENTITY_AUDIENCE",
            problem: "must be 1 to 128 of A-Z a-z 0-9 . _ : / -".to_owned(),
        })?;
        check(
            (1..=100_000_000).contains(&self.identity_replay_capacity),
            "IDENTITY_REPLAY_CAPACITY",
            "must be 1 to 100000000",
        )?;
        if let Some(per_user) = self.identity_replay_per_user {
            check(
                (1..=self.identity_replay_capacity).contains(&per_user),
                "IDENTITY_REPLAY_PER_USER",
                "must be 1 to IDENTITY_REPLAY_CAPACITY",
            )?;
        }
        if let Some(path) = &self.socket {
            check(
                !path.as_os_str().is_empty() && path.as_os_str().len() <= MAX_SOCKET_PATH,
                "TASKS_SOCKET",
                &format!("a socket path has 1 to {MAX_SOCKET_PATH} bytes"),
            )?;
        }
        check(self.db_pool_size >= 1, "DB_POOL_SIZE", "must be at least 1")?;
        for (value, variable) in [
            (self.db_connect_timeout_ms, "DB_CONNECT_TIMEOUT_MS"),
            (self.db_acquire_timeout_ms, "DB_ACQUIRE_TIMEOUT_MS"),
            (self.db_statement_timeout_ms, "DB_STATEMENT_TIMEOUT_MS"),
        ] {
            check(
                (1..=600_000).contains(&value),
                variable,
                "must be 1 to 600000 milliseconds",
            )?;
        }
        check(
            (1024..=16 * 1024 * 1024).contains(&self.max_body_bytes),
            "MAX_BODY_BYTES",
            "must be 1024 to 16777216 bytes",
        )?;
        check(
            (1..=3600).contains(&self.header_read_timeout_secs),
            "HEADER_READ_TIMEOUT_SECS",
            "must be 1 to 3600 seconds",
        )?;
        check(
            (1..=3600).contains(&self.shutdown_grace_secs),
            "SHUTDOWN_GRACE_SECS",
            "must be 1 to 3600 seconds",
        )?;
        check(
            self.shutdown_delay_secs <= 300,
            "SHUTDOWN_DELAY_SECS",
            "must be 0 to 300 seconds",
        )?;
        let pg_config = self
            .database_url
            .pg_config()
            .map_err(|problem| ConfigError {
                variable: "DATABASE_URL",
                problem,
            })?;
        let mut url = self.database_url.clone();
        if let Some(path) = &self.database_ca_file {
            // Fail closed: naming a CA file says the operator expects TLS.
            check(
                pg_config.get_ssl_mode() == SslMode::Require,
                "DATABASE_CA_FILE",
                "set, but DATABASE_URL does not ask for TLS: add sslmode=require \
                 (or verify-full) to DATABASE_URL, or unset DATABASE_CA_FILE",
            )?;
            let cas = TrustedCas::from_pem_file(path).map_err(|problem| ConfigError {
                variable: "DATABASE_CA_FILE",
                problem,
            })?;
            url = url.trusting(cas);
        }
        Ok(Settings {
            listen: self.listen,
            socket: self.socket.clone(),
            db: DbSettings {
                url,
                pool_size: self.db_pool_size,
                connect_timeout: Duration::from_millis(self.db_connect_timeout_ms),
                acquire_timeout: Duration::from_millis(self.db_acquire_timeout_ms),
                statement_timeout: Duration::from_millis(self.db_statement_timeout_ms),
            },
            verifier: {
                let verifier = Verifier::new(ring, skew, audience)
                    .accept_v1(self.identity_accept_v1)
                    .replay_capacity(self.identity_replay_capacity);
                match self.identity_replay_per_user {
                    Some(per_user) => verifier.replay_per_user(per_user),
                    None => verifier,
                }
            },
            max_body_bytes: self.max_body_bytes,
            header_read_timeout: Duration::from_secs(self.header_read_timeout_secs),
            shutdown_grace: Duration::from_secs(self.shutdown_grace_secs),
            shutdown_delay: Duration::from_secs(self.shutdown_delay_secs),
        })
    }

    /// Logs, once at start (after telemetry is up), each setting that weakens a guarantee, so
    /// that an exception made during a migration does not outlive it unnoticed.
    pub fn warn_about_weakened_checks(&self) {
        if self.identity_accept_v1 {
            tracing::warn!(
                variable = "IDENTITY_ACCEPT_V1",
                "IDENTITY_ACCEPT_V1 is on: v1 identity credentials are accepted, which are not \
                 bound to the request body, the audience or single use; unset IDENTITY_ACCEPT_V1 \
                 once every caller signs v2"
            );
        }
    }
}

/// True when the command line asks for `--list-env`. Parsed with every argument optional,
/// so the listing works on a machine where the required variables are not set yet.
pub fn list_env_requested<I, T>(args: I) -> bool
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    Config::command()
        .mut_args(|arg| arg.required(false))
        .try_get_matches_from(args)
        .map(|matches| matches.get_flag("list_env"))
        .unwrap_or(false)
}

/// One line per environment variable the binary reads: `NAME\trequired|optional\tdefault`,
/// taken from clap's definition of [`Config`], so it cannot drift from what is parsed.
pub fn env_table() -> String {
    let command = Config::command();
    let mut out = String::new();
    for arg in command.get_arguments() {
        let Some(name) = arg.get_env() else { continue };
        let required = if arg.is_required_set() {
            "required"
        } else {
            "optional"
        };
        let default: Vec<_> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        out.push_str(&format!(
            "{}\t{required}\t{}\n",
            name.to_string_lossy(),
            default.join(",")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: &str = "gw:0123456789abcdef0123456789abcdef";

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        Config::try_parse_from(std::iter::once("tasks-service").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_apply_and_validate() {
        let config = parse(&["--identity-keys", KEYS]).unwrap();
        let settings = config.validate().unwrap();
        assert_eq!(settings.listen.to_string(), "127.0.0.1:8081");
        assert_eq!(settings.max_body_bytes, 65536);
        assert_eq!(settings.header_read_timeout, Duration::from_secs(10));
    }

    #[test]
    fn a_users_share_of_the_replay_memory_defaults_to_a_hundredth_and_fits_inside_it() {
        let share = |args: &[&str]| {
            let mut all = vec!["--identity-keys", KEYS];
            all.extend_from_slice(args);
            parse(&all)
                .unwrap()
                .validate()
                .map(|settings| settings.verifier.replay_share())
                .map_err(|e| e.to_string())
        };
        assert_eq!(share(&[]), Ok(10_000));
        assert_eq!(share(&["--identity-replay-capacity", "20000"]), Ok(200));
        assert_eq!(share(&["--identity-replay-per-user", "5"]), Ok(5));
        for refused in ["0", "1000001"] {
            let error = share(&["--identity-replay-per-user", refused]).unwrap_err();
            assert!(error.starts_with("IDENTITY_REPLAY_PER_USER:"), "{error}");
        }
    }

    #[test]
    fn bad_values_name_their_variable_without_echoing_secrets() {
        let config = parse(&["--identity-keys", "gw:tooshortsecret"]).unwrap();
        let error = config.validate().unwrap_err().to_string();
        assert!(error.starts_with("IDENTITY_KEYS:"), "{error}");
        assert!(!error.contains("tooshortsecret"), "{error}");

        let config = parse(&[
            "--identity-keys",
            KEYS,
            "--database-url",
            "postgres://u:pw@h/db?sslmode=bogus",
        ])
        .unwrap();
        let error = config.validate().unwrap_err().to_string();
        assert!(error.starts_with("DATABASE_URL:"), "{error}");
        assert!(!error.contains("pw"), "{error}");

        let error = parse(&[
            "--identity-keys",
            KEYS,
            "--database-url",
            "postgres://u:pw@h/db?sslmode=require",
            "--database-ca-file",
            "/nonexistent/ca.pem",
        ])
        .unwrap()
        .validate()
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with("DATABASE_CA_FILE: cannot read"),
            "{error}"
        );

        let long = format!("/run/{}", "s".repeat(103));
        let error = parse(&["--identity-keys", KEYS, "--socket", &long])
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("TASKS_SOCKET: "), "{error}");

        for secs in ["0", "3601"] {
            let error = parse(&["--identity-keys", KEYS, "--header-read-timeout-secs", secs])
                .unwrap()
                .validate()
                .unwrap_err()
                .to_string();
            assert!(error.starts_with("HEADER_READ_TIMEOUT_SECS: "), "{error}");
        }
        let error = parse(&["--identity-keys", KEYS, "--shutdown-delay-secs", "301"])
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("SHUTDOWN_DELAY_SECS: "), "{error}");

        let error = parse(&["--identity-keys", KEYS, "--db-pool-size", "many"]).unwrap_err();
        assert!(error.to_string().contains("DB_POOL_SIZE"), "{error}");
    }

    #[test]
    fn identity_keys_are_required_except_for_list_env() {
        assert!(parse(&[]).is_err());
        assert!(list_env_requested(["tasks-service", "--list-env"]));
        assert!(!list_env_requested(["tasks-service"]));
    }

    #[test]
    fn env_table_lists_every_variable_with_requiredness_and_default() {
        let table = env_table();
        assert!(table.contains("IDENTITY_KEYS\trequired\t\n"), "{table}");
        assert!(
            table.contains("TASKS_LISTEN\toptional\t127.0.0.1:8081\n"),
            "{table}"
        );
        assert!(
            table.contains("DATABASE_URL\toptional\tpostgres://postgres@127.0.0.1:5432/tasks\n")
        );
        assert!(table.contains("MAX_BODY_BYTES\toptional\t65536\n"));
        assert!(table.contains("DATABASE_CA_FILE\toptional\t\n"), "{table}");
        assert!(table.contains("TASKS_SOCKET\toptional\t\n"), "{table}");
        assert!(
            table.contains("SHUTDOWN_GRACE_SECS\toptional\t25\n"),
            "{table}"
        );
        assert!(
            table.contains("HEADER_READ_TIMEOUT_SECS\toptional\t10\n"),
            "{table}"
        );
        assert!(
            table.contains("IDENTITY_AUDIENCE\toptional\ttasks-service\n"),
            "{table}"
        );
        assert!(
            table.contains("IDENTITY_ACCEPT_V1\toptional\tfalse\n"),
            "{table}"
        );
        assert!(
            table.contains("SHUTDOWN_DELAY_SECS\toptional\t0\n"),
            "{table}"
        );
        assert_eq!(table.lines().count(), 20, "{table}");
    }
}
