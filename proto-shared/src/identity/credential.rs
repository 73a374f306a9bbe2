//! The text of the `x-identity-credential` header, parsed into its fields and written back
//! from them, for both versions:
//!
//! - `v1;kid={key id};ts={unix seconds};sig={tag}`
//! - `v2;kid={key id};ts={unix seconds};aud={audience};nonce={nonce};bd={body digest};sig={tag}`
//!
//! Binary fields are base64url without padding; the parser accepts only the canonical
//! encoding of the exact length, so whatever parses writes back to the same text. Knows
//! nothing about keys, clocks or requests: `sign.rs` fills the fields, `verify.rs` judges them.

use std::fmt;

use aws_lc_rs::digest;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};

/// The credential formats, each with its own canonical string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// Method, target, user, time and key id. Accepted only where the operator allows it.
    V1,
    /// v1 plus the audience, a single-use nonce and the body's digest.
    V2,
}

impl Version {
    /// The version tag, first in the header and in the canonical string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V2 => "v2",
        }
    }
}

/// A credential's unique id: 16 bytes, never used twice by a signer (`sign.rs` says how).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Nonce(pub [u8; 16]);

impl Nonce {
    /// The nonce as one number, the replay set's key.
    pub fn as_u128(self) -> u128 {
        u128::from_be_bytes(self.0)
    }
}

impl fmt::Debug for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nonce({:032x})", self.as_u128())
    }
}

/// SHA-256 of the exact request body bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct BodyDigest(pub [u8; 32]);

impl BodyDigest {
    /// The digest of an empty body (most requests: every GET and DELETE), computed once.
    pub const EMPTY: Self = Self([
        0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9,
        0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52,
        0xb8, 0x55,
    ]);

    /// The digest of `body`.
    pub fn of(body: &[u8]) -> Self {
        if body.is_empty() {
            return Self::EMPTY;
        }
        let hash = digest::digest(&digest::SHA256, body);
        Self(hash.as_ref().try_into().expect("SHA-256 is 32 bytes"))
    }
}

impl fmt::Debug for BodyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BodyDigest(")?;
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))?;
        f.write_str(")")
    }
}

/// What ties a v2 credential to one verifier, one use and one body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding<'a> {
    pub audience: &'a str,
    pub nonce: Nonce,
    pub body_digest: BodyDigest,
}

/// A credential's fields, borrowed from the header text (or from the signer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credential<'a> {
    pub key_id: &'a str,
    pub timestamp: i64,
    /// `Some` exactly for v2.
    pub binding: Option<Binding<'a>>,
    /// The HMAC-SHA256 tag over the canonical string.
    pub signature: [u8; 32],
}

/// base64url (no padding) of 16 and 32 bytes: 22 and 43 characters.
const NONCE_TEXT: usize = 22;
const HASH_TEXT: usize = 43;

impl<'a> Credential<'a> {
    /// The credential's version.
    pub fn version(&self) -> Version {
        match self.binding {
            None => Version::V1,
            Some(_) => Version::V2,
        }
    }

    /// Parses the header's text; `None` for anything but the exact shape of one version.
    pub fn parse(text: &'a str) -> Option<Self> {
        let mut fields = text.split(';');
        let version = match fields.next()? {
            "v1" => Version::V1,
            "v2" => Version::V2,
            _ => return None,
        };
        let mut field = |name: &str| fields.next()?.strip_prefix(name)?.strip_prefix('=');
        let key_id = field("kid")?;
        let timestamp = parse_timestamp(field("ts")?)?;
        let binding = match version {
            Version::V1 => None,
            Version::V2 => Some(Binding {
                audience: field("aud")?,
                nonce: Nonce(decode(field("nonce")?)?),
                body_digest: BodyDigest(decode(field("bd")?)?),
            }),
        };
        let signature = decode(field("sig")?)?;
        if fields.next().is_some() || key_id.is_empty() {
            return None;
        }
        if binding.is_some_and(|b| b.audience.is_empty()) {
            return None;
        }
        Some(Self {
            key_id,
            timestamp,
            binding,
            signature,
        })
    }

    /// How long [`Credential::write`]'s text is, so that it can go into an allocation of
    /// exactly its size (which a header value then takes over without another).
    pub fn text_len(&self) -> usize {
        let common = self.version().as_str().len()
            + ";kid=".len()
            + self.key_id.len()
            + ";ts=".len()
            + itoa::Buffer::new().format(self.timestamp).len()
            + ";sig=".len()
            + HASH_TEXT;
        let bound = self.binding.as_ref().map_or(0, |binding| {
            ";aud=".len()
                + binding.audience.len()
                + ";nonce=".len()
                + NONCE_TEXT
                + ";bd=".len()
                + HASH_TEXT
        });
        common + bound
    }

