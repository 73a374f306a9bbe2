//! PostgreSQL URLs and TLS to the server: how a URL is read (`sslmode=verify-full` included),
//! which certificate authorities vouch for the server (the webpki public roots, or the
//! operator's own CA file: `DATABASE_CA_FILE` for tasks-service,
//! `REVOCATION_DATABASE_CA_FILE` for the gateway) and the rustls connector built from them.
//! Knows nothing about pools, queries or notifications.

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
};

use rustls::pki_types::{pem::PemObject, CertificateDer};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The CA certificates read from a CA file, trusted *instead of* the webpki roots
/// (a private CA for a self-hosted server). Certificates are public, so `Debug` shows them.
#[derive(Clone)]
pub struct TrustedCas {
    path: PathBuf,
    roots: rustls::RootCertStore,
}

impl fmt::Debug for TrustedCas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TrustedCas({}, {} certificates)",
            self.path.display(),
            self.roots.len()
        )
    }
}

impl TrustedCas {
    /// Reads every `CERTIFICATE` block of a PEM file. A file that cannot be read, holds a
    /// malformed block or a block that is not an X.509 certificate, or holds no certificate at
    /// all is refused: trusting nothing would only fail later, at the first connection.
    pub fn from_pem_file(path: &Path) -> Result<Self, String> {
        let shown = path.display();
        let blocks =
            CertificateDer::pem_file_iter(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
        let mut roots = rustls::RootCertStore::empty();
        for (index, block) in blocks.enumerate() {
            let cert = block.map_err(|e| format!("{shown} is not valid PEM: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("certificate {} in {shown} is unusable: {e}", index + 1))?;
        }
        if roots.is_empty() {
            return Err(format!(
                "{shown} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
            ));
        }
        Ok(Self {
            path: path.to_owned(),
            roots,
        })
    }
}

/// TLS, or not, as the URL's `sslmode` says.
#[derive(Clone)]
pub enum Tls {
    Plain,
    Rustls(MakeRustlsConnect),
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Plain => "Tls::Plain",
            Self::Rustls(_) => "Tls::Rustls",
        })
    }
}

/// Why no TLS connector could be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
    /// Fail closed: an operator who names a CA file expects TLS, so plain TCP would surprise.
    /// The binaries' configuration says so first, naming its own variables.
    #[error(
        "a CA file is set but the database URL does not ask for TLS: add sslmode=require (or \
         verify-full) to the URL, or unset the CA file"
    )]
    CaWithoutTls,
}

/// Why [`parse_url`] refuses `sslmode=prefer` and `sslmode=allow`.
const PREFER_REFUSED: &str = "sslmode=prefer and sslmode=allow are refused: prefer/allow would \
     fall back to plain text without a word: use sslmode=require (or verify-full) for TLS, or \
     sslmode=disable";

/// Why [`parse_url`] refuses a URL to another machine that names no `sslmode`.
const SSLMODE_UNSAID: &str = "reaches the database over the network but names no sslmode: \
     add sslmode=require (or verify-full) for TLS, or sslmode=disable if the network in between \
     is private (libpq would have tried TLS first; plain text must be asked for)";

/// Why [`parse_url`] refuses an `@` where a host is read.
const UNENCODED_AT: &str = "holds an @ that is not percent-encoded, so the host would be read \
     from the middle of the password (or user name): percent-encode the password (@ is %40)";

/// The URL forms tokio-postgres reads as URLs; anything else is `key=value` pairs.
const URL_SCHEMES: [&str; 2] = ["postgres://", "postgresql://"];

/// Where the PostgreSQL URL `raw` points, as `host:port/dbname`, safe to log: no user, no
/// password, no option (the first host and port, as a connection tries first).
pub fn redacted(raw: &str) -> String {
    let Ok(config) = parse_url(raw) else {
        return "(unparsable URL)".to_owned();
    };
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().unwrap_or("(default)");
    format!("{host}:{port}/{db}")
}

