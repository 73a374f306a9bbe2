//! The audience a credential is minted for: the one service (or service replica) that may
//! accept it. A credential signed for `tasks-service` is refused by any verifier configured
//! with another audience, even one that holds the same key.

use std::{fmt, sync::Arc};

/// Names the verifier a credential is meant for; sent in the clear inside every v2 credential.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Audience(Arc<str>);

impl Audience {
    /// The audience both the gateway and tasks-service use unless configured otherwise.
    pub const DEFAULT: &'static str = "tasks-service";

    /// Longest audience accepted.
    pub const MAX_LEN: usize = 128;

    /// Validates an audience: 1 to 128 characters of `[A-Za-z0-9._:/-]` (a service name, a
    /// `service/replica` pair or a URL-like name). Nothing that could end a credential field
    /// (`;`, `=`) or a canonical-string line.
    pub fn parse(raw: &str) -> Option<Self> {
        let valid = !raw.is_empty()
            && raw.len() <= Self::MAX_LEN
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._:/-".contains(&b));
        valid.then(|| Self(raw.into()))
    }

    /// The audience as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Audience {
    fn default() -> Self {
        Self(Self::DEFAULT.into())
    }
}

impl fmt::Display for Audience {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Audience {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Audience({})", self.0)
    }
}

impl std::str::FromStr for Audience {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Self::parse(raw)
            .ok_or_else(|| format!("{raw:?} is not an audience: 1 to 128 of A-Z a-z 0-9 . _ : / -"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_and_replica_names_are_audiences() {
        for good in [
            "tasks-service",
            "tasks-service/pod-7",
            "svc.ns.cluster.local:8081",
        ] {
            assert_eq!(Audience::parse(good).unwrap().as_str(), good);
        }
    }

    #[test]
    fn nothing_that_could_break_a_field_or_a_line() {
        let long = "a".repeat(Audience::MAX_LEN + 1);
        for bad in ["", "a;b", "a=b", "a\nb", "a b", "é", long.as_str()] {
            assert!(Audience::parse(bad).is_none(), "{bad:?}");
        }
    }
}
