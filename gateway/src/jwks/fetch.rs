//! One JWKS fetch: an HTTP GET with connect and total timeouts, a body read in chunks that
//! stops at the size limit, and the `Cache-Control: max-age` the issuer asked for.
//! Knows nothing about when to fetch; that is `refresh.rs`.

use std::time::Duration;

use http::header::CACHE_CONTROL;

use super::key_set::{KeySet, KeySetError};
use super::JwksConfig;

/// What one successful fetch returned.
#[derive(Debug)]
pub struct Fetched {
    pub keys: KeySet,
    /// JWKs skipped as unusable (unknown type, wrong use, bad encoding).
    pub skipped: usize,
    /// `Cache-Control: max-age`, if the issuer sent one (Better Auth does not).
    pub max_age: Option<Duration>,
}

/// Why a fetch failed. The label goes to the fetches metric.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("JWKS request timed out")]
    Timeout,
    #[error("JWKS request failed: {0}")]
    Network(String),
    #[error("JWKS endpoint answered HTTP {0}")]
    Status(u16),
    #[error("JWKS response larger than {0} bytes")]
    TooLarge(usize),
    #[error("JWKS response unusable: {0}")]
    Invalid(#[from] KeySetError),
}

impl FetchError {
    /// A short stable label for the `result` label of the fetches metric.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Network(_) => "network",
            Self::Status(_) => "http_status",
            Self::TooLarge(_) => "too_large",
            Self::Invalid(_) => "invalid",
        }
    }
}

/// Fetches and parses the key set. Cheap to clone (reqwest pools connections).
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    url: String,
    max_response_bytes: usize,
    max_keys: usize,
}

impl Fetcher {
    /// Builds the HTTP client. Fails only if the TLS backend cannot start.
    pub fn new(config: &JwksConfig) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.fetch_timeout)
            // A redirect could send us to a host the operator never configured.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            client,
            url: config.url.clone(),
            max_response_bytes: config.max_response_bytes,
            max_keys: config.max_keys,
        })
    }

    /// One GET of the JWKS URL.
    pub async fn fetch(&self) -> Result<Fetched, FetchError> {
        let mut response = self
            .client
            .get(&self.url)
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(classify)?;
        if !response.status().is_success() {
            return Err(FetchError::Status(response.status().as_u16()));
        }
        let max_age = response
            .headers()
            .get_all(CACHE_CONTROL)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find_map(max_age);
        if response
            .content_length()
            .is_some_and(|len| len > self.max_response_bytes as u64)
        {
            return Err(FetchError::TooLarge(self.max_response_bytes));
        }
        // Read chunk by chunk so a body without (or lying about) Content-Length is cut off at
        // the limit instead of being buffered whole.
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if body.len() + chunk.len() > self.max_response_bytes {
                return Err(FetchError::TooLarge(self.max_response_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        let (keys, skipped) = KeySet::parse(&body, self.max_keys)?;
        Ok(Fetched {
            keys,
            skipped,
            max_age,
        })
    }
}

fn classify(err: reqwest::Error) -> FetchError {
    if err.is_timeout() {
        FetchError::Timeout
    } else {
        // reqwest errors carry the URL, which is configuration, never a secret.
        FetchError::Network(err.without_url().to_string())
    }
}

/// `max-age` from one `Cache-Control` value; `no-cache`/`no-store` count as zero (the caller
/// clamps it to the minimum refresh interval, so the issuer cannot make us hammer it).
fn max_age(value: &str) -> Option<Duration> {
    value.split(',').map(str::trim).find_map(|directive| {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-cache" || lower == "no-store" {
            return Some(Duration::ZERO);
        }
        let secs = lower.strip_prefix("max-age=")?;
        secs.trim_matches('"')
            .parse::<u64>()
            .ok()
            .map(Duration::from_secs)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_max_age_among_other_directives() {
        assert_eq!(
            max_age("public, max-age=300, must-revalidate"),
            Some(Duration::from_secs(300))
        );
        assert_eq!(max_age("Max-Age=\"60\""), Some(Duration::from_secs(60)));
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("public"), None);
        assert_eq!(max_age("max-age=-1"), None);
    }
}
