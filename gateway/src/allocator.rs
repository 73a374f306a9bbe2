//! Gives freed memory back to the system while a worker is quiet. The binary's allocator,
//! mimalloc (`main.rs`), returns the pages it has freed lazily, during later allocations on
//! the thread that freed them: a worker that served a burst (thousands of connections, each
//! with its buffers while in use) and then went quiet kept all of it resident, though free.
//! Each accept loop (`server::serve`, so each per-core worker) runs [`give_back_while_running`],
//! which asks mimalloc once a second to return what its thread has free. In a process whose
//! allocator is not mimalloc (the tests), the call finds nothing to return.

use std::time::Duration;

/// How often a worker gives back what it has free: often enough that an idle gateway's
/// resident memory follows its idle connections within seconds, rare enough to cost nothing
/// measurable (one timer and one heap walk a second).
const EVERY: Duration = Duration::from_secs(1);

/// Runs until dropped, giving back the calling thread's free memory every [`EVERY`]. Must run
/// on the thread whose heap it collects: a current-thread runtime's (the per-core layout),
/// or any one thread of a multi-threaded runtime (the `shared` layout, where the other
/// threads' heaps give back only during their own allocations).
pub async fn give_back_while_running() {
    let mut ticks = tokio::time::interval(EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        // The project's one unsafe block (the workspace denies them elsewhere).
        // SAFETY: `mi_collect` takes no pointers and may be called on any thread at any time;
        // it only returns pages that hold no live allocation (`force = false`: those freed
        // longer ago than mimalloc's purge delay).
        #[allow(unsafe_code)]
        unsafe {
            libmimalloc_sys::mi_collect(false)
        };
    }
}
