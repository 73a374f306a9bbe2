//! Remembers verified tokens so a token reused for its lifetime has its signature checked once.
//!
//! Keyed by a 128-bit SipHash-2-4 of the token under a random key drawn at start, so the cache
//! never holds a token. The key is secret, so no one can make a token whose hash matches a
//! cached one other than by guessing 128 bits; SipHash is a pseudo-random function built for
//! short inputs, and at ~120 ns for a Better Auth token it costs two thirds of SHA-256's
//! ~180 ns on every request. An entry lives no longer than the token's `exp` and remembers
//! which key verified it: a hit is only trusted while that same key is still published
//! (checked by the caller against the current set).

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::sync::Cache;
use moka::Expiry;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use siphasher::sip128::{Hasher128, SipHasher24};

use super::{claims, Verified};
use crate::jwks::key_set::KeyFingerprint;

/// The keyed hash of a token.
pub type TokenHash = u128;

/// A verified token, as remembered.
#[derive(Debug)]
pub struct CachedToken {
    pub verified: Verified,
    pub kid: Arc<str>,
    pub fingerprint: KeyFingerprint,
    /// The key set that published the key ([`crate::jwks::KeySet::still_has`]).
    pub published_in: u64,
}

/// The bounded cache and its hit/miss counters. Cheap to clone.
#[derive(Clone)]
pub struct TokenCache {
    /// `None` when the capacity is 0: caching switched off.
    cache: Option<Cache<TokenHash, Arc<CachedToken>, KeyedAlready>>,
    /// The hash key, secret and drawn anew at every start.
    hasher: SipHasher24,
    hits: Counter,
    misses: Counter,
}

impl std::fmt::Debug for TokenCache {
    // moka's own Debug lists every entry; a summary is enough and keeps user ids out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("entries", &self.cache.as_ref().map(Cache::entry_count))
            .finish_non_exhaustive()
    }
}

/// moka's hasher for keys that are already keyed hashes: it uses their low 64 bits as they
/// are, since hashing a uniformly random value again (moka's default is SipHash) adds nothing
/// but time on every request.
#[derive(Debug, Clone, Copy, Default)]
struct KeyedAlready;

impl std::hash::BuildHasher for KeyedAlready {
    type Hasher = LowBits;

    fn build_hasher(&self) -> LowBits {
        LowBits(0)
    }
}

/// The hasher [`KeyedAlready`] builds.
#[derive(Debug)]
struct LowBits(u64);

impl std::hash::Hasher for LowBits {
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u128` is expected; anything else is still hashed, if crudely.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u128(&mut self, key: u128) {
        self.0 = key as u64;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Expires each entry at its token's `exp`.
struct UntilExp;

impl Expiry<TokenHash, Arc<CachedToken>> for UntilExp {
    fn expire_after_create(
        &self,
        _key: &TokenHash,
        value: &Arc<CachedToken>,
        _created_at: Instant,
    ) -> Option<Duration> {
        let left = value.verified.expires_at as f64 - claims::now();
        Some(Duration::from_secs_f64(left.clamp(0.0, 365.0 * 86_400.0)))
    }
}

impl TokenCache {
    /// A cache of at most `capacity` tokens; registers `token_cache_hits`/`_misses`.
    pub fn new(capacity: u64, registry: &mut Registry) -> Self {
        let cache = (capacity > 0).then(|| {
            Cache::builder()
                .max_capacity(capacity)
                .expire_after(UntilExp)
                .build_with_hasher(KeyedAlready)
        });
        let hits = Counter::default();
        let misses = Counter::default();
        registry.register(
            "token_cache_hits",
            "Bearer tokens accepted from the verified-token cache",
            hits.clone(),
        );
        registry.register(
            "token_cache_misses",
            "Bearer tokens not in the verified-token cache (signature checked)",
            misses.clone(),
        );
        // Straight from the OS: aws-lc's generator would first seed itself from CPU jitter,
        // which added ~35 ms to every start for these 16 bytes.
        let mut key = [0u8; 16];
        getrandom::fill(&mut key).expect("the operating system's random number generator failed");
        Self {
            cache,
            hasher: SipHasher24::new_with_key(&key),
            hits,
            misses,
        }
    }

    /// The cache key of a token.
    pub fn hash(&self, token: &str) -> TokenHash {
        let mut hasher = self.hasher;
        std::hash::Hasher::write(&mut hasher, token.as_bytes());
        hasher.finish128().as_u128()
    }

    /// The remembered verification of a token, if any. Not counted: see [`Self::record`].
    pub fn get(&self, hash: &TokenHash) -> Option<Arc<CachedToken>> {
        self.cache.as_ref()?.get(hash)
    }

    /// Counts a lookup whose entry was (`true`) or was not (`false`) used.
    pub fn record(&self, hit: bool) {
        if hit {
            self.hits.inc();
        } else {
            self.misses.inc();
        }
    }

    /// Forgets an entry that no longer holds (its key was removed or replaced).
    pub fn remove(&self, hash: &TokenHash) {
        if let Some(cache) = &self.cache {
            cache.invalidate(hash);
        }
    }

    /// Remembers a verified token; the entry as remembered, unless caching is off.
    pub fn insert(&self, hash: TokenHash, entry: CachedToken) -> Option<Arc<CachedToken>> {
        let cache = self.cache.as_ref()?;
        let entry = Arc::new(entry);
        cache.insert(hash, entry.clone());
        Some(entry)
    }
}

/// The last token a client connection presented, and its cache entry. A client on a
/// kept-alive connection sends the same token request after request, and comparing it with
/// the last one costs a fraction of hashing it and looking the hash up. A recalled entry is
/// judged exactly as one from the cache (its key still published, its `exp` not passed), so
/// it proves nothing the cache would not. Owned by one connection, never shared; only
/// entries the cache holds are remembered, so with caching off it stays empty.
#[derive(Default)]
pub struct LastToken {
    token: Vec<u8>,
    entry: Option<(TokenHash, Arc<CachedToken>)>,
}

impl std::fmt::Debug for LastToken {
    // Never the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LastToken")
            .field("remembered", &self.entry.is_some())
            .finish()
    }
}

impl LastToken {
    /// The cache key and entry of `presented`, if those are the bytes of the token
    /// remembered (and so of a token checked before).
    pub(super) fn recall(&self, presented: &[u8]) -> Option<(TokenHash, Arc<CachedToken>)> {
        let (hash, entry) = self.entry.as_ref()?;
        (self.token == presented).then(|| (*hash, entry.clone()))
    }

    /// Remembers `token` and its entry.
    pub(super) fn remember(&mut self, token: &str, hash: TokenHash, entry: Arc<CachedToken>) {
        if self.token != token.as_bytes() {
            self.token.clear();
            self.token.extend_from_slice(token.as_bytes());
        }
        self.entry = Some((hash, entry));
    }

    /// Forgets the token: its entry no longer holds.
    pub(super) fn forget(&mut self) {
        self.token.clear();
        self.entry = None;
    }
}
