//! hyper answers a request head it cannot read (malformed: 400, too large: 431, a target too
//! long: 414, an unknown version: 505) itself, with a bare head, before any request reaches the
//! gateway. This wrapper, around every HTTP/1 connection hyper serves (on either engine: the
//! lean one hands such heads to hyper), recognises those answers on their way out and writes
//! the gateway's own refusal in their place: the JSON body, a request id, the refusal counted
//! and logged like every other (`Proxy::refuse_unreadable`).
//!
//! Only a write made while no answer of the gateway's is on its way out can be hyper's
//! refusal ([`Answers`]): hyper writes one only for a head it could not read, before any
//! request reached the service. A frame of a relayed body that happens to read like a bare
//! head, written on its own, is passed on as it is; replacing it would break the answer's
//! framing and put the connection out of step.
//!
//! Not for: the gateway's own answers, which always carry a request id and so never look like
//! hyper's; nor HTTP/2, whose errors are stream resets.

use std::{
    io,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    task::{Context, Poll},
};

use http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::{error::GatewayError, proxy::Proxy};

/// Whether hyper may be writing an answer of the gateway's on one connection: from the moment
/// it hands a request to the service until a flush completes after that answer's body was
/// dropped (hyper drops a body once its last frame is buffered, which may not be written yet).
#[derive(Debug, Default)]
pub struct Answers {
    /// Answers whose body has not been dropped yet.
    open: AtomicUsize,
    /// A body was dropped since the last completed flush.
    unflushed: AtomicBool,
}

/// Held by one answer, from the service's call until its body is dropped.
#[derive(Debug)]
pub struct Answer(Arc<Answers>);

impl Answers {
    /// An answer begins: hyper has handed a request to the service.
    pub fn begin(self: &Arc<Self>) -> Answer {
        self.open.fetch_add(1, Ordering::AcqRel);
        Answer(self.clone())
    }

    /// Whether every answer begun is out of hyper's hands (written and flushed): only then
    /// can a write be hyper's, and only then may a closing connection be dropped.
    pub fn quiet(&self) -> bool {
        self.open.load(Ordering::Acquire) == 0 && !self.unflushed.load(Ordering::Acquire)
    }

    /// A flush has completed: what hyper had buffered is written.
    fn flushed(&self) {
        if self.open.load(Ordering::Acquire) == 0 {
            self.unflushed.store(false, Ordering::Release);
        }
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        // Before the count drops, so that a write seen between the two is not taken as quiet.
        self.0.unflushed.store(true, Ordering::Release);
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A client connection whose writes are watched for hyper's own refusals.
pub struct Refusals<T> {
    io: T,
    proxy: Proxy,
    answers: Arc<Answers>,
    /// The gateway's refusal, written in place of hyper's, and how much of it is out.
    pending: Vec<u8>,
    written: usize,
}

impl<T> Refusals<T> {
    /// `io`, whose answers (`answers`, begun by the service) are never taken for refusals.
    pub fn new(io: T, proxy: Proxy, answers: Arc<Answers>) -> Self {
        Self {
            io,
            proxy,
            answers,
            pending: Vec::new(),
            written: 0,
        }
    }
}

/// The error hyper's answer `head` stands for, when `head` is one of hyper's own refusals: a
/// whole `HTTP/1.x 4xx|5xx` head and nothing after it, with no header but the three hyper
/// writes on it (`content-length: 0`, `connection`, `date`). Every answer the gateway makes
/// carries `x-request-id`, so none of them matches.
fn hyper_refusal(head: &[u8]) -> Option<GatewayError> {
    let mut lines = [httparse::EMPTY_HEADER; 4];
    let mut response = httparse::Response::new(&mut lines);
    let Ok(httparse::Status::Complete(len)) = response.parse(head) else {
        return None;
    };
    let own = response.headers.iter().all(|line| {
        let name = line.name.as_bytes();
        (name.eq_ignore_ascii_case(b"content-length") && line.value == b"0")
            || name.eq_ignore_ascii_case(b"connection")
            || name.eq_ignore_ascii_case(b"date")
    });
    if len != head.len() || !own {
        return None;
    }
    match StatusCode::from_u16(response.code?).ok()? {
        StatusCode::BAD_REQUEST => Some(GatewayError::MalformedHead),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => Some(GatewayError::HeadersTooLarge),
        StatusCode::URI_TOO_LONG => Some(GatewayError::TargetTooLong),
        StatusCode::HTTP_VERSION_NOT_SUPPORTED => Some(GatewayError::VersionNotSupported),
        _ => None,
    }
}

impl<T: AsyncWrite + Unpin> Refusals<T> {
    /// Writes out what is left of the gateway's refusal.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n = std::task::ready!(
                Pin::new(&mut self.io).poll_write(cx, &self.pending[self.written..])
            )?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        Poll::Ready(Ok(()))
    }

