//! Starting an authenticator against a fake issuer, and reading its metrics.

use std::time::Duration;

use gateway::auth::{AuthConfig, AuthError, Authenticator, LastToken, Verified};
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::support::issuer::Issuer;

/// An authenticator under test with its metrics registry. Stops its refresher when dropped.
pub struct TestAuth {
    pub auth: Authenticator,
    pub registry: Registry,
    shutdown: CancellationToken,
}

impl Drop for TestAuth {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl TestAuth {
    /// Starts with `config` and does not wait for keys.
    pub fn start(config: AuthConfig) -> Self {
        let mut registry = Registry::default();
        let shutdown = CancellationToken::new();
        let auth = Authenticator::start(config, &mut registry, shutdown.clone());
        Self {
            auth,
            registry,
            shutdown,
        }
    }

    /// Starts with `config` and waits until the first key set is loaded.
    pub async fn ready(config: AuthConfig) -> Self {
        let this = Self::start(config);
        this.wait_ready(true).await;
        this
    }

    /// Polls `is_ready` until it equals `ready` (10 s deadline).
    pub async fn wait_ready(&self, ready: bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.auth.is_ready() != ready {
            assert!(
                tokio::time::Instant::now() < deadline,
                "authenticator never became ready={ready}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Authenticates `Bearer <token>`.
    pub async fn check(&self, token: &str) -> Result<Verified, AuthError> {
        self.auth
            .authenticate(Some(Issuer::bearer(token).as_bytes()))
            .await
    }

    /// Authenticates `Bearer <token>` as sent on the connection that `last` belongs to.
    pub async fn check_on(&self, token: &str, last: &mut LastToken) -> Result<Verified, AuthError> {
        self.auth
            .authenticate_on(Some(Issuer::bearer(token).as_bytes()), last)
            .await
    }

    /// The value of one metric sample, e.g. `gateway_token_cache_hits_total` or
    /// `gateway_jwks_fetches_total{result="ok"}`; 0 when a labelled sample has not appeared
    /// yet. Panics if no metric of that name is registered, so a typo cannot pass as zero.
    pub fn metric(&self, sample: &str) -> f64 {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).unwrap();
        let name = sample.split('{').next().unwrap();
        let family = name.strip_suffix("_total").unwrap_or(name);
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "metric {family} is not registered:\n{text}"
        );
        text.lines()
            .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' '))
            .map_or(0.0, |value| value.trim().parse().unwrap())
    }
}

/// The default test config of `issuer`.
pub fn config(issuer: &Issuer) -> AuthConfig {
    issuer.auth_config()
}

/// Polls `condition` every 5 ms until it holds (10 s deadline).
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
