//! The lean engine's side of an exchange with an upstream: the request head and the client's
//! body written to the client connection's own upstream connection, and the answer's head read
//! back, within the upstream timeout, with the one retry that is safe.
//!
//! Not for: what the client gets back (`respond.rs`).

use std::{
    io,
    sync::atomic::{AtomicBool, Ordering},
    time::Instant,
};

use bytes::Buf;
use http::Method;
use proto_shared::BodyDigest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{
    deadline::Deadline,
    head::{self, Parsed, RequestHead, ResponseHead},
    take_len,
    upstream::{self, UpstreamConnection},
    write_head_and_body, Answer, BadResponse, Connection,
};
use crate::{
    error::GatewayError,
    proxy::{Exchange, Forwarding},
    request::ClientHead,
    upstream::{may_retry, Lost, Upstream},
};

/// A response head larger than this is refused as a bad upstream answer.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// The most room a signed body's read reserves ahead of the bytes that have come: the buffer
/// grows by at most this much (or doubles, as `BytesMut` does) as the body arrives.
const BODY_READ_STEP: usize = 64 * 1024;

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
    /// Sends the request upstream and reads the answer's head, within the upstream timeout.
    /// A request lost on a reused connection (the upstream closed it, or reset it, before
    /// answering) is sent once more on a new connection when that is safe: no body,
    /// idempotent method.
    ///
    /// A signed request's body is read whole first (its `Content-Length`, already checked
    /// against `MAX_BODY_BYTES`, within the upstream timeout), since the credential covers
    /// its digest.
    pub(super) async fn forward(
        &mut self,
        upstream: &Upstream,
        head: &RequestHead,
        exchange: &Exchange,
        forwarding: &mut Forwarding,
        body_left: &mut u64,
        deadline: &mut Deadline<'_>,
    ) -> Result<Answer, GatewayError> {
        let limits = self.proxy.limits();
        if self.proxy.signs(exchange) {
            let body = if self.has_buffered(*body_left) {
                // Nothing to wait for (no body, or all of it came with the head): no deadline
                // to set, which would cost a clock read and a timer move per request.
                self.buffer_body(*body_left).await?
            } else {
                deadline.set(tokio::time::Instant::now() + limits.upstream_timeout);
                tokio::select! {
                    biased;
                    read = self.buffer_body(*body_left) => read?,
                    () = deadline.wait() => return Err(GatewayError::BodyTimeout),
                }
            };
            self.proxy.sign(exchange, forwarding, head, body);
        }
        let forwarding = &*forwarding;
        let connect_timeout = crate::upstream::connect_timeout(limits.upstream_timeout);
        let sent = Instant::now();
        let bodiless = *body_left == 0;
        // Set while the exchange waits for the client's body: a deadline that passes then is
        // the client's delay (408), not the upstream's (504), and no upstream alarm.
        let awaiting_client = AtomicBool::new(false);
        let exchange = async {
            let mut connection =
                upstream::checkout(&mut self.upstreams, self.parked, upstream, connect_timeout)
                    .await?;
            loop {
                match self
                    .send(
                        &mut connection,
                        head,
                        forwarding,
                        body_left,
                        &awaiting_client,
                    )
                    .await
                {
                    Ok(head) => return Ok(Answer::Upstream(head, connection, sent)),
                    Err(SendError::ClosedBeforeAnswer)
                        if may_retry(
                            Lost::Unanswered,
                            connection.reused,
                            head.method(),
                            bodiless,
                        ) =>
                    {
                        connection = Box::pin(upstream::connect(upstream, connect_timeout)).await?;
                    }
                    Err(error) => return Err(error),
                }
            }
        };
        // The same instant as `sent`: one clock read serves the deadline and the latency.
        deadline.set(tokio::time::Instant::from_std(sent) + limits.upstream_timeout);
        let result = tokio::select! {
            biased;
            result = exchange => Some(result),
            () = deadline.wait() => None,
        };
        let Some(result) = result else {
            return Err(if awaiting_client.load(Ordering::Relaxed) {
                GatewayError::BodyTimeout
            } else {
                GatewayError::UpstreamTimeout
            });
        };
        match result {
            Ok(answer) => Ok(answer),
            Err(SendError::ClientBody) => Err(GatewayError::IncompleteBody),
            Err(error) => {
                tracing::warn!(%error, upstream = %upstream.address(), "upstream request failed");
                Err(GatewayError::UpstreamUnavailable)
            }
        }
    }

    /// Reads until the next `len` bytes of the client's body are all in the buffer, and
    /// returns their digest.
    async fn buffer_body(&mut self, len: u64) -> Result<BodyDigest, GatewayError> {
        // The caller checked `len` against MAX_BODY_BYTES, a usize-sized limit.
        let len = usize::try_from(len).map_err(|_| GatewayError::BodyTooLarge)?;
        while self.buf.len() < len {
            // Room for what is still to come, a step at a time: a head declaring the largest
            // body allowed does not get it reserved before a byte of it arrives.
            self.buf.reserve((len - self.buf.len()).min(BODY_READ_STEP));
            match self.client.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return Err(GatewayError::IncompleteBody),
                Ok(_) => {}
            }
        }
        Ok(BodyDigest::of(&self.buf[..len]))
    }

    /// Writes the head and the client's body to `connection`, then reads the answer's head.
    async fn send(
        &mut self,
        connection: &mut UpstreamConnection,
        head: &RequestHead,
        forwarding: &Forwarding,
        body_left: &mut u64,
        awaiting_client: &AtomicBool,
    ) -> Result<ResponseHead, SendError> {
        self.out.clear();
        head::write_request(&mut self.out, head, forwarding, &connection.host);
        // Whatever of the body has arrived travels with the head, in one write.
        let buffered = take_len(*body_left, self.buf.len());
        write_head_and_body(
            &mut connection.io.stream,
            &mut self.out,
            &self.buf[..buffered],
        )
        .await?;
        self.buf.advance(buffered);
        *body_left -= buffered as u64;
        while *body_left > 0 {
            awaiting_client.store(true, Ordering::Relaxed);
            let read = self.client.read_buf(&mut self.buf).await;
            awaiting_client.store(false, Ordering::Relaxed);
            match read {
                Ok(0) | Err(_) => return Err(SendError::ClientBody),
                Ok(_) => {}
            }
            let take = take_len(*body_left, self.buf.len());
            if let Err(error) = connection.io.stream.write_all(&self.buf[..take]).await {
                // An upstream may answer from the head alone (a 422 for a bad path) and close
                // without reading the body; the write then fails but the answer is there to
                // read, and it is what the client should get. The client's unread body makes
                // the caller close the client connection afterwards.
                self.out.clear();
                return read_response_head(connection, head.method(), &mut self.out)
                    .await
                    .map_err(|_| SendError::Io(error));
            }
            self.buf.advance(take);
            *body_left -= take as u64;
        }
        // The request is out: `out` now collects the client's head.
        self.out.clear();
        read_response_head(connection, head.method(), &mut self.out).await
    }
}

/// Reads the upstream's final response head, skipping informational (1xx) ones, and writes
/// its status line and relayed header lines to `out`.
async fn read_response_head(
    connection: &mut UpstreamConnection,
    method: &Method,
    out: &mut Vec<u8>,
) -> Result<ResponseHead, SendError> {
    let mut answered = false;
    loop {
        if !connection.io.buf.is_empty() {
            answered = true;
            match head::parse_response(&connection.io.buf, method, out)? {
                Parsed::Complete(head, len) => {
                    connection.io.buf.advance(len);
                    if !head.status.is_informational() {
                        return Ok(head);
                    }
                    continue;
                }
                Parsed::Partial if connection.io.buf.len() > MAX_RESPONSE_HEAD => {
                    return Err(SendError::Io(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "response head too large",
                    )));
                }
                Parsed::Partial | Parsed::NotOurs => {}
            }
        }
        match connection.io.stream.read_buf(&mut connection.io.buf).await {
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
