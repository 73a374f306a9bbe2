//! The accept loop: HTTP/1.1 and cleartext HTTP/2 (upgrade-free, prior knowledge) on one port,
//! the protocol decided once on a connection's first bytes; HTTP/1.1 goes to the lean engine
//! (`http1.rs`) or hyper, HTTP/2 to hyper watched for idleness (`server/idle.rs`). Also the
//! connection-level limits (header-read timeout, head size, `MAX_CONNECTIONS` in
//! `connection/cap.rs`) and graceful shutdown: stop accepting, let in-flight requests
//! finish within the grace period, then cut what is left.

mod idle;
mod refusals;
mod stall;

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    time::Duration,
};

use hyper::service::service_fn;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{
        conn::auto,
        graceful::{GracefulShutdown, Watcher},
    },
};
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::AbortOnDropHandle};

use crate::{
    body::Guarded,
    config::{Http1Engine, Limits},
    connection::{
        first_bytes, Admitted, Busy, Connections, Handoffs, Inbox, Moved, OwnHandoff, Replay, Slot,
        CLOSING_GRACE,
    },
    http1::{self, Outcome},
    proxy::{self, Dedicated, Proxy},
    request::ClientAddr,
};

/// What every worker's accept loop shares (`workers.rs`).
#[derive(Debug, Clone)]
pub struct Shared {
    pub proxy: Proxy,
    pub limits: Limits,
    pub http1_engine: Http1Engine,
    /// Cancelled as soon as draining starts (so `/readyz` turns 503).
    pub draining: CancellationToken,
    /// The open client connections, counted against `MAX_CONNECTIONS`: one count for every
    /// listener's loop, so that the cap holds for the process.
    pub connections: Arc<Connections>,
}

