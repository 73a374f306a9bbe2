//! A deadline that requests move on, whose timer moves only when it fires early: what the
//! engine's per-connection timeouts (idle, release, upstream) wait on (`Timers` in
//! `http1.rs`).

use std::pin::Pin;

use tokio::time::{Instant, Sleep};

/// A timer moved later only when it fires early (`Timers` in `http1.rs` says why): `timer`
/// is never set past `due`, the deadline the connection last noted, so it fires at `due` or
/// before, and [`Deadline::wait`] waits on from there if it was before.
pub(super) struct Deadline<'t> {
    timer: Pin<&'t mut Sleep>,
    pub(super) due: Instant,
}

impl<'t> Deadline<'t> {
    /// A deadline at `timer`'s own.
    pub(super) fn new(timer: Pin<&'t mut Sleep>) -> Self {
        let due = timer.deadline();
        Self { timer, due }
    }

    /// Notes a new deadline. A later one (what each request notes) costs nothing now; an
    /// earlier one (clocks read apart can disagree by a little) moves the timer at once, so
    /// that it is never set past the deadline.
    pub(super) fn set(&mut self, due: Instant) {
        if due < self.due {
            self.timer.as_mut().reset(due);
        }
        self.due = due;
    }

    /// Waits until the deadline noted has passed.
    pub(super) async fn wait(&mut self) {
        loop {
            self.timer.as_mut().await;
            if Instant::now() >= self.due {
                return;
            }
            // Fired for an earlier deadline: move it on to the one noted, and wait again.
            self.timer.as_mut().reset(self.due);
        }
    }
}