/// Reads a PostgreSQL URL (or `key=value` connection string). The error never repeats the URL,
/// which may hold a password.
///
/// TLS is on or off, never "maybe":
/// - `sslmode=require`, and `verify-full`/`verify-ca` read as `require`: TLS, and with TLS on
///   the server certificate and host name are always verified.
/// - `sslmode=disable`: plain TCP. No `sslmode` at all reads the same where no one else is on
///   the path (a Unix socket, `localhost`, a loopback address), and the returned config then
///   says [`SslMode::Disable`], not tokio-postgres's default `prefer`; to any other host it is
///   refused, since a `psql` URL without one means "TLS if the server offers it" and the
///   operator would get plain text without a word.
/// - `sslmode=prefer` and `sslmode=allow` are refused. libpq's `prefer` tries TLS first and
///   falls back to plain text, so an operator copying a `psql` URL expects TLS; with one
///   connector per URL here it would be plain text, or on a TLS connector a silent fallback.
///   Either way the choice belongs in the URL: `require` or `disable`.
///
/// A host holding `@` (or more than one `@` before the host) is refused too: a password with
/// an unencoded `@` is split at its first `@`, and the rest of the password would become the
/// host, shown in every message that names where the database is.
pub fn parse_url(raw: &str) -> Result<tokio_postgres::Config, String> {
    if misplaced_at(raw) {
        return Err(UNENCODED_AT.to_owned());
    }
    let normalized = raw
        .replace("sslmode=verify-full", "sslmode=require")
        .replace("sslmode=verify-ca", "sslmode=require")
        // tokio-postgres knows no `allow`; read it as the `prefer` it would fall back like.
        .replace("sslmode=allow", "sslmode=prefer");
    let config = with_sslmode_first(&normalized, "disable")
        .parse::<tokio_postgres::Config>()
        .map_err(|e| format!("not a valid PostgreSQL URL: {e}"))?;
    let at_in_host = config.get_hosts().iter().any(|host| match host {
        tokio_postgres::config::Host::Tcp(name) => name.contains('@'),
        #[cfg(unix)]
        tokio_postgres::config::Host::Unix(_) => false,
    });
    if at_in_host {
        return Err(UNENCODED_AT.to_owned());
    }
    // `sslmode=disable` goes first, so only an `sslmode` the URL itself names after it can
    // leave `prefer`.
    if config.get_ssl_mode() == SslMode::Prefer {
        return Err(PREFER_REFUSED.to_owned());
    }
    // The URL names its mode when another mode put first changes nothing.
    let named = with_sslmode_first(&normalized, "require")
        .parse::<tokio_postgres::Config>()
        .is_ok_and(|other| other.get_ssl_mode() == config.get_ssl_mode());
    // `hostaddr`, where given, is where the connection goes (`host` then only names the
    // server for TLS): judged as well, or `host=localhost hostaddr=10.0.0.7` would pass.
    let addressed_elsewhere = config
        .get_hostaddrs()
        .iter()
        .any(|ip| !ip.to_canonical().is_loopback());
    if !named && (addressed_elsewhere || config.get_hosts().iter().any(is_over_the_network)) {
        return Err(SSLMODE_UNSAID.to_owned());
    }
    Ok(config)
}

/// Whether a connection to `host` crosses a network someone else may be on: not a Unix
/// socket, not `localhost`, not a loopback address.
fn is_over_the_network(host: &tokio_postgres::config::Host) -> bool {
    match host {
        tokio_postgres::config::Host::Tcp(name) => {
            let name = name.trim_start_matches('[').trim_end_matches(']');
            !(name.eq_ignore_ascii_case("localhost")
                || name
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.to_canonical().is_loopback()))
        }
        #[cfg(unix)]
        tokio_postgres::config::Host::Unix(_) => false,
    }
}

/// Whether a URL holds an `@` that tokio-postgres would read in the wrong place. It takes the
/// credentials to run to the first `@` anywhere, so a second `@` before the query (a password
/// or user name holding one, even past a `/`: `app:S3/cret@Pw@host`, `app:S3cret@Pw/x@host`)
/// means part of the password was read as the host or the database, and a user name holding
/// a `/` or `?` (`host/db?password=p@x`) means the host and query were read as credentials. A
/// password may hold `/` and `?`: it is read as written.
fn misplaced_at(raw: &str) -> bool {
    let Some(rest) = URL_SCHEMES
        .iter()
        .find_map(|scheme| raw.strip_prefix(scheme))
    else {
        return false;
    };
    let Some((credentials, after)) = rest.split_once('@') else {
        return false;
    };
    let before_query = after.split('?').next().unwrap_or_default();
    let user = credentials.split(':').next().unwrap_or_default();
    user.contains(['/', '?']) || before_query.contains('@')
}

/// `raw` with `sslmode={mode}` as its first parameter, so that a URL naming no `sslmode`
/// reads as `mode` while one naming it keeps its own (a later parameter wins). Finds the
/// query as tokio-postgres does: the credentials run to the first `@`, the query starts at
/// the first `?` after them.
fn with_sslmode_first(raw: &str, mode: &str) -> String {
    let Some(scheme) = URL_SCHEMES.iter().find(|scheme| raw.starts_with(*scheme)) else {
        return format!("sslmode={mode} {raw}");
    };
    let rest = &raw[scheme.len()..];
    let after_credentials = rest.find('@').map_or(0, |at| at + 1);
    match rest[after_credentials..].find('?') {
        Some(question) => {
            let query = scheme.len() + after_credentials + question + 1;
            format!("{}sslmode={mode}&{}", &raw[..query], &raw[query..])
        }
        None => format!("{raw}?sslmode={mode}"),
    }
}

