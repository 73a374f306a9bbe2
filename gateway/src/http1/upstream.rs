//! The lean engine's upstream connections: its own sockets, with the bytes read from each but
//! not yet used, kept in the client connection's [`Kept`] set (at most one per upstream, as
//! an HTTP/1 client sends one request at a time). Owned by the client connection's task, so
//! no lock and no channel. A client connection that goes idle parks them in its worker's
//! [`Parked`] set, a few dozen at most, for whichever client connection needs one next.
//!
//! Not for: what is sent over them (`forward.rs`).

use std::{io, sync::Mutex, time::Duration};

use bytes::BytesMut;
use tokio::net::TcpStream;

use crate::upstream::{self, Kept, Upstream};

/// What an upstream connection's read buffer takes while an exchange uses it.
const READ_BUFFER: usize = 8 * 1024;

/// A socket to an upstream and its unread bytes.
#[derive(Debug)]
pub struct Socket {
    pub stream: TcpStream,
    pub buf: BytesMut,
}

/// A lean engine's connection to one upstream.
pub type UpstreamConnection = upstream::Connection<Socket>;

/// The idle upstream connections of one client connection.
pub type Upstreams = Kept<Socket>;

/// How many idle upstream connections a worker keeps for its idle client connections (the
/// figure nginx's documentation uses for `keepalive`). More would sit open in the upstream
/// for nothing: a client connection back from idle takes one, and makes one if none is left.
const PARKED_PER_WORKER: usize = 32;

/// Upstream connections that no client connection holds: those of client connections that
/// went idle. One set per accept loop, so per worker: its sockets belong to that worker's
/// runtime. Locked once when a client connection goes idle and once when it comes back, not
/// per request.
#[derive(Debug, Default)]
pub struct Parked {
    idle: Mutex<Vec<UpstreamConnection>>,
}

impl Parked {
    /// Keeps the connections of a client connection that goes idle, without their buffers
    /// (empty: see `is_open`), dropping the oldest beyond `PARKED_PER_WORKER`.
    pub fn park(&self, upstreams: Upstreams) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        for mut connection in upstreams.into_idle() {
            connection.io.buf = BytesMut::new();
            if idle.len() == PARKED_PER_WORKER {
                idle.remove(0);
            }
            idle.push(connection);
        }
    }

    /// The most recently parked connection to `upstream`, the likeliest to be open still.
    fn take(&self, upstream: &Upstream) -> Option<UpstreamConnection> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let index = idle.iter().rposition(|parked| parked.is_for(upstream))?;
        Some(idle.remove(index))
    }
}

/// An open connection to `upstream`: the client connection's idle one, else a parked one, if
/// the upstream has not closed it; else a new one.
pub async fn checkout(
    upstreams: &mut Upstreams,
    parked: &Parked,
    upstream: &Upstream,
    connect_timeout: Duration,
) -> io::Result<UpstreamConnection> {
    let kept = upstreams.take(upstream).or_else(|| parked.take(upstream));
    match kept {
        Some(mut connection) if connection.io.is_open() => {
            connection.io.buf.reserve(READ_BUFFER);
            Ok(connection)
        }
        _ => connect(upstream, connect_timeout).await,
    }
}

impl Socket {
    /// False when the upstream has closed the idle connection or sent bytes nobody asked
    /// for; either way it cannot carry another exchange. Costs no system call unless the
    /// socket has become readable.
    fn is_open(&self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut probe = [0; 1];
        matches!(
            self.stream.try_read(&mut probe),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock
        )
    }
}

/// Opens a new connection to `upstream` within `connect_timeout`.
pub async fn connect(
    upstream: &Upstream,
    connect_timeout: Duration,
) -> io::Result<UpstreamConnection> {
    let stream = upstream.connect(connect_timeout).await?;
    let socket = Socket {
        stream,
        buf: BytesMut::with_capacity(READ_BUFFER),
    };
    Ok(UpstreamConnection::new(upstream, socket))
}
