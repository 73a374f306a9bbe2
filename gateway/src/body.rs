//! Bodies as the gateway streams them: the request body counted on its way upstream (and cut
//! off past the limit), and the response body type that carries the per-request guards so a
//! request counts as in flight until its last byte has left.

use std::{
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    task::{Context, Poll},
};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Either, Full};
use hyper::body::Incoming;

/// Errors crossing a body boundary.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every response body the gateway sends.
pub type GatewayBody = UnsyncBoxBody<Bytes, BoxError>;

/// The request body as it travels upstream, counted against the limit: the client's as it
/// streams in, or read whole before a signed request (its digest is in the credential).
pub type UpstreamBody = LimitedBody<Either<Incoming, Full<Bytes>>>;

/// A complete in-memory body, boxed.
pub fn full(body: Full<Bytes>) -> GatewayBody {
    body.map_err(|never| match never {}).boxed_unsync()
}

/// Reads `body` to its end into one buffer (trailers are dropped), for a body that must be
/// whole before it travels (a signed request's: its digest is in the credential).
///
/// Not `BodyExt::collect`: that keeps every data frame as it came, so a body sent as a
/// million one-byte chunks (or HTTP/2 DATA frames) held a million frames, each keeping alive
/// the read buffer it was sliced from: about 40 times the body's size for as long as the
/// client took to finish it. Here each frame is copied in and dropped at once, so what is
/// held is the body's bytes, within the limit the caller's [`LimitedBody`] enforces.
pub async fn read_whole<B>(mut body: B) -> Result<Bytes, B::Error>
where
    B: Body<Data = Bytes> + Unpin,
{
    // The size hint's lower bound is what the client declared (a `Content-Length`), which
    // the limit has already been checked against; never more than a first step up front.
    const FIRST_STEP: u64 = 64 * 1024;
    let mut whole = bytes::BytesMut::with_capacity(
        usize::try_from(body.size_hint().lower().min(FIRST_STEP)).unwrap_or(0),
    );
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            whole.extend_from_slice(&data);
        }
    }
    Ok(whole.freeze())
}

/// The request body exceeded `MAX_BODY_BYTES` while streaming. Found again in the client's
/// error chain to tell "client sent too much" (413) from "upstream failed" (502).
#[derive(Debug, thiserror::Error)]
#[error("request body exceeds {limit} bytes")]
pub struct BodyTooLarge {
    pub limit: u64,
}

