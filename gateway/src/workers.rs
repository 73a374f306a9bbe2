//! The thread-per-core layouts (issue 17; the default is `balanced`): `WORKER_THREADS` workers,
//! each a current-thread Tokio runtime on a thread of its own accepting on a listener of its
//! own, all bound to the same address with `SO_REUSEPORT` so the kernel spreads connections
//! across them, the way nginx's and Pingora's workers run: no work stealing, no cross-thread
//! wake-ups, no shared run queue. The main thread's runtime is worker 0 and also runs the
//! admin listener and the background tasks (key refresh, revocation feed, upstream probe).
//!
//! - `per-core`: a connection lives and dies on the worker that accepted it.
//! - `balanced`: the same, except that a balancer (`workers/balance.rs`) moves connections
//!   between workers between their requests: all to worker 0 while the load fits there, spread
//!   again when a worker is saturated (`connection/handoff.rs` carries them).
//! - `per-core-shared-accept` gives every worker a descriptor of one listener instead, so
//!   whichever is awake accepts; it measured worse (specs/research.md).
//!
//! Everything else is shared as in the `shared` layout: the `Proxy` (token cache, key set,
//! revocation set, metrics, concurrency limit) is `Arc`-shared and thread-safe, and every
//! worker drains on the same shutdown and cancels the same `draining` token for `/readyz`.
//! This file only binds and starts workers; what a worker does is `server::serve`.

mod balance;

use std::{future::Future, io, net::SocketAddr, thread};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::{net::TcpListener, sync::oneshot};
use tokio_util::{sync::CancellationToken, task::AbortOnDropHandle};

use crate::{
    config::{Http1Engine, Limits, RuntimeLayout},
    connection::{Connections, Handoffs},
    metrics::Metrics,
    proxy::Proxy,
    server::{self, Balanced, Shared},
};

/// The accept backlog of each listener: Tokio's own default for `TcpListener::bind`.
const BACKLOG: i32 = 1024;

/// The public listeners: the one the calling runtime serves, and one more per extra worker.
#[derive(Debug)]
pub struct Listeners {
    first: TcpListener,
    workers: Vec<std::net::TcpListener>,
    /// Whether connections move between the workers (`balanced`).
    balanced: bool,
}

impl Listeners {
    /// Binds `address` for `workers` workers. The `shared` layout, or a single worker,
    /// binds one plain listener as before; `per-core` and `balanced` bind `workers` listeners
    /// sharing the address through `SO_REUSEPORT` (port 0: the first picks the port, the rest
    /// join it);
    /// `per-core-shared-accept` one listener with a descriptor per worker.
    /// Must run inside a Tokio runtime.
    pub async fn bind(
        address: SocketAddr,
        layout: RuntimeLayout,
        workers: usize,
    ) -> io::Result<Self> {
        if layout == RuntimeLayout::Shared || workers <= 1 {
            let first = TcpListener::bind(address).await?;
            return Ok(Self {
                first,
                workers: Vec::new(),
                balanced: false,
            });
        }
        let (first, workers) = if layout == RuntimeLayout::PerCoreSharedAccept {
            // One socket, one descriptor per worker: whichever worker is awake accepts.
            let first = listener(address, false)?;
            let workers = (1..workers)
                .map(|_| first.try_clone())
                .collect::<io::Result<_>>()?;
            (first, workers)
        } else {
            let first = listener(address, true)?;
            let address = first.local_addr()?;
            let workers = (1..workers)
                .map(|_| listener(address, true))
                .collect::<io::Result<_>>()?;
            (first, workers)
        };
        let first = TcpListener::from_std(first)?;
        Ok(Self {
            first,
            workers,
            balanced: layout == RuntimeLayout::Balanced,
        })
    }

    /// The address bound (the kernel's choice of port when 0 was asked for).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.first.local_addr()
    }
}

/// The threads the main runtime needs: all the workers in the `shared` layout; in the
/// per-core layouts one, since it is worker 0 and the others bring their own.
pub fn main_runtime_threads(layout: RuntimeLayout, workers: usize) -> usize {
    match layout {
        RuntimeLayout::Shared => workers,
        RuntimeLayout::PerCore | RuntimeLayout::Balanced | RuntimeLayout::PerCoreSharedAccept => 1,
    }
}