/// Serves `shared.proxy` on `listener` until `shutdown` completes, then drains. `balanced`:
/// this worker's part in the `balanced` layout, if that is the layout.
pub async fn serve(
    listener: TcpListener,
    shared: Shared,
    balanced: Option<Balanced>,
    shutdown: impl Future<Output = ()>,
) {
    let Shared {
        proxy,
        limits,
        http1_engine,
        draining,
        connections,
    } = shared;
    let mut http1 = auto::Builder::new(TokioExecutor::new());
    http1
        .http1()
        // A client may close its sending side once its request is out: the request is still
        // answered, as the lean engine does, instead of dropped unanswered while it may
        // already be on its way upstream.
        .half_close(true)
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.read_buffer_size());
    // Each HTTP/2 stream runs as a task of its own, reset once its answer waits too long on
    // window the client withholds (`server/stall.rs`).
    let mut http2 = auto::Builder::new(stall::StreamExecutor::new(
        limits.upstream_timeout,
        proxy.metrics(),
    ));
    http2
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.read_buffer_size()).unwrap_or(u32::MAX))
        // Finds peers that vanished without closing, which would otherwise hold streams.
        .keep_alive_interval(Duration::from_secs(30))
        // nginx's default, below hyper's 200: one client holds at most this many of the
        // places `MAX_CONCURRENT_REQUESTS` allows, and its streams waiting for window at once
        // share what its connection moves (`server/stall.rs`).
        .max_concurrent_streams(128)
        // "Rapid reset" (CVE-2023-44487): a client whose resets reach h2 before hyper has
        // taken up their streams gets GOAWAY after this many at once (h2's default, stated
        // because the gateway relies on it; `tests/proxy/http2.rs`). A client that paces its
        // resets is served one request at a time, each bounded by `MAX_CONCURRENT_REQUESTS`.
        .max_pending_accept_reset_streams(20);
    // `first_bytes` has already told the protocol apart, so each connection gets a builder
    // for its protocol alone. The auto builder would sniff again, and on a connection the lean
    // engine hands over mid-way it would take a client's HTTP/2 preface after an HTTP/1.1
    // request for a switch to HTTP/2, which RFC 9113 §3.4 does not allow there.
    let builders = Arc::new(Builders {
        http1: http1.http1_only(),
        http2: http2.http2_only(),
    });
    let graceful = GracefulShutdown::new();
    // Memory the connections of this loop free goes back to the system while it is quiet;
    // for as long as this loop runs, however it ends.
    let _give_back =
        AbortOnDropHandle::new(tokio::spawn(crate::allocator::give_back_while_running()));
    tokio::pin!(shutdown);

    let (handoff, mut inbox) = match balanced {
        Some(Balanced {
            handoffs,
            index,
            inbox,
        }) => (Some(OwnHandoff::new(handoffs, index)), Some(inbox)),
        None => (None, None),
    };
    let local = Arc::new(http1::Local {
        parked: http1::Parked::default(),
        handoff,
    });
    let client = |client: ClientAddr, admitted: Admitted, fresh: bool| Client {
        hyper: Hyper {
            builders: builders.clone(),
            proxy: proxy.clone(),
            watcher: graceful.watcher(),
        },
        client,
        admitted,
        local: local.clone(),
        http1_engine,
        fresh,
    };
    // Serves a connection another worker sent here, from its next request. Counted as moved
    // here, once it has arrived, rather than where it was sent from.
    let adopt = |moved: Moved| {
        // from_std registers the socket with this worker's reactor.
        match tokio::net::TcpStream::from_std(moved.stream) {
            Ok(stream) => {
                proxy.metrics().connection_moved();
                let io = Replay::new(Vec::new(), stream);
                tokio::spawn(client(moved.client, moved.admitted, false).serve(io));
            }
            // The client sees its connection close with no answer, as when the cap sheds it.
            Err(error) => tracing::warn!(%error, "a connection moved here cannot be served"),
        }
    };

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
            Some(moved) = next_moved(&mut inbox) => {
                adopt(moved);
                continue;
            }
            () = &mut shutdown => break,
        };
        // At the cap, the longest-idle connection is asked to close to make room; with none
        // idle, the new connection is closed now, unanswered (see `connection/cap.rs`).
        let Some(admitted) = connections.admit() else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        // What this task holds is held by every idle connection: only what it needs, the
        // rest derived (the limits from the proxy, the peer from the client address).
        let io = Replay::new(Vec::new(), stream);
        tokio::spawn(client(ClientAddr::new(peer), admitted, true).serve(io));
    }

    drop(listener);
    draining.cancel();
    // Connections already on their way here are served (they hear that the gateway drains);
    // any sent later go back to where they were. `recv`, not `try_recv`: a send under way as
    // the inbox closes has its place already, and `try_recv` would call the inbox empty
    // before it lands, leaving that connection unserved; `recv` waits for it, then ends.
    if let Some(inbox) = &mut inbox {
        inbox.close();
        while let Some(moved) = inbox.recv().await {
            adopt(moved);
        }
    }
    tracing::info!(connections = graceful.count(), "draining");
    match tokio::time::timeout(limits.shutdown_grace, graceful.shutdown()).await {
        Ok(()) => tracing::info!("all connections drained"),
        Err(_) => tracing::warn!("shutdown grace period over; closing remaining connections"),
    }
}

/// A worker's part in the `balanced` layout (`workers/balance.rs`): every worker's handoff,
/// its own index, and the inbox of connections other workers send it.
#[derive(Debug)]
pub struct Balanced {
    pub handoffs: Arc<Handoffs>,
    pub index: usize,
    pub inbox: Inbox,
}

/// Waits for the next connection another worker sends; never, without an inbox.
async fn next_moved(inbox: &mut Option<Inbox>) -> Option<Moved> {
    match inbox {
        Some(inbox) => inbox.recv().await,
        None => std::future::pending().await,
    }
}

/// One client connection's task: what it holds of its accept loop.
struct Client {
    hyper: Hyper,
    client: ClientAddr,
    /// Its place under `MAX_CONNECTIONS`, given up when the task ends, unless it moves.
    admitted: Admitted,
    /// What it shares with the other connections of its worker.
    local: Arc<http1::Local>,
    http1_engine: Http1Engine,
    /// Just accepted, rather than moved here from another worker (then it is HTTP/1.1, and
    /// the lean engine served it there).
    fresh: bool,
}

