//! Error bodies as FastAPI writes them, so frontends written against it need no change:
//! `{"detail": "message"}`, or for validation errors (422)
//! `{"detail": [{"type": ..., "loc": ["body", "title"], "msg": ...}]}`.

use serde::{Deserialize, Serialize};

/// Every error response body of the task API and the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub detail: Detail,
}

/// A message, or one entry per invalid field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Detail {
    Message(String),
    Fields(Vec<FieldError>),
}

/// One invalid field, in pydantic's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// Machine-readable kind, e.g. `missing`, `string_too_long`, `int_parsing`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Where: `["body", "title"]`, `["query", "limit"]`, `["path", "task_id"]`.
    pub loc: Vec<String>,
    /// Human-readable message.
    pub msg: String,
}

impl ErrorBody {
    /// `{"detail": message}`.
    pub fn message(message: impl Into<String>) -> Self {
        Self {
            detail: Detail::Message(message.into()),
        }
    }

    /// `{"detail": [field errors]}`.
    pub fn fields(errors: Vec<FieldError>) -> Self {
        Self {
            detail: Detail::Fields(errors),
        }
    }
}

impl FieldError {
    /// A field error at `loc` (e.g. `["body", "title"]`).
    pub fn new(loc: &[&str], kind: &str, msg: impl Into<String>) -> Self {
        Self {
            kind: kind.to_owned(),
            loc: loc.iter().map(|part| (*part).to_owned()).collect(),
            msg: msg.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_like_fastapi() {
        let body = ErrorBody::fields(vec![FieldError::new(
            &["body", "title"],
            "missing",
            "Field required",
        )]);
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"detail":[{"type":"missing","loc":["body","title"],"msg":"Field required"}]}"#
        );
        assert_eq!(
            serde_json::to_string(&ErrorBody::message("Task not found")).unwrap(),
            r#"{"detail":"Task not found"}"#
        );
    }
}
