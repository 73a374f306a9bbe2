//! The operators' listener (`ADMIN_LISTEN`, loopback by default): `/metrics` and `/healthz`.
//! Kept off the public listener because the metrics say more than clients should learn
//! (refusal reasons by count, key-set age, upstream latency) and scraping them costs the
//! gateway work a stranger should not be able to ask for. Knows nothing about the request
//! path: no tokens, no upstreams, no CORS.

use std::{convert::Infallible, future::Future, sync::Arc, time::Duration};

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::{config::Limits, error::GatewayError, health};

/// What one admin request gets: the endpoint, or 404/405 as JSON like the public listener.
pub fn answer<B>(request: &Request<B>, registry: &Registry) -> Response<Full<Bytes>> {
    let endpoint = match request.uri().path() {
        "/metrics" => Endpoint::Metrics,
        "/healthz" => Endpoint::Healthz,
        _ => return GatewayError::NotFound.into_response(),
    };
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return GatewayError::MethodNotAllowed.into_response();
    }
    match endpoint {
        Endpoint::Metrics => health::metrics(registry),
        Endpoint::Healthz => health::healthz(),
    }
}

enum Endpoint {
    Metrics,
    Healthz,
}

/// Serves the admin endpoints on `listener` until `shutdown` completes, then lets open
/// connections finish within the same grace period as the public listener.
pub async fn serve(
    listener: TcpListener,
    registry: Arc<Registry>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!(%error, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let registry = registry.clone();
        let service = service_fn(move |request| {
            let response = answer(&request, &registry);
            async move { Ok::<_, Infallible>(response) }
        });
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "admin connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("admin listener: grace period over; closing remaining connections");
    }
}
