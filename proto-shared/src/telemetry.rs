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

/// Installs the global subscriber, filtered by `filter`: `RUST_LOG` as the binary's config
/// read it (the variable, or `--rust-log`). A blank filter (`RUST_LOG=`, or only commas) counts as unset:
/// `default_filter` applies, the config's own default for RUST_LOG (see [`default_filter`]).
///
/// The filter is read strictly, and a directive that cannot be what the operator meant is an
/// error naming RUST_LOG and the directive, for the binary to refuse to start with: a lenient
/// reading drops a bad `target=level` with one line and logs nothing for a bare non-level word
/// (`verbose` is read as a *target* named verbose), hiding every warning that follows.
/// Calling it twice (as tests may) keeps the first subscriber.
#[cfg(feature = "telemetry")]
pub fn init(format: LogFormat, filter: &str, default_filter: &str) -> Result<(), String> {
    use tracing_subscriber::fmt as tfmt;

    let filter = env_filter(filter, default_filter)?;
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
    Ok(())
}

/// The default a binary's clap config gives its `RUST_LOG` setting (the argument read from
/// that variable), for [`init`] to fall back on when the variable is set but blank: clap
/// passes an empty value through rather than applying the default.
#[cfg(all(feature = "telemetry", feature = "cli"))]
pub fn default_filter(command: &clap::Command) -> Option<String> {
    command
        .get_arguments()
        .find(|arg| arg.get_env().is_some_and(|env| env == "RUST_LOG"))
        .and_then(|arg| arg.get_default_values().first())
        .map(|value| value.to_string_lossy().into_owned())
}

/// `filter` (or `default_filter` when `filter` holds no directive) read strictly: every
/// comma-separated directive must parse, and one without `=` or `[` must be a level (`off`,
/// `error`, `warn`, `info`, `debug`, `trace`, or 0 to 5) or name one of this workspace's
/// crates (`gateway`, `tasks_service::store`): any other bare word is a target to tracing, but
/// far more often a misspelt level. To log everything from another target, write
/// `target=trace`.
/// The targets a bare word may name: this workspace's crates (and their modules).
#[cfg(feature = "telemetry")]
const OUR_CRATES: [&str; 3] = ["gateway", "tasks_service", "proto_shared"];

#[cfg(feature = "telemetry")]
fn env_filter(filter: &str, default_filter: &str) -> Result<tracing_subscriber::EnvFilter, String> {
    use tracing_subscriber::filter::{Directive, LevelFilter};

    fn split(filter: &str) -> Vec<&str> {
        filter
            .split(',')
            .map(str::trim)
            .filter(|directive| !directive.is_empty())
            .collect()
    }
    let mut directives = split(filter);
    if directives.is_empty() {
        directives = split(default_filter);
    }
    for directive in &directives {
        if let Err(error) = directive.parse::<Directive>() {
            return Err(format!(
                "RUST_LOG: {directive:?} is not a log filter directive: {error} (a directive \
                 is a level, or target=level as in info,gateway=debug)"
            ));
        }
        let bare = !directive.contains(['=', '[']);
        let ours = OUR_CRATES.iter().any(|name| {
            directive
                .strip_prefix(name)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
        });
        if bare && !ours && directive.parse::<LevelFilter>().is_err() {
            return Err(format!(
                "RUST_LOG: {directive:?} is not a level (off, error, warn, info, debug, \
                 trace); to log everything from a target of that name, write \
                 {directive}=trace"
            ));
        }
    }
    tracing_subscriber::EnvFilter::builder()
        .parse(directives.join(","))
        .map_err(|error| format!("RUST_LOG: not a log filter ({error})"))
}

#[cfg(all(test, feature = "telemetry"))]
mod tests {
    use super::*;

    const DEFAULT: &str = "info,tokio_postgres=warn";

    fn read(filter: &str) -> Result<String, String> {
        env_filter(filter, DEFAULT).map(|filter| filter.to_string())
    }

    #[test]
    fn a_bad_log_filter_is_an_error_naming_rust_log_and_the_directive() {
        for (filter, directive) in [
            ("verbose", "\"verbose\""),
            ("VERBOSE", "\"VERBOSE\""),
            ("warning", "\"warning\""),
            ("gateway=verbose", "\"gateway=verbose\""),
            ("info,gateway=verbose", "\"gateway=verbose\""),
            ("info, tasks_service=loud ,warn", "\"tasks_service=loud\""),
            ("info,hyper", "\"hyper\""),
            ("gatewayx", "\"gatewayx\""),
            ("info,gateway[=debug", "\"gateway[=debug\""),
        ] {
            let error = read(filter).unwrap_err();
            assert!(error.starts_with("RUST_LOG: "), "{filter}: {error}");
            assert!(error.contains(directive), "{filter}: {error}");
        }
        // The advice for a bare word says how to mean a target.
        assert!(read("hyper").unwrap_err().contains("hyper=trace"));
    }

    #[test]
    fn good_log_filters_are_kept_and_a_blank_one_counts_as_unset() {
        for filter in [
            "info",
            "INFO",
            "warn",
            "off",
            "3",
            "info,gateway=debug",
            "debug,tokio_postgres=info",
            " info , gateway=debug ",
            "info,,warn",
            "gateway=trace",
            "gateway",
            "info,tasks_service::store",
            "gateway::proxy=debug",
            "warn,gateway[request]=debug",
            "[request{user=alice}]=debug",
        ] {
            read(filter).unwrap_or_else(|error| panic!("{filter}: {error}"));
        }
        let unset = read(DEFAULT).unwrap();
        for blank in ["", " ", ",", " , "] {
            assert_eq!(read(blank).unwrap(), unset, "{blank:?}");
        }
    }

    #[cfg(feature = "cli")]
    #[test]
    fn the_default_filter_is_the_one_the_config_gives_rust_log() {
        use clap::{CommandFactory, Parser};

        #[derive(Parser)]
        #[allow(dead_code)]
        struct Config {
            #[arg(long, env = "TELEMETRY_TEST_LISTEN", default_value = "127.0.0.1:1")]
            listen: String,
            #[arg(long = "rust-log", env = "RUST_LOG", default_value = DEFAULT)]
            log_filter: String,
        }
        assert_eq!(default_filter(&Config::command()).as_deref(), Some(DEFAULT));
    }
}
