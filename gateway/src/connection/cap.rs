//! The cap on open client connections (`MAX_CONNECTIONS`) and what happens at it: the
//! connection that has been idle between requests the longest is asked to close to make room;
//! if every connection is mid-request, the new one is closed at once, unanswered. Also counts
//! open connections and sheds for `/metrics`, and logs the sheds at most once a second.
//!
//! Each connection has a [`Slot`]: whether it is idle and since when (two atomic stores per
//! request, nothing locked), and a token that asks it to close, a child of the draining token
//! so that engines watch one signal for both. The registry of slots is locked only to open,
//! close or shed a connection; picking the longest idle scans it, and only at the cap.
//!
//! Not for: serving connections (`server.rs`, `http1.rs`), or the per-request concurrency
//! limit (`MAX_CONCURRENT_REQUESTS`, `proxy.rs`).

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Instant,
};

use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// How long a connection shed to make room may take to close once nothing is in flight on it
/// (and hyper has written all it was given): room for a GOAWAY, or for the rest of a request
/// head already on its way. A shed connection no longer counts against the cap, so this bounds
/// how far open sockets can exceed `MAX_CONNECTIONS`: by the connections accepted within it.
/// (A connection with a request begun, closing because the gateway drains, has the head-read
/// timeout instead, and the drain's own grace period bounds the whole; one that has sent
/// nothing yet gets this grace for its first bytes either way.)
pub const CLOSING_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// The open client connections of one listener.
#[derive(Debug)]
pub struct Connections {
    max: usize,
    /// The zero of every slot's clock.
    epoch: Instant,
    /// Asks every connection to close; each slot's token is a child of it.
    draining: CancellationToken,
    registry: Mutex<Registry>,
    metrics: Metrics,
    log: ShedLog,
}

#[derive(Debug, Default)]
struct Registry {
    next_id: u64,
    /// Connections counted against the cap: open and not yet asked to close.
    slots: HashMap<u64, Arc<Slot>>,
}

/// One connection's state, shared by the task serving it and the registry.
#[derive(Debug)]
pub struct Slot {
    id: u64,
    epoch: Instant,
    /// Requests in flight on the connection (HTTP/2 may have several).
    busy: AtomicUsize,
    /// Nanoseconds after `epoch` when the connection last became idle.
    idle_since: AtomicU64,
    closing: CancellationToken,
    /// Asked to close to make room under the cap (rather than by the drain).
    shed: AtomicBool,
}

/// Removes the connection from the registry and the open gauge when its task ends.
#[derive(Debug)]
pub struct Admitted {
    slot: Arc<Slot>,
    connections: Arc<Connections>,
}

/// Marks a request in flight on its connection until dropped.
#[derive(Debug)]
pub struct Busy(Arc<Slot>);

impl Connections {
    /// A registry admitting at most `max` connections (at least 1).
    pub fn new(max: usize, draining: CancellationToken, metrics: Metrics) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            epoch: Instant::now(),
            draining,
            registry: Mutex::default(),
            metrics,
            log: ShedLog::default(),
        })
    }

    /// Counts in a connection just accepted, making room by shedding the longest-idle one if
    /// the cap is reached; `None` when every connection is mid-request: the caller closes the
    /// new one.
    pub fn admit(self: &Arc<Self>) -> Option<Admitted> {
        let slot = {
            // std Mutex: never held across .await, and held briefly except for the scan.
            let mut registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
            if registry.slots.len() >= self.max {
                let Some(victim) = registry.longest_idle() else {
                    drop(registry);
                    self.metrics.connection_shed("refused");
                    self.log.shed("refused");
                    return None;
                };
                let victim = registry.slots.remove(&victim).expect("just found");
                victim.shed.store(true, Ordering::Release);
                victim.closing.cancel();
                self.metrics.connection_shed("idle");
                self.log.shed("idle");
            }
            let id = registry.next_id;
            registry.next_id += 1;
            let slot = Arc::new(Slot {
                id,
                epoch: self.epoch,
                busy: AtomicUsize::new(0),
                idle_since: AtomicU64::new(0),
                closing: self.draining.child_token(),
                shed: AtomicBool::new(false),
            });
            slot.idle(Instant::now());
            registry.slots.insert(id, slot.clone());
            slot
        };
        self.metrics.connection_opened();
        Some(Admitted {
            slot,
            connections: self.clone(),
        })
    }
}

impl Registry {
    /// The connection idle between requests the longest, if any is idle.
    fn longest_idle(&self) -> Option<u64> {
        self.slots
            .values()
            .filter(|slot| slot.busy.load(Ordering::Acquire) == 0)
            .min_by_key(|slot| (slot.idle_since.load(Ordering::Acquire), slot.id))
            .map(|slot| slot.id)
    }
}

