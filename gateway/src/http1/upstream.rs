//! The lean engine's upstream connections: its own sockets, with the bytes read from each but
//! not yet used, kept in the client connection's [`Kept`] set (at most one per upstream, as
//! an HTTP/1 client sends one request at a time). Owned by the client connection's task, so
//! no lock and no channel. A client connection that goes idle parks them in its worker's
//! [`Parked`] set (`upstream/kept.rs`), for whichever client connection needs one next.
//!
//! Not for: what is sent over them (`forward.rs`).

use std::{io, time::Duration};

use bytes::BytesMut;
use tokio_util::either::Either;

use crate::upstream::{self, Kept, Stream, Upstream};

/// What an upstream connection's read buffer takes while an exchange uses it.
const READ_BUFFER: usize = 8 * 1024;

/// A socket to an upstream and its unread bytes.
#[derive(Debug)]
pub struct Socket {
    pub stream: Stream,
    pub buf: BytesMut,
}

/// A lean engine's connection to one upstream.
pub type UpstreamConnection = upstream::Connection<Socket>;

/// The idle upstream connections of one client connection.
pub type Upstreams = Kept<Socket>;

/// Upstream connections of this worker's idle client connections.
pub type Parked = upstream::Parked<Socket>;

/// Parks the connections of a client connection that goes idle, without their read buffers
/// (empty: see `is_open`); `checkout` gives them capacity again.
pub fn park(parked: &Parked, upstreams: Upstreams) {
    parked.park(upstreams, |socket| socket.buf = BytesMut::new());
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
        // Boxed, as every wait for a new connection is: rare on kept-alive connections, and
        // the connect's state would otherwise be part of every request's future.
        _ => Box::pin(connect(upstream, connect_timeout)).await,
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
        let read = match &self.stream {
            Either::Left(tcp) => tcp.try_read(&mut probe),
            Either::Right(unix) => unix.try_read(&mut probe),
        };
        matches!(read, Err(error) if error.kind() == io::ErrorKind::WouldBlock)
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
