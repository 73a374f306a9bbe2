//! `Title` and `Description`: the two free-text fields of a task and their rules.

use std::fmt;

/// Why a field value was refused: pydantic's error `type` and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: &'static str,
    pub msg: String,
}

impl Problem {
    pub(crate) fn new(kind: &'static str, msg: impl Into<String>) -> Self {
        Self {
            kind,
            msg: msg.into(),
        }
    }
}

/// A task title: trimmed, 1 to 200 characters, no control characters.
#[derive(Clone, PartialEq, Eq)]
pub struct Title(String);

impl Title {
    /// Longest title accepted, in characters (not bytes) after trimming.
    pub const MAX_CHARS: usize = 200;

    /// Trims `raw` and checks the rules.
    pub fn parse(raw: &str) -> Result<Self, Problem> {
        let trimmed = raw.trim();
        let chars = trimmed.chars().count();
        if chars == 0 {
            return Err(Problem::new(
                "string_too_short",
                "String should have at least 1 character",
            ));
        }
        if chars > Self::MAX_CHARS {
            return Err(Problem::new(
                "string_too_long",
                format!("String should have at most {} characters", Self::MAX_CHARS),
            ));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(Problem::new(
                "value_error",
                "Value error, title must not contain control characters",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The title as stored and returned.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A task description: at most 1000 characters. Line breaks and tabs are kept; other control
/// characters are refused (PostgreSQL `text` cannot even hold NUL).
#[derive(Clone, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    /// Longest description accepted, in characters.
    pub const MAX_CHARS: usize = 1000;

    /// Checks the rules; the text is kept as sent, not trimmed.
    pub fn parse(raw: &str) -> Result<Self, Problem> {
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(Problem::new(
                "string_too_long",
                format!("String should have at most {} characters", Self::MAX_CHARS),
            ));
        }
        if raw
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(Problem::new(
                "value_error",
                "Value error, description must not contain control characters other than line breaks and tabs",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The description as stored and returned.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// Debug shows lengths only: titles are user content and do not belong in logs.
impl fmt::Debug for Title {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Title({} chars)", self.0.chars().count())
    }
}

impl fmt::Debug for Description {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Description({} chars)", self.0.chars().count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_trimmed_and_bounded_in_characters() {
        assert_eq!(Title::parse("  Buy milk \n").unwrap().as_str(), "Buy milk");
        assert_eq!(Title::parse("   ").unwrap_err().kind, "string_too_short");
        assert!(
            Title::parse(&"é".repeat(200)).is_ok(),
            "200 chars, 400 bytes"
        );
        assert_eq!(
            Title::parse(&"a".repeat(201)).unwrap_err().kind,
            "string_too_long"
        );
        assert_eq!(Title::parse("a\u{0}b").unwrap_err().kind, "value_error");
        assert_eq!(Title::parse("a\nb").unwrap_err().kind, "value_error");
    }

    #[test]
    fn descriptions_keep_line_breaks_but_not_nul() {
        assert!(Description::parse("").is_ok());
        assert!(Description::parse("line 1\nline 2\ttab").is_ok());
        assert!(Description::parse(&"x".repeat(1000)).is_ok());
        assert_eq!(
            Description::parse(&"x".repeat(1001)).unwrap_err().kind,
            "string_too_long"
        );
        assert_eq!(
            Description::parse("a\u{0}").unwrap_err().kind,
            "value_error"
        );
    }

    #[test]
    fn debug_hides_user_content() {
        let title = Title::parse("secret plan").unwrap();
        assert!(!format!("{title:?}").contains("secret"));
    }
}