/// The client's request body could not be read to its end: cut short, or malformed chunked
/// framing. Found again in the upstream client's error chain to tell "client sent a bad body"
/// (400) from "upstream failed" (502).
#[derive(Debug, thiserror::Error)]
#[error("the client's request body failed")]
pub struct ClientBodyFailed(#[source] BoxError);

/// Passes frames through, counting data bytes; past `limit` it fails, which makes the client
/// abort the upstream request rather than forward a truncated body. A failure reading the
/// client's body comes out as [`ClientBodyFailed`].
#[derive(Debug)]
pub struct LimitedBody<B> {
    /// `None`: an empty body.
    inner: Option<B>,
    remaining: u64,
    limit: u64,
    /// Set while the last poll waited for the client ([`LimitedBody::watch_client`]).
    awaiting_client: Option<Arc<AtomicBool>>,
}

impl<B> LimitedBody<B> {
    /// Wraps `inner`, allowing at most `limit` data bytes through.
    pub fn new(inner: B, limit: u64) -> Self {
        Self {
            inner: Some(inner),
            remaining: limit,
            limit,
            awaiting_client: None,
        }
    }

    /// A flag that is set while whoever sends this body waits for the client to send more of
    /// it, so that a deadline passing then can be told apart (the client's delay, not the
    /// upstream's). Made on demand: a body read whole before it is sent never waits.
    pub fn watch_client(&mut self) -> Arc<AtomicBool> {
        self.awaiting_client
            .get_or_insert_with(|| Arc::new(AtomicBool::new(false)))
            .clone()
    }

    /// A body with nothing in it, for a request sent again.
    pub fn empty() -> Self {
        Self {
            inner: None,
            remaining: 0,
            limit: 0,
            awaiting_client: None,
        }
    }
}

impl<B> Body for LimitedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let Some(inner) = &mut this.inner else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(inner).poll_frame(cx);
        if let Some(awaiting) = &this.awaiting_client {
            awaiting.store(polled.is_pending(), Ordering::Relaxed);
        }
        match polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    if len > this.remaining {
                        this.remaining = 0;
                        return Poll::Ready(Some(Err(Box::new(BodyTooLarge {
                            limit: this.limit,
                        }))));
                    }
                    this.remaining -= len;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => {
                Poll::Ready(Some(Err(Box::new(ClientBodyFailed(error.into())))))
            }
            other => other.map(|_| None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

/// A response body that keeps `guard` alive until the body is finished or dropped.
#[derive(Debug)]
pub struct Guarded<G> {
    inner: GatewayBody,
    _guard: G,
}

impl<G: Send + Unpin + 'static> Guarded<G> {
    /// Boxes `inner` together with `guard`.
    pub fn wrap(inner: GatewayBody, guard: G) -> GatewayBody {
        Self {
            inner,
            _guard: guard,
        }
        .boxed_unsync()
    }
}

impl<G: Unpin> Body for Guarded<G> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// An upstream's answer without its trailers. hyper relays trailer fields to an HTTP/2 client
/// as they came, past the filter every response head goes through (the request id, CORS and
/// hop-by-hop rules); the lean engine and HTTP/1.1 drop them, and so does this.
#[derive(Debug)]
pub struct WithoutTrailers<B>(pub B);

impl<B: Body + Unpin> Body for WithoutTrailers<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        loop {
            match std::task::ready!(Pin::new(&mut self.0).poll_frame(cx)) {
                Some(Ok(frame)) if frame.is_trailers() => continue,
                other => return Poll::Ready(other),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.size_hint()
    }
}

/// True when `error`, or anything it wraps, is a `T` ([`BodyTooLarge`], [`ClientBodyFailed`]).
pub fn caused_by<T: std::error::Error + 'static>(
    error: &(dyn std::error::Error + 'static),
) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error.is::<T>() {
            return true;
        }
        current = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use std::{collections::VecDeque, convert::Infallible, future::Future};

    use super::*;

    /// Data frames as a client sent them, then (with `end` false) a wait that never ends.
    struct Frames {
        frames: VecDeque<Bytes>,
        end: bool,
    }

    impl Body for Frames {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            match self.frames.pop_front() {
                Some(data) => Poll::Ready(Some(Ok(Frame::data(data)))),
                None if self.end => Poll::Ready(None),
                None => Poll::Pending,
            }
        }
    }

    /// One-byte frames, each a slice of a read buffer of its own (as hyper hands out pieces of
    /// its read buffer), and those buffers.
    fn one_byte_frames(n: usize) -> (VecDeque<Bytes>, Vec<Bytes>) {
        let buffers: Vec<Bytes> = (0..n).map(|i| Bytes::from(vec![i as u8; 4096])).collect();
        let frames = buffers.iter().map(|buffer| buffer.slice(..1)).collect();
        (frames, buffers)
    }

    #[test]
    fn a_body_of_tiny_frames_keeps_none_of_them_while_it_waits_for_the_rest() {
        let (frames, mut buffers) = one_byte_frames(200);
        let mut reading = Box::pin(read_whole(Frames { frames, end: false }));
        let mut cx = Context::from_waker(std::task::Waker::noop());
        // Every frame taken; the client has not finished.
        assert!(reading.as_mut().poll(&mut cx).is_pending());
        for buffer in &mut buffers {
            // Held by the test alone: the reader copied its byte and let the frame go.
            assert!(std::mem::take(buffer).is_unique());
        }
    }

    #[test]
    fn a_body_is_read_whole_in_order() {
        let (frames, _buffers) = one_byte_frames(300);
        let mut frames = frames;
        frames.push_back(Bytes::from_static(b"tail"));
        frames.push_front(Bytes::new());
        let mut reading = Box::pin(read_whole(Frames { frames, end: true }));
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let Poll::Ready(Ok(whole)) = reading.as_mut().poll(&mut cx) else {
            panic!("a finished body reads at once");
        };
        let expected: Vec<u8> = (0..300)
            .map(|i| i as u8)
            .chain(b"tail".iter().copied())
            .collect();
        assert_eq!(whole, expected);
    }
}
