//! The gateway binary: configuration, telemetry, build, serve until SIGTERM or SIGINT.

use std::process::ExitCode;

use clap::CommandFactory;
use gateway::{config, Application, Config};
use proto_shared::shutdown;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    if let Err(error) = gateway::allocator::use_small_pages() {
        eprintln!(
            "gateway: cannot turn transparent huge pages off ({error}); memory use may be higher"
        );
    }
    if config::list_env_requested(std::env::args_os()) {
        print!("{}", config::env_listing());
        return ExitCode::SUCCESS;
    }
    let config: Config = match proto_shared::cli::parse_from(std::env::args_os()) {
        Ok(config) => config,
        Err(problem) => {
            eprintln!("gateway: invalid configuration: {problem}");
            return ExitCode::from(2);
        }
    };
    let default_log_filter =
        proto_shared::telemetry::default_filter(&Config::command()).unwrap_or_default();
    if let Err(problem) =
        proto_shared::telemetry::init(config.log_format, &config.rust_log, &default_log_filter)
    {
        eprintln!("gateway: invalid configuration: {problem}");
        return ExitCode::from(2);
    }
    config::raise_open_file_limit();
    let settings = match config.validate() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("gateway: invalid configuration: {error}");
            return ExitCode::from(2);
        }
    };
    let threads =
        gateway::workers::main_runtime_threads(settings.runtime_layout, settings.worker_threads);
    let runtime = match gateway::startup::runtime(threads) {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("gateway: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(settings))
}

async fn serve(settings: gateway::Settings) -> ExitCode {
    let application = match Application::build(settings).await {
        Ok(application) => application,
        Err(error) => {
            eprintln!("gateway: cannot start: {error}");
            return ExitCode::FAILURE;
        }
    };
    application.run_until_stopped(shutdown::signal()).await;
    ExitCode::SUCCESS
}
