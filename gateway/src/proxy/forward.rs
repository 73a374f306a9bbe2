//! Sends a prepared request to its upstream over keep-alive HTTP/1.1, on the client
//! connection's own upstream connections ([`Dedicated`]), and streams the answer back. Turns
//! failures into the gateway's errors: refused or reset is 502, no response headers within
//! the upstream timeout is 504, a body cut off at `MAX_BODY_BYTES` is 413, and a client body
//! that breaks off or is malformed is 400.

use std::{sync::atomic::Ordering, time::Duration};

use http::{header, request, Request, Response, Uri, Version};
use hyper::body::{Body, Incoming};

use crate::{
    body::{caused_by, BodyTooLarge, BoxError, ClientBodyFailed, LimitedBody, UpstreamBody},
    error::GatewayError,
    proxy::dedicated::Dedicated,
    upstream::{connect_timeout, may_retry, Lost, Upstream},
};

/// Sends requests upstream within the upstream timeout.
#[derive(Debug, Clone)]
pub struct Forwarder {
    timeout: Duration,
    connect_timeout: Duration,
}

impl Forwarder {
    /// A forwarder whose requests fail with 504 when no response headers arrive within
    /// `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            connect_timeout: connect_timeout(timeout),
        }
    }

    /// Sends `parts` and `body` to `upstream` over `dedicated`, keeping the path and query
    /// exactly as given (the origin form; the lean engine's subset and the request steps
    /// leave no other form to forward).
    pub async fn forward(
        &self,
        upstream: &Upstream,
        mut parts: request::Parts,
        mut body: UpstreamBody,
        dedicated: &Dedicated,
    ) -> Result<Response<Incoming>, GatewayError> {
        parts.version = Version::HTTP_11;
        parts.uri = origin_form(&parts.uri)?;
        // A deadline that passes while the client's body is awaited is the client's delay.
        let awaiting_client = (!body.is_end_stream()).then(|| body.watch_client());
        let request = Request::from_parts(parts, body);
        let exchange = self.send(dedicated, upstream, request);
        match tokio::time::timeout(self.timeout, exchange).await {
            Err(_elapsed)
                if awaiting_client
                    .as_ref()
                    .is_some_and(|waiting| waiting.load(Ordering::Relaxed)) =>
            {
                Err(GatewayError::BodyTimeout)
            }
            Err(_elapsed) => Err(GatewayError::UpstreamTimeout),
            Ok(Ok(response)) => Ok(response),
            Ok(Err(error)) if caused_by::<BodyTooLarge>(&*error) => Err(GatewayError::BodyTooLarge),
            Ok(Err(error)) if caused_by::<ClientBodyFailed>(&*error) => {
                Err(GatewayError::IncompleteBody)
            }
            Ok(Err(error)) => {
                tracing::warn!(
                    error = %proto_shared::telemetry::error_chain(&*error),
                    upstream = %upstream.address(),
                    "upstream request failed"
                );
                Err(GatewayError::UpstreamUnavailable)
            }
        }
    }

    /// One exchange on one of the client connection's upstream connections, made if there is
    /// none idle or the idle one broke. A connection is put back only after a good answer, so
    /// a reset or a timeout (which drops this future) retires it. A request lost on a reused
    /// connection is sent once more on a new one when [`may_retry`] allows.
    async fn send(
        &self,
        dedicated: &Dedicated,
        upstream: &Upstream,
        mut request: Request<UpstreamBody>,
    ) -> Result<Response<Incoming>, BoxError> {
        let mut reusable = dedicated.take(upstream);
        if let Some(connection) = &mut reusable {
            if connection.io.ready().await.is_err() {
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
            let bodiless = request.body().is_end_stream();
            // A copy to send again only where the rule would allow it: a bodiless request's
            // head, cloned, and on most requests not at all.
            let replay = may_retry(
                Lost::Unanswered,
                connection.reused,
                request.method(),
                bodiless,
            )
            .then(|| replay_of(&request));
            match connection.io.try_send_request(request).await {
                Ok(response) => {
                    dedicated.put_back(connection);
                    return Ok(response);
                }
                Err(mut error) => {
                    let again = match error.take_message() {
                        Some(unsent) => {
                            may_retry(Lost::Unsent, connection.reused, unsent.method(), bodiless)
                                .then_some(unsent)
                        }
                        None if closed_unanswered(error.error()) => replay,
                        None => None,
                    };
                    match again {
                        Some(again) => {
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

/// Connecting's and hyper's errors as one type, so one `match` maps them.
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
