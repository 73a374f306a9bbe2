//! Small helpers over parsed YAML: multi-document loading, typed field access and
//! compose-style `${VAR:-default}` interpolation. No rules live here.

use serde::Deserialize;
use serde_norway::Value;

/// Why a YAML file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum YamlError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: not valid YAML: {source}")]
    Parse {
        file: String,
        source: serde_norway::Error,
    },
}

/// Every document of a YAML text (`---` separated), empty ones dropped.
pub fn documents(file: &str, text: &str) -> Result<Vec<Value>, YamlError> {
    let mut docs = Vec::new();
    for de in serde_norway::Deserializer::from_str(text) {
        let value = Value::deserialize(de).map_err(|source| YamlError::Parse {
            file: file.to_owned(),
            source,
        })?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

/// Reads and parses a file into its documents.
pub fn load(path: &std::path::Path, shown_as: &str) -> Result<Vec<Value>, YamlError> {
    let text = std::fs::read_to_string(path).map_err(|source| YamlError::Io {
        file: shown_as.to_owned(),
        source,
    })?;
    documents(shown_as, &text)
}

/// Follows a path of mapping keys.
pub fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(*key))
}

/// A string field at `path`.
pub fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(value, path).and_then(Value::as_str)
}

/// A sequence at `path`, or an empty slice.
pub fn seq_at<'a>(value: &'a Value, path: &[&str]) -> &'a [Value] {
    at(value, path)
        .and_then(Value::as_sequence)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A scalar (string, number, bool) as text; YAML lets `8080` and `"8080"` mean one thing.
pub fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Resolves compose interpolation as far as the file alone allows: `${VAR:-default}` and
/// `${VAR-default}` become the default, `$$` becomes `$`. Returns `None` when a reference
/// has no default (`${VAR}`, `${VAR:?message}`): its value comes from the env file.
pub fn interpolate_defaults(raw: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = raw;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
        } else if let Some(after) = rest.strip_prefix('{') {
            let end = after.find('}')?;
            let inner = &after[..end];
            let name_len = inner
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(inner.len());
            let modifier = &inner[name_len..];
            // Only `:-` and `-` carry a default; `:?`, `?`, `:+` and a bare name do not.
            let default = modifier
                .strip_prefix(":-")
                .or_else(|| modifier.strip_prefix('-'))?;
            out.push_str(default);
            rest = &after[end + 1..];
        } else {
            return None;
        }
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_keeps_defaults_and_drops_unresolvable() {
        assert_eq!(
            interpolate_defaults("${GATEWAY_PORT:-8080}:8080").as_deref(),
            Some("8080:8080")
        );
        assert_eq!(interpolate_defaults("a$$b").as_deref(), Some("a$b"));
        assert_eq!(interpolate_defaults("${IDENTITY_KEYS:?set it}"), None);
        assert_eq!(interpolate_defaults("${X}"), None);
        assert_eq!(interpolate_defaults("${X:?a-b}"), None);
        assert_eq!(interpolate_defaults("${X-d}").as_deref(), Some("d"));
        assert_eq!(interpolate_defaults("plain").as_deref(), Some("plain"));
    }

    #[test]
    fn reads_every_document() {
        let docs = documents("t", "a: 1\n---\n---\nb: [x]\n").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(seq_at(&docs[1], &["b"]).len(), 1);
        assert!(documents("t", "a: [").is_err());
    }
}
