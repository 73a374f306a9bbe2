//! Log output captured in memory, for tests that assert what an operator would read.
//! Install with [`Captured::install`] inside a current-thread runtime (tokio::test's
//! default): the gateway's tasks then run on the test's thread and its thread-local
//! subscriber sees their events.

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use tracing_subscriber::fmt::MakeWriter;

/// Collects log output in memory.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// JSON lines at `filter` (e.g. `gateway=info`) for as long as the guard lives.
    pub fn install(&self, filter: &str) -> tracing::subscriber::DefaultGuard {
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_env_filter(filter)
            .with_writer(self.clone())
            .finish();
        // tracing-core caches, per callsite, whether any subscriber wants it. While exactly
        // one scoped subscriber exists it asks only the registering thread's own, so a
        // callsite another test's thread reaches first is cached as unwanted for good, and
        // this test's lines go missing (seen with a multi-threaded test alongside). A second,
        // idle dispatcher kept for the whole run makes it ask every live subscriber instead;
        // the rebuild then corrects what was cached before this one existed.
        static SECOND: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
        SECOND.get_or_init(|| tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default()));
        let guard = tracing::subscriber::set_default(subscriber);
        tracing::callsite::rebuild_interest_cache();
        guard
    }

    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Self;
    fn make_writer(&'a self) -> Self {
        self.clone()
    }
}
