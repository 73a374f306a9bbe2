//! The accept loop and what wraps every request: a request id (taken or generated) in a span
//! around the handler and echoed in the response, the exact request target for the identity
//! check, metrics by route template, and graceful shutdown that lets in-flight requests finish.
//!
//! HTTP/1.1 only, on both listeners. Every caller speaks it: the gateway forwards over
//! HTTP/1.1 whatever its own client spoke, and the in-cluster client (`proto_shared::client`)
//! with its default reqwest client speaks HTTP/1.1 to an `http://` URL. Serving HTTP/2 as
//! well (hyper-util's `auto` builder) held connections for ever: it waits without a timer for
//! the bytes that tell the versions apart (a silent client, or half an HTTP/2 preface), and
//! hyper's HTTP/2 server has no header-read or idle timeout. On HTTP/1.1, hyper (1.12) starts
//! its header-read timer as soon as it waits for a head, the first or the next, so a silent or
//! idle connection is closed.

use std::{
    convert::Infallible,
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use http::{header, HeaderValue, Method, Request, StatusCode};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
    service::TowerToHyperService,
};
use proto_shared::{headers::REQUEST_ID, RequestId};
use tracing::Instrument;
use warp::{reply::Response, Filter};

use crate::{
    listener::Listeners,
    metrics::Metrics,
    routes::{allowed_methods, route_template},
    state::RequestTarget,
};

/// Serves `filter` on `listeners` until `shutdown` resolves, then stops accepting and waits
/// for in-flight requests to finish, for at most `shutdown_grace`: a client trickling a body
/// must not keep the process alive past what an orchestrator allows. A connection that sends
/// no complete request head within `header_read_timeout` is closed.
pub async fn serve<F>(
    listeners: Listeners,
    filter: F,
    metrics: Metrics,
    header_read_timeout: Duration,
    shutdown_grace: Duration,
    shutdown: impl Future<Output = ()>,
) where
    F: Filter<Extract = (Response,), Error = Infallible> + Clone + Send + Sync + 'static,
{
    let service = TowerToHyperService::new(warp::service(filter));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let builder = Arc::new(builder);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listeners.accept() => match accepted {
                Ok(stream) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::error!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = service.clone();
        let metrics = metrics.clone();
        let per_request = hyper::service::service_fn(move |request| {
            handle(service.clone(), metrics.clone(), request)
        });
        // Without upgrades: no route answers 101, and GracefulShutdown cannot watch an
        // upgradeable HTTP/1 connection.
        let connection = builder.serve_connection(TokioIo::new(stream), per_request);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listeners);
    tracing::info!("shutting down: waiting for in-flight requests");
    if tokio::time::timeout(shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_secs = shutdown_grace.as_secs(),
            "requests still in flight after the shutdown grace period; stopping anyway"
        );
    }
}

async fn handle<S>(
    service: S,
    metrics: Metrics,
    mut request: Request<Incoming>,
) -> Result<Response, Infallible>
where
    S: hyper::service::Service<Request<Incoming>, Response = Response, Error = Infallible>,
{
    let started = Instant::now();
    let request_id = RequestId::from_headers(request.headers());
    let route = route_template(request.uri().path());
    let method = request.method().clone();
    let method_name = method_label(&method);
    let target = request
        .uri()
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .into();
    let unread_body = body_may_go_unread(&request);
    request.extensions_mut().insert(RequestTarget(target));
    request.extensions_mut().insert(request_id.clone());
    let span =
        tracing::info_span!("request", request_id = %request_id, method = method_name, route);
    let mut response = match service.call(request).instrument(span.clone()).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let status = response.status();
    let headers = response.headers_mut();
    headers.insert(REQUEST_ID, request_id.header_value().clone());
    if unread_body && !(status.is_success() && reads_body(&method)) {
        // Refused before its body was read (a bad path, identity, query), or a route that
        // never reads one: hyper closes such a connection after answering, so say so, or a
        // proxy pooling the connection sends its next request into a closed socket.
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    if status == StatusCode::METHOD_NOT_ALLOWED {
        if let Some(allow) = allowed_methods(route) {
            headers.insert(header::ALLOW, HeaderValue::from_static(allow));
        }
    }
    let elapsed = started.elapsed();
    metrics.record_request(route, method_name, status.as_u16(), elapsed.as_secs_f64());
    span.in_scope(|| {
        tracing::info!(
            status = status.as_u16(),
            micros = elapsed.as_micros() as u64,
            "request done"
        );
    });
    Ok(response)
}

/// Whether the request comes with a body (a non-zero length, or chunked).
fn body_may_go_unread(request: &Request<Incoming>) -> bool {
    let headers = request.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|length| length.as_bytes() != b"0")
}

/// The methods whose routes read the body before they can succeed.
fn reads_body(method: &Method) -> bool {
    matches!(*method, Method::POST | Method::PUT | Method::PATCH)
}

/// Known methods by name; anything else is one label, so clients cannot grow the metrics.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
