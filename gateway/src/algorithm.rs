//! The signing algorithms the gateway can accept, by their JOSE names, and how each maps to
//! the library that verifies it.

use std::fmt;
use std::str::FromStr;

/// A signing algorithm the gateway may accept. ES512 is separate because jsonwebtoken lacks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    EdDsa,
    Es256,
    Es512,
    Rs256,
    Ps256,
}

impl Algorithm {
    /// Every algorithm Better Auth's JWT plugin can sign with: the default allowlist.
    pub const ALL: [Algorithm; 5] = [
        Self::EdDsa,
        Self::Es256,
        Self::Es512,
        Self::Rs256,
        Self::Ps256,
    ];

    /// The JOSE name (`EdDSA`, `ES256`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDsa => "EdDSA",
            Self::Es256 => "ES256",
            Self::Es512 => "ES512",
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
        }
    }

    /// jsonwebtoken's name for it; `None` for ES512, which is verified with aws-lc-rs.
    pub(super) fn jsonwebtoken(self) -> Option<jsonwebtoken::Algorithm> {
        match self {
            Self::EdDsa => Some(jsonwebtoken::Algorithm::EdDSA),
            Self::Es256 => Some(jsonwebtoken::Algorithm::ES256),
            Self::Rs256 => Some(jsonwebtoken::Algorithm::RS256),
            Self::Ps256 => Some(jsonwebtoken::Algorithm::PS256),
            Self::Es512 => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A JOSE `alg` name the gateway does not accept (`none`, `HS256`, a typo, ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unsupported JWT algorithm {0:?}: expected one of EdDSA, Ed25519, ES256, ES512, RS256, PS256"
)]
pub struct UnknownAlgorithm(pub String);

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    /// JOSE names, case-sensitive as in a JWS header. `Ed25519` (RFC 9864's fully specified
    /// name) is the same algorithm as `EdDSA` with an Ed25519 key, the only kind we accept.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "EdDSA" | "Ed25519" => Ok(Self::EdDsa),
            "ES256" => Ok(Self::Es256),
            "ES512" => Ok(Self::Es512),
            "RS256" => Ok(Self::Rs256),
            "PS256" => Ok(Self::Ps256),
            other => Err(UnknownAlgorithm(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_jose_names_case_sensitively() {
        for alg in Algorithm::ALL {
            assert_eq!(alg.as_str().parse(), Ok(alg));
        }
        assert_eq!("Ed25519".parse(), Ok(Algorithm::EdDsa));
        for bad in ["none", "HS256", "eddsa", "es256", "ES384", "", " ES256"] {
            assert_eq!(
                bad.parse::<Algorithm>(),
                Err(UnknownAlgorithm(bad.to_owned()))
            );
        }
    }
}