/// Whether a URL read by [`parse_url`] asks for TLS (`sslmode=require`, `verify-full` or
/// `verify-ca`).
pub fn wants_tls(config: &tokio_postgres::Config) -> bool {
    config.get_ssl_mode() == SslMode::Require
}

impl Tls {
    /// rustls (aws-lc-rs) for `sslmode=require`, verifying the server against `cas` when given,
    /// else the webpki roots; plain TCP otherwise: `sslmode=disable` or no sslmode at all.
    /// (Unlike libpq's `prefer`, which tries TLS first: [`parse_url`] refuses `prefer` and
    /// `allow` rather than quietly speaking plain text for them.)
    pub fn for_config(
        config: &tokio_postgres::Config,
        cas: Option<&TrustedCas>,
    ) -> Result<Self, TlsError> {
        if !wants_tls(config) {
            return match cas {
                Some(_) => Err(TlsError::CaWithoutTls),
                None => Ok(Self::Plain),
            };
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let roots = match cas {
            Some(cas) => cas.roots.clone(),
            None => rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            },
        };
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self::Rustls(MakeRustlsConnect::new(client)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_redacted_form_names_the_server_and_database_and_nothing_secret() {
        assert_eq!(
            redacted(
                "postgres://gateway:hunter2@auth-db:6543/better_auth?sslmode=disable&options=-c%20x"
            ),
            "auth-db:6543/better_auth"
        );
        assert_eq!(
            redacted("host=/run/postgresql"),
            "/run/postgresql:5432/(default)"
        );
        // Never a piece of what could not be read.
        assert_eq!(
            redacted("postgres://gateway:hun@ter2@auth-db/db"),
            "(unparsable URL)"
        );
    }

    fn config(url: &str) -> tokio_postgres::Config {
        parse_url(url).unwrap()
    }

    /// A file in the temp dir holding `contents`, removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn with(contents: &str) -> Self {
            let path = std::env::temp_dir().join(format!("ca-{}.pem", uuid::Uuid::new_v4()));
            std::fs::write(&path, contents).unwrap();
            Self(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn require_urls_get_rustls_and_others_plain_tcp() {
        for url in [
            "postgres://u:pw@ep-x.neon.tech/db?sslmode=require",
            "postgres://u:pw@ep-x.neon.tech/db?sslmode=verify-full",
        ] {
            let tls = Tls::for_config(&config(url), None).unwrap();
            assert!(matches!(tls, Tls::Rustls(_)), "{url}");
        }
        for url in [
            "postgres://postgres@127.0.0.1/tasks",
            "postgres://h/db?sslmode=disable",
        ] {
            let tls = Tls::for_config(&config(url), None).unwrap();
            assert!(matches!(tls, Tls::Plain), "{url}");
        }
    }

    #[test]
    fn unreadable_empty_or_non_pem_ca_files_are_refused_with_the_reason() {
        let missing = std::env::temp_dir().join("no-such-ca-file.pem");
        let error = TrustedCas::from_pem_file(&missing).unwrap_err();
        assert!(error.starts_with("cannot read"), "{error}");

        for (contents, expected) in [
            ("", "holds no PEM certificate"),
            ("just some text\n", "holds no PEM certificate"),
            (
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                "holds no PEM certificate",
            ),
            (
                "-----BEGIN CERTIFICATE-----\n!!not base64!!\n-----END CERTIFICATE-----\n",
                "is not valid PEM",
            ),
            (
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                "certificate 1 in",
            ),
        ] {
            let file = TempFile::with(contents);
            let error = TrustedCas::from_pem_file(&file.0).unwrap_err();
            assert!(error.contains(expected), "{contents:?}: {error}");
        }
    }

    #[test]
    fn sslmode_prefer_or_allow_is_refused_without_echoing_the_url() {
        for url in [
            "postgres://u:pw@db.internal/tasks?sslmode=prefer",
            "postgres://u:pw@db.internal/tasks?sslmode=allow",
            "postgresql://u:pw@db.internal/tasks?connect_timeout=5&sslmode=prefer",
            // The last sslmode wins, as in libpq.
            "postgres://u:pw@db.internal/tasks?sslmode=require&sslmode=prefer",
            // Percent-encoded, as tokio-postgres decodes it.
            "postgres://u:pw@db.internal/tasks?ssl%6Dode=prefer",
            "host=db.internal user=u password=pw dbname=tasks sslmode=prefer",
            "host=db.internal user=u password=pw dbname=tasks sslmode=allow",
        ] {
            let error = parse_url(url).unwrap_err();
            assert!(
                error.contains("would fall back to plain text without a word")
                    && error.contains("sslmode=require")
                    && error.contains("sslmode=disable"),
                "{url}: {error}"
            );
            for part in ["pw", "db.internal", "tasks"] {
                assert!(!error.contains(part), "{url}: {error}");
            }
        }
    }

    #[test]
    fn no_sslmode_means_plain_text_as_disable_where_no_one_else_is_on_the_path() {
        for url in [
            "postgres://postgres@127.0.0.1/tasks",
            "postgres://u:pw@localhost:5432/tasks?connect_timeout=5",
            "postgres://[::1]/tasks",
            "postgres://%2Frun%2Fpostgresql/tasks",
            "host=/run/postgresql user=u dbname=tasks",
            "postgres://h/db?sslmode=disable",
            "host=db user=u dbname=tasks sslmode=disable",
            "host=localhost hostaddr=127.0.0.1 user=u",
        ] {
            let config = config(url);
            assert_eq!(config.get_ssl_mode(), SslMode::Disable, "{url}");
            assert!(!wants_tls(&config), "{url}");
            let tls = Tls::for_config(&config, None).unwrap();
            assert!(matches!(tls, Tls::Plain), "{url}");
        }
    }

    #[test]
    fn no_sslmode_to_another_machine_is_refused_without_echoing_the_url() {
        for url in [
            "postgres://u:pw@db:5432/tasks?connect_timeout=5",
            "postgres://u:pw@db.internal/tasks",
            "postgres://u:pw@10.0.0.7/tasks?dbname=tasks",
            "postgresql://u:pw@127.0.0.1,db.internal/tasks",
            "host=db.internal user=u password=pw dbname=tasks",
            // Where `hostaddr` sends it, whatever `host` says.
            "hostaddr=10.0.0.7 user=u password=pw dbname=tasks",
            "postgres://u:pw@localhost/tasks?hostaddr=10.0.0.7",
            "host=/run/postgresql hostaddr=10.0.0.7 user=u",
        ] {
            let error = parse_url(url).unwrap_err();
            assert!(error.contains("names no sslmode"), "{url}: {error}");
            for part in ["pw", "db.internal", "10.0.0.7"] {
                assert!(!error.contains(part), "{url}: {error}");
            }
        }
    }

    #[test]
    fn a_password_holding_query_characters_reads_as_written() {
        // A password holding `?` or `/` (legal before the @) still reads as written.
        for (url, password, dbname, timeout) in [
            ("postgres://u:p?x/y@localhost/tasks", "p?x/y", "tasks", None),
            (
                "postgres://u:p?x@localhost/tasks?connect_timeout=7",
                "p?x",
                "tasks",
                Some(7),
            ),
        ] {
            let config = config(url);
            assert_eq!(config.get_password(), Some(password.as_bytes()), "{url}");
            assert_eq!(config.get_dbname(), Some(dbname), "{url}");
            assert_eq!(
                config.get_connect_timeout().map(|t| t.as_secs()),
                timeout,
                "{url}"
            );
            assert_eq!(config.get_ssl_mode(), SslMode::Disable, "{url}");
        }
    }

    #[test]
    fn an_unencoded_at_in_the_password_is_refused_without_echoing_the_url() {
        for url in [
            "postgres://app:S3cret@Pw@127.0.0.1:5999/tasks",
            "postgresql://app:S3cret@Pw@127.0.0.1/tasks?sslmode=require",
            // A `/` in the password hides the first @ from the authority: the host still
            // holds the second.
            "postgres://app:S3/cret@Pw@127.0.0.1/tasks",
            "postgres://app@S3cret:Pw@127.0.0.1/tasks",
            "host=Pw@127.0.0.1 user=app dbname=tasks",
            // A `/` after the first @: the rest of the password would be the host, the real
            // host part of the database name.
            "postgres://app:S3cret@Pw/x@127.0.0.1:5999/tasks",
            "postgres://app:S3/cret@Pw/x@127.0.0.1:5999/tasks",
            // An @ in the query, with no credentials before it: the query would be read as
            // the user name.
            "postgres://127.0.0.1/tasks?user=app&password=S3cret@Pw",
        ] {
            let error = parse_url(url).unwrap_err();
            assert!(
                error.contains("percent-encode the password (@ is %40)"),
                "{url}: {error}"
            );
            for part in ["S3", "cret", "Pw", "127.0.0.1", "tasks", "app"] {
                assert!(!error.contains(part), "{url}: {error}");
            }
        }
        // An @ in a query value after the host is where it is read: kept.
        let named = config("postgres://app:S3cret@127.0.0.1/tasks?application_name=a@b");
        assert_eq!(named.get_application_name(), Some("a@b"));
        let config = config("postgres://app:S3cret%40Pw@127.0.0.1:5999/tasks");
        assert_eq!(config.get_password(), Some(&b"S3cret@Pw"[..]));
        assert_eq!(
            config.get_hosts(),
            [tokio_postgres::config::Host::Tcp("127.0.0.1".into())]
        );
    }
}
