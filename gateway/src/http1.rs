//! The lean HTTP/1.1 engine: serves the common case of an HTTP/1.1 client connection in one
//! task that owns the client socket and its upstream sockets, with heads parsed by httparse
//! (the parser hyper uses) and bodies relayed by their framing. The request steps are the
//! ones hyper's path runs (`Proxy::prepare` and `Proxy::finish` in `proxy.rs`); only the
//! carrying of bytes differs.
//!
//! It serves requests with an origin-form target, no body or a `Content-Length` body, and no
//! `Transfer-Encoding`, `Expect` or upgrade: what browsers and service clients send. At the
//! first request outside that subset, valid or not, the connection is handed to hyper with
//! every byte read so far, and hyper serves the rest of it. So hyper alone judges ambiguous or
//! malformed requests, and this engine never guesses at framing it does not fully handle.
//! Upstream answers may be framed by length, chunked or closed.
//!
//! Why it exists: hyper's per-request machinery on both sides (dispatchers, channels, body
//! senders, wake-ups between them) cost more CPU than nginx spends on a whole proxied request;
//! the figures are in `specs/research.md`.
//!
//! This file reads requests and runs each exchange; `forward.rs` talks to the upstream,
//! `respond.rs` writes to the client, `head.rs` parses and writes heads, `chunked.rs` decodes
//! chunked bodies and `upstream.rs` keeps the connection's upstream connections.

mod chunked;
mod deadline;
mod forward;
mod head;
mod respond;
mod upstream;

use std::{
    future::Future,
    io::{self, Read},
    pin::Pin,
    time::{Duration, Instant},
};

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, Response};
use http_body_util::{BodyExt, Full};
use tokio::{
    io::{AsyncReadExt, AsyncWrite, AsyncWriteExt},
    time::Sleep,
};
use tokio_util::sync::WaitForCancellationFuture;

use self::{
    deadline::Deadline,
    head::{Parsed, RequestHead, ResponseHead},
    upstream::{UpstreamConnection, Upstreams},
};
use crate::{
    auth::LastToken,
    connection::{Counted, Handoff, OwnHandoff, Replay, Slot, CLOSING_GRACE},
    proxy::{Proxy, Step},
    request::ClientAddr,
};

pub use head::BadResponse;
pub use upstream::Parked;

/// What the lean engine's connections on one worker share.
#[derive(Debug, Default)]
pub struct Local {
    /// Upstream connections that no client connection of this worker holds.
    pub parked: Parked,
    /// In the `balanced` layout, this worker's handoff: whether a connection should move.
    pub handoff: Option<OwnHandoff>,
}

impl Local {
    fn handoff(&self) -> Option<&Handoff> {
        self.handoff.as_ref().map(OwnHandoff::get)
    }
}

/// What a closing connection reads and discards at most, so that the client's unread body
/// does not turn the close into a reset that destroys the answer before it is read.
const LINGER_BYTES: usize = 1024 * 1024;
const LINGER_TIME: Duration = Duration::from_secs(2);

/// What the read buffer takes when a request starts arriving on an idle connection: a usual
/// head fits, and it doubles up to the read limit for a larger one.
const READ_CHUNK: usize = 8 * 1024;
/// What the buffer for the next write takes when a request starts: a head and a small body.
const OUT_CAPACITY: usize = 4 * 1024;
/// How long a connection waits for its next request before it gives its buffers back: a busy
/// client sends it within milliseconds, and giving them back on every request cost about a
/// tenth more CPU per request (`specs/research.md`, "Idle connections").
const RELEASE_AFTER: Duration = Duration::from_secs(1);

/// Serves the HTTP/1.1 connection `io` until it ends, reaches a request outside the engine's
/// subset (the connection, with the unread bytes, for hyper) or, between requests, is to move
/// to the worker its worker's handoff names (`connection/handoff.rs`). `slot` hears when the
/// connection is idle, and asks it to close (shed or draining).
///
/// A connection alternates between two states. In use, it is a boxed [`Connection`] with its
/// buffers, timers and the state of the exchange in flight; after `RELEASE_AFTER` without a
/// request, all of that is dropped and the task keeps only [`Idle`]: the socket and a wait
/// for the next bytes (its upstream connections are parked for the worker's other client
/// connections). So an idle keep-alive connection costs its socket and a small task, not
/// the kilobytes a request needs (`specs/research.md`, "Idle connections").
pub fn serve<'p>(
    io: Replay,
    proxy: &'p Proxy,
    peer: &'p ClientAddr,
    slot: &'p Slot,
    local: &'p Local,
) -> impl Future<Output = Outcome> + Send + 'p {
    let (prefix, client) = io.into_parts();
    // Not an `async fn` itself: its arguments would keep their room in every idle
    // connection's task beside what `serve_from` keeps.
    serve_from(
        Idle { client },
        BytesMut::from(&prefix[..]),
        proxy,
        peer,
        slot,
        local,
    )
}