impl Client {
    /// Serves the connection `io` until it ends or moves to another worker: from its first
    /// bytes if it was just accepted, else from its next request.
    // A plain `fn` around an `async move` block, fields used in place: an `async fn`'s
    // arguments would keep a second copy's room in the future (hundreds of bytes), and every
    // idle connection's task is this future.
    #[allow(clippy::manual_async_fn)]
    fn serve(mut self, mut io: Replay) -> impl Future<Output = ()> + Send {
        async move {
            if self.fresh {
                // The auto builder waits without limit for the bytes that tell HTTP/1 from
                // HTTP/2; read them here under the header-read timeout instead.
                let header_read_timeout = self.hyper.proxy.limits().header_read_timeout;
                let closing = self.admitted.slot().closing();
                if !first_bytes::read(&mut io, header_read_timeout, closing).await {
                    return;
                }
            }
            // Decided here, on the connection's first bytes, and only here: bytes the lean
            // engine hands over after a request are HTTP/1.1 whatever they look like, a
            // preface among them included (RFC 9113 §3.4: no upgrade mid-connection).
            let http2 = io.is_http2();
            // The lean engine serves HTTP/1.1 until a request needs hyper. The watcher held
            // meanwhile makes the drain wait for this connection too.
            // A connection the lean engine hands over is mid-request: busy until hyper has
            // begun that request, so that it cannot be shed in between.
            let (io, handover) = if self.http1_engine == Http1Engine::Lean && !http2 {
                loop {
                    let slot = self.admitted.slot();
                    match http1::serve(io, &self.hyper.proxy, &self.client, slot, &self.local).await
                    {
                        Outcome::Closed => return,
                        Outcome::ForHyper(rest) => {
                            slot.idle(std::time::Instant::now());
                            break (rest, Some(slot.begin()));
                        }
                        Outcome::Leaving(stream, to) => {
                            let Some(handoff) = &self.local.handoff else {
                                return;
                            };
                            // Off this worker's reactor; the other registers it with its own.
                            let Ok(stream) = stream.into_std() else {
                                return;
                            };
                            let moved = Moved {
                                stream,
                                client: self.client,
                                admitted: self.admitted,
                            };
                            let back = match handoff.send(to, moved) {
                                Ok(()) => return,
                                // That worker has stopped: the connection stays here.
                                Err(back) => back,
                            };
                            let Ok(stream) = tokio::net::TcpStream::from_std(back.stream) else {
                                return;
                            };
                            (io, self.client, self.admitted) =
                                (Replay::new(Vec::new(), stream), back.client, back.admitted);
                        }
                    }
                }
            } else {
                (io, None)
            };
            let slot = self.admitted.slot().clone();
            // Boxed: hyper's connection state would otherwise sit in every connection's task,
            // the lean engine's idle ones included, whether hyper serves it or not.
            let peer = self.client.addr();
            let served = self.hyper.serve(io, http2, self.client, slot, handover);
            if let Err(error) = Box::pin(served).await {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
            drop(self.admitted);
        }
    }
}

/// hyper's server settings for each protocol.
struct Builders {
    http1: auto::Builder<TokioExecutor>,
    http2: auto::Builder<stall::StreamExecutor>,
}

/// What serves a connection with hyper: all of it (HTTP/2, `HTTP1_ENGINE=hyper`), or the rest
/// of it once the lean engine has handed it over.
struct Hyper {
    /// Shared: a builder's settings are hundreds of bytes, which every connection's task would
    /// otherwise carry.
    builders: Arc<Builders>,
    proxy: Proxy,
    /// Held, this makes the drain wait for the connection.
    watcher: Watcher,
}

impl Hyper {
    /// Serves `io` until it ends, as HTTP/2 if `http2` (it opened with the preface), else as
    /// HTTP/1. `handover`: the lean engine's request in progress, busy until hyper begins it.
    async fn serve(
        self,
        io: Replay,
        http2: bool,
        client: ClientAddr,
        slot: Arc<Slot>,
        handover: Option<Busy>,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let Self {
            builders,
            proxy,
            watcher,
        } = self;
        let limits = *proxy.limits();
        let handover = Mutex::new(handover);
        // Each client connection has upstream connections of its own, driven by this task.
        // HTTP/2 connections are also watched for idleness, which hyper does not bound.
        let (dedicated, drivers) = Dedicated::new();
        let dedicated = Arc::new(dedicated);
        let activity = http2.then(idle::Activity::new);
        let refusals_proxy = proxy.clone();
        // Which of hyper's writes can be its own refusals (HTTP/1 only; see `refusals.rs`).
        let answers = Arc::new(refusals::Answers::default());
        let service = service_fn({
            let activity = activity.clone();
            let slot = slot.clone();
            let answers = answers.clone();
            move |request| {
                let proxy = proxy.clone();
                let dedicated = dedicated.clone();
                let client = client.clone();
                let in_flight = activity.as_ref().map(idle::Activity::begin);
                let answer = answers.begin();
                let busy = slot.begin();
                // std Mutex: never held across .await; taken once per request.
                drop(handover.lock().unwrap_or_else(|e| e.into_inner()).take());
                async move {
                    let response = proxy.handle(request, &client, &dedicated).await;
                    // In flight, and the connection busy, until the response's last byte has
                    // left.
                    let response = response.map(|body| {
                        let body =
                            stall::BodyStall::wrap(body, limits.upstream_timeout, proxy.metrics());
                        Guarded::wrap(body, (in_flight, busy, answer))
                    });
                    Ok::<_, Infallible>(response)
                }
            }
        });
        // Held, this makes the drain wait for the connection; `idle::serve` and
        // `until_closing` do the graceful shutdown themselves when the slot's token is
        // cancelled: the gateway drains, or shed the connection to make room.
        let _counted = watcher;
        // Boxed as `Send` where the types are concrete: inside `drive` the compiler cannot
        // prove the connection future `Send` (rust-lang/rust#110338).
        let io = stall::WriteStall::new(io, limits.upstream_timeout, refusals_proxy.metrics());
        let connection: Pin<Box<dyn Future<Output = _> + Send>> = match activity {
            Some(activity) => Box::pin(async move {
                let connection = builders.http2.serve_connection(TokioIo::new(io), service);
                let mut connection: Pin<Box<dyn idle::GracefulConnection<Output = _> + Send>> =
                    Box::pin(connection.into_owned());
                idle::serve(connection.as_mut(), &activity, &limits, &slot)
                    .await
                    .unwrap_or(Ok(()))
            }),
            None => {
                let io = refusals::Refusals::new(io, refusals_proxy, answers.clone());
                let connection = builders.http1.serve_connection(TokioIo::new(io), service);
                let connection: Pin<Box<dyn idle::GracefulConnection<Output = _> + Send>> =
                    Box::pin(connection.into_owned());
                Box::pin(async move {
                    let quiet = || !slot.is_busy() && answers.quiet();
                    // As on HTTP/2 (`idle.rs`): a shed connection no longer counts against
                    // the cap; a draining one may still finish the head it has begun.
                    let grace = || {
                        if slot.was_shed() {
                            CLOSING_GRACE.min(limits.header_read_timeout)
                        } else {
                            limits.header_read_timeout
                        }
                    };
                    until_closing(connection, slot.closing(), quiet, grace)
                        .await
                        .unwrap_or(Ok(()))
                })
            }
        };
        proxy::drive(connection, drivers).await
    }
}

/// Drives an HTTP/1 `connection` until it ends, asking it to finish and close when `closing`
/// is cancelled (the gateway drains, or shed it to make room). From then on it is looked at
/// every `grace` (as it is then), and dropped (`None`) the first time it is found `quiet`: no
/// request in flight and nothing hyper was given left unwritten, so no answer is ever cut.
/// hyper closes an idle connection at once, but not one with part of a request head read:
/// that one would otherwise wait out the head-read timeout, even shed and no longer counted
/// against the cap.
async fn until_closing<C: idle::GracefulConnection + ?Sized>(
    mut connection: Pin<Box<C>>,
    closing: &CancellationToken,
    quiet: impl Fn() -> bool,
    grace: impl Fn() -> Duration,
) -> Option<C::Output> {
    tokio::select! {
        biased;
        output = connection.as_mut() => return Some(output),
        () = closing.cancelled() => connection.as_mut().graceful_shutdown(),
    }
    let grace = grace();
    loop {
        tokio::select! {
            biased;
            output = connection.as_mut() => return Some(output),
            () = tokio::time::sleep(grace) => {
                if quiet() {
                    tracing::debug!("dropping an HTTP/1 connection that did not close in time");
                    return None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        future::Future,
        pin::Pin,
        sync::{
            atomic::{AtomicBool, Ordering},
            Arc,
        },
        task::{Context, Poll},
    };

    use super::*;

    /// A connection that never ends by itself, and notes being asked to.
    struct Endless(Arc<AtomicBool>);

    impl Future for Endless {
        type Output = ();
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
            Poll::Pending
        }
    }

    impl idle::GracefulConnection for Endless {
        fn graceful_shutdown(self: Pin<&mut Self>) {
            self.0.store(true, Ordering::Release);
        }
    }

    /// Asked to close, a connection is dropped only once it is found quiet (no request in
    /// flight, everything hyper was given written) at one of its grace's ticks: an answer
    /// still leaving, however slowly, is not cut.
    #[tokio::test(start_paused = true)]
    async fn a_closing_connection_is_dropped_only_once_quiet() {
        let asked = Arc::new(AtomicBool::new(false));
        let writing = Arc::new(AtomicBool::new(true));
        let closing = CancellationToken::new();
        let task = tokio::spawn({
            let (asked, writing, closing) = (asked.clone(), writing.clone(), closing.clone());
            async move {
                let quiet = move || !writing.load(Ordering::Acquire);
                let grace = || CLOSING_GRACE;
                until_closing(Box::pin(Endless(asked)), &closing, quiet, grace).await
            }
        });
        tokio::time::sleep(CLOSING_GRACE * 4).await;
        assert!(!asked.load(Ordering::Acquire), "asked before closing");
        closing.cancel();
        tokio::time::sleep(CLOSING_GRACE * 10).await;
        assert!(asked.load(Ordering::Acquire), "not asked to finish");
        assert!(!task.is_finished(), "dropped while its answer was leaving");
        writing.store(false, Ordering::Release);
        tokio::time::sleep(CLOSING_GRACE * 2).await;
        assert!(task.is_finished(), "kept once quiet");
        assert_eq!(task.await.unwrap(), None, "dropped, not ended by itself");
    }

    /// An HTTP/2 connection asked to go away for idleness (here: no request within the
    /// header-read timeout), then shed to make room, no longer counts against the cap: it is
    /// dropped within `CLOSING_GRACE` of the shed, not a header-read timeout after its GOAWAY.
    #[tokio::test(start_paused = true)]
    async fn an_idle_http2_connection_shed_after_its_goaway_is_dropped_within_the_grace() {
        let limits = Limits {
            max_body_bytes: 1024,
            max_header_bytes: 1024,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            upstream_timeout: Duration::from_secs(30),
            max_concurrent_requests: 8,
            max_connections: 1,
            shutdown_grace: Duration::from_secs(30),
            shutdown_delay: Duration::ZERO,
        };
        let metrics = crate::metrics::Metrics::register(&mut Default::default());
        let connections = Connections::new(1, CancellationToken::new(), metrics);
        let admitted = connections.admit().unwrap();
        let asked = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let (asked, slot) = (asked.clone(), admitted.slot().clone());
            async move {
                let mut connection = Box::pin(Endless(asked));
                let activity = idle::Activity::new();
                idle::serve(connection.as_mut(), &activity, &limits, &slot).await
            }
        });
        tokio::time::sleep(limits.header_read_timeout + CLOSING_GRACE).await;
        assert!(asked.load(Ordering::Acquire), "asked to go away when idle");
        assert!(!task.is_finished());

        let _newcomer = connections.admit().expect("room made by shedding it");
        assert!(admitted.slot().was_shed());
        tokio::time::sleep(CLOSING_GRACE * 2).await;
        assert!(task.is_finished(), "still open after the shed");
        assert!(task.await.unwrap().is_none(), "dropped");
    }
}
