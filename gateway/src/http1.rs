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

mod chunked;
mod head;
mod upstream;

use std::{
    cell::RefCell,
    io::{self, Read},
    pin::Pin,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use bytes::{Buf, Bytes, BytesMut};
use http::{header, request, HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    time::Sleep,
};
use tokio_util::sync::WaitForCancellationFutureOwned;

use self::{
    head::{Framing, Parsed, RequestHead, ResponseHead},
    upstream::{UpstreamConnection, Upstreams},
};
use crate::{
    error::GatewayError,
    proxy::{ClientAddr, Exchange, Proxy, Step, Upstream},
    server::Replay,
};

pub use head::BadResponse;

/// A response head larger than this is refused as a bad upstream answer.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// What a closing connection reads and discards at most, so that the client's unread body
/// does not turn the close into a reset that destroys the answer before it is read.
const LINGER_BYTES: usize = 1024 * 1024;
const LINGER_TIME: Duration = Duration::from_secs(2);

/// Serves the HTTP/1.1 connection `io` until it ends (`None`) or reaches a request outside
/// the engine's subset (`Some`: the connection, with the unread bytes, for hyper).
pub async fn serve(io: Replay, proxy: &Proxy, peer: &ClientAddr) -> Option<Replay> {
    let (prefix, client) = io.into_parts();
    let mut buf = BytesMut::with_capacity(read_limit(proxy).max(prefix.len()));
    buf.extend_from_slice(&prefix);
    let mut connection = Connection {
        proxy,
        peer,
        client,
        buf,
        out: Vec::with_capacity(4096),
        upstreams: Upstreams::default(),
    };
    let mut timers = Timers::new(proxy);
    loop {
        let head = match connection.next_head(&mut timers).await {
            Ok((head, len)) => {
                connection.buf.advance(len);
                head
            }
            Err(Ended::Closed) => return None,
            Err(Ended::NotOurs) => {
                return Some(Replay::new(connection.buf.to_vec(), connection.client));
            }
        };
        match connection.exchange(head, timers.upstream.as_mut()).await {
            Ok(Next::KeepAlive) => {}
            Ok(Next::Close { linger }) => {
                connection.close(linger).await;
                return None;
            }
            Err(error) => {
                tracing::debug!(%error, peer = %peer.addr(), "client connection failed");
                return None;
            }
        }
    }
}

/// The most a request head may take before hyper gets to refuse it (431). hyper's own read
/// buffer is as large, so a head that fits there fits here.
fn read_limit(proxy: &Proxy) -> usize {
    crate::server::read_buffer_size(proxy.limits().max_header_bytes)
}

struct Connection<'p> {
    proxy: &'p Proxy,
    peer: &'p ClientAddr,
    client: tokio::net::TcpStream,
    /// Bytes read from the client and not yet used.
    buf: BytesMut,
    /// What is being written next (a head, often with a whole small body); reused.
    out: Vec<u8>,
    upstreams: Upstreams,
}