/// How the lean engine's part of a connection ended ([`serve`]).
#[derive(Debug)]
pub enum Outcome {
    /// The connection is over.
    Closed,
    /// The next request is hyper's: the connection, with every byte read so far.
    ForHyper(Replay),
    /// Between requests, with nothing of the next one read, the connection leaves for the
    /// worker of this index.
    Leaving(tokio::net::TcpStream, usize),
}

/// [`serve`], from a connection `idle` and the bytes that `arrived` on it.
async fn serve_from(
    mut idle: Idle,
    mut arrived: BytesMut,
    proxy: &Proxy,
    peer: &ClientAddr,
    slot: &Slot,
    local: &Local,
) -> Outcome {
    loop {
        let in_use = Connection::new(proxy, peer, slot, local, idle, arrived).in_use();
        let until = match in_use.await {
            InUse::Idle(rested, until) => {
                idle = rested;
                until
            }
            InUse::Closed => return Outcome::Closed,
            InUse::NotOurs(rest) => return Outcome::ForHyper(rest),
            InUse::Leaving(client, to) => return Outcome::Leaving(client, to),
        };
        let counted = proxy.metrics().connection_idle();
        let woke = idle.wait(until, slot).await;
        drop(counted);
        let Some(woke) = woke else {
            return Outcome::Closed;
        };
        // Woken by bytes not yet read: as good a time to move as after a request.
        if woke.is_empty() {
            if let Some(to) = leaving(local.handoff(), slot) {
                return Outcome::Leaving(idle.client, to);
            }
        }
        arrived = woke;
    }
}

/// The worker a connection between requests should move to, if its worker has an order
/// standing and the connection is not closing.
fn leaving(handoff: Option<&Handoff>, slot: &Slot) -> Option<usize> {
    // The order first: one atomic load, where asking the token takes its lock.
    let handoff = handoff.filter(|handoff| handoff.has_order())?;
    if slot.closing().is_cancelled() {
        return None;
    }
    handoff.take_order()
}

/// What a connection keeps while it waits for its next request: its socket. Its upstream
/// connections wait in the worker's [`Parked`] set.
struct Idle {
    client: tokio::net::TcpStream,
}

impl Idle {
    /// Waits until the client sends bytes (`Some`, with what was read already, if anything),
    /// until `until` (the idle timeout) or until the gateway drains or sheds the connection
    /// (`None`: close it).
    async fn wait(&self, until: tokio::time::Instant, slot: &Slot) -> Option<BytesMut> {
        tokio::select! {
            biased;
            // Not `readable()`: its future carries a waiter node of its own (150 bytes in every
            // idle connection's task), where the socket has a slot for its one reader.
            readable = std::future::poll_fn(|cx| self.client.poll_read_ready(cx)) => {
                readable.ok().map(|()| BytesMut::new())
            }
            () = slot.closing().cancelled() => {
                // A request may have arrived that the runtime has not yet seen: closing on it
                // would reset the connection under a request the client already sent. Take it
                // (its answer closes the connection); else close.
                let mut arrived = BytesMut::new();
                read_unreported(&self.client, &mut arrived).map(|_| arrived)
            }
            () = tokio::time::sleep_until(until) => None,
        }
    }
}

/// How a connection's time in use ended.
enum InUse {
    /// No request for `RELEASE_AFTER`: the connection keeps waiting, until the instant given
    /// (its idle timeout), holding only what [`Idle`] holds.
    Idle(Idle, tokio::time::Instant),
    /// The connection is over.
    Closed,
    /// The next request is hyper's: the connection, with every byte read so far.
    NotOurs(Replay),
    /// Between requests: the connection moves to the worker of this index.
    Leaving(tokio::net::TcpStream, usize),
}

/// The most a request head may take before hyper gets to refuse it (431). hyper's own read
/// buffer is as large, so a head that fits there fits here.
fn read_limit(proxy: &Proxy) -> usize {
    proxy.limits().read_buffer_size()
}

