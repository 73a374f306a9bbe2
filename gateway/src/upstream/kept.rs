//! The upstream connections one client connection keeps between its requests, whatever
//! carries their bytes: the lean engine's own sockets (`http1/upstream.rs`) or hyper's client
//! connections (`proxy/dedicated.rs`). Owned by the client connection, so a request crosses
//! no shared pool: the set is small (one connection per upstream for an HTTP/1 client, one
//! per concurrent stream for an HTTP/2 client) and dies with the client connection.
//!
//! A client connection that goes idle may give them up to its worker's [`Parked`] set, where
//! the next client connection of that worker to need one takes it.
//!
//! Not for: telling whether a kept connection still works (each carrier knows its own), nor
//! when a lost request may be sent again ([`super::may_retry`]).

use std::{
    path::Path,
    sync::{Arc, Mutex},
};

use http::{uri::Authority, HeaderValue};

use super::Upstream;

/// A connection to one upstream, over the carrier `T`.
#[derive(Debug)]
pub struct Connection<T> {
    authority: Authority,
    socket: Option<Arc<Path>>,
    /// `Host` for this upstream, as [`Upstream::host_header`] writes it.
    pub host: HeaderValue,
    /// What carries the bytes.
    pub io: T,
    /// Whether an exchange has completed on it before: only then can the upstream have
    /// closed it while it sat idle, and only then is a lost request worth sending again.
    pub reused: bool,
}

impl<T> Connection<T> {
    /// Whether this is a connection to `upstream`.
    pub fn is_for(&self, upstream: &Upstream) -> bool {
        // Both are the configured authority, byte for byte: no need for a comparison that
        // ignores case.
        self.authority.as_str() == upstream.authority.as_str() && self.socket == upstream.socket
    }

    /// A new connection to `upstream`, carried by `io`.
    pub fn new(upstream: &Upstream, io: T) -> Self {
        Self {
            authority: upstream.authority.clone(),
            socket: upstream.socket.clone(),
            host: upstream.host_header(),
            io,
            reused: false,
        }
    }
}

/// The idle connections of one client connection.
#[derive(Debug)]
pub struct Kept<T> {
    idle: Vec<Connection<T>>,
}

impl<T> Default for Kept<T> {
    fn default() -> Self {
        Self { idle: Vec::new() }
    }
}

impl<T> Kept<T> {
    /// Takes an idle connection to `upstream` out of the set, if there is one. The caller
    /// checks that it still works before using it.
    pub fn take(&mut self, upstream: &Upstream) -> Option<Connection<T>> {
        let index = self.idle.iter().position(|kept| kept.is_for(upstream))?;
        Some(self.idle.swap_remove(index))
    }

    /// Takes the most recently kept connection to `upstream` that `ready` accepts, first
    /// dropping those to it that `closed` says are done for. For a set shared by concurrent
    /// requests (an HTTP/2 client's streams), where a connection is kept as soon as its
    /// answer's head has come and may still be carrying that answer's body: a request must
    /// not wait behind another's download for a connection it could open anew.
    pub fn take_ready(
        &mut self,
        upstream: &Upstream,
        ready: impl Fn(&T) -> bool,
        closed: impl Fn(&T) -> bool,
    ) -> Option<Connection<T>> {
        self.idle
            .retain(|kept| !(kept.is_for(upstream) && closed(&kept.io)));
        let index = self
            .idle
            .iter()
            .rposition(|kept| kept.is_for(upstream) && ready(&kept.io))?;
        // In order: the oldest stays first, for `put_back_within` to close.
        Some(self.idle.remove(index))
    }

    /// Keeps `connection` as [`Kept::put_back`] does, in a set of at most `max`: those that
    /// `closed` says are done for are dropped first, and if the set is still full, its
    /// oldest connection (to any upstream) is closed to make room.
    pub fn put_back_within(
        &mut self,
        connection: Connection<T>,
        max: usize,
        closed: impl Fn(&T) -> bool,
    ) {
        self.idle.retain(|kept| !closed(&kept.io));
        if self.idle.len() >= max.max(1) {
            self.idle.remove(0);
        }
        self.put_back(connection);
    }

    /// Keeps `connection` for a later request to its upstream. One that failed is simply
    /// never put back, so the next request makes a new one.
    pub fn put_back(&mut self, mut connection: Connection<T>) {
        connection.reused = true;
        // Room for this one alone: a client usually talks to one upstream, and `push` would
        // make room for four, hundreds of bytes held by every idle client connection.
        self.idle.reserve_exact(1);
        self.idle.push(connection);
    }
}

/// Connections that no client connection holds: those of client connections that went idle.
/// One set per worker (its sockets belong to that worker's runtime), locked when a client
/// connection goes idle and when it comes back, never per request. Bounded: beyond
/// [`Parked::MAX`] the oldest is closed, since more would only sit open in the upstream.
#[derive(Debug)]
pub struct Parked<T> {
    idle: Mutex<Vec<Connection<T>>>,
}

impl<T> Default for Parked<T> {
    fn default() -> Self {
        Self {
            idle: Mutex::new(Vec::new()),
        }
    }
}

impl<T> Parked<T> {
    /// How many connections a worker keeps parked: the figure nginx's documentation uses for
    /// `keepalive`.
    pub const MAX: usize = 32;

    /// Parks the connections a client connection kept, each readied for the wait by
    /// `readied` (the lean engine drops its read buffer), closing the oldest beyond
    /// [`Parked::MAX`].
    pub fn park(&self, kept: Kept<T>, mut readied: impl FnMut(&mut T)) {
        // std Mutex: never held across .await.
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        for mut connection in kept.idle {
            readied(&mut connection.io);
            if idle.len() == Self::MAX {
                idle.remove(0);
            }
            idle.push(connection);
        }
    }

