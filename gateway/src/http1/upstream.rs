//! One client connection's upstream connections for the lean engine: at most one per
//! upstream, made on first use, reused while the upstream keeps it open, and closed with the
//! client connection. Owned by the client connection's task, so no lock and no channel.
//!
//! Not for: what is sent over them (`http1.rs`).

use std::{io, time::Duration};

use bytes::BytesMut;
use http::{uri::Authority, HeaderValue};
use tokio::net::TcpStream;

use crate::proxy::Upstream;

/// What an upstream connection's read buffer takes while an exchange uses it.
const READ_BUFFER: usize = 8 * 1024;

/// A connection to one upstream, with the bytes read from it but not yet used.
#[derive(Debug)]
pub struct UpstreamConnection {
    authority: Authority,
    /// `Host` for this upstream: `host[:port]`, the port only when not 80.
    pub host: HeaderValue,
    pub stream: TcpStream,
    pub buf: BytesMut,
    /// Whether an exchange has completed on it before (only then can it have gone stale).
    pub reused: bool,
}

/// The idle upstream connections of one client connection.
#[derive(Debug, Default)]
pub struct Upstreams {
    idle: Vec<UpstreamConnection>,
}

impl Upstreams {
    /// An open connection to `upstream`: the idle one if the upstream has not closed it,
    /// else a new one.
    pub async fn checkout(
        &mut self,
        upstream: &Upstream,
        connect_timeout: Duration,
    ) -> io::Result<UpstreamConnection> {
        if let Some(index) = self
            .idle
            .iter()
            // Both are the configured authority, byte for byte: no need for a comparison
            // that ignores case.
            .position(|connection| connection.authority.as_str() == upstream.authority.as_str())
        {
            let mut connection = self.idle.swap_remove(index);
            if connection.is_open() {
                connection.buf.reserve(READ_BUFFER);
                return Ok(connection);
            }
        }
        connect(upstream, connect_timeout).await
    }

    /// Gives back the read buffers of the idle connections (they are empty: see `is_open`)
    /// while the client connection is idle; `checkout` gives them capacity again.
    pub fn release_buffers(&mut self) {
        for connection in &mut self.idle {
            connection.buf = BytesMut::new();
        }
    }

    /// Keeps `connection` for the next request to its upstream.
    pub fn checkin(&mut self, mut connection: UpstreamConnection) {
        connection.reused = true;
        // Room for this one alone: a client usually talks to one upstream, and `push` would
        // make room for four, hundreds of bytes held by every idle connection.
        self.idle.reserve_exact(1);
        self.idle.push(connection);
    }
}

impl UpstreamConnection {
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
    Ok(UpstreamConnection {
        authority: upstream.authority.clone(),
        host: upstream.host_header(),
        stream,
        buf: BytesMut::with_capacity(READ_BUFFER),
        reused: false,
    })
}