/// One client connection while it is in use: from its first bytes after a wait until it has
/// waited `RELEASE_AFTER` for its next request (then it becomes [`Idle`] again) or ends.
struct Connection<'p> {
    proxy: &'p Proxy,
    peer: &'p ClientAddr,
    slot: &'p Slot,
    /// Where its upstream connections go when it goes idle or leaves.
    parked: &'p Parked,
    /// Its worker's handoff, in the `balanced` layout: whether it should move. Held, it
    /// counts the connection among its worker's connections in use, for the balancer.
    handoff: Option<Counted<'p>>,
    client: tokio::net::TcpStream,
    /// Bytes read from the client and not yet used; taken when the first bytes are readable.
    buf: BytesMut,
    /// What is being written next (a head, often with a whole small body); reused.
    out: Vec<u8>,
    /// The headers the engine and the request steps add to a relayed answer; reused, so a
    /// response costs no header map of its own.
    extra_headers: HeaderMap,
    /// The last request's head, for the next request to fill: its buffers are reused.
    spare_head: RequestHead,
    /// The token this connection last presented, and what it proved. Forgotten when the
    /// connection goes idle: the next request after a pause finds it in the token cache.
    last_token: LastToken,
    upstreams: Upstreams,
}

/// A connection's timers, each registered once per time in use and moved later as it goes on:
/// moving a tokio timer later needs no timer-wheel work, where a fresh timer per wait would
/// cost an insertion and a removal on every request. The same goes for the draining signal.
/// They live in the boxed in-use state, so an idle connection has none of them.
///
/// The timers whose deadline every request moves (`idle`, `release`, `upstream`) are moved
/// lazily: a request only notes its deadline, and a timer that fires before the deadline
/// noted is moved to it then ([`Deadline`]). So each timer stays at or before its deadline,
/// and a busy connection moves each about once per timeout rather than on every request
/// (moving one cost a clock conversion of ~120 instructions).
struct Timers<'t, 'c> {
    /// The idle timeout.
    idle: Deadline<'t>,
    /// The header-read timeout, moved only for a head that does not come whole at once.
    head: Pin<&'t mut Sleep>,
    /// The upstream timeout (and the wait for a signed request's body).
    upstream: Deadline<'t>,
    /// When a connection that waits for its next request becomes [`Idle`].
    release: Deadline<'t>,
    /// Cancelled when the gateway drains or sheds this connection to make room.
    draining: Pin<&'t mut WaitForCancellationFuture<'c>>,
}

/// Why no request head came.
enum Ended {
    /// The client closed, stalled past a deadline, or the gateway is draining or shed it.
    Closed,
    /// No byte came within `RELEASE_AFTER`: the connection goes idle.
    Idle,
    /// The next request is hyper's.
    NotOurs,
}

enum Next {
    KeepAlive,
    /// Close the connection; `linger` when the client may still be sending a body.
    Close {
        linger: bool,
    },
}

impl Next {
    /// After an answer: close (lingering if so) when the exchange asked to, else keep alive.
    fn after(close: bool, linger: bool) -> Self {
        if close {
            Self::Close { linger }
        } else {
            Self::KeepAlive
        }
    }
}

/// Who answers a request.
enum Answer {
    Gateway(Response<Full<Bytes>>),
    Upstream(ResponseHead, UpstreamConnection, Instant),
}

impl<'p> Connection<'p> {
    /// The connection `idle` in use again, with the bytes that `arrived` already.
    fn new(
        proxy: &'p Proxy,
        peer: &'p ClientAddr,
        slot: &'p Slot,
        local: &'p Local,
        idle: Idle,
        arrived: BytesMut,
    ) -> Self {
        Self {
            proxy,
            peer,
            slot,
            parked: &local.parked,
            handoff: local.handoff().map(Handoff::count),
            client: idle.client,
            buf: arrived,
            out: Vec::new(),
            extra_headers: HeaderMap::new(),
            spare_head: RequestHead::default(),
            last_token: LastToken::default(),
            upstreams: Upstreams::default(),
        }
    }