    /// Takes `buf` in place of hyper's refusal it is, if it is one: `true` when replaced.
    fn replace(&mut self, buf: &[u8]) -> bool {
        if !self.pending.is_empty() || !self.answers.quiet() {
            return false;
        }
        let Some(error) = hyper_refusal(buf) else {
            return false;
        };
        self.pending = self.proxy.refuse_unreadable(error);
        self.written = 0;
        true
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Refusals<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Refusals<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        std::task::ready!(this.poll_pending(cx))?;
        if this.replace(buf) {
            // hyper's bytes count as written; the refusal goes out now or at the flush that
            // follows every answer.
            let _ = this.poll_pending(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        std::task::ready!(this.poll_pending(cx))?;
        let mut filled = bufs.iter().filter(|buf| !buf.is_empty());
        if let (Some(only), None) = (filled.next(), filled.next()) {
            if this.replace(only) {
                let _ = this.poll_pending(cx)?;
                return Poll::Ready(Ok(only.len()));
            }
        }
        Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_pending(cx))?;
        std::task::ready!(Pin::new(&mut self.io).poll_flush(cx))?;
        self.answers.flushed();
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_out_of_hypers_hands_only_after_the_flush_that_follows_it() {
        let answers = Arc::new(Answers::default());
        assert!(answers.quiet(), "nothing begun");
        let first = answers.begin();
        answers.flushed();
        assert!(!answers.quiet(), "its body not yet dropped");
        let second = answers.begin();
        drop(first);
        answers.flushed();
        assert!(!answers.quiet(), "the second still open");
        drop(second);
        assert!(!answers.quiet(), "its last frame may still be buffered");
        answers.flushed();
        assert!(answers.quiet());
    }

    #[test]
    fn only_hypers_bare_refusals_are_recognised() {
        let date = "date: Thu, 03 Dec 2026 12:00:00 GMT\r\n";
        let bare = |status: &str| {
            format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n{date}\r\n")
        };
        assert_eq!(
            hyper_refusal(bare("400 Bad Request").as_bytes()),
            Some(GatewayError::MalformedHead)
        );
        assert_eq!(
            hyper_refusal(bare("431 Request Header Fields Too Large").as_bytes()),
            Some(GatewayError::HeadersTooLarge)
        );
        assert_eq!(
            hyper_refusal(bare("505 HTTP Version Not Supported").as_bytes()),
            Some(GatewayError::VersionNotSupported)
        );
        for not_hypers in [
            // The gateway's own: a request id and a body.
            format!("HTTP/1.1 400 Bad Request\r\nx-request-id: r\r\ncontent-length: 2\r\n{date}\r\n{{}}"),
            // A head with a body after it, or unfinished.
            format!("{}x", bare("400 Bad Request")),
            "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n".to_owned(),
            bare("200 OK"),
            bare("502 Bad Gateway"),
            "hello".to_owned(),
        ] {
            assert_eq!(hyper_refusal(not_hypers.as_bytes()), None, "{not_hypers:?}");
        }
    }
}
