//! On hyper's path, an answer that stops moving ends its connection: a client that takes no
//! bytes of it ([`WriteStall`], around the connection), or an upstream that gives no more of
//! its body ([`BodyStall`], around each response body), for the stall limit
//! (`UPSTREAM_TIMEOUT_SECS`). Without them such a connection would hold its socket, its
//! upstream connection and its place among the requests in flight for ever. The lean engine
//! bounds the same steps itself (`http1/respond.rs`).
//!
//! HTTP/2 has a third way to stop an answer: the client withholds flow-control window while
//! its connection otherwise moves (pings, other streams). Its socket never backs up, so
//! [`WriteStall`] sees nothing, and hyper does not ask the body for more while a frame waits
//! for window, so [`BodyStall`] is not polled either. [`StreamExecutor`] runs each stream's
//! task and resets the stream once a frame the body handed over has waited that long; the
//! body hands over at most [`MAX_HANDED`] bytes at a time, so that a client keeps its answer
//! only by granting at least that much window per stall limit.
//!
//! An answer's last frame is handed without its last byte, which follows alone: hyper ends a
//! stream's task as soon as it has queued the frame that ends the stream, so an answer that
//! fits in one frame would otherwise sit queued with h2, untimed, while the client withholds
//! window (one extra DATA frame of one byte per answer).
//!
//! A timer is armed only when a write or a body frame is pending, so an answer that goes out
//! at once, as most do, costs no timer.

