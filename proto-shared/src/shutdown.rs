//! The process's stop signal, alike in both binaries: SIGTERM (what orchestrators send) or
//! SIGINT (Ctrl-C), whichever comes first. A second one, a second or more after the first
//! and while it is still being honoured (the shutdown delay, then draining), ends the
//! process at once. Tests never use it; they pass their own future to `run_until_stopped`.

/// Completes `delay` after `stop` does, saying so: the process keeps serving meanwhile
/// (`SHUTDOWN_DELAY_SECS`). An orchestrator sends SIGTERM as it starts taking the instance
/// out of its load balancers, and they take a few seconds to stop sending it new connections,
/// which a process that had stopped accepting would refuse.
pub async fn delayed(stop: impl std::future::Future<Output = ()>, delay: std::time::Duration) {
    stop.await;
    if !delay.is_zero() {
        tracing::info!(
            delay_secs = delay.as_secs(),
            "stopping: still accepting for SHUTDOWN_DELAY_SECS"
        );
        tokio::time::sleep(delay).await;
    }
}

/// Completes when the process is asked to stop. From then on, a second SIGINT or SIGTERM
/// that comes at least [`SECOND_SIGNAL_AFTER`] after the first exits at once (status 128 +
/// the signal's number) without waiting for requests in flight: what an operator who pressed
/// Ctrl-C twice, or an orchestrator that gave up, asked for. One that comes sooner is taken
/// for the same request delivered twice (Ctrl-C reaches a whole process group, and a wrapper
/// may forward it as SIGTERM as well).
#[cfg(unix)]
pub async fn signal() {
    use tokio::signal::unix::{signal, SignalKind};
    // Both listeners made once, before the first signal, and kept: a signal that arrives
    // between the first and the wait for a second is held by them, not lost.
    let listen = |kind: SignalKind, name: &str| match signal(kind) {
        Ok(listener) => Some(listener),
        Err(error) => {
            tracing::error!(%error, "cannot listen for {name}");
            None
        }
    };
    let mut interrupt = listen(SignalKind::interrupt(), "SIGINT");
    let mut terminate = listen(SignalKind::terminate(), "SIGTERM");
    next_signal(&mut interrupt, &mut terminate).await;
    let first = std::time::Instant::now();
    tokio::spawn(async move {
        loop {
            let code = next_signal(&mut interrupt, &mut terminate).await;
            if first.elapsed() >= SECOND_SIGNAL_AFTER {
                tracing::warn!("second stop signal: exiting without finishing requests in flight");
                std::process::exit(code);
            }
        }
    });
}

/// How long after the first stop signal a second one ends the process at once.
pub const SECOND_SIGNAL_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// The next SIGINT or SIGTERM, logged, with the exit status that stands for it; a signal
/// nobody could listen for never comes.
#[cfg(unix)]
async fn next_signal(
    interrupt: &mut Option<tokio::signal::unix::Signal>,
    terminate: &mut Option<tokio::signal::unix::Signal>,
) -> i32 {
    async fn recv(listener: &mut Option<tokio::signal::unix::Signal>) {
        match listener {
            Some(listener) => {
                listener.recv().await;
            }
            None => std::future::pending().await,
        }
    }
    tokio::select! {
        () = recv(interrupt) => {
            tracing::info!("SIGINT received");
            128 + 2
        }
        () = recv(terminate) => {
            tracing::info!("SIGTERM received");
            128 + 15
        }
    }
}

/// Completes when the process is asked to stop (Ctrl-C).
#[cfg(not(unix))]
pub async fn signal() {
    if let Err(error) = tokio::signal::ctrl_c().await {
        tracing::error!(%error, "cannot listen for Ctrl-C");
        std::future::pending::<()>().await;
    }
    tracing::info!("Ctrl-C received");
}
