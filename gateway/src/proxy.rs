//! The request path, as named steps: request id → route → limits → CORS → authenticate →
//! strip client identity → sign → forward → map errors. Each step either passes the request
//! on or stops it with a [`GatewayError`]; `error.rs` turns those into responses, and
//! [`Proxy::handle`] logs and counts every outcome exactly once.

mod dedicated;
mod forward;
mod forwarding;

use std::{
    sync::Arc,
    time::{Instant, SystemTime},
};

use bytes::Bytes;
use http::{header, request, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::{Body as _, Incoming};
use proto_shared::{identity::unix_now, BodyDigest, IdentityHeaders, RequestId, Signer};
use tokio_util::sync::CancellationToken;

pub use dedicated::{drive, Dedicated, Drivers};
pub use forward::Forwarder;
pub use forwarding::Forwarding;

use crate::{
    auth::{AuthError, Authenticator, LastToken, Verified},
    body::{
        caused_by, full, read_whole, BodyTooLarge, GatewayBody, Guarded, LimitedBody, UpstreamBody,
        WithoutTrailers,
    },
    config::Limits,
    cors::{Cors, Preflight},
    error::GatewayError,
    health::{self, Readiness},
    metrics::{InFlight, Metrics},
    request::{
        api_user_segment, connection_too_long, has_dot_segment, has_valid_host, prepare_response,
        settle_response_framing, ClientAddr, ClientHead, Route, RouteClass, Router, TrustedProxies,
    },
    revocation::FeedHealth,
    upstream::Upstream,
    upstream_probe::{UpstreamProbe, Verdict},
};

/// Everything the request path needs, assembled once by `startup.rs`.
#[derive(Debug)]
pub struct ProxyParts {
    pub router: Router,
    pub tasks_service: Upstream,
    pub cors: Cors,
    pub authenticator: Authenticator,
    pub signer: Signer,
    /// Whether tasks-service accepts `signer`'s credentials; `/readyz` follows it.
    pub upstream_probe: UpstreamProbe,
    pub forwarder: Forwarder,
    pub metrics: Metrics,
    pub limits: Limits,
    pub forward_authorization: bool,
    /// Whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`).
    pub trusted_proxies: TrustedProxies,
    /// Cancelled when the gateway is asked to stop (`SHUTDOWN_DELAY_SECS` before it drains,
    /// and at the latest when draining starts); `/readyz` then says not ready.
    pub stopping: CancellationToken,
}

/// The request handler. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Proxy {
    parts: Arc<ProxyParts>,
}

/// One request's bookkeeping from its head to its response head: what the log line, the
/// metrics and the response decoration need. Begun by [`Proxy::prepare`], ended by
/// [`Proxy::finish`], whichever HTTP engine carries the bytes.
#[derive(Debug)]
pub struct Exchange {
    started: Instant,
    in_flight: InFlight,
    request_id: RequestId,
    method: Method,
    /// The listed origin the request came from, if any: its response gets CORS headers.
    cors_origin: Option<HeaderValue>,
    class: RouteClass,
    user: Option<Verified>,
    preflight: bool,
    reason: Option<&'static str>,
}

impl Exchange {
    /// The request's method, as the client sent it.
    pub fn method(&self) -> &Method {
        &self.method
    }
}

/// What the steps before forwarding decided.
#[derive(Debug)]
pub enum Step<'a> {
    /// The gateway answers itself: its own endpoints and CORS preflights.
    Answer(Response<Full<Bytes>>),
    /// Send the head, rewritten as `Forwarding` says (client identity stripped, the signed
    /// one added when authenticated), and then the client's body to `upstream`.
    Forward(&'a Upstream, Forwarding),
}

/// What a response body must keep alive until its last byte has left: the request's place
/// in the in-flight count, which is also the concurrency limit's.
pub type ResponseGuard = InFlight;

impl Proxy {
    /// A handler over `parts`.
    pub fn new(parts: ProxyParts) -> Self {
        Self {
            parts: Arc::new(parts),
        }
    }

