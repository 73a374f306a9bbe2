//! The accept loop: HTTP/1.1 and cleartext HTTP/2 (upgrade-free, prior knowledge) on one port,
//! the protocol decided once on a connection's first bytes; HTTP/1.1 goes to the lean engine
//! (`http1.rs`) or hyper, HTTP/2 to hyper watched for idleness (`server/idle.rs`). Also the
//! connection-level limits (header-read timeout, head size) and graceful shutdown: stop
//! accepting, let in-flight requests finish within the grace period, then cut what is left.

pub mod first_bytes;
mod idle;
mod refusals;

use std::{convert::Infallible, future::Future, pin::Pin, sync::Arc, time::Duration};

use hyper::service::service_fn;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    body::Guarded,
    config::{Http1Engine, Limits},
    http1,
    proxy::{self, Dedicated, Proxy},
    request::ClientAddr,
};

/// Serves `proxy` on `listener` until `shutdown` completes, then drains. `draining` is
/// cancelled as soon as draining starts (so `/readyz` turns 503).
pub async fn serve(
    listener: TcpListener,
    proxy: Proxy,
    limits: Limits,
    http1_engine: Http1Engine,
    draining: CancellationToken,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        // A client may close its sending side once its request is out: the request is still
        // answered, as the lean engine does, instead of dropped unanswered while it may
        // already be on its way upstream.
        .half_close(true)
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.read_buffer_size());
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.read_buffer_size()).unwrap_or(u32::MAX))
        // Finds peers that vanished without closing, which would otherwise hold streams.
        .keep_alive_interval(Duration::from_secs(30));
    // `first_bytes` has already told the protocol apart, so each connection gets a builder
    // for its protocol alone. The auto builder would sniff again, and on a connection the lean
    // engine hands over mid-way it would take a client's HTTP/2 preface after an HTTP/1.1
    // request for a switch to HTTP/2, which RFC 9113 §3.4 does not allow there.
    let http1_builder = builder.clone().http1_only();
    let http2_builder = builder.http2_only();
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);

    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let http1_builder = http1_builder.clone();
        let http2_builder = http2_builder.clone();
        let proxy = proxy.clone();
        let watcher = graceful.watcher();
        let timeout = limits.header_read_timeout;
        let draining = draining.clone();
        tokio::spawn(async move {
            // The auto builder waits without limit for the bytes that tell HTTP/1 from
            // HTTP/2; read them here under the header-read timeout instead.
            let Some(mut io) = first_bytes::read(stream, timeout).await else {
                return;
            };
            // The lean engine serves HTTP/1.1 until a request needs hyper. The watcher held
            // meanwhile makes the drain wait for this connection too.
            let client = ClientAddr::new(peer);
            if http1_engine == Http1Engine::Lean && !io.is_http2() {
                match http1::serve(io, &proxy, &client).await {
                    Some(rest) => io = rest,
                    None => return,
                }
            }
            // Each client connection has upstream connections of its own, driven by this
            // task. HTTP/2 connections are also watched for idleness, which hyper does not
            // bound.
            let (dedicated, drivers) = Dedicated::new();
            let dedicated = Arc::new(dedicated);
            let activity = io.is_http2().then(idle::Activity::new);
            let refusals_proxy = proxy.clone();
            let service = service_fn({
                let activity = activity.clone();
                move |request| {
                    let proxy = proxy.clone();
                    let dedicated = dedicated.clone();
                    let client = client.clone();
                    let in_flight = activity.as_ref().map(idle::Activity::begin);
                    async move {
                        let response = proxy.handle(request, &client, &dedicated).await;
                        // In flight until the response's last byte has left.
                        let response = match in_flight {
                            Some(in_flight) => response.map(|body| Guarded::wrap(body, in_flight)),
                            None => response,
                        };
                        Ok::<_, Infallible>(response)
                    }
                }
            });
            // Boxed as `Send` where the types are concrete: inside `drive` the compiler cannot
            // prove the connection future `Send` (rust-lang/rust#110338).
            let connection: Pin<Box<dyn Future<Output = _> + Send>> = match activity {
                Some(activity) => Box::pin(async move {
                    // Held, this makes the drain wait for the connection; `idle::serve`
                    // does the graceful shutdown itself once draining starts.
                    let _counted = watcher;
                    let connection = http2_builder.serve_connection(TokioIo::new(io), service);
                    let mut connection: Pin<Box<dyn idle::GracefulConnection<Output = _> + Send>> =
                        Box::pin(connection.into_owned());
                    idle::serve(connection.as_mut(), &activity, &limits, &draining)
                        .await
                        .unwrap_or(Ok(()))
                }),
                None => {
                    let io = refusals::Refusals::new(io, refusals_proxy);
                    let connection = http1_builder.serve_connection(TokioIo::new(io), service);
                    Box::pin(watcher.watch(connection.into_owned()))
                }
            };
            let result = proxy::drive(connection, drivers).await;
            if let Err(error) = result {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
        });
    }

    drop(listener);
    draining.cancel();
    tracing::info!(connections = graceful.count(), "draining");
    match tokio::time::timeout(limits.shutdown_grace, graceful.shutdown()).await {
        Ok(()) => tracing::info!("all connections drained"),
        Err(_) => tracing::warn!("shutdown grace period over; closing remaining connections"),
    }
}
