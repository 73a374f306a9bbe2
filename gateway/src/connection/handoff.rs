//! Moving a client connection from one per-core worker to another between two of its requests
//! (`RUNTIME_LAYOUT=balanced`, issue 17), so that the load decides how many workers run: all
//! of it on one while one is enough, and spread again when that one is saturated
//! (`workers/balance.rs` decides; this file carries out).
//!
//! Each worker has a [`Handoff`]: an order (how many of its connections to give away, and to
//! which worker), the count of its connections in use (a request within the last second: the
//! ones that carry its load), and an inbox. The lean HTTP/1.1 engine
//! asks [`Handoff::take_order`] when a connection is between requests with not one byte of
//! the next request read (`http1.rs`); the accept loop (`server.rs`) then takes the socket off
//! this worker's reactor and sends it, with the client's address and its place under
//! `MAX_CONNECTIONS`, to the other worker's inbox, whose accept loop registers it with its own
//! reactor and serves the next request there. Nothing of a request crosses: a request the
//! client has already sent waits in the kernel's socket buffer, which moves with the socket.
//! Its upstream connections stay behind, parked for the old worker's other connections.
//!
//! Not for: deciding who moves (`workers/balance.rs`), HTTP/2 or hyper's connections (they
//! stay where they were accepted).

use std::sync::{
    atomic::{AtomicU64, AtomicUsize, Ordering},
    Arc, OnceLock,
};

use tokio::sync::mpsc;

use super::Admitted;
use crate::request::ClientAddr;

/// A connection on its way to another worker: its socket, off every reactor, and what the
/// accept loop keeps of it.
#[derive(Debug)]
pub struct Moved {
    pub stream: std::net::TcpStream,
    pub client: ClientAddr,
    pub admitted: Admitted,
}

/// Every worker's [`Handoff`], by worker index; shared by the workers and the balancer.
#[derive(Debug)]
pub struct Handoffs {
    workers: Box<[Handoff]>,
}

/// One worker's side of the balance.
#[derive(Debug)]
pub struct Handoff {
    index: usize,
    /// The standing order: connections still to give away (high 32 bits) and the worker to
    /// give them to (low 32 bits), one word so that a connection reads both at once. Zero: none.
    order: AtomicU64,
    /// Lean-engine connections in use on this worker now: the ones that carry its load, and
    /// may move.
    connections: AtomicUsize,
    inbox: mpsc::UnboundedSender<Moved>,
    /// This worker's runtime, for the balancer to read how busy it is; set once it runs.
    runtime: OnceLock<tokio::runtime::Handle>,
}

/// What a worker's accept loop takes moved connections from.
pub type Inbox = mpsc::UnboundedReceiver<Moved>;

/// Counts a connection in use on its worker while it is held: dropped when the connection
/// goes idle, closes or leaves.
#[derive(Debug)]
pub struct Counted<'h>(&'h Handoff);

/// One worker's own handoff, owned: every worker's, and which is this worker's.
#[derive(Debug)]
pub struct OwnHandoff {
    handoffs: Arc<Handoffs>,
    index: usize,
}

impl OwnHandoff {
    /// Worker `index`'s handoff among `handoffs`; records that it runs on the calling runtime.
    ///
    /// # Panics
    /// If there is no such worker.
    pub fn new(handoffs: Arc<Handoffs>, index: usize) -> Self {
        handoffs.worker(index).running_here();
        Self { handoffs, index }
    }

    /// This worker's handoff.
    pub fn get(&self) -> &Handoff {
        self.handoffs.worker(self.index)
    }

    /// Sends `moved` to worker `to` ([`Handoffs::send`]).
    pub fn send(&self, to: usize, moved: Moved) -> Result<(), Moved> {
        self.handoffs.send(to, moved)
    }
}

impl Handoffs {
    /// Handoffs for `workers` workers, with each worker's inbox, in the same order.
    pub fn new(workers: usize) -> (Arc<Self>, Vec<Inbox>) {
        let (handoffs, inboxes): (Vec<_>, Vec<_>) = (0..workers)
            .map(|index| {
                let (inbox, receiver) = mpsc::unbounded_channel();
                let handoff = Handoff {
                    index,
                    order: AtomicU64::new(0),
                    connections: AtomicUsize::new(0),
                    inbox,
                    runtime: OnceLock::new(),
                };
                (handoff, receiver)
            })
            .unzip();
        let handoffs = Self {
            workers: handoffs.into_boxed_slice(),
        };
        (Arc::new(handoffs), inboxes)
    }

    /// Worker `index`'s handoff.
    ///
    /// # Panics
    /// If there is no such worker.
    pub fn worker(&self, index: usize) -> &Handoff {
        &self.workers[index]
    }

    /// Every worker's handoff, by index.
    pub fn workers(&self) -> &[Handoff] {
        &self.workers
    }

