//! Time limits for HTTP/2 client connections, which hyper's HTTP/2 server does not have: a
//! client could otherwise hold a connection open forever by sending nothing after the preface,
//! by never finishing a header block, or by simply staying idle.
//!
//! A connection must start its first request within the header-read timeout and, after that,
//! may sit with no request in flight for the idle timeout. Then it gets a graceful shutdown
//! (GOAWAY: requests already started finish), and if it is still open, with nothing in
//! flight, a header-read timeout later, it is dropped. Draining closes it the same way; a
//! connection shed to make room under the cap gets `CLOSING_GRACE` rather than the header-read
//! timeout, since it no longer counts against the cap.
//!
//! Not for: HTTP/1, whose engines bound the head and the keep-alive wait themselves.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use http::{Request, Response};
use hyper::{
    body::{Body, Incoming},
    rt::{Read, Write},
    service::Service,
};
use hyper_util::server::conn::auto::{Connection, HttpServerConnExec};
use tokio::time::Instant;

use crate::{
    config::Limits,
    connection::{Slot, CLOSING_GRACE},
};

/// What a connection's requests are doing, shared by its request handlers (which hyper runs
/// as tasks of their own) and the task that watches the connection.
#[derive(Debug)]
pub struct Activity {
    opened: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds after `opened` when a request last started or ended.
    last_change_ms: AtomicU64,
    any_request: AtomicBool,
}

/// Held from a request's start until its response's last byte has left (or the client gave
/// up on it).
#[derive(Debug)]
pub struct InFlightRequest(Arc<Activity>);

impl Activity {
    /// The record of a connection opened now.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_change_ms: AtomicU64::new(0),
            any_request: AtomicBool::new(false),
        })
    }

    /// Marks a request as started.
    pub fn begin(self: &Arc<Self>) -> InFlightRequest {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.any_request.store(true, Ordering::Release);
        self.touch();
        InFlightRequest(self.clone())
    }

    fn touch(&self) {
        let since = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_change_ms.fetch_max(since, Ordering::AcqRel);
    }

    fn last_change(&self) -> Instant {
        self.opened + Duration::from_millis(self.last_change_ms.load(Ordering::Acquire))
    }

    /// When the connection, with nothing in flight, has been idle too long: to be asked to
    /// close or, once asked (`closing_since`), to be dropped. `None` while a request is in
    /// flight.
    fn deadline(
        &self,
        closing_since: Option<Instant>,
        limits: &Limits,
        shed: bool,
    ) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        Some(match closing_since {
            Some(since) => {
                let grace = if shed {
                    CLOSING_GRACE.min(limits.header_read_timeout)
                } else {
                    limits.header_read_timeout
                };
                since.max(self.last_change()) + grace
            }
            None if self.any_request.load(Ordering::Acquire) => {
                self.last_change() + limits.idle_timeout
            }
            None => self.opened + limits.header_read_timeout,
        })
    }
}

impl Drop for InFlightRequest {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.touch();
    }
}

/// A served connection that can be asked to finish what it has started and close: hyper's
/// `graceful_shutdown`, behind a trait so the connection can be boxed as `Send` where its
/// types are concrete (the compiler cannot prove it in generic code, rust-lang/rust#110338).
pub trait GracefulConnection: Future {
    fn graceful_shutdown(self: Pin<&mut Self>);
}

impl<I, S, E, B> GracefulConnection for Connection<'_, I, S, E>
where
    S: Service<Request<Incoming>, Response = Response<B>>,
    S::Future: 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: Read + Write + Unpin + 'static,
    E: HttpServerConnExec<S::Future, B>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        Connection::graceful_shutdown(self);
    }
}

/// Drives an HTTP/2 `connection` until it ends, asking it to close when it stays idle (see
/// the module doc) or when its slot is asked to close (the drain, or a shed), and dropping it
/// (`None`) if it does not finish in time after that.
pub async fn serve<C: GracefulConnection + ?Sized>(
    mut connection: Pin<&mut C>,
    activity: &Activity,
    limits: &Limits,
    slot: &Slot,
) -> Option<C::Output> {
    let draining = slot.closing();
    // When the gateway asked the client to go away; from then on it may only finish.
    let mut closing_since: Option<Instant> = None;
    // Whether the slot's closing (the drain, or a shed) has been heard: it may come after an
    // idle connection was asked to go away, and a shed then shortens what is left of the
    // grace (a shed connection no longer counts against the cap).
    let mut closing_heard = false;
    loop {
        let deadline = activity
            .deadline(closing_since, limits, slot.was_shed())
            // Busy: look again later; a request ending moves the deadline anyway.
            .unwrap_or_else(|| Instant::now() + limits.header_read_timeout);
        tokio::select! {
            biased;
            output = connection.as_mut() => return Some(output),
            () = draining.cancelled(), if !closing_heard => {
                closing_heard = true;
                if closing_since.is_none() {
                    connection.as_mut().graceful_shutdown();
                    closing_since = Some(Instant::now());
                }
            }
            () = tokio::time::sleep_until(deadline) => {
                // Requests may have come and gone while this slept: act on the deadline now.
                let now = Instant::now();
                let due = activity.deadline(closing_since, limits, slot.was_shed());
                if due.is_none_or(|due| due > now) {
                    continue;
                }
                if closing_since.is_some() {
                    tracing::debug!("dropping an HTTP/2 connection that did not close in time");
                    return None;
                }
                tracing::debug!("closing an idle HTTP/2 connection");
                connection.as_mut().graceful_shutdown();
                closing_since = Some(now);
            }
        }
    }
}
