//! The process's stop signal, alike in both binaries: SIGTERM (what orchestrators send) or
//! SIGINT (Ctrl-C), whichever comes first. A second one, while the first is still being
//! honoured (the shutdown delay, then draining), ends the process at once. Tests never use
//! it; they pass their own future to `run_until_stopped`.

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
/// exits at once (status 128 + the signal's number) without waiting for requests in flight:
/// what an operator who pressed Ctrl-C twice, or an orchestrator that gave up, asked for.
pub async fn signal() {
    first_of_two().await;
    tokio::spawn(async {
        let code = first_of_two().await;
        tracing::warn!("second stop signal: exiting without finishing requests in flight");
        std::process::exit(code);
    });
}

/// Completes when SIGINT or SIGTERM arrives, with the exit status that stands for it.
async fn first_of_two() -> i32 {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {
            tracing::info!("SIGINT received");
            128 + 2
        }
        () = terminate => {
            tracing::info!("SIGTERM received");
            128 + 15
        }
    }
}
