//! The request path, as named steps: request id → route → limits → CORS → authenticate →
//! strip client identity → sign → forward → map errors. Each step either passes the request
//! on or stops it with a [`GatewayError`]; `error.rs` turns those into responses, and
//! [`Proxy::handle`] logs and counts every outcome exactly once.

mod dedicated;
mod forward;
mod headers;
mod route;

use std::{net::SocketAddr, sync::Arc, time::Instant};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use prometheus_client::registry::Registry;
use proto_shared::{identity::unix_now, RequestId, Signer, UserId};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

pub use dedicated::{drive, Dedicated, Drivers};
pub use forward::Forwarder;
pub use headers::{prepare_request, prepare_response, strip_hop_by_hop, strip_identity};
pub use route::{PublicRoute, Route, RouteClass, Router, Upstream};

use crate::{
    auth::{AuthError, Authenticator},
    body::{full, GatewayBody, Guarded, LimitedBody},
    config::Limits,
    cors::{Cors, Preflight},
    error::GatewayError,
    health::{self, Readiness},
    metrics::{InFlight, Metrics},
};

/// Everything the request path needs, assembled once by `startup.rs`.
#[derive(Debug)]
pub struct ProxyParts {
    pub router: Router,
    pub tasks_service: Upstream,
    pub cors: Cors,
    pub authenticator: Authenticator,
    pub signer: Signer,
    pub forwarder: Forwarder,
    pub metrics: Metrics,
    pub registry: Arc<Registry>,
    pub limits: Limits,
    pub forward_authorization: bool,
    /// Cancelled when the gateway starts draining; `/readyz` then says not ready.
    pub draining: CancellationToken,
}

/// The request handler. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Proxy {
    parts: Arc<ProxyParts>,
    permits: Arc<Semaphore>,
}

/// What the steps learned, for the log line and the response decoration.
#[derive(Debug, Default)]
struct Outcome {
    user: Option<UserId>,
    preflight: bool,
    permit: Option<OwnedSemaphorePermit>,
}

impl Proxy {
    /// A handler over `parts`.
    pub fn new(parts: ProxyParts) -> Self {
        let permits = Arc::new(Semaphore::new(parts.limits.max_concurrent_requests));
        Self {
            parts: Arc::new(parts),
            permits,
        }
    }

    /// Handles one request from `client`, start to finish, forwarding over the client
    /// connection's `dedicated` upstream connections if it has them. Never fails: every
    /// refusal is a response.
    pub async fn handle(
        &self,
        request: Request<Incoming>,
        client: SocketAddr,
        dedicated: Option<&Dedicated>,
    ) -> Response<GatewayBody> {
        let started = Instant::now();
        let in_flight = self.parts.metrics.in_flight();
        let request_id = RequestId::from_headers(request.headers());
        let method = request.method().clone();
        let origin = request.headers().get(header::ORIGIN).cloned();
        // Routed once: the class labels the log and metrics, the route drives dispatch.
        let route = self.parts.router.route(request.uri().path());
        let class = route.class();
        let mut outcome = Outcome::default();

        let (mut response, reason) = match self
            .dispatch(request, route, client, dedicated, &request_id, &mut outcome)
            .await
        {
            Ok(response) => (response, None),
            Err(error) => {
                self.parts.metrics.refusal(error.reason());
                (error.into_response().map(full), Some(error.reason()))
            }
        };

        let headers = response.headers_mut();
        headers.insert(
            proto_shared::headers::REQUEST_ID,
            request_id.header_value().clone(),
        );
        self.parts
            .cors
            .decorate(origin.as_ref(), outcome.preflight, headers);
        let status = response.status().as_u16();
        self.parts.metrics.request(class.as_str(), status);
        tracing::info!(
            request_id = %request_id,
            route = class.as_str(),
            method = %method,
            status,
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            reason,
            user = outcome.user.as_ref().map(UserId::as_str),
            "request"
        );
        let guard: (Option<OwnedSemaphorePermit>, InFlight) = (outcome.permit, in_flight);
        response.map(|body| Guarded::wrap(body, guard))
    }

