//! What the lean engine writes to the client: the gateway's own answers, and the upstream's
//! relayed by its framing (length, chunked, or until close), with the head decorated by the
//! shared request steps.
//!
//! Not for: reading requests or talking to the upstream (`http1.rs`, `forward.rs`).

use std::{
    cell::RefCell,
    io,
    task::Poll,
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use bytes::Buf;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{
    chunked,
    head::{self, Framing, ResponseHead},
    take_len,
    upstream::UpstreamConnection,
    write_head_and_body, Connection, Next,
};
use crate::{
    metrics::Stalled,
    proxy::{Exchange, Proxy, ResponseGuard},
};

impl Connection<'_> {
    /// Puts the gateway's own answer, head and `body`, in `self.out`, and ends the exchange's
    /// bookkeeping ([`Proxy::finish`]); [`Connection::write_answer`] sends it. The two halves
    /// apart so that the exchange (and the response's parts) are no part of the future that
    /// waits on the client (`specs/research.md`, "Futures that move").
    pub(super) fn answer_head(
        &mut self,
        exchange: Exchange,
        mut parts: http::response::Parts,
        body: &[u8],
        close: bool,
    ) -> ResponseGuard {
        let head_only = *exchange.method() == Method::HEAD;
        if body_allowed(parts.status) {
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        let dated = parts.headers.contains_key(header::DATE);
        finish_head(&mut parts.headers, close, dated);
        let guard = self
            .proxy
            .finish(exchange, parts.status, &mut parts.headers);
        self.out.clear();
        head::write_response(&mut self.out, parts.status, &parts.headers);
        if !head_only && body_allowed(parts.status) {
            self.out.extend_from_slice(body);
        }
        guard
    }

    /// Sends the answer [`Connection::answer_head`] put in `self.out`.
    pub(super) async fn write_answer(
        &mut self,
        guard: ResponseGuard,
        close: bool,
        linger: bool,
    ) -> io::Result<Next> {
        within(
            self.proxy,
            Stalled::Client,
            self.client.write_all(&self.out),
        )
        .await?;
        drop(guard);
        Ok(Next::after(close, linger))
    }

    /// Decorates the upstream's answer with the engine's and the request steps' own headers,
    /// after the status line and upstream header lines `self.out` already holds
    /// (`forward.rs`), and ends the exchange's bookkeeping ([`Proxy::finish`]), the upstream
    /// having answered a request sent at `sent`. [`Connection::relay`] sends it and the body.
    pub(super) fn relay_head(
        &mut self,
        exchange: Exchange,
        head: &ResponseHead,
        sent: Instant,
        close: bool,
    ) -> ResponseGuard {
        let proxy = self.proxy;
        proxy.upstream_latency(&exchange, sent);
        let headers = &mut self.extra_headers;
        headers.clear();
        // A body the upstream ends by closing goes to the client in chunks, so the client's
        // connection, unlike the upstream's, can carry another request (as on hyper's path).
        if matches!(head.framing, Framing::Chunked | Framing::UntilClose) {
            headers.insert(
                header::TRANSFER_ENCODING,
                HeaderValue::from_static("chunked"),
            );
        }
        finish_head(headers, close, head.dated);
        let guard = proxy.finish(exchange, head.status, headers);
        head::write_headers(&mut self.out, headers);
        guard
    }

    /// Writes the upstream's answer, its head ([`Connection::relay_head`]) then its body, and
    /// keeps the upstream connection when the exchange left it clean. With `linger`, the
    /// client's body is still unread (an upstream that answered before reading it): the close
    /// drains it first, as for the gateway's own answers, so that it does not reset the
    /// answer away.
    pub(super) async fn relay(
        &mut self,
        guard: ResponseGuard,
        head: ResponseHead,
        mut upstream: UpstreamConnection,
        close: bool,
        linger: bool,
    ) -> io::Result<Next> {
        let body = match head.framing {
            Framing::Empty => self.write_out().await,
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
        // Bytes beyond the answer's framing are an upstream out of step with its
        // connection: whatever it sends next could be read as another client's answer.
        if !head.close && head.framing != Framing::UntilClose && upstream.io.buf.is_empty() {
            self.upstreams.put_back(upstream);
        }
        Ok(Next::after(close, linger))
    }

    /// Writes `self.out` to the client, within the stall limit.
    async fn write_out(&mut self) -> Result<(), Relay> {
        within(
            self.proxy,
            Stalled::Client,
            self.client.write_all(&self.out),
        )
        .await
        .map_err(Relay::Client)
    }

    /// Writes `self.out` and then `body` to the client, within the stall limit, in one
    /// system call where the socket takes them ([`write_head_and_body`]).
    async fn write_out_then(&mut self, body: &[u8]) -> Result<(), Relay> {
        let write = write_head_and_body(&mut self.client, &mut self.out, body);
        within(self.proxy, Stalled::Client, write)
            .await
            .map_err(Relay::Client)
    }

    /// Writes `bytes` to the client, within the stall limit.
    async fn write_client(&mut self, bytes: &[u8]) -> Result<(), Relay> {
        within(self.proxy, Stalled::Client, self.client.write_all(bytes))
            .await
            .map_err(Relay::Client)
    }

    /// Reads more of the upstream's answer, within the stall limit; `Ok(0)` is its end.
    async fn read_answer(&self, upstream: &mut UpstreamConnection) -> Result<usize, Relay> {
        let read = upstream.io.stream.read_buf(&mut upstream.io.buf);
        within(self.proxy, Stalled::Upstream, read)
            .await
            .map_err(Relay::Upstream)
    }

    /// Reads more of the upstream's answer; its end here is a failure.
    async fn read_more(&self, upstream: &mut UpstreamConnection) -> Result<(), Relay> {
        match self.read_answer(upstream).await? {
            0 => Err(Relay::Upstream(io::ErrorKind::UnexpectedEof.into())),
            _ => Ok(()),
        }
    }

    /// Relays exactly `len` body bytes; the first of them leave with the head.
    async fn relay_length(
        &mut self,
        upstream: &mut UpstreamConnection,
        len: u64,
    ) -> Result<(), Relay> {
        let mut left = len;
        let buffered = take_len(left, upstream.io.buf.len());
        self.write_out_then(&upstream.io.buf[..buffered]).await?;
        upstream.io.buf.advance(buffered);
        left -= buffered as u64;
        while left > 0 {
            self.read_more(upstream).await?;
            let take = take_len(left, upstream.io.buf.len());
            self.write_client(&upstream.io.buf[..take]).await?;
            upstream.io.buf.advance(take);
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
                .decode(&upstream.io.buf, |data| chunked::encode_chunk(out, data))
                .map_err(|error| {
                    Relay::Upstream(io::Error::new(io::ErrorKind::InvalidData, error))
                })?;
            upstream.io.buf.advance(used);
            if decoder.is_done() {
                self.out.extend_from_slice(chunked::LAST_CHUNK);
            }
            self.write_out().await?;
            self.out.clear();
            if decoder.is_done() {
                return Ok(());
            }
            self.read_more(upstream).await?;
        }
    }

    /// Relays until the upstream closes, each read as a chunk, then the last chunk.
    async fn relay_until_close(&mut self, upstream: &mut UpstreamConnection) -> Result<(), Relay> {
        loop {
            if !upstream.io.buf.is_empty() {
                chunked::encode_chunk(&mut self.out, &upstream.io.buf);
                upstream.io.buf.clear();
            }
            self.write_out().await?;
            self.out.clear();
            if self.read_answer(upstream).await? == 0 {
                break;
            }
        }
        self.write_client(chunked::LAST_CHUNK).await
    }
}

/// Which side failed while a body was relayed.
enum Relay {
    Upstream(io::Error),
    Client(io::Error),
}

/// One step of sending an answer (writing one buffer to the client, one read from the
/// upstream), bounded: a step not done within the stall limit (`UPSTREAM_TIMEOUT_SECS`), a
/// peer that stopped taking or giving bytes, ends the connection rather than hold it, its
/// upstream connection and its place among the requests in flight for ever; counted as `why`.
/// A step that completes at once, as most do, is not given a timer (nor the clock read a
/// deadline takes): only one that has to wait is.
async fn within<T>(
    proxy: &Proxy,
    why: Stalled,
    step: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    let mut step = std::pin::pin!(step);
    let first = std::future::poll_fn(|cx| Poll::Ready(step.as_mut().poll(cx))).await;
    if let Poll::Ready(done) = first {
        return done;
    }
    match tokio::time::timeout(proxy.limits().upstream_timeout, step).await {
        Ok(done) => done,
        Err(_elapsed) => {
            proxy.metrics().stalled(why);
            Err(io::ErrorKind::TimedOut.into())
        }
    }
}

/// Whether a response with `status` may carry a body (and so a `Content-Length`).
fn body_allowed(status: StatusCode) -> bool {
    !(status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED)
}

/// The headers every answer gets from the engine: `Connection: close` when the connection
/// ends after it, and `Date` unless the answer is `dated` already (as hyper does).
fn finish_head(headers: &mut HeaderMap, close: bool, dated: bool) {
    if close {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    if !dated {
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
