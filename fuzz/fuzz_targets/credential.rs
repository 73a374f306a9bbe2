//! proto-shared's identity credential text (`identity/credential.rs`), the header a service
//! reads before it checks any signature.
//!
//! Properties: whatever parses writes back to exactly the text it came from (so no two texts
//! mean one credential, and nothing in the header lies outside what is signed), and parses
//! again to the same fields; any credential written parses back to itself, or, when a field
//! cannot be written faithfully (empty, holding `;`, a negative time), to nothing at all,
//! never to another credential.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use proto_shared::identity::{Binding, BodyDigest, Credential, Nonce};

/// Input starting with `v` is header text; anything else is read (by `arbitrary`) as fields.
enum Input<'a> {
    Text(&'a str),
    Fields(Fields<'a>),
}

#[derive(Debug, Arbitrary)]
struct Fields<'a> {
    key_id: &'a str,
    timestamp: i64,
    binding: Option<(&'a str, [u8; 16], [u8; 32])>,
    signature: [u8; 32],
}

impl<'a> Input<'a> {
    fn read(input: &'a [u8]) -> Option<Self> {
        if input.first() == Some(&b'v') {
            return std::str::from_utf8(input).ok().map(Self::Text);
        }
        Fields::arbitrary_take_rest(arbitrary::Unstructured::new(input))
            .ok()
            .map(Self::Fields)
    }
}

fuzz_target!(|input: &[u8]| match Input::read(input) {
    None => {}
    Some(Input::Text(text)) => {
        if let Some(credential) = Credential::parse(text) {
            let written = credential.to_text();
            assert_eq!(
                written, text,
                "a parsed credential writes back to other text"
            );
            assert_eq!(Credential::parse(&written), Some(credential));
        }
    }
    Some(Input::Fields(Fields {
        key_id,
        timestamp,
        binding,
        signature,
    })) => {
        let credential = Credential {
            key_id,
            timestamp,
            binding: binding.map(|(audience, nonce, digest)| Binding {
                audience,
                nonce: Nonce(nonce),
                body_digest: BodyDigest(digest),
            }),
            signature,
        };
        let text = credential.to_text();
        let parsed = Credential::parse(&text);
        let field_ok = |field: &str| !field.is_empty() && !field.contains(';');
        let faithful = field_ok(key_id)
            && binding.is_none_or(|(audience, ..)| field_ok(audience))
            && (0..=999_999_999_999).contains(&timestamp);
        if faithful {
            assert_eq!(
                parsed,
                Some(credential),
                "a written credential does not parse back"
            );
        } else {
            assert_eq!(parsed, None, "an unwritable credential parsed as another");
        }
    }
});
