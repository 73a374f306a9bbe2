//! The key ring read from `IDENTITY_KEYS`: several keys accepted, the first one signs.
//!
//! Format: `key_id:secret[,key_id:secret...]`. Key ids are 1 to 64 of `[A-Za-z0-9._-]`;
//! secrets are at least 32 bytes and may hold any character but `,`. To rotate, put the new
//! key second everywhere, then first on the signers, then drop the old one.

use std::{collections::HashMap, fmt, str::FromStr, sync::Arc};

use aws_lc_rs::hmac;

/// Names one key of the ring; sent in the clear inside every credential.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KeyId(Arc<str>);

impl KeyId {
    /// Validates a key id: 1 to 64 characters of `[A-Za-z0-9._-]`.
    pub fn parse(raw: &str) -> Option<Self> {
        let valid = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        valid.then(|| Self(raw.into()))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0)
    }
}

/// Why `IDENTITY_KEYS` was refused. Names entries by position alone, never by text taken from
/// the setting: a secret holding a `,` (which the format does not allow) splits into entries,
/// and what reads as the next entry's key id is then part of that secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRingError {
    #[error("no keys given; expected key_id:secret[,key_id:secret...]")]
    Empty,
    #[error("entry {position} is not of the form key_id:secret")]
    MissingSeparator { position: usize },
    #[error("entry {position} has an invalid key id (1 to 64 of A-Z a-z 0-9 . _ -)")]
    BadKeyId { position: usize },
    #[error(
        "the secret of entry {position} is {len} bytes; at least {min} are required (and no \
         secret may hold a ',', which separates entries)",
        min = KeyRing::MIN_SECRET_LEN
    )]
    SecretTooShort { position: usize, len: usize },
    #[error("entry {position} repeats the key id of an earlier entry")]
    DuplicateKeyId { position: usize },
    #[error(
        "the secret of entry {position} was published in this project's deploy/.env.example, \
         so anyone can sign with it; make a new one (deploy/new-env.sh, or openssl rand -base64 \
         32)"
    )]
    PublishedSecret { position: usize },
}

/// Every accepted key, and which one signs. `Debug` shows key ids only.
#[derive(Clone)]
pub struct KeyRing {
    signing: KeyId,
    keys: HashMap<KeyId, hmac::Key>,
}

impl KeyRing {
    /// Shortest secret accepted: 256 bits, the HMAC-SHA256 block of security.
    pub const MIN_SECRET_LEN: usize = 32;

    /// Secrets this repository once shipped as working examples (an earlier
    /// `deploy/.env.example`). An env file copied from an old checkout would otherwise carry
    /// them into a deployment; refusing them at start turns that slip into a message.
    const PUBLISHED_SECRETS: &'static [&'static str] =
        &["INSECURE-EXAMPLE-KEY-for-ci-only-do-not-use-0000"];

    /// The key that signs: the first one listed.
    pub fn signing_key_id(&self) -> &KeyId {
        &self.signing
    }

    /// Looks up an accepted key by id.
    pub(crate) fn key(&self, key_id: &str) -> Option<(&KeyId, &hmac::Key)> {
        self.keys.get_key_value(key_id)
    }

    /// The key that signs, with its id.
    pub(crate) fn signing_key(&self) -> (&KeyId, &hmac::Key) {
        self.keys
            .get_key_value(self.signing.as_str())
            .expect("the signing key is always in the ring")
    }

    /// All key ids, signing key first.
    pub fn key_ids(&self) -> impl Iterator<Item = &KeyId> {
        std::iter::once(&self.signing).chain(self.keys.keys().filter(|k| **k != self.signing))
    }
}

