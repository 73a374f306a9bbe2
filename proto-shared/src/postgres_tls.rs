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

/// Reads a PostgreSQL URL. `sslmode=verify-ca|verify-full` are read as `require`: with TLS on,
/// the server certificate and host name are always verified. The error never repeats the URL,
/// which may hold a password.
pub fn parse_url(raw: &str) -> Result<tokio_postgres::Config, String> {
    raw.replace("sslmode=verify-full", "sslmode=require")
        .replace("sslmode=verify-ca", "sslmode=require")
        .parse::<tokio_postgres::Config>()
        .map_err(|e| format!("not a valid PostgreSQL URL: {e}"))
}

/// Whether a URL read by [`parse_url`] asks for TLS.
pub fn wants_tls(config: &tokio_postgres::Config) -> bool {
    config.get_ssl_mode() == SslMode::Require
}

impl Tls {
    /// rustls (aws-lc-rs) for `sslmode=require`, verifying the server against `cas` when given,
    /// else the webpki roots; plain TCP otherwise (`prefer` then falls back to plain, as libpq
    /// does against a server without TLS).
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
}
