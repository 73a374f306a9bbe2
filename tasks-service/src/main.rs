//! tasks-service binary: config, telemetry, build, serve until SIGTERM/SIGINT.

use std::process::ExitCode;

use clap::CommandFactory;
use proto_shared::shutdown;
use proto_shared::telemetry;
use tasks_service::{config, Application, Config};

#[tokio::main]
async fn main() -> ExitCode {
    if config::list_env_requested(std::env::args_os()) {
        print!("{}", config::env_table());
        return ExitCode::SUCCESS;
    }
    let config: Config = match proto_shared::cli::parse_from(std::env::args_os()) {
        Ok(config) => config,
        Err(problem) => {
            eprintln!("tasks-service: invalid configuration: {problem}");
            return ExitCode::from(2);
        }
    };
    let settings = match config.validate() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("tasks-service: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let default_log_filter = telemetry::default_filter(&Config::command()).unwrap_or_default();
    if let Err(problem) =
        telemetry::init(config.log_format, &config.log_filter, &default_log_filter)
    {
        eprintln!("tasks-service: invalid configuration: {problem}");
        return ExitCode::from(2);
    }
    config.warn_about_weakened_checks();
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            eprintln!("tasks-service: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    app.run_until_stopped(shutdown::signal()).await;
    ExitCode::SUCCESS
}
