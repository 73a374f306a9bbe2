//! Command-line parsing in the project's own words: a required setting that is missing is
//! reported like every other configuration error, `VARIABLE: problem`, instead of clap's
//! usage text about flags. Shared so both binaries say it alike; knows nothing about what
//! either of them reads.

use std::ffi::OsString;

use clap::{
    error::{ContextKind, ContextValue, ErrorKind},
    Command, Parser,
};

/// Parses `C` from `args` and the environment. A missing required setting comes back as
/// `Err("IDENTITY_KEYS: required, not set ...")`; `--help`, `--version` and every other
/// clap error print and exit as clap does (their messages already name the variable).
pub fn parse_from<C, I, T>(args: I) -> Result<C, String>
where
    C: Parser,
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    C::try_parse_from(args).map_err(|error| match missing_settings(&C::command(), &error) {
        Some(problem) => problem,
        None => error.exit(),
    })
}

/// `VARIABLE: required, not set ...` for each required setting `error` says is missing, or
/// `None` when `error` is about something else.
pub fn missing_settings(command: &Command, error: &clap::Error) -> Option<String> {
    if error.kind() != ErrorKind::MissingRequiredArgument {
        return None;
    }
    let Some(ContextValue::Strings(missing)) = error.get(ContextKind::InvalidArg) else {
        return None;
    };
    let problems: Vec<String> = missing
        .iter()
        .map(|usage| {
            // clap names a missing argument by its usage, `--identity-keys <IDENTITY_KEYS>`.
            let flag = usage.split_whitespace().next().unwrap_or(usage);
            let variable = command
                .get_arguments()
                .find(|arg| arg.get_long() == Some(flag.trim_start_matches('-')))
                .and_then(|arg| arg.get_env());
            match variable {
                Some(variable) => format!(
                    "{}: required, not set (set the variable, or pass {flag})",
                    variable.to_string_lossy()
                ),
                None => format!("{flag}: required, not given"),
            }
        })
        .collect();
    Some(problems.join("; "))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[derive(Debug, Parser)]
    struct Settings {
        #[arg(
            long,
            env = "CLI_TEST_SECRET_KEYS",
            value_name = "CLI_TEST_SECRET_KEYS"
        )]
        keys: String,
        #[arg(long, env = "CLI_TEST_DATABASE")]
        database: String,
        #[arg(long, env = "CLI_TEST_PORT", default_value_t = 1)]
        port: u16,
    }

    #[test]
    fn every_missing_required_setting_is_named_by_its_variable() {
        let problem = parse_from::<Settings, _, _>(["bin"]).unwrap_err();
        assert_eq!(
            problem,
            "CLI_TEST_SECRET_KEYS: required, not set (set the variable, or pass --keys); \
             CLI_TEST_DATABASE: required, not set (set the variable, or pass --database)"
        );
    }

    #[test]
    fn a_given_setting_is_not_reported_and_other_errors_are_not_rewritten() {
        let problem = parse_from::<Settings, _, _>(["bin", "--keys", "k"]).unwrap_err();
        assert_eq!(
            problem,
            "CLI_TEST_DATABASE: required, not set (set the variable, or pass --database)"
        );
        let parsed = parse_from::<Settings, _, _>(["bin", "--keys", "k", "--database", "d"]);
        assert_eq!(parsed.unwrap().port, 1);
        let bad_port =
            Settings::try_parse_from(["bin", "--keys", "k", "--database", "d", "--port", "x"])
                .unwrap_err();
        assert_eq!(missing_settings(&Settings::command(), &bad_port), None);
    }
}
