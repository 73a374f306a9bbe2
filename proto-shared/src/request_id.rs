//! `RequestId`: correlates one request across the gateway, tasks-service and their logs.
//! Taken from the client's `x-request-id` when it is sane, generated otherwise.

use std::fmt;

use http::{HeaderMap, HeaderValue};

use crate::headers::REQUEST_ID;

/// A request id: the caller's if it is 1 to 128 visible ASCII characters, else a new UUID v4.
#[derive(Clone, PartialEq, Eq)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// Longest caller-supplied id kept; longer ones are replaced, not truncated.
    pub const MAX_LEN: usize = 128;

    /// The id carried by `headers`, or a fresh one.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        headers
            .get(REQUEST_ID)
            .filter(|value| {
                let bytes = value.as_bytes();
                !bytes.is_empty()
                    && bytes.len() <= Self::MAX_LEN
                    && bytes.iter().all(u8::is_ascii_graphic)
            })
            .map(|value| Self(value.clone()))
            .unwrap_or_else(Self::generate)
    }

    /// A fresh random id.
    pub fn generate() -> Self {
        let mut text = [0; uuid::fmt::Hyphenated::LENGTH];
        let id = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut text);
        Self(HeaderValue::from_str(id).expect("a UUID is visible ASCII"))
    }

    /// The id as a header value, to echo or forward.
    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }

    /// The id as text, for logs.
    pub fn as_str(&self) -> &str {
        self.0.to_str().expect("only visible ASCII is ever kept")
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestId({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_sane_ids_and_replaces_others() {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID, HeaderValue::from_static("abc-123"));
        assert_eq!(RequestId::from_headers(&headers).as_str(), "abc-123");

        for bad in ["", "has space", &"x".repeat(129)] {
            headers.insert(REQUEST_ID, HeaderValue::from_str(bad).unwrap());
            let id = RequestId::from_headers(&headers);
            assert_ne!(id.as_str(), bad);
            assert_eq!(id.as_str().len(), 36, "a generated UUID");
        }
    }
}
