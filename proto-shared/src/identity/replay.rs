//! The verifier's memory of the credentials it has accepted, so that none is accepted twice.
//!
//! A nonce is remembered until its credential can no longer be fresh (its timestamp plus the
//! allowed skew); after that the freshness check alone refuses it. The set is bounded: when
//! it is full, new credentials are refused (fail closed) rather than old nonces forgotten
//! early, since forgetting one would let its credential be replayed.
//!
//! Expiry is judged here, under the lock, against the latest clock any caller brought: a
//! request whose clock was read a second earlier (it waited for the lock, or the wall clock
//! stepped back) must not find a nonce already forgotten by a later one and pass as new.

use std::{
    collections::{BTreeMap, HashSet},
    sync::{Arc, Mutex},
};

/// Why a nonce was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// This nonce was accepted before and its credential is still fresh.
    Seen,
    /// The set holds its capacity of nonces still fresh.
    Full,
    /// The credential expired by the latest clock the set has seen, so its nonce may
    /// already be forgotten.
    Expired,
}

/// Shared by every clone of a verifier. `Debug` shows its capacity and how many nonces it
/// holds, never the nonces: up to a million of them, printed under the lock every request
/// needs, would make one debug line of a state that holds it a stall.
#[derive(Clone)]
pub(crate) struct ReplaySet {
    inner: Arc<Mutex<Seen>>,
    capacity: usize,
}

impl std::fmt::Debug for ReplaySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut shown = f.debug_struct("ReplaySet");
        shown.field("capacity", &self.capacity);
        // Not waited for: a debug line is no reason to hold up a request.
        if let Ok(seen) = self.inner.try_lock() {
            shown.field("remembered", &seen.nonces.len());
        }
        shown.finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct Seen {
    /// std `RandomState` (SipHash with a random key): nonces are partly a counter, so the
    /// hash must not be predictable to whoever sends them.
    nonces: HashSet<u128>,
    /// The same nonces by the second after which they can be forgotten.
    by_expiry: BTreeMap<i64, Vec<u128>>,
    /// The latest `now` any caller brought: the set's clock never goes back.
    latest: i64,
}

impl ReplaySet {
    /// A set that holds at most `capacity` nonces at once.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::default(),
            capacity,
        }
    }

    /// Remembers `nonce` until `expires` (Unix seconds), unless it is already remembered, its
    /// credential expired or the set is full. `now` is the caller's clock; the set judges by
    /// the latest clock it has been given, and drops everything expired by then first.
    pub(crate) fn remember(&self, nonce: u128, expires: i64, now: i64) -> Result<(), Refusal> {
        // std Mutex: a hash lookup and insert, never held across `.await`.
        let mut seen = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let now = now.max(seen.latest);
        seen.latest = now;
        seen.forget_before(now);
        // What `forget_before` may have dropped is refused, never taken for new.
        if expires < now {
            return Err(Refusal::Expired);
        }
        if seen.nonces.contains(&nonce) {
            return Err(Refusal::Seen);
        }
        if seen.nonces.len() >= self.capacity {
            return Err(Refusal::Full);
        }
        seen.nonces.insert(nonce);
        seen.by_expiry.entry(expires).or_default().push(nonce);
        Ok(())
    }

    /// How many nonces are remembered now.
    pub(crate) fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .nonces
            .len()
    }
}

impl Seen {
    fn forget_before(&mut self, now: i64) {
        while let Some(entry) = self.by_expiry.first_entry() {
            if *entry.key() >= now {
                break;
            }
            for nonce in entry.remove() {
                self.nonces.remove(&nonce);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_nonce_is_refused_until_its_credential_expires() {
        let set = ReplaySet::new(10);
        assert_eq!(set.remember(1, 130, 100), Ok(()));
        assert_eq!(set.remember(1, 130, 129), Err(Refusal::Seen));
        assert_eq!(set.remember(1, 130, 130), Err(Refusal::Seen));
        // Past its expiry the freshness check refuses the credential; the set forgets it.
        assert_eq!(set.remember(2, 161, 131), Ok(()));
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn a_clock_read_before_a_later_one_cannot_find_its_nonce_forgotten() {
        let set = ReplaySet::new(10);
        assert_eq!(set.remember(1, 130, 100), Ok(()));
        // A request whose clock read 131 forgets nonce 1 (expired at 130)...
        assert_eq!(set.remember(2, 200, 131), Ok(()));
        // ...so a copy of 1 whose clock was read at 130 (it waited for the lock, or the wall
        // clock stepped back) is judged by 131 and refused, not remembered as new.
        assert_eq!(set.remember(1, 130, 130), Err(Refusal::Expired));
        // A clock that went back does not bring the set's back with it.
        assert_eq!(set.remember(3, 129, 50), Err(Refusal::Expired));
        assert_eq!(set.remember(3, 131, 50), Ok(()));
    }

    #[test]
    fn a_full_set_refuses_new_nonces_and_forgets_none_early() {
        let set = ReplaySet::new(2);
        set.remember(1, 130, 100).unwrap();
        set.remember(2, 130, 100).unwrap();
        assert_eq!(set.remember(3, 130, 100), Err(Refusal::Full));
        assert_eq!(set.remember(1, 130, 100), Err(Refusal::Seen));
        assert_eq!(
            set.remember(3, 140, 131),
            Ok(()),
            "room again once 1 and 2 expired"
        );
    }

    proptest! {
        /// Against a model: a nonce is refused as seen exactly while an earlier acceptance of
        /// it has not expired, and the set never holds more than its capacity.
        #[test]
        fn behaves_like_the_model(ops in proptest::collection::vec((0u128..8, 0i64..40, 0i64..5), 1..200)) {
            let capacity = 5;
            let set = ReplaySet::new(capacity);
            let mut model: Vec<(u128, i64)> = Vec::new();
            let mut now = 0;
            for (nonce, lifetime, step) in ops {
                now += step;
                model.retain(|&(_, expires)| expires >= now);
                let expected = if model.iter().any(|&(n, _)| n == nonce) {
                    Err(Refusal::Seen)
                } else if model.len() >= capacity {
                    Err(Refusal::Full)
                } else {
                    model.push((nonce, now + lifetime));
                    Ok(())
                };
                prop_assert_eq!(set.remember(nonce, now + lifetime, now), expected);
                prop_assert!(set.len() <= capacity);
            }
        }
    }

    #[test]
    fn debug_shows_how_many_nonces_not_which() {
        let set = ReplaySet::new(4);
        set.remember(0xfeed_beef, 100, 10).unwrap();
        let shown = format!("{set:?}");
        assert_eq!(shown, "ReplaySet { capacity: 4, remembered: 1, .. }");
    }
}