    /// [`Connection::serve`], boxed: its state (buffers, timers, the exchange in flight) is
    /// allocated while the connection is in use, and is not part of the connection's task.
    /// Made here, not in `serve`'s caller, so that the future itself never sits in the
    /// caller's state.
    fn in_use(self) -> Pin<Box<impl Future<Output = InUse> + 'p>> {
        Box::pin(self.serve())
    }

    /// Serves requests until the connection ends or goes idle.
    async fn serve(mut self) -> InUse {
        let (proxy, slot) = (self.proxy, self.slot);
        let limits = proxy.limits();
        // The `Deadline`s' timers start no later than any deadline their first request can
        // note; `head` is reset when a head starts arriving.
        let idle = tokio::time::sleep(limits.idle_timeout);
        let head = tokio::time::sleep(limits.header_read_timeout);
        let upstream = tokio::time::sleep(limits.upstream_timeout);
        let release = tokio::time::sleep(RELEASE_AFTER);
        let draining = slot.closing().cancelled();
        tokio::pin!(idle, head, upstream, release, draining);
        let mut timers = Timers {
            idle: Deadline::new(idle),
            head,
            upstream: Deadline::new(upstream),
            release: Deadline::new(release),
            draining,
        };
        loop {
            let head = match self.next_head(&mut timers).await {
                Ok((head, len)) => {
                    self.buf.advance(len);
                    head
                }
                Err(Ended::Closed) => return InUse::Closed,
                Err(Ended::Idle) => {
                    let until = timers.idle.due;
                    return InUse::Idle(self.into_idle(), until);
                }
                Err(Ended::NotOurs) => {
                    return InUse::NotOurs(Replay::new(self.buf.to_vec(), self.client));
                }
            };
            match self.exchange(head, &mut timers.upstream).await {
                Ok(Next::KeepAlive) => {
                    // Only with nothing of the next request read may the connection move.
                    let handoff = self.handoff.as_ref().map(Counted::handoff);
                    let moving = if self.buf.is_empty() {
                        leaving(handoff, slot)
                    } else {
                        None
                    };
                    if let Some(to) = moving {
                        upstream::park(self.parked, self.upstreams);
                        return InUse::Leaving(self.client, to);
                    }
                    self.trim_buffer();
                }
                Ok(Next::Close { linger }) => {
                    self.close(linger).await;
                    return InUse::Closed;
                }
                Err(error) => {
                    tracing::debug!(%error, peer = %self.peer.addr(), "client connection failed");
                    return InUse::Closed;
                }
            }
        }
    }

    /// What the connection keeps while idle: its socket. Its upstream connections are
    /// parked for the worker's other connections; the rest (buffers, header storage, the last
    /// token) is dropped.
    fn into_idle(self) -> Idle {
        upstream::park(self.parked, self.upstreams);
        Idle {
            client: self.client,
        }
    }

    /// Waits for the next complete request head: idle for at most the idle timeout (or
    /// until draining starts), then at most the header-read timeout from its first byte.
    async fn next_head(
        &mut self,
        timers: &mut Timers<'_, '_>,
    ) -> Result<(RequestHead, usize), Ended> {
        let proxy = self.proxy;
        let limits = proxy.limits();
        let now = tokio::time::Instant::now();
        // A connection back from `Idle` starts its idle time again here: it came back because
        // its client sent something, which starts a request (and the header-read timeout).
        timers.idle.set(now + limits.idle_timeout);
        timers.release.set(now + RELEASE_AFTER);
        let mut head_started = false;
        // Whether a head begun before the connection was asked to close has heard of it.
        let mut closing_heard = false;
        if self.buf.is_empty() {
            self.slot.idle(now.into_std());
        }
        loop {
            if !self.buf.is_empty() {
                match head::parse_request(&self.buf, &mut self.spare_head) {
                    Parsed::Complete((), len) => {
                        // Busy until answered, also when the head came whole in one read (on
                        // a kept-alive connection, most do): the cap sheds only idle ones.
                        self.slot.busy();
                        return Ok((std::mem::take(&mut self.spare_head), len));
                    }
                    Parsed::NotOurs => return Err(Ended::NotOurs),
                    Parsed::Partial if self.buf.len() >= read_limit(proxy) => {
                        return Err(Ended::NotOurs);
                    }
                    Parsed::Partial => {}
                }
                if !head_started {
                    head_started = true;
                    self.slot.busy();
                    timers
                        .head
                        .as_mut()
                        .reset(tokio::time::Instant::now() + limits.header_read_timeout);
                }
            }
            let may_release = !head_started && self.buf.is_empty();
            let deadline = async {
                if head_started {
                    timers.head.as_mut().await;
                } else {
                    timers.idle.wait().await;
                }
            };
            let read = tokio::select! {
                biased;
                read = read_more(&mut self.client, &mut self.buf) => Some(read),
                () = timers.draining.as_mut(), if !head_started || !closing_heard => {
                    if head_started {
                        // A head begun: a draining gateway lets it finish within the
                        // header-read timeout, but a connection shed to make room no longer
                        // counts against the cap, so it gets `CLOSING_GRACE`, as on hyper.
                        closing_heard = true;
                        if self.slot.was_shed() {
                            let grace = tokio::time::Instant::now()
                                + CLOSING_GRACE.min(limits.header_read_timeout);
                            if grace < timers.head.deadline() {
                                timers.head.as_mut().reset(grace);
                            }
                        }
                        None
                    } else {
                        // A request may have arrived that the runtime has not yet seen:
                        // closing on it would reset the connection under a request the client
                        // already sent. Take it (its answer closes the connection); else close.
                        match read_unreported(&self.client, &mut self.buf) {
                            Some(n) => Some(Ok(n)),
                            None => return Err(Ended::Closed),
                        }
                    }
                }
                () = timers.release.wait(), if may_release => return Err(Ended::Idle),
                () = deadline => return Err(Ended::Closed),
            };
            let Some(read) = read else { continue };
            if !matches!(read, Ok(n) if n > 0) {
                return Err(Ended::Closed);
            }
        }
    }

    /// Whether the next `len` bytes of the client's body are all in the read buffer already.
    fn has_buffered(&self, len: u64) -> bool {
        usize::try_from(len).is_ok_and(|len| len <= self.buf.len())
    }

    /// Gives back the memory a large body (read whole for a signed request) made the read
    /// buffer take, so that a kept-alive connection holds no more than a head's worth.
    fn trim_buffer(&mut self) {
        trim(&mut self.buf, read_limit(self.proxy));
    }

    /// One request, start to finish.
    async fn exchange(
        &mut self,
        head: RequestHead,
        deadline: &mut Deadline<'_>,
    ) -> io::Result<Next> {
        let proxy = self.proxy;
        self.out.reserve(OUT_CAPACITY);
        let (mut exchange, step) = proxy.prepare(&head, self.peer, &mut self.last_token).await;
        let mut body_left = head.body_len;
        let answer = match step {
            Ok(Step::Forward(upstream, mut forwarding)) => {
                self.forward(
                    upstream,
                    &head,
                    &exchange,
                    &mut forwarding,
                    &mut body_left,
                    deadline,
                )
                .await
            }
            Ok(Step::Answer(response)) => Ok(Answer::Gateway(response)),
            Err(error) => Err(error),
        };
        let close = head.close;
        self.spare_head = head;
        let answer =
            answer.unwrap_or_else(|error| Answer::Gateway(proxy.refuse(&mut exchange, error)));
        // Body bytes the exchange did not use are skipped if they are here already; else the
        // connection cannot carry another request.
        if self.has_buffered(body_left) {
            self.buf.advance(body_left as usize);
            body_left = 0;
        }
        let close = close || body_left > 0 || self.slot.closing().is_cancelled();
        let linger = body_left > 0;
        // Each answer's head is made here, and only the sending awaited: the exchange's
        // bookkeeping ends with the head, and is then no part of the futures that wait on
        // the client or the upstream.
        match answer {
            Answer::Gateway(response) => {
                let (parts, body) = response.into_parts();
                let body = match body.collect().await {
                    Ok(collected) => collected.to_bytes(),
                    Err(never) => match never {},
                };
                let guard = self.answer_head(exchange, parts, &body, close);
                self.write_answer(guard, close, linger).await
            }
            Answer::Upstream(head, upstream, sent) => {
                let guard = self.relay_head(exchange, &head, sent, close);
                self.relay(guard, head, upstream, close, linger).await
            }
        }
    }

    /// Ends the connection. With `linger`, first reads and drops what the client still
    /// sends (within bounds), so its unread body does not make the close a reset.
    async fn close(&mut self, linger: bool) {
        let _ = self.client.shutdown().await;
        if !linger {
            return;
        }
        let deadline = tokio::time::Instant::now() + LINGER_TIME;
        let mut drained = 0;
        while drained < LINGER_BYTES {
            self.buf.clear();
            match tokio::time::timeout_at(deadline, self.client.read_buf(&mut self.buf)).await {
                Ok(Ok(n)) if n > 0 => drained += n,
                _ => return,
            }
        }
    }
}