    /// Sends `moved` to worker `to`; gives it back if that worker no longer takes any (it has
    /// stopped: the caller serves the connection where it is).
    pub fn send(&self, to: usize, moved: Moved) -> Result<(), Moved> {
        match self.workers.get(to) {
            Some(worker) => worker.inbox.send(moved).map_err(|refused| refused.0),
            None => Err(moved),
        }
    }
}

impl Handoff {
    /// This worker's index.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Records the runtime this worker runs on; call from that runtime, once.
    fn running_here(&self) {
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let _ = self.runtime.set(handle);
        }
    }

    /// How long this worker's runtime has spent running tasks since it started (every worker
    /// thread of it, summed), if it runs yet.
    pub fn busy_total(&self) -> Option<std::time::Duration> {
        let metrics = self.runtime.get()?.metrics();
        Some(
            (0..metrics.num_workers())
                .map(|worker| metrics.worker_total_busy_duration(worker))
                .sum(),
        )
    }

    /// Whether this worker takes connections: false once it has stopped (its inbox is
    /// closed) or if it never started.
    pub fn takes_connections(&self) -> bool {
        !self.inbox.is_closed()
    }

    /// Lean-engine connections in use on this worker now (a request within the last second).
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// Counts a connection on this worker until the guard is dropped.
    pub fn count(&self) -> Counted<'_> {
        self.connections.fetch_add(1, Ordering::Relaxed);
        Counted(self)
    }

    /// Orders this worker to give `count` of its connections to worker `to`, replacing any
    /// order it had; `count` 0 (or `to` itself) cancels. A count past `u32::MAX` stands for
    /// as many as it has (`balance::ALL`): no worker holds that many.
    pub fn order(&self, count: usize, to: usize) {
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        let word = match u32::try_from(to) {
            Ok(to) if count > 0 && to as usize != self.index => {
                (u64::from(count) << 32) | u64::from(to)
            }
            _ => 0,
        };
        self.order.store(word, Ordering::Relaxed);
    }

    /// Whether this worker has an order standing: one atomic load.
    pub fn has_order(&self) -> bool {
        self.order.load(Ordering::Relaxed) >> 32 != 0
    }

    /// For a connection between requests: the worker it should move to, if this worker has
    /// an order standing (which it then counts down). One atomic load when there is none.
    pub fn take_order(&self) -> Option<usize> {
        let mut word = self.order.load(Ordering::Relaxed);
        loop {
            if word >> 32 == 0 {
                return None;
            }
            match self.order.compare_exchange_weak(
                word,
                word - (1 << 32),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some((word & u64::from(u32::MAX)) as usize),
                Err(now) => word = now,
            }
        }
    }
}

impl<'h> Counted<'h> {
    /// The handoff of the worker it is counted on.
    pub fn handoff(&self) -> &'h Handoff {
        self.0
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_is_taken_as_many_times_as_it_says_then_never() {
        let (handoffs, _inboxes) = Handoffs::new(3);
        let worker = handoffs.worker(1);
        assert_eq!(worker.take_order(), None);
        assert!(!worker.has_order());
        worker.order(2, 2);
        assert!(worker.has_order());
        assert_eq!(worker.take_order(), Some(2));
        assert_eq!(worker.take_order(), Some(2));
        assert_eq!(worker.take_order(), None);
        assert!(!worker.has_order());
        // A new order replaces the old; an order to itself, or of none, cancels.
        worker.order(5, 0);
        worker.order(1, 1);
        assert_eq!(worker.take_order(), None);
        worker.order(5, 0);
        worker.order(0, 2);
        assert_eq!(worker.take_order(), None);
        // More than the word holds stands for all of them.
        worker.order(usize::MAX, 2);
        for _ in 0..1000 {
            assert_eq!(worker.take_order(), Some(2));
        }
    }

    #[test]
    fn a_worker_counts_the_connections_it_holds() {
        let (handoffs, _inboxes) = Handoffs::new(1);
        let worker = handoffs.worker(0);
        let first = worker.count();
        let second = worker.count();
        assert_eq!(worker.connections(), 2);
        drop(first);
        assert_eq!(worker.connections(), 1);
        drop(second);
        assert_eq!(worker.connections(), 0);
    }

    #[tokio::test]
    async fn a_worker_that_stopped_gives_the_connection_back() {
        let (handoffs, inboxes) = Handoffs::new(2);
        drop(inboxes);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let connections = super::super::Connections::new(
            1,
            tokio_util::sync::CancellationToken::new(),
            crate::metrics::Metrics::register(&mut Default::default()),
        );
        let moved = Moved {
            client: ClientAddr::new(stream.peer_addr().unwrap()),
            stream,
            admitted: connections.admit().unwrap(),
        };
        assert!(!handoffs.worker(1).takes_connections());
        let back = handoffs.send(1, moved).expect_err("worker 1 has stopped");
        assert!(handoffs.send(7, back).is_err(), "no worker 7");
    }
}
