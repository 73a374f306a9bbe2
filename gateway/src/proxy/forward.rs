//! Sends a prepared request to its upstream over a pooled keep-alive HTTP/1.1 connection and
//! streams the answer back. Turns client failures into the gateway's errors: refused or reset
//! is 502, no response headers within the upstream timeout is 504, and a body cut off at
//! `MAX_BODY_BYTES` is 413.

use std::time::Duration;

use http::{request, uri::Parts as UriParts, Request, Response, Uri, Version};
use hyper::body::Incoming;
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::{TokioExecutor, TokioTimer},
};

use crate::{
    body::{is_body_too_large, LimitedBody},
    error::GatewayError,
    proxy::route::Upstream,
};

/// The request body as it travels upstream: the client's, counted against the limit.
pub type UpstreamBody = LimitedBody<Incoming>;

/// The upstream client. Cheap to clone: the connection pool is shared.
#[derive(Debug, Clone)]
pub struct Forwarder {
    client: Client<HttpConnector, UpstreamBody>,
    timeout: Duration,
}

impl Forwarder {
    /// A client whose requests fail with 504 when no response headers arrive within `timeout`.
    pub fn new(timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        // Small requests and answers: do not let Nagle hold them back.
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout.min(Duration::from_secs(5))));
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Self { client, timeout }
    }

    /// Sends `parts` and `body` to `upstream`, keeping the path and query exactly as given.
    pub async fn forward(
        &self,
        upstream: &Upstream,
        mut parts: request::Parts,
        body: UpstreamBody,
    ) -> Result<Response<Incoming>, GatewayError> {
        parts.uri = upstream_uri(upstream, &parts.uri)?;
        parts.version = Version::HTTP_11;
        let request = Request::from_parts(parts, body);
        match tokio::time::timeout(self.timeout, self.client.request(request)).await {
            Err(_elapsed) => Err(GatewayError::UpstreamTimeout),
            Ok(Ok(response)) => Ok(response),
            Ok(Err(error)) if is_body_too_large(&error) => Err(GatewayError::BodyTooLarge),
            Ok(Err(error)) => {
                tracing::warn!(error = %error_chain(&error), "upstream request failed");
                Err(GatewayError::UpstreamUnavailable)
            }
        }
    }
}

/// `http://upstream` + the request's own path and query.
fn upstream_uri(upstream: &Upstream, original: &Uri) -> Result<Uri, GatewayError> {
    let mut parts = UriParts::default();
    parts.scheme = Some(upstream.scheme.clone());
    parts.authority = Some(upstream.authority.clone());
    parts.path_and_query = Some(
        original
            .path_and_query()
            .cloned()
            .ok_or(GatewayError::BadPath)?,
    );
    Uri::from_parts(parts).map_err(|_| GatewayError::BadPath)
}

/// The error and its causes on one line, for the log.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