/// Reads what the kernel already holds from `client` into `buf`, without waiting and without
/// asking the runtime, whose readiness flag may not have caught up yet (tokio's own
/// `try_read` trusts that flag). `None` when nothing is there.
fn read_unreported(client: &tokio::net::TcpStream, buf: &mut BytesMut) -> Option<usize> {
    let mut chunk = [0u8; 4096];
    let socket = socket2::SockRef::from(client);
    match (&*socket).read(&mut chunk) {
        Ok(n) if n > 0 => {
            buf.extend_from_slice(&chunk[..n]);
            Some(n)
        }
        _ => None,
    }
}

/// Reads what the client sent into `buf`, giving a buffer released while idle its capacity
/// only once bytes are there to read, and doubling a full one.
async fn read_more(client: &mut tokio::net::TcpStream, buf: &mut BytesMut) -> io::Result<usize> {
    if buf.capacity() == 0 {
        client.readable().await?;
    }
    if buf.len() == buf.capacity() {
        buf.reserve(buf.len().max(READ_CHUNK));
    }
    client.read_buf(buf).await
}

/// Moves what `buf` holds into a buffer of `limit` bytes where `buf`'s allocation could hold
/// twice `limit` beyond it. The allocation, not `capacity()`: once a large body has been
/// consumed, the room before the read position is no part of `capacity()` but is still held,
/// up to the whole body's size, for as long as the connection stays in use.
fn trim(buf: &mut BytesMut, limit: usize) {
    // `try_reclaim` answers from the whole allocation (moving the unread bytes to its start
    // where it says yes); for a buffer of the usual size it answers no, and moves nothing.
    if buf.try_reclaim(2 * limit) {
        let mut trimmed = BytesMut::with_capacity(limit.max(buf.len()));
        trimmed.extend_from_slice(buf);
        *buf = trimmed;
    }
}

