//! `UserId`: the id of a Better Auth user (the JWT `sub`), validated once on construction.
//!
//! A user id travels in three places: the JWT, the URL path (`/api/{user_id}/tasks`) and the
//! [`crate::headers::USER_ID`] header. In paths and headers it is percent-encoded so that any
//! id Better Auth or another issuer might mint survives the trip byte for byte, with one
//! exception: `.` and `..` are dot segments, which URL parsers (reqwest's WHATWG one among
//! them, also when written `%2E%2E`) normalise away and the gateway refuses, so no path can
//! carry them and they are not user ids.

use std::{fmt, sync::Arc};

use serde::{Deserialize, Serialize};

/// A user id: 1 to 255 bytes of UTF-8 with no control characters, other than `.` and `..`
/// (see [`UserIdError::DotSegment`]). Shared, not copied, when cloned: a gateway hands the id
/// a token proved to every request that token comes with.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(Arc<str>);

/// Why a string is not a valid [`UserId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserIdError {
    #[error("user id is empty")]
    Empty,
    #[error("user id is longer than {max} bytes", max = UserId::MAX_LEN)]
    TooLong,
    #[error("user id contains a control character")]
    ControlCharacter,
    #[error("user id is not valid percent-encoded UTF-8")]
    BadEncoding,
    /// Exactly `.` or `..`: a URL path segment that clients normalise away (`/api/../tasks`
    /// is sent as `/tasks`, `%2E%2E` included) and the gateway refuses, so such a user could
    /// never be served. `...` and ids that merely contain dots are ordinary segments.
    #[error("user id cannot be . or ..: no URL path can carry it")]
    DotSegment,
}

impl UserId {
    /// Longest id accepted, in bytes: as long as any real issuer's, short enough to index.
    pub const MAX_LEN: usize = 255;

    /// Validates a raw (already decoded) user id.
    pub fn parse(raw: &str) -> Result<Self, UserIdError> {
        if raw.is_empty() {
            return Err(UserIdError::Empty);
        }
        if raw.len() > Self::MAX_LEN {
            return Err(UserIdError::TooLong);
        }
        if raw.chars().any(char::is_control) {
            return Err(UserIdError::ControlCharacter);
        }
        if raw == "." || raw == ".." {
            return Err(UserIdError::DotSegment);
        }
        Ok(Self(raw.into()))
    }

    /// Decodes a percent-encoded URL path segment or header value, then validates it.
    pub fn from_encoded(encoded: &str) -> Result<Self, UserIdError> {
        if encoded.len() > 3 * Self::MAX_LEN {
            return Err(UserIdError::TooLong); // cannot decode to a short enough id
        }
        Self::parse(&percent_decode(encoded)?)
    }

    /// Whether `encoded`, a percent-encoded path segment or header value, is this id. Without
    /// an allocation when nothing in it is escaped: a gateway checks this on every request.
    pub fn is_encoded_as(&self, encoded: &str) -> bool {
        if !encoded.contains('%') {
            // Nothing to decode, and this id is already valid.
            return encoded == &*self.0;
        }
        Self::from_encoded(encoded).is_ok_and(|decoded| decoded == *self)
    }

    /// The id as a URL path segment: everything but RFC 3986 unreserved characters is escaped.
    pub fn to_path_segment(&self) -> String {
        percent_encode(&self.0, |b| {
            b.is_ascii_alphanumeric() || b"-._~".contains(&b)
        })
    }

    /// The id as a header value: visible ASCII other than `%` stays, the rest is escaped, so
    /// leading spaces or non-ASCII letters cannot be trimmed or mangled by a proxy.
    pub fn to_header_value(&self) -> http::HeaderValue {
        let encoded = percent_encode(&self.0, |b| b.is_ascii_graphic() && b != b'%');
        // Handed over without a copy: this runs for every signed request.
        http::HeaderValue::from_maybe_shared(bytes::Bytes::from(encoded))
            .expect("percent-encoded text is visible ASCII")
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserId({:?})", self.0)
    }
}

impl AsRef<str> for UserId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for UserId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for UserId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

fn percent_encode(raw: &str, keep: impl Fn(u8) -> bool) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(raw.len());
    for &byte in raw.as_bytes() {
        if keep(byte) {
            out.push(byte as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(byte >> 4)] as char);
            out.push(HEX[usize::from(byte & 0xF)] as char);
        }
    }
    out
}

