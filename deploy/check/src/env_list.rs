//! The variables a binary reads, as the binary itself reports them.
//!
//! Rust binaries print them with `--list-env`: one line per variable,
//! `NAME<TAB>required|optional<TAB>default-or-empty`, derived from clap's own `Command`.
//! The Better Auth server has no such flag, so its list is read from its source
//! ([`scan_node_source`]). Nothing here is a hand-kept list of names.

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

/// Reads the variables a Node script reads from its source.
///
/// Names: every `process.env.NAME` and `process.env["NAME"]`, plus the first string argument
/// of helper calls that wrap `process.env[name]` (`intEnv("PORT", 3000)` in server.mjs).
/// Required: a name the script fails on when unset, spelt as `fail("NAME is not set ...")`.
/// Defaults are not recovered (they are JavaScript expressions), so every non-required
/// variable is listed without one.
pub fn scan_node_source(source: &str) -> EnvList {
    let mut names: Vec<String> = Vec::new();
    let mut push = |name: &str| {
        if is_env_name(name) && !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    };
    for rest in source.split("process.env.").skip(1) {
        push(&take_name(rest));
    }
    for rest in source.split("process.env[\"").skip(1) {
        push(&take_name(rest));
    }
    // Helpers that read `process.env[name]`: find `function helper(name` whose body indexes
    // process.env with its parameter, then take the literal first argument of each call.
    for helper in env_helpers(source) {
        for rest in source.split(&format!("{helper}(\"")).skip(1) {
            push(&take_name(rest));
        }
    }
    let required: Vec<String> = source
        .split("fail(\"")
        .skip(1)
        .filter_map(|rest| {
            let name = take_name(rest);
            rest[name.len()..]
                .starts_with(" is not set")
                .then_some(name)
        })
        .collect();
    EnvList::from_vars(names.into_iter().map(|name| EnvVar {
        required: required.contains(&name),
        name,
        default: None,
    }))
}

fn take_name(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

fn env_helpers(source: &str) -> Vec<String> {
    source
        .split("function ")
        .skip(1)
        .filter_map(|rest| {
            let helper = take_name(rest);
            let param = take_name(rest.get(helper.len() + 1..)?);
            let body = rest.split("\n}").next()?;
            (!helper.is_empty() && !param.is_empty())
                .then_some(())
                .filter(|()| body.contains(&format!("process.env[{param}]")))
                .map(|()| helper)
        })
        .collect()
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

    #[test]
    fn scans_node_source_for_names_helpers_and_required() {
        let source = r#"
function intEnv(name, fallback) {
  const raw = process.env[name];
  return raw;
}
const PORT = intEnv("PORT", 3000);
const HOST = process.env.HOST || "127.0.0.1";
const SECRET = process.env.BETTER_AUTH_SECRET;
if (!SECRET) fail("BETTER_AUTH_SECRET is not set; set it");
if (x) fail("JWT_ALG is wrong");
"#;
        let list = scan_node_source(source);
        assert_eq!(list.names(), "BETTER_AUTH_SECRET, HOST, PORT");
        assert!(list.get("BETTER_AUTH_SECRET").unwrap().required);
        assert!(!list.get("HOST").unwrap().required);
    }
}