/// How many of `available` bytes belong to a body with `left` bytes to go.
fn take_len(left: u64, available: usize) -> usize {
    usize::try_from(left).map_or(available, |left| left.min(available))
}

/// The most body bytes copied behind a head to leave in one `send`; more go beside it in one
/// vectored write. Measured end to end on an AMD VM (`specs/research.md`, "Where the hop's
/// microseconds go"): `writev` costs about 0.3 µs more than `send`, while copying a 3.8 KB
/// body into a write buffer gone cold since the connection's last request cost about 0.8 µs,
/// so the two break even near 1.5 KB.
const COPY_AT_MOST: usize = 2 * 1024;

/// Writes `head` and then `body` to `io` in one system call where the socket takes them: a
/// small body appended to `head`, a larger one beside it in a vectored write.
async fn write_head_and_body<W: AsyncWrite + Unpin>(
    io: &mut W,
    head: &mut Vec<u8>,
    body: &[u8],
) -> io::Result<()> {
    if body.len() <= COPY_AT_MOST {
        head.extend_from_slice(body);
        io.write_all(head).await
    } else {
        io.write_all_buf(&mut Buf::chain(head.as_slice(), body))
            .await
    }
}

/// The engine's byte parsers, for the fuzz targets alone (`gateway::fuzzing`).
#[cfg(feature = "fuzzing")]
pub mod fuzzing {
    pub use super::chunked::{encode_chunk, ChunkError, Decoder, LAST_CHUNK};
    pub use super::head::{
        parse_request, parse_response, write_request, BadResponse, Framing, Parsed, RequestHead,
        ResponseHead,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 32 * 1024;

    #[test]
    fn a_large_body_once_consumed_gives_its_memory_back() {
        // A signed body of 570,000 bytes read whole, then sent on: what is left in front of
        // the read position is no part of `capacity()`, which alone looks small.
        let mut buf = BytesMut::with_capacity(589_824);
        buf.extend_from_slice(&[7; 570_000]);
        buf.advance(569_990);
        assert!(buf.capacity() < 2 * LIMIT);
        trim(&mut buf, LIMIT);
        assert_eq!(&buf[..], &[7; 10], "the next request's bytes are kept");
        assert!(
            !buf.try_reclaim(2 * LIMIT),
            "the body's allocation is let go"
        );
    }

    #[test]
    fn a_buffer_of_the_usual_size_is_kept_as_it_is() {
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        buf.extend_from_slice(&[1; 600]);
        buf.advance(500);
        let at = buf.as_ptr();
        trim(&mut buf, LIMIT);
        assert_eq!(buf.as_ptr(), at, "not moved, not reallocated");
        assert_eq!(&buf[..], &[1; 100]);
    }
}
