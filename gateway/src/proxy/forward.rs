//! Sends a prepared request to its upstream over keep-alive HTTP/1.1 and streams the answer
//! back: on the client connection's own upstream connection when it has a [`Dedicated`] set
//! (HTTP/1 clients), else over the shared pool (HTTP/2 clients). Turns client failures into
//! the gateway's errors: refused or reset is 502, no response headers within the upstream
//! timeout is 504, a body cut off at `MAX_BODY_BYTES` is 413, and a client body that breaks
//! off or is malformed is 400.

use std::time::Duration;

use http::{header, request, uri::Parts as UriParts, Method, Request, Response, Uri, Version};
use hyper::body::{Body, Incoming};
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::{TokioExecutor, TokioTimer},
};

use crate::{
    body::{caused_by, BodyTooLarge, BoxError, ClientBodyFailed, LimitedBody, UpstreamBody},
    error::GatewayError,
    proxy::dedicated::Dedicated,
    upstream::{connect_timeout, Upstream},
};

/// The upstream client. Cheap to clone: the connection pool is shared.
#[derive(Debug, Clone)]
pub struct Forwarder {
    client: Client<HttpConnector, UpstreamBody>,
    timeout: Duration,
    connect_timeout: Duration,
}

impl Forwarder {
    /// A client whose requests fail with 504 when no response headers arrive within `timeout`.
    pub fn new(timeout: Duration) -> Self {
        let connect_timeout = connect_timeout(timeout);
        let mut connector = HttpConnector::new();
        // Small requests and answers: do not let Nagle hold them back.
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(connect_timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Self {
            client,
            timeout,
            connect_timeout,
        }
    }

    /// Sends `parts` and `body` to `upstream`, keeping the path and query exactly as given,
    /// over `dedicated` when the client connection has one.
    pub async fn forward(
        &self,
        upstream: &Upstream,
        mut parts: request::Parts,
        body: UpstreamBody,
        dedicated: Option<&Dedicated>,
    ) -> Result<Response<Incoming>, GatewayError> {
        parts.version = Version::HTTP_11;
        let result = match dedicated {
            // CONNECT needs the authority form, which only the pooled client writes.
            Some(dedicated) if parts.method != Method::CONNECT => {
                // The origin form, as hyper's pooled client sends to a non-proxy upstream.
                parts.uri = origin_form(&parts.uri)?;
                let request = Request::from_parts(parts, body);
                let exchange = self.send_dedicated(dedicated, upstream, request);
                tokio::time::timeout(self.timeout, exchange).await
            }
            _ => {
                parts.uri = upstream_uri(upstream, &parts.uri)?;
                let request = Request::from_parts(parts, body);
                let exchange = self.client.request(request);
                tokio::time::timeout(self.timeout, exchange)
                    .await
                    .map(|result| result.map_err(boxed))
            }
        };
        match result {
            Err(_elapsed) => Err(GatewayError::UpstreamTimeout),
            Ok(Ok(response)) => Ok(response),
            Ok(Err(error)) if caused_by::<BodyTooLarge>(&*error) => Err(GatewayError::BodyTooLarge),
            Ok(Err(error)) if caused_by::<ClientBodyFailed>(&*error) => {
                Err(GatewayError::IncompleteBody)
            }
            Ok(Err(error)) => {
                tracing::warn!(error = %proto_shared::telemetry::error_chain(&*error), "upstream request failed");
                Err(GatewayError::UpstreamUnavailable)
            }
        }
    }

    /// One exchange on the client connection's own upstream connection, made if there is none
    /// or the last one broke. A connection is put back only after a good answer, so a reset or
    /// a timeout (which drops this future) retires it. A request lost on a reused connection
    /// that the upstream closed while idle is sent once more on a new connection: one the
    /// upstream never saw (as the pooled client does), and one it may have seen but did not
    /// answer if repeating it is safe (no body, idempotent method), as the lean engine does.
    async fn send_dedicated(
        &self,
        dedicated: &Dedicated,
        upstream: &Upstream,
        mut request: Request<UpstreamBody>,
    ) -> Result<Response<Incoming>, BoxError> {
        let mut reusable = dedicated.take(upstream);
        if let Some(connection) = &mut reusable {
            if connection.sender.ready().await.is_err() {
                reusable = None;
            }
        }
        let mut connection = match reusable {
            Some(connection) => connection,
            None => dedicated
                .connect(upstream, self.connect_timeout)
                .await
                .map_err(boxed)?,
        };
        loop {
            request
                .headers_mut()
                .insert(header::HOST, connection.host.clone());
            let repeatable = connection.reused
                && request.method().is_idempotent()
                && request.body().is_end_stream();
            let replay = repeatable.then(|| replay_of(&request));
            match connection.sender.try_send_request(request).await {
                Ok(response) => {
                    dedicated.put_back(connection);
                    return Ok(response);
                }
                Err(mut error) => {
                    let again = match error.take_message() {
                        Some(unsent) => Some(unsent),
                        None if closed_unanswered(error.error()) => replay,
                        None => None,
                    };
                    match again {
                        Some(again) if connection.reused => {
                            request = again;
                            connection = dedicated
                                .connect(upstream, self.connect_timeout)
                                .await
                                .map_err(boxed)?;
                        }
                        _ => return Err(boxed(error.into_error())),
                    }
                }
            }
        }
    }
}

/// A copy of a bodiless request, to send again.
fn replay_of(request: &Request<UpstreamBody>) -> Request<UpstreamBody> {
    let mut copy = Request::new(LimitedBody::empty());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    copy
}

/// Whether the upstream ended the connection, by a close or a reset, before any answer.
fn closed_unanswered(error: &hyper::Error) -> bool {
    error.is_incomplete_message()
        || std::error::Error::source(error)
            .and_then(|source| source.downcast_ref::<std::io::Error>())
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionReset)
}

/// Both clients' errors as one type, so one `match` maps them.
fn boxed(error: impl std::error::Error + Send + Sync + 'static) -> BoxError {
    Box::new(error)
}

/// The request's own path and query, alone.
fn origin_form(original: &Uri) -> Result<Uri, GatewayError> {
    let path_and_query = original
        .path_and_query()
        .cloned()
        .ok_or(GatewayError::BadPath)?;
    Ok(Uri::from(path_and_query))
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