fn percent_decode(encoded: &str) -> Result<String, UserIdError> {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(UserIdError::BadEncoding)?;
            // Two hex digits and nothing else: `from_str_radix` alone would also take a sign
            // (`%+1`), an escape no encoder writes.
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return Err(UserIdError::BadEncoding);
            }
            let hex = std::str::from_utf8(hex).map_err(|_| UserIdError::BadEncoding)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| UserIdError::BadEncoding)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| UserIdError::BadEncoding)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_empty_long_and_control_characters() {
        assert_eq!(UserId::parse(""), Err(UserIdError::Empty));
        assert_eq!(UserId::parse(&"a".repeat(256)), Err(UserIdError::TooLong));
        assert!(UserId::parse(&"a".repeat(255)).is_ok());
        assert_eq!(UserId::parse("a\nb"), Err(UserIdError::ControlCharacter));
        assert_eq!(
            UserId::parse("a\u{85}b"),
            Err(UserIdError::ControlCharacter)
        );
    }

    #[test]
    fn rejects_dot_segments() {
        for dots in [".", ".."] {
            assert_eq!(UserId::parse(dots), Err(UserIdError::DotSegment), "{dots}");
        }
        assert_eq!(
            UserIdError::DotSegment.to_string(),
            "user id cannot be . or ..: no URL path can carry it"
        );
        // Written escaped, as a path or header would carry them: refused once decoded.
        for encoded in ["%2E", "%2e%2E", ".%2E", "%2E."] {
            assert_eq!(
                UserId::from_encoded(encoded),
                Err(UserIdError::DotSegment),
                "{encoded}"
            );
        }
        // Not dot segments: three or more dots, or dots with anything else.
        for fine in ["...", "....", ".a", "a.", "a..b", ". ", " .."] {
            let id = UserId::parse(fine).unwrap();
            assert_eq!(
                UserId::from_encoded(&id.to_path_segment()),
                Ok(id),
                "{fine}"
            );
        }
    }

    #[test]
    fn decodes_paths_and_rejects_bad_escapes() {
        assert_eq!(UserId::from_encoded("a%20b").unwrap().as_str(), "a b");
        assert_eq!(UserId::from_encoded("%"), Err(UserIdError::BadEncoding));
        assert_eq!(UserId::from_encoded("%zz"), Err(UserIdError::BadEncoding));
        assert_eq!(UserId::from_encoded("%ff"), Err(UserIdError::BadEncoding));
        assert_eq!(
            UserId::from_encoded("%00"),
            Err(UserIdError::ControlCharacter)
        );
        assert_eq!(UserId::from_encoded(""), Err(UserIdError::Empty));
    }

    /// Found by the `user_id` fuzz target: `u8::from_str_radix` takes a leading `+`, so `%+1`
    /// decoded (to a control character) instead of being refused as a bad escape.
    #[test]
    fn signed_escape_is_bad_encoding() {
        for bad in ["%+1", "a%+fb", "%-1", "%+"] {
            assert_eq!(
                UserId::from_encoded(bad),
                Err(UserIdError::BadEncoding),
                "{bad}"
            );
        }
    }

    #[test]
    fn better_auth_ids_travel_unchanged() {
        let id = UserId::parse("k3Jx9Qz1vBn7Lm2Pw8Rt5Yc4").unwrap();
        assert_eq!(id.to_path_segment(), id.as_str());
        assert_eq!(id.to_header_value(), id.as_str());
    }

    proptest! {
        #[test]
        fn encodings_round_trip(
            raw in "[^\\p{Cc}]{1,60}".prop_filter("a dot segment", |s| s != "." && s != ".."),
        ) {
            let id = UserId::parse(&raw).unwrap();
            prop_assert_eq!(&UserId::from_encoded(&id.to_path_segment()).unwrap(), &id);
            let header = id.to_header_value();
            prop_assert_eq!(&UserId::from_encoded(header.to_str().unwrap()).unwrap(), &id);
        }

        #[test]
        fn is_encoded_as_agrees_with_decoding(
            raw in "[a-c%\\x00\\x7f]{1,4}",
            segment in "[a-c%0-9A-F\\x00\\x7f]{0,12}",
        ) {
            if let Ok(id) = UserId::parse(&raw) {
                let decoded = UserId::from_encoded(&segment);
                prop_assert_eq!(id.is_encoded_as(&segment), decoded.as_ref() == Ok(&id));
                prop_assert!(id.is_encoded_as(&id.to_path_segment()));
            }
        }
    }
}