impl std::borrow::Borrow<str> for KeyId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl FromStr for KeyRing {
    type Err = KeyRingError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let mut signing = None;
        let mut keys = HashMap::new();
        let entries = spec.split(',').map(str::trim).filter(|e| !e.is_empty());
        for (index, entry) in entries.enumerate() {
            let position = index + 1;
            let (raw_id, secret) = entry
                .split_once(':')
                .ok_or(KeyRingError::MissingSeparator { position })?;
            let key_id = KeyId::parse(raw_id.trim()).ok_or(KeyRingError::BadKeyId { position })?;
            if secret.len() < Self::MIN_SECRET_LEN {
                return Err(KeyRingError::SecretTooShort {
                    position,
                    len: secret.len(),
                });
            }
            if Self::PUBLISHED_SECRETS.contains(&secret) {
                return Err(KeyRingError::PublishedSecret { position });
            }
            let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
            if keys.insert(key_id.clone(), key).is_some() {
                return Err(KeyRingError::DuplicateKeyId { position });
            }
            signing.get_or_insert(key_id);
        }
        Ok(Self {
            signing: signing.ok_or(KeyRingError::Empty)?,
            keys,
        })
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("signing", &self.signing)
            .field("key_ids", &self.key_ids().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn first_key_signs_and_all_are_accepted() {
        let ring: KeyRing = format!("new:{SECRET}x, old:{SECRET}").parse().unwrap();
        assert_eq!(ring.signing_key_id().as_str(), "new");
        assert!(ring.key("old").is_some());
        assert!(ring.key("other").is_none());
    }

    #[test]
    fn secrets_may_contain_colons() {
        let ring: KeyRing = format!("k:{SECRET}:more").parse().unwrap();
        assert!(ring.key("k").is_some());
    }

    #[test]
    fn refuses_bad_specs_without_echoing_secrets() {
        assert_eq!("".parse::<KeyRing>().unwrap_err(), KeyRingError::Empty);
        assert_eq!(
            "nocolon".parse::<KeyRing>().unwrap_err(),
            KeyRingError::MissingSeparator { position: 1 }
        );
        assert_eq!(
            format!("bad id:{SECRET}").parse::<KeyRing>().unwrap_err(),
            KeyRingError::BadKeyId { position: 1 }
        );
        let short = "k:short-secret".parse::<KeyRing>().unwrap_err();
        assert!(!short.to_string().contains("short-secret"), "{short}");
        assert_eq!(
            format!("k:{SECRET},k:{SECRET}")
                .parse::<KeyRing>()
                .unwrap_err(),
            KeyRingError::DuplicateKeyId { position: 2 }
        );
        // A secret with a ',' in it: the rest reads as an entry whose "key id" is part of the
        // secret, which no message may repeat.
        let split = format!("k:{SECRET},Hunter2-part-of-secret:tail")
            .parse::<KeyRing>()
            .unwrap_err();
        assert_eq!(
            split,
            KeyRingError::SecretTooShort {
                position: 2,
                len: 4
            }
        );
        assert!(!split.to_string().contains("Hunter2"), "{split}");
    }

    #[test]
    fn refuses_the_secret_an_earlier_env_example_published_and_what_the_template_holds_now() {
        let old = "ci:INSECURE-EXAMPLE-KEY-for-ci-only-do-not-use-0000";
        let refused = format!("new:{SECRET},{old}")
            .parse::<KeyRing>()
            .unwrap_err();
        assert_eq!(refused, KeyRingError::PublishedSecret { position: 2 });
        assert!(!refused.to_string().contains("INSECURE"), "{refused}");
        // Today's template: a placeholder refused as too short, whatever a copy names its key.
        let template = include_str!("../../../deploy/.env.example")
            .lines()
            .find_map(|l| l.strip_prefix("IDENTITY_KEYS="))
            .expect("deploy/.env.example sets IDENTITY_KEYS");
        assert!(matches!(
            template.parse::<KeyRing>(),
            Err(KeyRingError::SecretTooShort { .. })
        ));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let ring: KeyRing = format!("k:{SECRET}").parse().unwrap();
        assert!(!format!("{ring:?}").contains(SECRET));
    }
}