/// A connection's timers, each registered once and moved later as the connection goes on:
/// moving a tokio timer later is an atomic store, where a fresh timer per wait would cost a
/// timer-wheel insertion and removal on every request. The same goes for the draining signal.
struct Timers {
    idle: Pin<Box<Sleep>>,
    head: Pin<Box<Sleep>>,
    upstream: Pin<Box<Sleep>>,
    draining: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl Timers {
    fn new(proxy: &Proxy) -> Self {
        let unset = || Box::pin(tokio::time::sleep(proxy.limits().idle_timeout));
        Self {
            idle: unset(),
            head: unset(),
            upstream: unset(),
            draining: Box::pin(proxy.draining().clone().cancelled_owned()),
        }
    }
}

/// Why no request head came.
enum Ended {
    /// The client closed, stalled past a deadline, or the gateway is draining.
    Closed,
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

/// Who answers a request.
enum Answer {
    Gateway(Response<Full<Bytes>>),
    Upstream(ResponseHead, UpstreamConnection, Instant),
}

/// Why an exchange with an upstream failed.
#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error("the client's body ended before its Content-Length")]
    ClientBody,
    #[error("upstream closed the connection before answering")]
    ClosedBeforeAnswer,
    #[error("upstream I/O failed: {0}")]
    Io(#[from] io::Error),
    #[error("bad upstream answer: {0}")]
    BadResponse(#[from] BadResponse),
}

impl Connection<'_> {
    /// Waits for the next complete request head: idle for at most the idle timeout (or
    /// until draining starts), then at most the header-read timeout from its first byte.
    async fn next_head(&mut self, timers: &mut Timers) -> Result<(RequestHead, usize), Ended> {
        let proxy = self.proxy;
        let limits = proxy.limits();
        timers
            .idle
            .as_mut()
            .reset(tokio::time::Instant::now() + limits.idle_timeout);
        let mut head_started = false;
        loop {
            if !self.buf.is_empty() {
                match head::parse_request(&self.buf) {
                    Parsed::Complete(head, len) => return Ok((head, len)),
                    Parsed::NotOurs => return Err(Ended::NotOurs),
                    Parsed::Partial if self.buf.len() >= read_limit(proxy) => {
                        return Err(Ended::NotOurs);
                    }
                    Parsed::Partial => {}
                }
                if !head_started {
                    head_started = true;
                    timers
                        .head
                        .as_mut()
                        .reset(tokio::time::Instant::now() + limits.header_read_timeout);
                }
            }
            let deadline = if head_started {
                timers.head.as_mut()
            } else {
                timers.idle.as_mut()
            };
            let read = tokio::select! {
                biased;
                read = self.client.read_buf(&mut self.buf) => read,
                () = timers.draining.as_mut(), if !head_started => {
                    // A request may have arrived that the runtime has not yet seen: closing
                    // on it would reset the connection under a request the client already
                    // sent. Take it (its answer closes the connection); else close.
                    match self.read_unreported() {
                        Some(n) => Ok(n),
                        None => return Err(Ended::Closed),
                    }
                }
                () = deadline => return Err(Ended::Closed),
            };
            if !matches!(read, Ok(n) if n > 0) {
                return Err(Ended::Closed);
            }
        }
    }

    /// Reads what the kernel already holds from the client, without waiting and without
    /// asking the runtime, whose readiness flag may not have caught up yet (tokio's own
    /// `try_read` trusts that flag). `None` when nothing is there.
    fn read_unreported(&mut self) -> Option<usize> {
        let mut chunk = [0u8; 4096];
        let socket = socket2::SockRef::from(&self.client);
        match (&*socket).read(&mut chunk) {
            Ok(n) if n > 0 => {
                self.buf.extend_from_slice(&chunk[..n]);
                Some(n)
            }
            _ => None,
        }
    }

    /// One request, start to finish.
    async fn exchange(&mut self, head: RequestHead, deadline: Pin<&mut Sleep>) -> io::Result<Next> {
        let proxy = self.proxy;
        let RequestHead {
            parts,
            body_len,
            close,
        } = head;
        let (mut exchange, step) = proxy.prepare(parts, self.peer).await;
        let mut body_left = body_len;
        let answer = match step {
            Ok(Step::Forward(upstream, parts)) => {
                self.forward(upstream, parts, &mut body_left, deadline)
                    .await
            }
            Ok(Step::Answer(response)) => Ok(Answer::Gateway(response)),
            Err(error) => Err(error),
        };
        let answer =
            answer.unwrap_or_else(|error| Answer::Gateway(proxy.refuse(&mut exchange, error)));
        // Body bytes the exchange did not use are skipped if they are here already; else the
        // connection cannot carry another request.
        let unread_here = usize::try_from(body_left).is_ok_and(|left| left <= self.buf.len());
        if unread_here {
            self.buf.advance(body_left as usize);
            body_left = 0;
        }
        let close = close || body_left > 0 || proxy.draining().is_cancelled();
        match answer {
            Answer::Gateway(response) => {
                self.answer(exchange, response, close, body_left > 0).await
            }
            Answer::Upstream(head, upstream, sent) => {
                self.relay(exchange, head, upstream, sent, close).await
            }
        }
    }

    /// Sends the request upstream and reads the answer's head, within the upstream timeout.
    /// A request the upstream cannot have seen (its idle connection was closed) is sent once
    /// more on a new connection when that is safe: no body, idempotent method.
    async fn forward(
        &mut self,
        upstream: &Upstream,
        mut parts: request::Parts,
        body_left: &mut u64,
        mut deadline: Pin<&mut Sleep>,
    ) -> Result<Answer, GatewayError> {
        let limits = self.proxy.limits();
        let connect_timeout = crate::proxy::connect_timeout(limits.upstream_timeout);
        let sent = Instant::now();
        let retry_safe = *body_left == 0 && parts.method.is_idempotent();
        let exchange = async {
            let mut connection = self.upstreams.checkout(upstream, connect_timeout).await?;
            loop {
                match self.send(&mut connection, &mut parts, body_left).await {
                    Ok(head) => return Ok(Answer::Upstream(head, connection, sent)),
                    Err(SendError::ClosedBeforeAnswer) if connection.reused && retry_safe => {
                        connection = upstream::connect(upstream, connect_timeout).await?;
                    }
                    Err(error) => return Err(error),
                }
            }
        };
        deadline
            .as_mut()
            .reset(tokio::time::Instant::now() + limits.upstream_timeout);
        let result = tokio::select! {
            biased;
            result = exchange => result,
            () = deadline => return Err(GatewayError::UpstreamTimeout),
        };
        match result {
            Ok(answer) => Ok(answer),
            Err(SendError::ClientBody) => Err(GatewayError::IncompleteBody),
            Err(error) => {
                tracing::warn!(%error, "upstream request failed");
                Err(GatewayError::UpstreamUnavailable)
            }
        }
    }

    /// Writes the head and the client's body to `connection`, then reads the answer's head.
    async fn send(
        &mut self,
        connection: &mut UpstreamConnection,
        parts: &mut request::Parts,
        body_left: &mut u64,
    ) -> Result<ResponseHead, SendError> {
        parts.headers.insert(header::HOST, connection.host.clone());
        self.out.clear();
        head::write_request(&mut self.out, parts);
        // Whatever of the body has arrived travels with the head, in one write.
        let buffered = take_len(*body_left, self.buf.len());
        self.out.extend_from_slice(&self.buf[..buffered]);
        self.buf.advance(buffered);
        *body_left -= buffered as u64;
        connection.stream.write_all(&self.out).await?;
        while *body_left > 0 {
            match self.client.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return Err(SendError::ClientBody),
                Ok(_) => {}
            }
            let take = take_len(*body_left, self.buf.len());
            connection.stream.write_all(&self.buf[..take]).await?;
            self.buf.advance(take);
            *body_left -= take as u64;
        }
        read_response_head(connection, &parts.method).await
    }

