//! Keeps the gateway's resident memory close to what it uses: small pages, and freed memory
//! given back while a worker is quiet.
//!
//! mimalloc asks the kernel for transparent huge pages wherever the system grants them on
//! request (`madvise` mode, Debian's default): a 2 MiB page is resident whole however little
//! of it is in use, and mimalloc then gives memory back only in 2 MiB pieces. For a proxy,
//! whose working set is small, that cost memory and bought nothing measurable:
//! [`use_small_pages`] turns them off for the process (`specs/research.md`, "Idle
//! connections").
//!
//! Freed memory: mimalloc returns the pages it has freed lazily, during later allocations
//! on the thread that freed them: a worker that served a burst (thousands of connections, each
//! with its buffers while in use) and then went quiet kept all of it resident, though free.
//! Each accept loop (`server::serve`, so each per-core worker) runs [`give_back_while_running`],
//! which asks mimalloc once a second to return what its thread has free. In a process whose
//! allocator is not mimalloc (the tests), the call finds nothing to return.

use std::time::Duration;

/// Turns transparent huge pages off for this process (`prctl(PR_SET_THP_DISABLE)`, which
/// holds for every thread). Call it first thing in `main`: memory faulted in before keeps
/// its pages. An error is only worth a warning: the gateway works as before, with more memory.
pub fn use_small_pages() -> std::io::Result<()> {
    rustix::thread::disable_transparent_huge_pages(true).map_err(std::io::Error::from)
}

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
