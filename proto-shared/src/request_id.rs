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
        match headers.get(REQUEST_ID) {
            Some(value) if Self::is_sane(value.as_bytes()) => Self(value.clone()),
            _ => Self::generate(),
        }
    }

    /// The id a caller sent as the `x-request-id` value `sent`, or a fresh one.
    pub fn from_value(sent: Option<&[u8]>) -> Self {
        sent.filter(|bytes| Self::is_sane(bytes))
            .and_then(|bytes| HeaderValue::from_bytes(bytes).ok())
            .map_or_else(Self::generate, Self)
    }

    fn is_sane(bytes: &[u8]) -> bool {
        !bytes.is_empty() && bytes.len() <= Self::MAX_LEN && bytes.iter().all(u8::is_ascii_graphic)
    }

    /// A fresh random id.
    pub fn generate() -> Self {
        let mut text = [0; uuid::fmt::Hyphenated::LENGTH];
        uuid::Uuid::new_v4().hyphenated().encode_lower(&mut text);
        // The text moves into the one allocation that shares it, so that a proxy's copies of
        // the id (one for the upstream, one for the answer) cost no allocation of their own.
        Self(
            HeaderValue::from_maybe_shared(bytes::Bytes::from_owner(text))
                .expect("a UUID is visible ASCII"),
        )
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

    #[test]
    fn a_sent_value_is_judged_as_a_header_is() {
        assert_eq!(RequestId::from_value(Some(b"abc-123")).as_str(), "abc-123");
        assert_eq!(RequestId::from_value(None).as_str().len(), 36);
        for bad in [&b""[..], b"has space", b"caf\xc3\xa9", &[b'x'; 129]] {
            let id = RequestId::from_value(Some(bad));
            assert_eq!(
                id.as_str().len(),
                36,
                "{bad:?} is replaced by a generated UUID"
            );
        }
    }
}