    /// Writes the gateway's own answer.
    async fn answer(
        &mut self,
        exchange: Exchange,
        response: Response<Full<Bytes>>,
        close: bool,
        linger: bool,
    ) -> io::Result<Next> {
        let head_only = *exchange.method() == Method::HEAD;
        let (mut parts, body) = response.into_parts();
        let body = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(never) => match never {},
        };
        if body_allowed(parts.status) {
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        finish_head(&mut parts.headers, close);
        let guard = self
            .proxy
            .finish(exchange, parts.status, &mut parts.headers);
        self.out.clear();
        head::write_response(&mut self.out, parts.status, &parts.headers);
        if !head_only && body_allowed(parts.status) {
            self.out.extend_from_slice(&body);
        }
        self.client.write_all(&self.out).await?;
        drop(guard);
        Ok(if close {
            Next::Close { linger }
        } else {
            Next::KeepAlive
        })
    }

    /// Writes the upstream's answer, head then body, and keeps the upstream connection when
    /// the exchange left it clean.
    async fn relay(
        &mut self,
        exchange: Exchange,
        mut head: ResponseHead,
        mut upstream: UpstreamConnection,
        sent: Instant,
        mut close: bool,
    ) -> io::Result<Next> {
        let proxy = self.proxy;
        let headers = &mut head.parts.headers;
        proxy.upstream_answered(&exchange, sent, headers);
        match head.framing {
            Framing::Chunked => {
                headers.insert(
                    header::TRANSFER_ENCODING,
                    HeaderValue::from_static("chunked"),
                );
            }
            Framing::UntilClose => close = true,
            Framing::Empty | Framing::Length(_) => {}
        }
        finish_head(headers, close);
        let status = head.parts.status;
        let guard = proxy.finish(exchange, status, headers);
        self.out.clear();
        head::write_response(&mut self.out, status, headers);

        let body = match head.framing {
            Framing::Empty => self
                .client
                .write_all(&self.out)
                .await
                .map_err(Relay::Client),
            Framing::Length(len) => self.relay_length(&mut upstream, len).await,
            Framing::Chunked => self.relay_chunked(&mut upstream).await,
            Framing::UntilClose => self.relay_until_close(&mut upstream).await,
        };
        drop(guard);
        match body {
            Ok(()) => {}
            // The answer is cut short and cannot be finished: end the connection so the
            // client sees the truncation.
            Err(Relay::Upstream(error)) => {
                tracing::warn!(%error, "upstream failed while sending its body");
                return Ok(Next::Close { linger: false });
            }
            Err(Relay::Client(error)) => return Err(error),
        }
        if !head.close && head.framing != Framing::UntilClose {
            self.upstreams.checkin(upstream);
        }
        Ok(if close {
            Next::Close { linger: false }
        } else {
            Next::KeepAlive
        })
    }

    /// Relays exactly `len` body bytes; the first of them leave with the head.
    async fn relay_length(
        &mut self,
        upstream: &mut UpstreamConnection,
        len: u64,
    ) -> Result<(), Relay> {
        let mut left = len;
        let buffered = take_len(left, upstream.buf.len());
        self.out.extend_from_slice(&upstream.buf[..buffered]);
        upstream.buf.advance(buffered);
        left -= buffered as u64;
        self.client
            .write_all(&self.out)
            .await
            .map_err(Relay::Client)?;
        while left > 0 {
            read_upstream(upstream).await?;
            let take = take_len(left, upstream.buf.len());
            self.client
                .write_all(&upstream.buf[..take])
                .await
                .map_err(Relay::Client)?;
            upstream.buf.advance(take);
            left -= take as u64;
        }
        Ok(())
    }

