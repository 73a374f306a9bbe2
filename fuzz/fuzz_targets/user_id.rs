//! proto-shared's user id codec (`user_id.rs`): the percent-encoding a user id travels in, in
//! URL paths and in the `x-user-id` header a service trusts once the credential checks out.
//!
//! Properties: decoding agrees with a reference percent-decoder written here (`%` and exactly
//! two hex digits, UTF-8, then the id rules), including which error; what decodes re-encodes
//! (path segment and header value) to text that decodes to the same id, and encoding is
//! canonical (the encoded form of a decoded id is stable, and uses only unreserved characters
//! or `%XX` in paths, visible ASCII in headers); `is_encoded_as` agrees with decoding.

#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_shared::{UserId, UserIdError};

fn reference(encoded: &str) -> Result<String, UserIdError> {
    if encoded.len() > 3 * UserId::MAX_LEN {
        return Err(UserIdError::TooLong);
    }
    let bytes = encoded.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(UserIdError::BadEncoding)?;
            let digit = |b: u8| (b as char).to_digit(16).ok_or(UserIdError::BadEncoding);
            out.push((digit(hex[0])? * 16 + digit(hex[1])?) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let raw = String::from_utf8(out).map_err(|_| UserIdError::BadEncoding)?;
    if raw.is_empty() {
        Err(UserIdError::Empty)
    } else if raw.len() > UserId::MAX_LEN {
        Err(UserIdError::TooLong)
    } else if raw.chars().any(char::is_control) {
        Err(UserIdError::ControlCharacter)
    } else if raw == "." || raw == ".." {
        Err(UserIdError::DotSegment)
    } else {
        Ok(raw)
    }
}

fn check_id(id: &UserId) {
    let segment = id.to_path_segment();
    assert!(segment
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
    assert_eq!(UserId::from_encoded(&segment).as_ref(), Ok(id));
    assert!(id.is_encoded_as(&segment));
    let header = id.to_header_value();
    let header = header.to_str().expect("a header value of visible ASCII");
    assert!(header.bytes().all(|b| b.is_ascii_graphic()));
    assert_eq!(UserId::from_encoded(header).as_ref(), Ok(id));
    assert!(id.is_encoded_as(header));
    // Canonical: encoding what an encoding decodes to gives the same text.
    assert_eq!(
        UserId::from_encoded(&segment).unwrap().to_path_segment(),
        segment
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let decoded = UserId::from_encoded(text);
    assert_eq!(
        decoded.as_ref().map(UserId::as_str).map_err(Clone::clone),
        reference(text).as_deref().map_err(Clone::clone),
        "the decoder and the reference differ"
    );
    if let Ok(id) = &decoded {
        check_id(id);
    }
    if let Ok(id) = UserId::parse(text) {
        check_id(&id);
        assert_eq!(
            id.is_encoded_as(text),
            UserId::from_encoded(text).as_ref() == Ok(&id)
        );
        if let Ok(other) = &decoded {
            assert_eq!(id.is_encoded_as(text), id == *other);
        }
    }
});