impl Admitted {
    /// The connection's state, for its engine to keep up to date.
    pub fn slot(&self) -> &Arc<Slot> {
        &self.slot
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let connections = &self.connections;
        connections
            .registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .slots
            .remove(&self.slot.id);
        connections.metrics.connection_closed();
    }
}

impl Slot {
    /// Cancelled when the connection should close once idle: it was shed, or the gateway
    /// is draining.
    pub fn closing(&self) -> &CancellationToken {
        &self.closing
    }

    /// Whether the connection was asked to close to make room under the cap: it no longer
    /// counts against it, so it gets only [`CLOSING_GRACE`] to finish closing.
    pub fn was_shed(&self) -> bool {
        self.shed.load(Ordering::Acquire)
    }

    /// Whether a request is in flight on the connection.
    pub fn is_busy(&self) -> bool {
        self.busy.load(Ordering::Acquire) > 0
    }

    /// A request has started; the connection is busy until the guard is dropped.
    pub fn begin(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::AcqRel);
        Busy(self.clone())
    }

    /// For an engine with one request at a time (the lean one): a request has started.
    pub fn busy(&self) {
        self.busy.store(1, Ordering::Release);
    }

    /// For an engine with one request at a time: the connection waits for the next request
    /// since `now`.
    pub fn idle(&self, now: Instant) {
        let since = now.saturating_duration_since(self.epoch).as_nanos();
        self.idle_since
            .store(u64::try_from(since).unwrap_or(u64::MAX), Ordering::Release);
        self.busy.store(0, Ordering::Release);
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        // Idle since now, if this was the last request in flight.
        let since = self.0.epoch.elapsed().as_nanos();
        self.0
            .idle_since
            .store(u64::try_from(since).unwrap_or(u64::MAX), Ordering::Release);
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Logs sheds at most once a second, with how many happened since the last line, so that a
/// flood of connections does not flood the log.
#[derive(Debug)]
struct ShedLog {
    started: Instant,
    /// Seconds after `started` of the last line, plus one (0: never logged).
    last: AtomicU64,
    unlogged: AtomicU64,
}

impl Default for ShedLog {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            last: AtomicU64::new(0),
            unlogged: AtomicU64::new(0),
        }
    }
}

impl ShedLog {
    fn shed(&self, reason: &'static str) {
        self.unlogged.fetch_add(1, Ordering::AcqRel);
        let second = self.started.elapsed().as_secs() + 1;
        let last = self.last.load(Ordering::Acquire);
        if last == second
            || self
                .last
                .compare_exchange(last, second, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return;
        }
        let sheds = self.unlogged.swap(0, Ordering::AcqRel);
        tracing::warn!(
            reason,
            sheds,
            "MAX_CONNECTIONS reached: closing connections (reason idle: the longest-idle one \
             made room; refused: every connection was mid-request, so the new one was closed)"
        );
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::registry::Registry as Exposition;

    use super::*;

    fn connections(max: usize) -> Arc<Connections> {
        let metrics = Metrics::register(&mut Exposition::default());
        Connections::new(max, CancellationToken::new(), metrics)
    }

    #[test]
    fn at_the_cap_the_longest_idle_connection_makes_room() {
        let connections = connections(2);
        let first = connections.admit().unwrap();
        let second = connections.admit().unwrap();
        // The first has served a request since: now the second has been idle the longest.
        drop(first.slot().begin());
        let third = connections.admit().expect("room made");
        assert!(second.slot().closing().is_cancelled());
        assert!(!first.slot().closing().is_cancelled());
        assert!(!third.slot().closing().is_cancelled());
    }

    #[test]
    fn a_busy_connection_is_never_shed_and_the_new_one_is_refused() {
        let connections = connections(2);
        let first = connections.admit().unwrap();
        let second = connections.admit().unwrap();
        let _busy = first.slot().begin();
        second.slot().busy();
        assert!(connections.admit().is_none());
        assert!(!first.slot().closing().is_cancelled());
        assert!(!second.slot().closing().is_cancelled());
        // A closed connection frees its place.
        drop(second);
        assert!(connections.admit().is_some());
    }

    #[test]
    fn draining_reaches_every_connection() {
        let draining = CancellationToken::new();
        let metrics = Metrics::register(&mut Exposition::default());
        let connections = Connections::new(4, draining.clone(), metrics);
        let admitted = connections.admit().unwrap();
        draining.cancel();
        assert!(admitted.slot().closing().is_cancelled());
    }
}