    /// Decodes the upstream's chunks and writes them to the client as chunks of its own.
    async fn relay_chunked(&mut self, upstream: &mut UpstreamConnection) -> Result<(), Relay> {
        let mut decoder = chunked::Decoder::default();
        loop {
            let out = &mut self.out;
            let used = decoder
                .decode(&upstream.buf, |data| chunked::encode_chunk(out, data))
                .map_err(|error| {
                    Relay::Upstream(io::Error::new(io::ErrorKind::InvalidData, error))
                })?;
            upstream.buf.advance(used);
            if decoder.is_done() {
                self.out.extend_from_slice(chunked::LAST_CHUNK);
            }
            self.client
                .write_all(&self.out)
                .await
                .map_err(Relay::Client)?;
            self.out.clear();
            if decoder.is_done() {
                return Ok(());
            }
            read_upstream(upstream).await?;
        }
    }

    /// Relays until the upstream closes; the client connection closes after it.
    async fn relay_until_close(&mut self, upstream: &mut UpstreamConnection) -> Result<(), Relay> {
        self.out.extend_from_slice(&upstream.buf);
        upstream.buf.clear();
        self.client
            .write_all(&self.out)
            .await
            .map_err(Relay::Client)?;
        loop {
            match upstream.stream.read_buf(&mut upstream.buf).await {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(error) => return Err(Relay::Upstream(error)),
            }
            self.client
                .write_all(&upstream.buf)
                .await
                .map_err(Relay::Client)?;
            upstream.buf.clear();
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

/// Which side failed while a body was relayed.
enum Relay {
    Upstream(io::Error),
    Client(io::Error),
}

/// Reads more of the upstream's answer; its end here is a failure.
async fn read_upstream(upstream: &mut UpstreamConnection) -> Result<(), Relay> {
    match upstream.stream.read_buf(&mut upstream.buf).await {
        Ok(0) => Err(Relay::Upstream(io::ErrorKind::UnexpectedEof.into())),
        Ok(_) => Ok(()),
        Err(error) => Err(Relay::Upstream(error)),
    }
}

/// Reads the upstream's final response head, skipping informational (1xx) ones.
async fn read_response_head(
    connection: &mut UpstreamConnection,
    method: &Method,
) -> Result<ResponseHead, SendError> {
    let mut answered = false;
    loop {
        if !connection.buf.is_empty() {
            answered = true;
            match head::parse_response(&connection.buf, method)? {
                Parsed::Complete(head, len) => {
                    connection.buf.advance(len);
                    if !head.parts.status.is_informational() {
                        return Ok(head);
                    }
                    continue;
                }
                Parsed::Partial if connection.buf.len() > MAX_RESPONSE_HEAD => {
                    return Err(SendError::Io(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "response head too large",
                    )));
                }
                Parsed::Partial | Parsed::NotOurs => {}
            }
        }
        match connection.stream.read_buf(&mut connection.buf).await {
            Ok(0) if !answered => return Err(SendError::ClosedBeforeAnswer),
            Ok(0) => return Err(SendError::Io(io::ErrorKind::UnexpectedEof.into())),
            Ok(_) => {}
            // A reset before any answer is the same stale connection as a close.
            Err(error) if !answered && error.kind() == io::ErrorKind::ConnectionReset => {
                return Err(SendError::ClosedBeforeAnswer);
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// How many of `available` bytes belong to a body with `left` bytes to go.
fn take_len(left: u64, available: usize) -> usize {
    usize::try_from(left).map_or(available, |left| left.min(available))
}

/// Whether a response with `status` may carry a body (and so a `Content-Length`).
fn body_allowed(status: StatusCode) -> bool {
    !(status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED)
}

/// The headers every answer gets from the engine: `Connection: close` when the connection
/// ends after it, and `Date` when the upstream sent none (as hyper does).
fn finish_head(headers: &mut HeaderMap, close: bool) {
    if close {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    if !headers.contains_key(header::DATE) {
        headers.insert(header::DATE, http_date());
    }
}

thread_local! {
    /// The formatted date changes once a second; formatting it per response would be waste.
    static DATE: RefCell<(u64, HeaderValue)> =
        const { RefCell::new((0, HeaderValue::from_static(""))) };
}

fn http_date() -> HeaderValue {
    let now = SystemTime::now();
    let second = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    DATE.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != second {
            let formatted = httpdate::fmt_http_date(now);
            *cached = (
                second,
                HeaderValue::from_str(&formatted).expect("an HTTP date is a valid header value"),
            );
        }
        cached.1.clone()
    })
}
