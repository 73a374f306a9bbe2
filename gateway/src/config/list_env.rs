//! `--list-env`: the environment variables the gateway reads, for deploy checks, taken from
//! clap's own description of [`Config`] so the list cannot drift from the parser.

use clap::CommandFactory;

use super::Config;

/// True when the arguments ask for `--list-env`. Checked before parsing, so the listing works
/// even while required variables are unset or others are invalid.
pub fn list_env_requested(mut args: impl Iterator<Item = std::ffi::OsString>) -> bool {
    args.any(|arg| arg == "--list-env")
}

/// One line per environment variable the gateway reads: `NAME\trequired|optional\tdefault`,
/// taken from clap's own description of [`Config`], so it cannot drift from the parser.
pub fn env_listing() -> String {
    let command = Config::command();
    let mut out = String::new();
    for arg in command.get_arguments() {
        let Some(name) = arg.get_env() else { continue };
        let defaults: Vec<_> = arg
            .get_default_values()
            .iter()
            .map(|value| value.to_string_lossy())
            .collect();
        let need = if arg.is_required_set() {
            "required"
        } else {
            "optional"
        };
        out.push_str(&format!(
            "{}\t{need}\t{}\n",
            name.to_string_lossy(),
            defaults.join(",")
        ));
    }
    out
}