    /// Appends the header's text to `out`, as bytes (UTF-8: the fields' text and ASCII): the
    /// inverse of [`Credential::parse`].
    pub fn write(&self, out: &mut Vec<u8>) {
        self.write_with(self.binding.as_ref().map(Binding::text).as_ref(), out);
    }

    /// The header's text as a `String`: what [`Credential::write`] appends, for a caller
    /// that wants text (a test, a fuzz target, a client whose header API takes `&str`).
    pub fn to_text(&self) -> String {
        let mut bytes = Vec::with_capacity(self.text_len());
        self.write(&mut bytes);
        // Every byte written is ASCII or a field's text, and the fields are `&str`.
        String::from_utf8(bytes).expect("a credential's text is UTF-8")
    }

    /// [`Credential::write`], with the binding's text already encoded (`binding` is
    /// [`Binding::text`] of this credential's binding): a signer encodes it once for both the
    /// canonical string and the header.
    pub(crate) fn write_with(&self, binding: Option<&BindingText<'_>>, out: &mut Vec<u8>) {
        debug_assert_eq!(binding.is_some(), self.binding.is_some());
        out.extend_from_slice(self.version().as_str().as_bytes());
        out.extend_from_slice(b";kid=");
        out.extend_from_slice(self.key_id.as_bytes());
        out.extend_from_slice(b";ts=");
        out.extend_from_slice(itoa::Buffer::new().format(self.timestamp).as_bytes());
        if let Some(binding) = binding {
            out.extend_from_slice(b";aud=");
            out.extend_from_slice(binding.audience.as_bytes());
            out.extend_from_slice(b";nonce=");
            out.extend_from_slice(binding.nonce.as_bytes());
            out.extend_from_slice(b";bd=");
            out.extend_from_slice(binding.body_digest.as_bytes());
        }
        out.extend_from_slice(b";sig=");
        out.extend_from_slice(encode::<HASH_TEXT>(&self.signature).as_bytes());
    }
}

impl<'a> Binding<'a> {
    /// The binding's fields as they are written in the header and signed.
    pub(crate) fn text(&self) -> BindingText<'a> {
        BindingText {
            audience: self.audience,
            nonce: encode(&self.nonce.0),
            body_digest: digest_text(&self.body_digest),
        }
    }
}

/// A [`Binding`]'s fields as text, encoded once for both places that need them.
pub(crate) struct BindingText<'a> {
    pub(crate) audience: &'a str,
    pub(crate) nonce: Encoded<NONCE_TEXT>,
    pub(crate) body_digest: Encoded<HASH_TEXT>,
}

/// Decimal Unix seconds: digits only (no sign, no spaces, no leading zero, which `write`
/// would not give back), at most 12 of them (year 33658).
fn parse_timestamp(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if text.len() > 1 && text.starts_with('0') {
        return None;
    }
    text.parse().ok()
}

/// Exactly `N` bytes from their canonical base64url text (the engine refuses stray bits).
fn decode<const N: usize>(text: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    // Only the one length that N bytes encode to: unpadded base64 is ceil(4N / 3) characters.
    if text.len() != (N * 4).div_ceil(3) {
        return None;
    }
    match URL_SAFE_NO_PAD.decode_slice(text, &mut out) {
        Ok(written) if written == N => Some(out),
        _ => None,
    }
}

/// base64url text of `bytes` in a stack buffer of `L` characters.
pub(crate) fn encode<const L: usize>(bytes: &[u8]) -> Encoded<L> {
    let mut text = [0u8; L];
    let written = URL_SAFE_NO_PAD
        .encode_slice(bytes, &mut text)
        .expect("the buffer fits the encoding");
    debug_assert_eq!(written, L);
    Encoded(text)
}

/// Base64url text held on the stack.
pub(crate) struct Encoded<const L: usize>([u8; L]);

impl<const L: usize> Encoded<L> {
    /// The text's bytes, all ASCII: the signer writes them without checking them as UTF-8.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    #[cfg(test)]
    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("base64 is ASCII")
    }
}

/// The text of a body digest, as signed. That of no body, what most requests have, is kept.
pub(crate) fn digest_text(digest: &BodyDigest) -> Encoded<HASH_TEXT> {
    if *digest == BodyDigest::EMPTY {
        return EMPTY_DIGEST_TEXT;
    }
    encode(&digest.0)
}