    async fn dispatch(
        &self,
        request: Request<Incoming>,
        route: Route<'_>,
        client: SocketAddr,
        dedicated: Option<&Dedicated>,
        request_id: &RequestId,
        outcome: &mut Outcome,
    ) -> Result<Response<GatewayBody>, GatewayError> {
        let parts = &*self.parts;
        let upstream = match route {
            Route::Healthz | Route::Readyz | Route::Metrics => {
                return self.own_endpoint(route, request.method());
            }
            Route::NotFound => return Err(GatewayError::NotFound),
            Route::Public(upstream) => upstream,
            Route::Api => &parts.tasks_service,
        };

        // Limits: refuse at once, before any work that the refusal would waste.
        let permit = self.permits.clone().try_acquire_owned();
        outcome.permit = Some(permit.map_err(|_| GatewayError::Overloaded)?);
        if head_size(&request) > parts.limits.max_header_bytes {
            return Err(GatewayError::HeadersTooLarge);
        }
        if route::has_dot_segment(request.uri().path()) {
            return Err(GatewayError::BadPath);
        }

        match parts.cors.preflight(request.method(), request.headers()) {
            Preflight::NotPreflight => {}
            Preflight::Allowed(answer) => {
                outcome.preflight = true;
                return Ok(answer.map(|()| empty()));
            }
            Preflight::Refused => {
                outcome.preflight = true;
                return Err(GatewayError::CorsOriginNotAllowed);
            }
        }
        if content_length(&request).is_some_and(|len| len > parts.limits.max_body_bytes) {
            return Err(GatewayError::BodyTooLarge);
        }

        let user = match route {
            Route::Api => Some(self.authenticate(&request).await?),
            _ => None,
        };

        let (mut head, body) = request.into_parts();
        let original_host = head.headers.get(header::HOST).cloned().or_else(|| {
            let authority = head.uri.authority()?;
            HeaderValue::from_str(authority.as_str()).ok()
        });
        prepare_request(
            &mut head.headers,
            headers::RequestFacts {
                client_ip: client.ip(),
                original_host,
                request_id,
                keep_authorization: user.is_none() || parts.forward_authorization,
            },
        );
        if let Some(user) = &user {
            // The exact request target the upstream will receive, as the credential requires.
            let target = head.uri.path_and_query().map_or("/", |pq| pq.as_str());
            parts
                .signer
                .sign(&head.method, target, user, unix_now())
                .insert_into(&mut head.headers);
        }
        outcome.user = user;

        let sent = Instant::now();
        let body = LimitedBody::new(body, parts.limits.max_body_bytes);
        let response = parts
            .forwarder
            .forward(upstream, head, body, dedicated)
            .await?;
        parts
            .metrics
            .upstream_latency(route.class().as_str(), sent.elapsed().as_secs_f64());
        let (mut head, body) = response.into_parts();
        prepare_response(&mut head.headers);
        Ok(Response::from_parts(
            head,
            body.map_err(Into::into).boxed_unsync(),
        ))
    }

    /// Verifies the bearer token and that a `/api/{user_id}/...` path names its user.
    async fn authenticate(&self, request: &Request<Incoming>) -> Result<UserId, GatewayError> {
        // Two credentials are refused, not chosen between: another hop might pick the other.
        let mut authorization = request.headers().get_all(header::AUTHORIZATION).iter();
        let first = authorization.next();
        if authorization.next().is_some() {
            return Err(AuthError::Malformed.into());
        }
        let verified = self.parts.authenticator.authenticate(first).await?;
        if let Some(segment) = route::api_user_segment(request.uri().path()) {
            match UserId::from_encoded(segment) {
                Ok(named) if named == verified.user_id => {}
                _ => return Err(GatewayError::ForbiddenUser),
            }
        }
        Ok(verified.user_id)
    }

    fn own_endpoint(
        &self,
        route: Route<'_>,
        method: &Method,
    ) -> Result<Response<GatewayBody>, GatewayError> {
        if method != Method::GET && method != Method::HEAD {
            return Err(GatewayError::MethodNotAllowed);
        }
        let parts = &*self.parts;
        let response = match route {
            Route::Healthz => health::healthz(),
            Route::Readyz if parts.draining.is_cancelled() => {
                health::readyz(Readiness::ShuttingDown)
            }
            Route::Readyz if !parts.authenticator.is_ready() => {
                health::readyz(Readiness::KeysNotLoaded)
            }
            Route::Readyz => health::readyz(Readiness::Ready),
            _ => health::metrics(&parts.registry),
        };
        Ok(response.map(full))
    }
}

fn empty() -> GatewayBody {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// The size of the request head as the client sent it (request line and header lines), so
/// HTTP/1 and HTTP/2 requests meet the same limit.
fn head_size(request: &Request<Incoming>) -> usize {
    let line = request.method().as_str().len()
        + request
            .uri()
            .path_and_query()
            .map_or(1, |pq| pq.as_str().len())
        + 12;
    request.headers().iter().fold(line, |sum, (name, value)| {
        sum + name.as_str().len() + value.len() + 4
    })
}

/// The declared `Content-Length`; a malformed one is left to hyper, which refuses it.
fn content_length(request: &Request<Incoming>) -> Option<u64> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}
