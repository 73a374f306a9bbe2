//! hyper's upstream connections, owned by one client connection and driven by that
//! connection's own task: a request crosses no task boundary, no channel per request and no
//! pool lock, which is most of what a shared pool costs per request. An HTTP/1 client carries
//! one request at a time and so needs one connection per upstream; an HTTP/2 client's
//! concurrent streams each take an idle one or open another. The set is the same [`Kept`] the
//! lean engine keeps its sockets in.
//!
//! Not for: deciding what to send, nor mapping failures to responses (`forward.rs`).

use std::{
    future::{poll_fn, Future},
    io,
    pin::{pin, Pin},
    sync::Mutex,
    task::Poll,
    time::Duration,
};

use futures_util::{stream::FuturesUnordered, StreamExt};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;

use crate::{
    body::UpstreamBody,
    upstream::{self, Kept, Upstream},
};

/// An upstream connection's I/O future, for the client connection's task to drive.
pub type Driver = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The receiving end of [`Dedicated::new`]: the drivers of the connections made so far.
pub type Drivers = mpsc::UnboundedReceiver<Driver>;

/// A ready-to-use HTTP/1 connection to one upstream.
pub type UpstreamConnection = upstream::Connection<SendRequest<UpstreamBody>>;

/// One client connection's upstream connections, made on first use.
#[derive(Debug)]
pub struct Dedicated {
    /// std Mutex: held only to take or put back a connection, never across `.await`.
    idle: Mutex<Kept<SendRequest<UpstreamBody>>>,
    drivers: mpsc::UnboundedSender<Driver>,
}

impl Dedicated {
    /// The most upstream connections one client connection keeps between its requests. An
    /// HTTP/1 client needs one; an HTTP/2 client's burst of streams opens as many as it has
    /// at once (up to 128), and kept until the client left they would hold that many sockets
    /// in the gateway and the upstream per client, past what the file budget allows for
    /// (`MAX_CONNECTIONS`: two files a connection). A browser runs about six calls at once.
    pub const KEEP_AT_MOST: usize = 8;

    /// An empty set, and the drivers its connections will need polled by the owning task.
    pub fn new() -> (Self, Drivers) {
        let (drivers, receiver) = mpsc::unbounded_channel();
        let dedicated = Self {
            idle: Mutex::new(Kept::default()),
            drivers,
        };
        (dedicated, receiver)
    }

    /// Takes a connection to `upstream` ready for a request out of the set if there is one.
    /// A connection is put back once its answer's head has come; one still carrying that
    /// answer's body is not ready (an HTTP/2 client's other streams open their own rather
    /// than wait behind it), and one that has closed is dropped.
    pub fn take(&self, upstream: &Upstream) -> Option<UpstreamConnection> {
        self.idle
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .take_ready(upstream, SendRequest::is_ready, SendRequest::is_closed)
    }

    /// Keeps a connection for the next request. The set holds at most
    /// [`Dedicated::KEEP_AT_MOST`]: closed ones are dropped, then the oldest is closed (once
    /// its answer is read: hyper finishes a response before it closes a connection whose
    /// sender is gone).
    pub fn put_back(&self, connection: UpstreamConnection) {
        self.idle
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .put_back_within(connection, Self::KEEP_AT_MOST, SendRequest::is_closed);
    }

    /// Opens a new connection to `upstream` and hands its driver to the owning task.
    pub async fn connect(
        &self,
        upstream: &Upstream,
        connect_timeout: Duration,
    ) -> io::Result<UpstreamConnection> {
        let stream = upstream.connect(connect_timeout).await?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(io::Error::other)?;
        let driver: Driver = Box::pin(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "upstream connection ended with an error");
            }
        });
        self.drivers
            .send(driver)
            .map_err(|_| io::Error::other("the client connection is gone"))?;
        Ok(UpstreamConnection::new(upstream, sender))
    }
}

/// Runs `connection` (a client connection's server future) to completion while driving the
/// upstream connections its requests open. Upstream I/O is polled before and after the server
/// side, so a request handed upstream is written, and an answer read, in the same wake-up.
/// When `connection` ends, its upstream connections are dropped, which closes them.
pub async fn drive<F: Future>(connection: F, mut drivers: Drivers) -> F::Output {
    let mut connection = pin!(connection);
    let mut upstreams = FuturesUnordered::new();
    poll_fn(|cx| {
        let mut poll_upstreams = |cx: &mut std::task::Context<'_>| {
            while let Poll::Ready(Some(driver)) = drivers.poll_recv(cx) {
                upstreams.push(driver);
            }
            // Ready(Some) is one upstream connection finished; keep polling the rest.
            while let Poll::Ready(Some(())) = upstreams.poll_next_unpin(cx) {}
        };
        poll_upstreams(cx);
        let output = connection.as_mut().poll(cx);
        poll_upstreams(cx);
        output
    })
    .await
}