/// [`BodyDigest::EMPTY`] as base64url.
const EMPTY_DIGEST_TEXT: Encoded<HASH_TEXT> =
    Encoded(*b"47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU");

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_empty_digest_is_sha256_of_nothing() {
        let hash = digest::digest(&digest::SHA256, b"");
        assert_eq!(BodyDigest::EMPTY.0, hash.as_ref());
        assert_eq!(BodyDigest::of(b""), BodyDigest::EMPTY);
        assert_ne!(BodyDigest::of(b"{}"), BodyDigest::EMPTY);
        // The kept text of no body is that body's digest, encoded.
        assert_eq!(
            digest_text(&BodyDigest::EMPTY).as_str(),
            encode::<HASH_TEXT>(&BodyDigest::EMPTY.0).as_str()
        );
    }

    fn v2(text: &str) -> Option<Credential<'_>> {
        Credential::parse(text)
    }

    const SIG: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    const NONCE: &str = "AAAAAAAAAAAAAAAAAAAAAA";

    #[test]
    fn both_versions_parse_and_write_back() {
        let texts = [
            format!("v1;kid=gw;ts=1764000000;sig={SIG}"),
            format!("v2;kid=gw;ts=1764000000;aud=tasks-service;nonce={NONCE};bd={SIG};sig={SIG}"),
        ];
        for text in &texts {
            let credential = Credential::parse(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(&credential.to_text(), text);
        }
        assert_eq!(v2(&texts[0]).unwrap().version(), Version::V1);
        assert_eq!(v2(&texts[1]).unwrap().version(), Version::V2);
    }

    #[test]
    fn refuses_every_other_shape() {
        let good = format!("v2;kid=gw;ts=1;aud=a;nonce={NONCE};bd={SIG};sig={SIG}");
        assert!(v2(&good).is_some());
        for bad in [
            String::new(),
            good.replacen("v2", "v3", 1),
            good.replacen("v2", "V2", 1),
            good.replacen("kid=gw", "kid=", 1),
            good.replacen("ts=1", "ts=-1", 1),
            good.replacen("ts=1", "ts=+1", 1),
            good.replacen("ts=1", "ts=1234567890123", 1),
            good.replacen("aud=a", "aud=", 1),
            good.replacen("aud=a;", "", 1),
            good.replacen(NONCE, &NONCE[1..], 1),
            good.replacen(NONCE, &format!("{NONCE}A"), 1),
            // Stray bits in the last character: not the canonical text of any 16 bytes.
            good.replacen(NONCE, "AAAAAAAAAAAAAAAAAAAAAB", 1),
            good.replacen(&format!("bd={SIG}"), "bd=!!", 1),
            format!("{good};x=1"),
            good.replacen(";nonce", ";nonce ", 1),
            format!("v1;kid=gw;ts=1;aud=a;sig={SIG}"),
        ] {
            assert!(v2(&bad).is_none(), "{bad}");
        }
    }

    /// Found by the `credential` fuzz target: `ts=01764000000` parsed to the same credential
    /// as `ts=1764000000` and wrote back without the zero, so two texts meant one credential.
    #[test]
    fn timestamp_with_leading_zero_is_refused() {
        let text = |ts: &str| format!("v1;kid=gw;ts={ts};sig={SIG}");
        for bad in ["01764000000", "00", "01"] {
            assert!(v2(&text(bad)).is_none(), "{bad}");
        }
        assert_eq!(v2(&text("0")).map(|c| c.timestamp), Some(0));
    }

    proptest! {
        /// What parses writes back to exactly the text it came from, so no two texts mean
        /// one credential and nothing in the header escapes the signature.
        #[test]
        fn whatever_parses_writes_back_to_itself(text in "v[12];kid=[a-z.]{0,3};ts=[0-9+-]{0,4};(aud=[a-z;]{0,3};nonce=[A-Za-z0-9_-]{20,23};bd=[A-Za-z0-9_-]{42,44};)?sig=[A-Za-z0-9_-]{42,44}") {
            if let Some(credential) = Credential::parse(&text) {
                let written = credential.to_text();
                prop_assert_eq!(written.len(), credential.text_len());
                prop_assert_eq!(written, text);
            }
        }

        #[test]
        fn written_credentials_parse_to_themselves(
            ts in 0i64..999_999_999_999,
            nonce in any::<[u8; 16]>(),
            digest in any::<[u8; 32]>(),
            signature in any::<[u8; 32]>(),
            bound in any::<bool>(),
        ) {
            let credential = Credential {
                key_id: "gw",
                timestamp: ts,
                binding: bound.then_some(Binding {
                    audience: "tasks-service",
                    nonce: Nonce(nonce),
                    body_digest: BodyDigest(digest),
                }),
                signature,
            };
            let text = credential.to_text();
            prop_assert_eq!(text.len(), credential.text_len());
            prop_assert_eq!(Credential::parse(&text), Some(credential));
        }
    }
}
