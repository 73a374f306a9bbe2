//! Reads the first bytes of a connection under a deadline, enough to tell an HTTP/2 preface
//! from an HTTP/1 request line, and hands back a stream that replays them. Without this, a
//! client that connects and sends nothing would hold its connection forever, because the
//! header-read timeout only starts once hyper knows the protocol.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf},
    net::TcpStream,
};
use tokio_util::sync::CancellationToken;

use super::CLOSING_GRACE;

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A TCP stream with its first bytes already read and waiting to be read again.
#[derive(Debug)]
pub struct Replay {
    prefix: Vec<u8>,
    position: usize,
    stream: TcpStream,
}

/// Reads into `io`, a connection with nothing read yet, until the bytes stop looking like
/// the HTTP/2 preface or it is complete. False when the client closed, failed or was too
/// slow: the connection is dropped without an answer. Once the connection is asked to close
/// (`closing`: shed to make room, or the gateway draining) it has at most `CLOSING_GRACE`
/// left for its first bytes: a request already on its way is still served, a connection that
/// says nothing no longer waits out the head-read timeout. Borrows the connection rather
/// than owning it, so that the caller's task does not keep room for both a socket and a
/// `Replay`.
pub async fn read(io: &mut Replay, timeout: Duration, closing: &CancellationToken) -> bool {
    let mut prefix = vec![0; H2_PREFACE.len()];
    let mut filled = 0;
    let mut deadline = tokio::time::Instant::now() + timeout;
    let mut asked_to_close = false;
    while filled < H2_PREFACE.len() && prefix[..filled] == H2_PREFACE[..filled] {
        let read = tokio::select! {
            biased;
            read = tokio::time::timeout_at(deadline, io.stream.read(&mut prefix[filled..])) => read,
            () = closing.cancelled(), if !asked_to_close => {
                asked_to_close = true;
                deadline = deadline.min(tokio::time::Instant::now() + CLOSING_GRACE);
                continue;
            }
        };
        match read {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return false,
            Ok(Ok(n)) => filled += n,
        }
    }
    prefix.truncate(filled);
    io.prefix = prefix;
    io.position = 0;
    true
}

impl Replay {
    /// `stream`, with `prefix` (bytes already read from it) to be read first.
    pub fn new(prefix: Vec<u8>, stream: TcpStream) -> Self {
        Self {
            prefix,
            position: 0,
            stream,
        }
    }

    /// The bytes not yet read again, and the stream.
    pub fn into_parts(mut self) -> (Vec<u8>, TcpStream) {
        self.prefix.drain(..self.position);
        (self.prefix, self.stream)
    }

    /// Whether the client opened with the HTTP/2 preface (else it speaks HTTP/1).
    pub fn is_http2(&self) -> bool {
        self.prefix == H2_PREFACE
    }
}

impl AsyncRead for Replay {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.position < this.prefix.len() {
            let rest = &this.prefix[this.position..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.position += n;
            // What else has arrived goes with the prefix in this one read: hyper parses a
            // head it reads in pieces only once it sees the head's end, so a head broken by a
            // bare CR, read in two pieces, would wait for the header-read timeout where the
            // lean engine refuses it at once. Nothing more here is fine: the prefix is data.
            if this.position == this.prefix.len() && buf.remaining() > 0 {
                let _ = Pin::new(&mut this.stream).poll_read(cx, buf);
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Replay {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
