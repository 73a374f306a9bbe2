//! Log set-up shared by both binaries: one `tracing` subscriber, JSON or human-readable,
//! filtered by `RUST_LOG`. Lives here so the gateway and tasks-service log alike.
//!
//! Only `init` needs the `telemetry` feature (it pulls tracing-subscriber). [`LogFormat`],
//! a setting both configs parse, and [`error_chain`], which the gateway calls on its request
//! path, use nothing but std and are always compiled.

use std::{fmt, str::FromStr};

/// `LOG_FORMAT`: `json` for machines (one object per line), `pretty` for people.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    #[default]
    Pretty,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw.to_ascii_lowercase().as_str() {
            "json" => Ok(Self::Json),
            "pretty" | "text" => Ok(Self::Pretty),
            other => Err(format!("expected json or pretty, got {other:?}")),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Json => "json",
            Self::Pretty => "pretty",
        })
    }
}

/// An error and its causes on one line, `a: b: c`, for logs and start-up messages: the
/// useful part ("connection refused") is often only in a source.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Installs the global subscriber. `default_filter` applies when `RUST_LOG` is unset.
/// Calling it twice (as tests may) keeps the first subscriber.
#[cfg(feature = "telemetry")]
pub fn init(format: LogFormat, default_filter: &str) {
    use tracing_subscriber::{fmt as tfmt, EnvFilter};

    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tfmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _already_set = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}