    /// The most recently parked connection to `upstream`, the likeliest to be open still. The
    /// caller checks that it still works before using it.
    pub fn take(&self, upstream: &Upstream) -> Option<Connection<T>> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let index = idle.iter().rposition(|parked| parked.is_for(upstream))?;
        Some(idle.remove(index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(raw: &str) -> Upstream {
        Upstream::parse(raw).unwrap()
    }

    #[test]
    fn a_connection_is_taken_only_for_its_own_upstream() {
        let (a, b) = (upstream("http://a:1"), upstream("http://b:1"));
        let mut kept = Kept::default();
        kept.put_back(Connection::new(&a, "to a"));
        assert!(kept.take(&b).is_none());
        let taken = kept.take(&a).expect("a's connection");
        assert_eq!(taken.io, "to a");
        assert!(
            taken.reused,
            "a connection put back has carried an exchange"
        );
        assert!(
            kept.take(&a).is_none(),
            "a taken connection is out of the set"
        );
    }

    /// A kept connection as the tests see it: a name, whether it is ready, whether closed.
    type Fake = (&'static str, bool, bool);

    #[test]
    fn the_newest_ready_connection_is_taken_and_closed_ones_are_dropped() {
        let (a, b) = (upstream("http://a:1"), upstream("http://b:1"));
        let mut kept: Kept<Fake> = Kept::default();
        for io in [
            ("old", true, false),
            ("gone", false, true),
            ("busy", false, false),
        ] {
            kept.put_back(Connection::new(&a, io));
        }
        kept.put_back(Connection::new(&b, ("to b", true, false)));
        let (ready, closed) = (|io: &Fake| io.1, |io: &Fake| io.2);
        let taken = kept.take_ready(&a, ready, closed).expect("a ready one");
        assert_eq!(taken.io.0, "old", "the busy one is passed over");
        assert!(kept.take_ready(&a, ready, closed).is_none());
        // The closed one was dropped; the busy one and b's stay.
        let left: Vec<_> = kept.idle.iter().map(|kept| kept.io.0).collect();
        assert_eq!(left, ["busy", "to b"]);
    }

    #[test]
    fn a_full_set_drops_closed_ones_then_closes_its_oldest() {
        let a = upstream("http://a:1");
        let closed = |io: &Fake| io.2;
        let mut kept: Kept<Fake> = Kept::default();
        for io in [("1", true, false), ("2", true, true), ("3", true, false)] {
            kept.put_back(Connection::new(&a, io));
        }
        kept.put_back_within(Connection::new(&a, ("4", true, false)), 3, closed);
        let left: Vec<_> = kept.idle.iter().map(|kept| kept.io.0).collect();
        assert_eq!(left, ["1", "3", "4"], "the closed one made room");
        kept.put_back_within(Connection::new(&a, ("5", true, false)), 3, closed);
        let left: Vec<_> = kept.idle.iter().map(|kept| kept.io.0).collect();
        assert_eq!(left, ["3", "4", "5"], "then the oldest");
    }

    /// What a client connection going idle hands over: one kept connection.
    fn kept(upstream: &Upstream, io: usize) -> Kept<usize> {
        let mut kept = Kept::default();
        kept.put_back(Connection::new(upstream, io));
        kept
    }

    #[test]
    fn a_parked_connection_goes_newest_first_and_only_to_its_own_upstream() {
        let (a, b) = (upstream("http://a:1"), upstream("http://b:1"));
        let parked = Parked::default();
        parked.park(kept(&a, 1), |_| {});
        parked.park(kept(&a, 2), |io| *io += 100);
        assert!(parked.take(&b).is_none());
        let newest = parked.take(&a).expect("a parked connection to a");
        assert_eq!(newest.io, 102, "the newest, readied for the wait");
        assert!(newest.reused);
        assert_eq!(parked.take(&a).map(|c| c.io), Some(1));
        assert!(parked.take(&a).is_none());
    }

    #[test]
    fn beyond_the_bound_the_oldest_parked_connection_is_closed() {
        let a = upstream("http://a:1");
        let parked = Parked::default();
        for io in 0..Parked::<usize>::MAX + 3 {
            parked.park(kept(&a, io), |_| {});
        }
        let mut left = Vec::new();
        while let Some(connection) = parked.take(&a) {
            left.push(connection.io);
        }
        let expected: Vec<usize> = (3..Parked::<usize>::MAX + 3).rev().collect();
        assert_eq!(left, expected, "the three oldest were closed");
    }

    #[test]
    fn a_connection_over_one_socket_is_not_taken_for_another() {
        let (a, b) = (upstream("unix:/run/a.sock"), upstream("unix:/run/b.sock"));
        let tcp = upstream("http://localhost");
        let mut kept = Kept::default();
        kept.put_back(Connection::new(&a, "to a"));
        assert!(kept.take(&b).is_none(), "same Host, another socket");
        assert!(kept.take(&tcp).is_none(), "same Host, over TCP");
        assert_eq!(
            kept.take(&a).map(|c| c.host),
            Some("localhost".parse().unwrap())
        );
    }

    #[test]
    fn a_new_connection_is_not_reused() {
        let connection = Connection::new(&upstream("http://a:8080"), ());
        assert!(!connection.reused);
        assert_eq!(connection.host, "a:8080");
    }
}
