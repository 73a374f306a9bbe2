//! The variables a binary reads, as the binary itself reports them.
//!
//! Every binary prints them with `--list-env`: one line per variable,
//! `NAME<TAB>required|optional<TAB>default-or-empty`. The Rust binaries derive it from clap's
//! own `Command`; the Better Auth server from the `ENV` table its `env()` accessor enforces.
//! Nothing here is a hand-kept list of names.

use std::collections::BTreeMap;

/// One environment variable a binary reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    /// The variable's name, e.g. `GATEWAY_LISTEN`.
    pub name: String,
    /// The binary refuses to start without it (no default, not optional).
    pub required: bool,
    /// The value used when the variable is unset, if any.
    pub default: Option<String>,
}

/// Every variable one binary reads, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvList {
    vars: BTreeMap<String, EnvVar>,
}

/// Why a `--list-env` output was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvListError {
    #[error("line {line} is not NAME<TAB>required|optional<TAB>default: {text:?}")]
    BadLine { line: usize, text: String },
    #[error("line {line}: {name} is listed twice")]
    Duplicate { line: usize, name: String },
    #[error("the list is empty")]
    Empty,
}

impl EnvList {
    /// Parses the output of `<binary> --list-env`.
    pub fn parse(output: &str) -> Result<Self, EnvListError> {
        let mut vars = BTreeMap::new();
        for (index, text) in output.lines().enumerate() {
            let line = index + 1;
            if text.trim().is_empty() {
                continue;
            }
            let bad = || EnvListError::BadLine {
                line,
                text: text.to_owned(),
            };
            let mut fields = text.splitn(3, '\t');
            let name = fields.next().filter(|n| is_env_name(n)).ok_or_else(bad)?;
            let required = match fields.next() {
                Some("required") => true,
                Some("optional") => false,
                _ => return Err(bad()),
            };
            // A missing third field is read as "no default": older printers may omit it.
            let default = fields.next().filter(|d| !d.is_empty()).map(str::to_owned);
            let var = EnvVar {
                name: name.to_owned(),
                // A variable with a default can never be missing, whatever the flag says.
                required: required && default.is_none(),
                default,
            };
            if vars.insert(name.to_owned(), var).is_some() {
                return Err(EnvListError::Duplicate {
                    line,
                    name: name.to_owned(),
                });
            }
        }
        if vars.is_empty() {
            return Err(EnvListError::Empty);
        }
        Ok(Self { vars })
    }

    /// Builds a list from variables directly (used for sources without `--list-env`).
    pub fn from_vars(vars: impl IntoIterator<Item = EnvVar>) -> Self {
        Self {
            vars: vars.into_iter().map(|v| (v.name.clone(), v)).collect(),
        }
    }

    /// The variable called `name`, if the binary reads it.
    pub fn get(&self, name: &str) -> Option<&EnvVar> {
        self.vars.get(name)
    }

    /// Every variable, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &EnvVar> {
        self.vars.values()
    }

    /// The variables without which the binary does not start.
    pub fn required(&self) -> impl Iterator<Item = &EnvVar> {
        self.vars.values().filter(|v| v.required)
    }

    /// All names, comma separated, for error messages.
    pub fn names(&self) -> String {
        self.vars.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_required_optional_and_defaults() {
        let list = EnvList::parse(
            "GATEWAY_LISTEN\toptional\t127.0.0.1:8080\nIDENTITY_KEYS\trequired\t\nRUST_LOG\toptional\t\n",
        )
        .unwrap();
        assert_eq!(
            list.get("GATEWAY_LISTEN").unwrap().default.as_deref(),
            Some("127.0.0.1:8080")
        );
        assert!(list.get("IDENTITY_KEYS").unwrap().required);
        assert!(!list.get("RUST_LOG").unwrap().required);
        assert_eq!(list.required().count(), 1);
    }

    #[test]
    fn refuses_lines_that_are_not_the_format() {
        assert!(matches!(
            EnvList::parse("Usage: gateway [OPTIONS]\n"),
            Err(EnvListError::BadLine { line: 1, .. })
        ));
        assert!(matches!(
            EnvList::parse("A\tmaybe\t\n"),
            Err(EnvListError::BadLine { .. })
        ));
        assert_eq!(EnvList::parse("\n"), Err(EnvListError::Empty));
    }

    #[test]
    fn refuses_a_name_listed_twice() {
        assert!(matches!(
            EnvList::parse("A\toptional\t\nA\toptional\t\n"),
            Err(EnvListError::Duplicate { line: 2, .. })
        ));
    }
}