/// A non-blocking listener on `address` with `SO_REUSEADDR` (as Tokio's `bind` sets it) and,
/// if `reuse_port`, `SO_REUSEPORT`. Linux lets only sockets of the same user join the group.
fn listener(address: SocketAddr, reuse_port: bool) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(reuse_port)?;
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Serves `proxy` on every listener until `shutdown` completes; each worker then drains its
/// own connections (`server::serve`), and this returns once all have.
pub async fn serve(
    listeners: Listeners,
    proxy: Proxy,
    limits: Limits,
    http1_engine: Http1Engine,
    draining: CancellationToken,
    shutdown: impl Future<Output = ()>,
) {
    let stop = CancellationToken::new();
    // One count of open connections for every worker, so MAX_CONNECTIONS holds for the
    // process and a worker at the cap sheds the longest-idle connection of any worker.
    let connections = Connections::new(
        limits.max_connections,
        draining.clone(),
        proxy.metrics().clone(),
    );
    let shared = Shared {
        proxy,
        limits,
        http1_engine,
        draining,
        connections,
    };
    // In the `balanced` layout, each worker's part, in worker order (0 is this runtime's), and
    // the balancer, which runs here for as long as this does.
    let (parts, _balancer) = if listeners.balanced {
        let (parts, balancer) = balanced_parts(listeners.workers.len() + 1, shared.proxy.metrics());
        (parts, Some(balancer))
    } else {
        (Vec::new(), None)
    };
    let mut parts = parts.into_iter();
    let first_part = parts.next();
    let mut finished = Vec::with_capacity(listeners.workers.len());
    for (index, listener) in listeners.workers.into_iter().enumerate() {
        let (done, finished_rx) = oneshot::channel::<()>();
        let (shared, stop) = (shared.clone(), stop.clone());
        let balanced = parts.next();
        let spawned = thread::Builder::new()
            .name(format!("gateway-worker-{}", index + 1))
            .spawn(move || {
                // Built here, not up front: a runtime dropped inside the caller's async
                // context (a failed start) would panic.
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    // The listener closes with this thread, so the kernel stops routing
                    // connections to it; the other workers carry on.
                    Err(error) => {
                        tracing::error!(%error, "worker cannot start its runtime");
                        return;
                    }
                };
                runtime.block_on(async move {
                    // from_std registers the socket with this thread's runtime.
                    match TcpListener::from_std(listener) {
                        Ok(listener) => {
                            let stopped = stop.cancelled_owned();
                            server::serve(listener, shared, balanced, stopped).await;
                        }
                        Err(error) => tracing::error!(%error, "worker cannot use its listener"),
                    }
                });
                // Dropped unsent if the worker panicked; the receiver sees that too.
                let _ = done.send(());
            });
        match spawned {
            Ok(_) => finished.push(finished_rx),
            // Its listener is closed with the closure, so the kernel stops routing to it.
            Err(error) => tracing::error!(%error, "cannot start a worker thread"),
        }
    }
    let stopping = async {
        shutdown.await;
        stop.cancel();
    };
    server::serve(listeners.first, shared, first_part, stopping).await;
    for worker in finished {
        let _ = worker.await;
    }
}

/// The `balanced` layout's parts for `workers` workers, in worker order, and its balancer,
/// started on the calling runtime, which runs until the handle is dropped.
fn balanced_parts(workers: usize, metrics: &Metrics) -> (Vec<Balanced>, AbortOnDropHandle<()>) {
    let (handoffs, inboxes) = Handoffs::new(workers);
    let balancer = tokio::spawn(balance::run(handoffs.clone(), metrics.clone()));
    let parts = inboxes
        .into_iter()
        .enumerate()
        .map(|(index, inbox)| Balanced {
            handoffs: handoffs.clone(),
            index,
            inbox,
        })
        .collect();
    (parts, AbortOnDropHandle::new(balancer))
}
