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

/// Why a fetch failed, worded as the cause an operator acts on (the URL is added by the
/// caller, see `refresh.rs`). The label goes to the fetches metric.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("timed out")]
    Timeout,
    #[error("connection refused (is the issuer running and listening there?)")]
    Refused,
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("request failed: {0}")]
    Network(String),
    #[error("the issuer answered HTTP {0}")]
    Status(u16),
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the answer is not a usable key set: {0}")]
    Invalid(#[from] KeySetError),
}

impl FetchError {
    /// A short stable label for the `result` label of the fetches metric.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            // One label for every transport failure, as before the causes were told apart.
            Self::Refused | Self::Connect(_) | Self::Network(_) => "network",
            Self::Status(_) => "http_status",
            Self::TooLarge(_) => "too_large",
            Self::Invalid(_) => "invalid",
        }
    }
}

/// Fetches and parses the key set. Cheap to clone (reqwest pools connections).
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    url: String,
    max_response_bytes: usize,
    max_keys: usize,
}

// By hand: the URL without the credentials it may hold.
impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("url", &loggable_url(&self.url))
            .field("max_response_bytes", &self.max_response_bytes)
            .field("max_keys", &self.max_keys)
            .finish_non_exhaustive()
    }
}

impl Fetcher {
    /// Builds the HTTP client. Fails only if the TLS backend cannot start.
    pub fn new(config: &JwksConfig) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.fetch_timeout)
            // A redirect could send us to a host the operator never configured.
            .redirect(reqwest::redirect::Policy::none())
            // Nor may a proxy named in the environment (`HTTP_PROXY`, `ALL_PROXY`) stand
            // between the gateway and its keys: over plain http (a loopback issuer) it
            // could publish a key of its own and mint tokens for any user.
            .no_proxy()
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
        return FetchError::Timeout;
    }
    let refused = sources(&err).any(|source| {
        source
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
    });
    // The innermost cause says what went wrong ("failed to lookup address", "certificate
    // expired"); reqwest's own message only says that sending failed. The URL is left out
    // here: the caller logs it once, without any credentials it may hold.
    let cause = sources(&err)
        .last()
        .map_or_else(|| err.to_string(), ToString::to_string);
    if refused {
        FetchError::Refused
    } else if err.is_connect() {
        FetchError::Connect(cause)
    } else {
        FetchError::Network(cause)
    }
}

/// The error's chain of causes, outermost first (the error itself excluded).
fn sources<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(err.source(), |source| source.source())
}

/// `url` fit for a log line: everything between the scheme and the last `@` replaced by
/// `***`. Not only the authority as a parser reads it: a password pasted unencoded may hold
/// `/`, `?` or `#` (generated ones often hold `/`), and a parser then ends the authority
/// early, so the mask would miss it. An `@` later in a path or query hides more than it
/// must, which a log can afford.
pub fn loggable_url(url: &str) -> String {
    // A value missing its scheme (a slip config.rs reports) may still start with credentials.
    let start = url.find("://").map_or(0, |at| at + "://".len());
    let rest = &url[start..];
    match rest.rfind('@') {
        Some(at) => format!("{}***{}", &url[..start], &rest[at..]),
        None => url.to_owned(),
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
    fn credentials_in_the_url_never_reach_the_log() {
        assert_eq!(
            loggable_url("https://user:secret@auth.example/api/auth/jwks"),
            "https://***@auth.example/api/auth/jwks"
        );
        // Passwords with the characters that end an authority, pasted unencoded.
        for password in ["ab/cd", "ab?cd", "ab#cd", "a@b/c"] {
            let shown = loggable_url(&format!("https://gw:{password}@auth.example/jwks"));
            assert_eq!(shown, "https://***@auth.example/jwks", "{password}");
        }
        assert_eq!(
            loggable_url("http://127.0.0.1:3000/jwks?x=1"),
            "http://127.0.0.1:3000/jwks?x=1"
        );
        assert_eq!(
            loggable_url("user:secret@auth.example/jwks"),
            "***@auth.example/jwks"
        );
        // Nor through the settings' or the fetcher's `Debug`, which start-up logs may print.
        let config = JwksConfig::for_url("https://user:secret@auth.example/api/auth/jwks");
        for shown in [
            format!("{config:?}"),
            format!("{:?}", Fetcher::new(&config).unwrap()),
        ] {
            assert!(!shown.contains("secret"), "{shown}");
            assert!(shown.contains("***@auth.example"), "{shown}");
        }
    }

    #[tokio::test]
    async fn a_refused_connection_is_named_as_such() {
        // A port just freed: nothing listens there, so the connection is refused.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let fetcher = Fetcher::new(&JwksConfig::for_url(format!("http://{address}/jwks"))).unwrap();
        let error = fetcher.fetch().await.unwrap_err();
        assert!(matches!(error, FetchError::Refused), "{error:?}");
        assert_eq!(error.label(), "network");
    }

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