    /// The limits this handler enforces.
    pub fn limits(&self) -> &Limits {
        &self.parts.limits
    }

    /// The gateway's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.parts.metrics
    }

    /// Handles one request from `client` through hyper, start to finish, forwarding over the
    /// client connection's `dedicated` upstream connections. Never fails: every
    /// refusal is a response.
    pub async fn handle(
        &self,
        request: Request<Incoming>,
        client: &ClientAddr,
        dedicated: &Dedicated,
    ) -> Response<GatewayBody> {
        let (mut head, body) = request.into_parts();
        // A refusal before any of the body was read leaves the body on the connection: hyper
        // reads past a small one (as the lean engine skips one already received), but a large
        // or unbounded one ends the connection (as the lean engine does when it is not all
        // there yet: it cannot wait for megabytes nobody wants).
        let body_unread = !body.is_end_stream()
            && body
                .size_hint()
                .exact()
                .is_none_or(|len| len > self.parts.limits.read_buffer_size() as u64);
        // hyper serves each request on its own: no token is remembered between them.
        let (mut exchange, step) = self.prepare(&head, client, &mut LastToken::default()).await;
        let mut forwarded = false;
        let answered = match step {
            Ok(Step::Answer(response)) => Ok(response.map(full)),
            Ok(Step::Forward(upstream, mut forwarding)) => {
                forwarded = true;
                async {
                    let body = self
                        .signed_body(&exchange, &mut forwarding, &head, body)
                        .await?;
                    forwarding.apply(&mut head);
                    self.forward(&exchange, upstream, head, body, dedicated)
                        .await
                }
                .await
            }
            Err(error) => Err(error),
        };
        let mut response = answered.unwrap_or_else(|error| {
            let mut refusal = self.refuse(&mut exchange, error);
            // As the lean engine does: a refusal that leaves the client's body unread (or
            // part of it) ends the connection and says so, rather than have hyper read on
            // through a body nobody wants.
            let unread = if forwarded {
                matches!(
                    error,
                    GatewayError::BodyTooLarge
                        | GatewayError::IncompleteBody
                        | GatewayError::BodyTimeout
                )
            } else {
                body_unread
            };
            if unread {
                refusal
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            refusal.map(full)
        });
        let status = response.status();
        let guard = self.finish(exchange, status, response.headers_mut());
        response.map(|body| Guarded::wrap(body, guard))
    }

    /// The body as it goes upstream: streamed as it arrives, or, when the request is signed,
    /// read whole first (within `MAX_BODY_BYTES` and the upstream timeout) so that the
    /// credential can cover its digest.
    async fn signed_body(
        &self,
        exchange: &Exchange,
        forwarding: &mut Forwarding,
        head: &request::Parts,
        body: Incoming,
    ) -> Result<UpstreamBody, GatewayError> {
        let limits = &self.parts.limits;
        if !self.signs(exchange) {
            return Ok(LimitedBody::new(Either::Left(body), limits.max_body_bytes));
        }
        let bytes = if body.is_end_stream() {
            Bytes::new()
        } else {
            let limited = LimitedBody::new(body, limits.max_body_bytes);
            match tokio::time::timeout(limits.upstream_timeout, read_whole(limited)).await {
                Err(_elapsed) => return Err(GatewayError::BodyTimeout),
                Ok(Err(error)) if caused_by::<BodyTooLarge>(&*error) => {
                    return Err(GatewayError::BodyTooLarge)
                }
                Ok(Err(_)) => return Err(GatewayError::IncompleteBody),
                Ok(Ok(whole)) => whole,
            }
        };
        self.sign(exchange, forwarding, head, BodyDigest::of(&bytes));
        Ok(LimitedBody::new(
            Either::Right(Full::new(bytes)),
            limits.max_body_bytes,
        ))
    }

    async fn forward(
        &self,
        exchange: &Exchange,
        upstream: &Upstream,
        head: request::Parts,
        body: UpstreamBody,
        dedicated: &Dedicated,
    ) -> Result<Response<GatewayBody>, GatewayError> {
        let parts = &*self.parts;
        let sent = Instant::now();
        let response = parts
            .forwarder
            .forward(upstream, head, body, dedicated)
            .await?;
        let (mut head, body) = response.into_parts();
        self.upstream_latency(exchange, sent);
        if !settle_response_framing(head.status, &mut head.headers) {
            tracing::warn!(
                status = head.status.as_u16(),
                "upstream answer with framing refused"
            );
            return Err(GatewayError::UpstreamUnavailable);
        }
        prepare_response(head.status, &mut head.headers);
        // The answer is the gateway's, in its own version: an HTTP/1.0 upstream's would have
        // hyper write an unframed HTTP/1.0 answer to an HTTP/1.1 client and close.
        head.version = http::Version::HTTP_11;
        Ok(Response::from_parts(
            head,
            WithoutTrailers(body).map_err(Into::into).boxed_unsync(),
        ))
    }

    /// Runs the steps before forwarding on a request head: route, limits, CORS,
    /// authenticate, strip client identity, sign. The request body stays with the engine.
    /// `last_token` is the client connection's memory of the token it last presented.
    pub async fn prepare(
        &self,
        head: &impl ClientHead,
        client: &ClientAddr,
        last_token: &mut LastToken,
    ) -> (Exchange, Result<Step<'_>, GatewayError>) {
        let started = Instant::now();
        // Routed once: the class labels the log and metrics, the route drives dispatch.
        let route = self.parts.router.route(head.path());
        let mut exchange = Exchange {
            started,
            in_flight: self.parts.metrics.in_flight(),
            request_id: RequestId::from_value(head.value(proto_shared::headers::REQUEST_ID)),
            method: head.method().clone(),
            cors_origin: self.parts.cors.allowed(head.value(header::ORIGIN)),
            class: route.class(),
            user: None,
            preflight: false,
            reason: None,
        };
        let step = self
            .steps(head, route, client, last_token, &mut exchange)
            .await;
        (exchange, step)
    }

    /// Whether the request must go upstream with a signed identity, which covers the body's
    /// digest: the engine then reads the whole body (at most `MAX_BODY_BYTES`) before it
    /// sends anything, and calls [`Proxy::sign`].
    pub fn signs(&self, exchange: &Exchange) -> bool {
        exchange.user.is_some()
    }

    /// Adds the signed identity of the user the request steps verified to `forwarding`, bound
    /// to `head`'s method and exact target (as the upstream will receive them) and to `body`,
    /// the digest of the exact body bytes that follow. Does nothing for a request no one was
    /// authenticated for.
    pub fn sign(
        &self,
        exchange: &Exchange,
        forwarding: &mut Forwarding,
        head: &impl ClientHead,
        body: BodyDigest,
    ) {
        if let Some(user) = &exchange.user {
            let credential = self.parts.signer.credential(
                head.method(),
                head.target(),
                &user.user_id,
                body,
                unix_now(),
            );
            forwarding.sign(IdentityHeaders {
                user_id: user.user_header.clone(),
                credential,
            });
        }
    }

    /// Records how long the upstream took to answer a request sent at `sent`.
    pub fn upstream_latency(&self, exchange: &Exchange, sent: Instant) {
        self.parts
            .metrics
            .upstream_latency(exchange.class, sent.elapsed().as_secs_f64());
    }

    /// The response for a refusal, counted.
    pub fn refuse(&self, exchange: &mut Exchange, error: GatewayError) -> Response<Full<Bytes>> {
        self.parts.metrics.refusal(error.reason());
        exchange.reason = Some(error.reason());
        error.into_response()
    }

    /// The whole answer, as bytes, to a request head hyper could not read and refused itself
    /// (`server/refusals.rs`): the gateway's refusal for `error`, with a fresh request id,
    /// `Connection: close` (hyper closes after it) and a `Date`, counted and logged like every
    /// refusal. No route was read: it counts as `not_found`, its method logs as `-`.
    pub fn refuse_unreadable(&self, error: GatewayError) -> Vec<u8> {
        let mut exchange = Exchange {
            started: Instant::now(),
            in_flight: self.parts.metrics.in_flight(),
            request_id: RequestId::generate(),
            method: Method::from_bytes(b"-").expect("`-` is a method token"),
            cors_origin: None,
            class: RouteClass::NotFound,
            user: None,
            preflight: false,
            reason: None,
        };
        let response = self.refuse(&mut exchange, error);
        let (mut parts, body) = response.into_parts();
        // A `Full` body is whole at once: its one frame is ready without waiting.
        let body = futures_util::FutureExt::now_or_never(body.collect())
            .and_then(Result::ok)
            .map(|collected| collected.to_bytes())
            .unwrap_or_default();
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        parts
            .headers
            .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        if let Ok(date) = HeaderValue::from_str(&httpdate::fmt_http_date(SystemTime::now())) {
            parts.headers.insert(header::DATE, date);
        }
        let _guard = self.finish(exchange, parts.status, &mut parts.headers);
        let mut bytes = format!(
            "HTTP/1.1 {} {}\r\n",
            parts.status.as_str(),
            parts.status.canonical_reason().unwrap_or("")
        )
        .into_bytes();
        for (name, value) in &parts.headers {
            bytes.extend_from_slice(name.as_str().as_bytes());
            bytes.extend_from_slice(b": ");
            bytes.extend_from_slice(value.as_bytes());
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b"\r\n");
        bytes.extend_from_slice(&body);
        bytes
    }

    /// Decorates the response head (request id, CORS), then counts and logs the request
    /// exactly once. The guard must live until the response body's last byte has left.
    pub fn finish(
        &self,
        exchange: Exchange,
        status: StatusCode,
        headers: &mut HeaderMap,
    ) -> ResponseGuard {
        headers.insert(
            proto_shared::headers::REQUEST_ID,
            exchange.request_id.header_value().clone(),
        );
        self.parts
            .cors
            .decorate(exchange.cors_origin.as_ref(), exchange.preflight, headers);
        let status = status.as_u16();
        self.parts.metrics.request(exchange.class, status);
        tracing::info!(
            request_id = %exchange.request_id,
            route = exchange.class.as_str(),
            method = %exchange.method,
            status,
            latency_ms = exchange.started.elapsed().as_secs_f64() * 1000.0,
            reason = exchange.reason,
            user = exchange.user.as_ref().map(|user| user.user_id.as_str()),
            "request"
        );
        exchange.in_flight
    }

    async fn steps<'a>(
        &'a self,
        head: &impl ClientHead,
        route: Route<'a>,
        client: &ClientAddr,
        last_token: &mut LastToken,
        exchange: &mut Exchange,
    ) -> Result<Step<'a>, GatewayError> {
        let parts = &*self.parts;
        let upstream = match route {
            Route::Healthz | Route::Readyz => {
                return self.own_endpoint(route, head.method()).map(Step::Answer);
            }
            Route::NotFound => return Err(GatewayError::NotFound),
            Route::Public(upstream) => upstream,
            Route::Api => &parts.tasks_service,
        };
        // CONNECT asks for a tunnel, which is no call to the API or to Better Auth. One with a
        // path target was signed and relayed, and hyper then held a 2xx answer as a tunnel the
        // server never opens, so the client got nothing at all. (Other methods the API does
        // not serve, TRACE among them, go on to be answered 405 with its `Allow`, as FastAPI
        // answers them.)
        if *head.method() == Method::CONNECT {
            return Err(GatewayError::MethodNotRelayed);
        }

        // Limits: refuse at once, before any work that the refusal would waste. Every
        // request in flight counts (the gateway's own endpoints too, which are never refused
        // and answer at once); this one is refused if the cap was reached before it began.
        if exchange.in_flight.others() >= parts.limits.max_concurrent_requests {
            return Err(GatewayError::Overloaded);
        }
        if head.size() > parts.limits.max_header_bytes {
            return Err(GatewayError::HeadersTooLarge);
        }
        if has_dot_segment(head.path()) {
            return Err(GatewayError::BadPath);
        }
        if !has_valid_host(head) {
            return Err(GatewayError::BadHost);
        }
        if connection_too_long(head) {
            return Err(GatewayError::ConnectionTooLong);
        }

        match parts.cors.preflight(head) {
            Preflight::NotPreflight => {}
            Preflight::Allowed(answer) => {
                exchange.preflight = true;
                return Ok(Step::Answer(answer.map(|()| Full::default())));
            }
            Preflight::Refused => {
                exchange.preflight = true;
                return Err(GatewayError::CorsOriginNotAllowed);
            }
        }
        if content_length(head).is_some_and(|len| len > parts.limits.max_body_bytes) {
            return Err(GatewayError::BodyTooLarge);
        }

        let user = match route {
            Route::Api => Some(self.authenticate(head, last_token).await?),
            _ => None,
        };

        let keep_credentials = user.is_none() || parts.forward_authorization;
        let forwarding = Forwarding::new(
            head,
            client,
            &parts.trusted_proxies,
            &exchange.request_id,
            keep_credentials,
        );
        // Signed by the engine through `Proxy::sign` once the body is known.
        exchange.user = user;
        Ok(Step::Forward(upstream, forwarding))
    }

    /// Verifies the bearer token and that a `/api/{user_id}/...` path names its user.
    async fn authenticate(
        &self,
        head: &impl ClientHead,
        last_token: &mut LastToken,
    ) -> Result<Verified, GatewayError> {
        let segment = api_user_segment(head.path());
        // `/api/` and `/api//tasks` name no user at all: no such route, whoever asks.
        if segment == Some("") {
            return Err(GatewayError::NotFound);
        }
        // Two credentials are refused, not chosen between: another hop might pick the other.
        let mut authorization = head.values(header::AUTHORIZATION);
        let first = authorization.next();
        if authorization.next().is_some() {
            return Err(AuthError::Malformed.into());
        }
        let verified = self
            .parts
            .authenticator
            .authenticate_on(first, last_token)
            .await?;
        if let Some(segment) = segment {
            if !verified.user_id.is_encoded_as(segment) {
                return Err(GatewayError::ForbiddenUser);
            }
        }
        Ok(verified)
    }

    fn own_endpoint(
        &self,
        route: Route<'_>,
        method: &Method,
    ) -> Result<Response<Full<Bytes>>, GatewayError> {
        if method != Method::GET && method != Method::HEAD {
            return Err(GatewayError::MethodNotAllowed);
        }
        let parts = &*self.parts;
        let response = match route {
            Route::Healthz => health::healthz(),
            Route::Readyz if parts.stopping.is_cancelled() => {
                health::readyz(Readiness::ShuttingDown)
            }
            Route::Readyz if !parts.authenticator.is_ready() => {
                health::readyz(Readiness::KeysNotLoaded)
            }
            Route::Readyz if parts.upstream_probe.verdict() == Verdict::Refused => {
                health::readyz(Readiness::UpstreamRefusesIdentity)
            }
            Route::Readyz => match parts.authenticator.revocation_health(unix_now()) {
                Some(FeedHealth::Down) => health::readyz(Readiness::RevocationFeedDown),
                Some(FeedHealth::Degraded { for_secs }) => {
                    health::readyz(Readiness::RevocationFeedLost { for_secs })
                }
                Some(FeedHealth::Up) | None => health::readyz(Readiness::Ready),
            },
            _ => health::healthz(),
        };
        Ok(response)
    }
}

/// The declared `Content-Length`; a malformed one is left to the engine, which refuses it.
fn content_length(head: &impl ClientHead) -> Option<u64> {
    std::str::from_utf8(head.value(header::CONTENT_LENGTH)?)
        .ok()?
        .parse()
        .ok()
}
