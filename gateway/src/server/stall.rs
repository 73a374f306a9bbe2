//! On hyper's path, an answer that stops moving ends its connection: a client that takes no
//! bytes of it ([`WriteStall`], around the connection), or an upstream that gives no more of
//! its body ([`BodyStall`], around each response body), for the stall limit
//! (`UPSTREAM_TIMEOUT_SECS`). Without them such a connection would hold its socket, its
//! upstream connection and its place among the requests in flight for ever. The lean engine
//! bounds the same steps itself (`http1/respond.rs`).
//!
//! A timer is armed only when a write or a body frame is pending, so an answer that goes out
//! at once, as most do, costs no timer.

use std::{
    future::Future,
    io,
    pin::Pin,
    task::{ready, Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::{Instant, Sleep},
};

use crate::body::{BoxError, GatewayBody};

/// A timer that runs only while something is pending; made the first time something is.
struct Stall {
    limit: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl Stall {
    fn new(limit: Duration) -> Self {
        Self {
            limit,
            timer: None,
            armed: false,
        }
    }

    /// Called with what a step of the answer returned: progress disarms the timer; a pending
    /// step arms it (from now, if it was not armed) and says whether the limit has passed.
    fn watch<T>(&mut self, cx: &mut Context<'_>, step: &Poll<T>) -> bool {
        if step.is_ready() {
            self.armed = false;
            return false;
        }
        if !self.armed {
            self.armed = true;
            let deadline = Instant::now() + self.limit;
            match &mut self.timer {
                Some(timer) => timer.as_mut().reset(deadline),
                None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
        }
        self.timer
            .as_mut()
            .is_some_and(|timer| timer.as_mut().poll(cx).is_ready())
    }
}

/// A client connection whose writes fail with `TimedOut` once one has waited for the stall
/// limit without the client taking a byte.
pub struct WriteStall<T> {
    io: T,
    stall: Stall,
}

impl<T> WriteStall<T> {
    pub fn new(io: T, limit: Duration) -> Self {
        Self {
            io,
            stall: Stall::new(limit),
        }
    }
}

impl<T: AsyncWrite + Unpin> WriteStall<T> {
    fn bounded<R>(
        &mut self,
        cx: &mut Context<'_>,
        step: impl FnOnce(Pin<&mut T>, &mut Context<'_>) -> Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        let polled = step(Pin::new(&mut self.io), cx);
        if self.stall.watch(cx, &polled) {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client took none of its answer for the stall limit",
            )));
        }
        polled
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteStall<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteStall<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.bounded(cx, |io, cx| io.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.bounded(cx, |io, cx| io.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.bounded(cx, |io, cx| io.poll_flush(cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.bounded(cx, |io, cx| io.poll_shutdown(cx))
    }
}

/// Why a response body was cut short.
#[derive(Debug, thiserror::Error)]
#[error("the upstream gave no more of its answer for the stall limit")]
pub struct BodyStalled;

/// A response body that fails once it has given nothing for the stall limit.
pub struct BodyStall {
    inner: GatewayBody,
    stall: Stall,
}

impl BodyStall {
    /// Boxes `inner`, bounded by `limit`. A body already whole needs no bound.
    pub fn wrap(inner: GatewayBody, limit: Duration) -> GatewayBody {
        if inner.is_end_stream() {
            return inner;
        }
        http_body_util::BodyExt::boxed_unsync(Self {
            inner,
            stall: Stall::new(limit),
        })
    }
}

impl Body for BodyStall {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if this.stall.watch(cx, &polled) {
            return Poll::Ready(Some(Err(Box::new(BodyStalled))));
        }
        Poll::Ready(ready!(polled))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