use std::{
    future::{poll_fn, Future},
    io,
    pin::{pin, Pin},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    task::{ready, Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::{Instant, Sleep},
};

use crate::{
    body::{BoxError, GatewayBody},
    metrics::{Metrics, StallRecorder, Stalled},
};

/// A timer that runs only while something is pending; made the first time something is.
struct Stall {
    limit: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    armed: bool,
    /// Counts the cut, once.
    recorder: Option<StallRecorder>,
}

impl Stall {
    fn new(limit: Duration, recorder: StallRecorder) -> Self {
        Self {
            limit,
            timer: None,
            armed: false,
            recorder: Some(recorder),
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
        let passed = self
            .timer
            .as_mut()
            .is_some_and(|timer| timer.as_mut().poll(cx).is_ready());
        if passed {
            if let Some(recorder) = self.recorder.take() {
                recorder.record();
            }
        }
        passed
    }
}

/// A client connection whose writes fail with `TimedOut` once one has waited for the stall
/// limit without the client taking a byte.
pub struct WriteStall<T> {
    io: T,
    stall: Stall,
}

impl<T> WriteStall<T> {
    pub fn new(io: T, limit: Duration, metrics: &Metrics) -> Self {
        Self {
            io,
            stall: Stall::new(limit, metrics.stall_recorder(Stalled::Client)),
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
    /// Set on an HTTP/2 stream run by [`StreamExecutor`].
    stream: Option<OnStream>,
}

/// What a body on an HTTP/2 stream keeps for [`StreamExecutor`].
struct OnStream {
    /// Tells the stream's task that a frame given to hyper is not yet queued for sending.
    handed: Arc<Handed>,
    /// What is left of a data frame larger than [`MAX_HANDED`], given in pieces.
    rest: Bytes,
}

/// The most a body on an HTTP/2 stream gives hyper at once: the protocol's default frame
/// size. hyper queues the frame it holds with h2, and asks for the next, only once the
/// stream's window covers all h2 still has queued for it and a byte more; so this bounds how
/// much window a client must grant a stream per stall limit to keep its answer going (16 KiB
/// per 30 s by default), whatever sizes the upstream's reads come in. The streams of one
/// connection that wait at once share what the connection moves: on a link slower than
/// 16 KiB per stream per stall limit, a client reading steadily has streams reset, as a
/// window-exhausted stream waits out nginx's `send_timeout`.
const MAX_HANDED: usize = 16 * 1024;

impl BodyStall {
    /// Boxes `inner`, bounded by `limit`. A body already whole needs no bound.
    pub fn wrap(inner: GatewayBody, limit: Duration, metrics: &Metrics) -> GatewayBody {
        if inner.is_end_stream() {
            return inner;
        }
        http_body_util::BodyExt::boxed_unsync(Self {
            inner,
            stall: Stall::new(limit, metrics.stall_recorder(Stalled::Upstream)),
            // Set while hyper polls the service inside a stream's task, so the answer made
            // there finds its stream's flag.
            stream: HANDED
                .try_with(|handed| OnStream {
                    handed: handed.clone(),
                    rest: Bytes::new(),
                })
                .ok(),
        })
    }
}

/// Polls `inner` for its next frame, failing once it has given nothing for `stall`'s limit.
fn poll_bounded(
    inner: &mut GatewayBody,
    stall: &mut Stall,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
    let polled = Pin::new(inner).poll_frame(cx);
    if stall.watch(cx, &polled) {
        return Poll::Ready(Some(Err(Box::new(BodyStalled))));
    }
    polled
}

impl Body for BodyStall {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let Self {
            inner,
            stall,
            stream,
        } = &mut *self;
        let Some(stream) = stream else {
            return poll_bounded(inner, stall, cx);
        };
        stream.handed.asked();
        let mut data = if stream.rest.is_empty() {
            match ready!(poll_bounded(inner, stall, cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => data,
                    // Trailers take no window.
                    Err(trailers) => return Poll::Ready(Some(Ok(trailers))),
                },
                end_or_error => return Poll::Ready(end_or_error),
            }
        } else {
            std::mem::take(&mut stream.rest)
        };
        if data.len() > MAX_HANDED {
            stream.rest = data.split_off(MAX_HANDED);
        } else if data.len() > 1 && inner.is_end_stream() {
            // The answer's last frame goes without its last byte, which follows on its own.
            // hyper queues a frame that does not end the stream and waits for window to
            // cover it before asking for the next; one that ends the stream ends the
            // stream's task at once, left queued with h2 and timed by nothing, its place
            // among the requests in flight given back, while the client withholds window.
            stream.rest = data.split_off(data.len() - 1);
        }
        stream.handed.given();
        Poll::Ready(Some(Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.stream
            .as_ref()
            .is_none_or(|stream| stream.rest.is_empty())
            && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let rest = self
            .stream
            .as_ref()
            .map_or(0, |stream| stream.rest.len() as u64);
        let inner = self.inner.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + rest);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + rest);
        }
        hint
    }
}

tokio::task_local! {
    /// What the body of the HTTP/2 stream whose task is being polled tells that task.
    static HANDED: Arc<Handed>;
}

/// What a stream's response body tells the stream's task: whether hyper holds a frame of it
/// not yet queued for sending, and whether hyper has asked for a frame since the task last
/// looked. hyper queues the frame it holds, and asks for the next, only once the client's
/// flow-control window has room for it ([`MAX_HANDED`]).
#[derive(Default)]
struct Handed {
    holding: AtomicBool,
    asked: AtomicBool,
}

// Only the stream's own task reads and writes these, one poll at a time: no ordering needed.
impl Handed {
    /// hyper asks for a frame: what it held is queued for sending.
    fn asked(&self) {
        self.asked.store(true, Ordering::Relaxed);
        self.holding.store(false, Ordering::Relaxed);
    }

    /// hyper was given a frame.
    fn given(&self) {
        self.holding.store(true, Ordering::Relaxed);
    }

    /// Whether hyper has asked for a frame since the last look, and whether it holds one now.
    fn look(&self) -> (bool, bool) {
        (
            self.asked.swap(false, Ordering::Relaxed),
            self.holding.load(Ordering::Relaxed),
        )
    }
}

/// The executor of hyper's HTTP/2 server, which runs each stream (its request's handling and
/// its answer) as a task: a stream whose answer has waited for the stall limit on window the
/// client withholds is dropped, which resets it (`RST_STREAM` with `CANCEL`), gives back its
/// place among the requests in flight and closes its upstream connection, mid-answer. (hyper
/// also runs the tasks of upgraded connections here; their bodies never hold a frame.)
#[derive(Clone, Debug)]
pub struct StreamExecutor {
    limit: Duration,
    recorder: StallRecorder,
}

impl StreamExecutor {
    /// Resets a stream whose answer has waited `limit` for window.
    pub fn new(limit: Duration, metrics: &Metrics) -> Self {
        Self {
            limit,
            recorder: metrics.stall_recorder(Stalled::Window),
        }
    }
}

impl<F> hyper::rt::Executor<F> for StreamExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, stream: F) {
        let mut stall = Stall::new(self.limit, self.recorder.clone());
        tokio::spawn(async move {
            let handed = Arc::new(Handed::default());
            let mut stream = pin!(HANDED.scope(handed.clone(), stream));
            poll_fn(|cx| {
                if stream.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(());
                }
                let (moved, holding) = handed.look();
                if moved {
                    // hyper queued what it held: the wait, if any, begins again.
                    stall.watch(cx, &Poll::Ready(()));
                }
                // Waiting on anything but window (the request, the upstream, the body) is
                // bounded where it waits.
                let waiting_for_window = if holding {
                    Poll::Pending
                } else {
                    Poll::Ready(())
                };
                if stall.watch(cx, &waiting_for_window) {
                    // Dropping the stream resets it.
                    return Poll::Ready(());
                }
                Poll::Pending
            })
            .await;
        });
    }
}
