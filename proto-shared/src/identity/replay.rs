//! The verifier's memory of the credentials it has accepted, so that none is accepted twice.
//!
//! A nonce is remembered until its credential can no longer be fresh (its timestamp plus the
//! allowed skew); after that the freshness check alone refuses it. The set is bounded: when
//! it is full, new credentials are refused (fail closed) rather than old nonces forgotten
//! early, since forgetting one would let its credential be replayed.
//!
//! No one user may hold more than a share of it: a user past its share is refused alone
//! (too many requests), so filling the whole set, which refuses everyone, takes
//! `capacity / per_user` users at once rather than one user sending fast enough.
//!
//! Expiry is judged here, under the lock, against the latest clock any caller brought: a
//! request whose clock was read a second earlier (it waited for the lock, or the wall clock
//! stepped back) must not find a nonce already forgotten by a later one and pass as new.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Arc, Mutex},
};

use crate::UserId;

/// Why a nonce was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// This nonce was accepted before and its credential is still fresh.
    Seen,
    /// The set holds its capacity of nonces still fresh.
    Full,
    /// The set holds this user's share of nonces still fresh.
    UserShareFull,
    /// The credential expired by the latest clock the set has seen, so its nonce may
    /// already be forgotten.
    Expired,
}

/// Shared by every clone of a verifier. `Debug` shows its capacity, the share one user may
/// hold and how many nonces it holds, never the nonces nor whose they are: up to a million
/// of them, printed under the lock every request needs, would make one debug line of a
/// state that holds it a stall.
#[derive(Clone)]
pub(crate) struct ReplaySet {
    inner: Arc<Mutex<Seen>>,
    capacity: usize,
    per_user: usize,
}

impl std::fmt::Debug for ReplaySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut shown = f.debug_struct("ReplaySet");
        shown.field("capacity", &self.capacity);
        shown.field("per_user", &self.per_user);
        // Not waited for: a debug line is no reason to hold up a request.
        if let Ok(seen) = self.inner.try_lock() {
            shown.field("remembered", &seen.nonces.len());
        }
        shown.finish_non_exhaustive()
    }
}

/// No `Debug`: it holds nonces and user ids, which no log line may show.
#[derive(Default)]
struct Seen {
    /// std `RandomState` (SipHash with a random key): nonces are partly a counter, so the
    /// hash must not be predictable to whoever sends them.
    nonces: HashSet<u128>,
    /// The same nonces by the second after which they can be forgotten, with whose they are:
    /// the user's id as `by_user` holds it, so that a user's nonces share one copy of it
    /// rather than each keeping the copy its request parsed.
    by_expiry: BTreeMap<i64, Vec<(u128, UserId)>>,
    /// How many of the nonces each user holds; a user holding none has no entry.
    by_user: HashMap<UserId, usize>,
    /// The latest `now` any caller brought: the set's clock never goes back.
    latest: i64,
}

impl ReplaySet {
    /// A set that holds at most `capacity` nonces at once, at most `per_user` of them any
    /// one user's (both at least 1; `per_user` at most `capacity`).
    pub(crate) fn new(capacity: usize, per_user: usize) -> Self {
        Self {
            inner: Arc::default(),
            capacity,
            per_user: per_user.clamp(1, capacity.max(1)),
        }
    }

    /// Remembers `nonce`, spent by `user`, until `expires` (Unix seconds), unless it is
    /// already remembered, its credential expired, the user holds its share or the set is
    /// full. `now` is the caller's clock; the set judges by the latest clock it has been
    /// given, and drops everything expired by then first.
    pub(crate) fn remember(
        &self,
        nonce: u128,
        user: &UserId,
        expires: i64,
        now: i64,
    ) -> Result<(), Refusal> {
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
        // One lookup: the user's count, and the copy of its id the set already holds.
        let (user, held) = match seen.by_user.get_key_value(user) {
            Some((kept, &held)) => (kept.clone(), held),
            None => (user.clone(), 0),
        };
        // The user's own share first: one user at its share is told to slow down even when
        // the whole set is full as well, since waiting is what both call for.
        if held >= self.per_user {
            return Err(Refusal::UserShareFull);
        }
        if seen.nonces.len() >= self.capacity {
            return Err(Refusal::Full);
        }
        seen.nonces.insert(nonce);
        seen.by_user.insert(user.clone(), held + 1);
        seen.by_expiry
            .entry(expires)
            .or_default()
            .push((nonce, user));
        Ok(())
    }

    /// The most nonces one user may hold at once.
    pub(crate) fn per_user(&self) -> usize {
        self.per_user
    }

    /// The most nonces held at once.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// The latest clock any caller brought (Unix seconds): the clock the set judges by.
    pub(crate) fn latest(&self) -> i64 {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).latest
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
            for (nonce, user) in entry.remove() {
                self.nonces.remove(&nonce);
                if let Some(held) = self.by_user.get_mut(&user) {
                    *held -= 1;
                    if *held == 0 {
                        self.by_user.remove(&user);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn user(name: &str) -> UserId {
        UserId::parse(name).unwrap()
    }

    /// A set whose share per user is its whole capacity, for the tests of everything else.
    fn set_of(capacity: usize) -> ReplaySet {
        ReplaySet::new(capacity, capacity)
    }

    #[test]
    fn a_nonce_is_refused_until_its_credential_expires() {
        let set = set_of(10);
        let alice = user("alice");
        assert_eq!(set.remember(1, &alice, 130, 100), Ok(()));
        assert_eq!(set.remember(1, &alice, 130, 129), Err(Refusal::Seen));
        assert_eq!(set.remember(1, &alice, 130, 130), Err(Refusal::Seen));
        // Past its expiry the freshness check refuses the credential; the set forgets it.
        assert_eq!(set.remember(2, &alice, 161, 131), Ok(()));
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn a_clock_read_before_a_later_one_cannot_find_its_nonce_forgotten() {
        let set = set_of(10);
        let alice = user("alice");
        assert_eq!(set.remember(1, &alice, 130, 100), Ok(()));
        // A request whose clock read 131 forgets nonce 1 (expired at 130)...
        assert_eq!(set.remember(2, &alice, 200, 131), Ok(()));
        // ...so a copy of 1 whose clock was read at 130 (it waited for the lock, or the wall
        // clock stepped back) is judged by 131 and refused, not remembered as new.
        assert_eq!(set.remember(1, &alice, 130, 130), Err(Refusal::Expired));
        // A clock that went back does not bring the set's back with it.
        assert_eq!(set.remember(3, &alice, 129, 50), Err(Refusal::Expired));
        assert_eq!(set.remember(3, &alice, 131, 50), Ok(()));
    }

    #[test]
    fn a_full_set_refuses_new_nonces_and_forgets_none_early() {
        let set = set_of(2);
        let alice = user("alice");
        set.remember(1, &alice, 130, 100).unwrap();
        set.remember(2, &user("bob"), 130, 100).unwrap();
        assert_eq!(set.remember(3, &alice, 130, 100), Err(Refusal::Full));
        assert_eq!(set.remember(1, &alice, 130, 100), Err(Refusal::Seen));
        assert_eq!(
            set.remember(3, &alice, 140, 131),
            Ok(()),
            "room again once 1 and 2 expired"
        );
    }

    #[test]
    fn one_user_past_its_share_is_refused_alone_until_its_nonces_expire() {
        let set = ReplaySet::new(10, 2);
        let (mallory, alice) = (user("mallory"), user("alice"));
        set.remember(1, &mallory, 130, 100).unwrap();
        set.remember(2, &mallory, 140, 100).unwrap();
        assert_eq!(
            set.remember(3, &mallory, 140, 100),
            Err(Refusal::UserShareFull)
        );
        // Everyone else still gets in, up to their own share.
        assert_eq!(set.remember(4, &alice, 140, 100), Ok(()));
        assert_eq!(set.remember(5, &alice, 140, 100), Ok(()));
        assert_eq!(
            set.remember(6, &alice, 140, 100),
            Err(Refusal::UserShareFull)
        );
        // A spent nonce is still a replay, whatever the share.
        assert_eq!(set.remember(1, &mallory, 130, 100), Err(Refusal::Seen));
        // One of mallory's nonces expired: one more fits, then the share is full again.
        assert_eq!(set.remember(3, &mallory, 150, 131), Ok(()));
        assert_eq!(
            set.remember(7, &mallory, 150, 131),
            Err(Refusal::UserShareFull)
        );
        // Once all of a user's nonces expired it holds nothing: no entry is left behind.
        set.remember(8, &user("carol"), 200, 160).unwrap();
        assert_eq!(set.inner.lock().unwrap().by_user.len(), 1);
    }

    #[test]
    fn the_share_is_at_least_one_and_at_most_the_capacity() {
        assert_eq!(ReplaySet::new(10, 0).per_user(), 1);
        assert_eq!(ReplaySet::new(10, 11).per_user(), 10);
    }

    proptest! {
        /// Against a model: a nonce is refused as seen exactly while an earlier acceptance of
        /// it has not expired, a user is refused while it holds its share, and the set never
        /// holds more than its capacity nor a user more than its share.
        #[test]
        fn behaves_like_the_model(
            ops in proptest::collection::vec((0u128..8, 0usize..3, 0i64..40, 0i64..5), 1..200)
        ) {
            let (capacity, per_user) = (5, 3);
            let set = ReplaySet::new(capacity, per_user);
            let users = [user("a"), user("b"), user("c")];
            let mut model: Vec<(u128, usize, i64)> = Vec::new();
            let mut now = 0;
            for (nonce, who, lifetime, step) in ops {
                now += step;
                model.retain(|&(_, _, expires)| expires >= now);
                let held = model.iter().filter(|&&(_, u, _)| u == who).count();
                let expected = if model.iter().any(|&(n, _, _)| n == nonce) {
                    Err(Refusal::Seen)
                } else if held >= per_user {
                    Err(Refusal::UserShareFull)
                } else if model.len() >= capacity {
                    Err(Refusal::Full)
                } else {
                    model.push((nonce, who, now + lifetime));
                    Ok(())
                };
                prop_assert_eq!(set.remember(nonce, &users[who], now + lifetime, now), expected);
                prop_assert!(set.len() <= capacity);
                let seen = set.inner.lock().unwrap();
                prop_assert!(seen.by_user.values().all(|&held| (1..=per_user).contains(&held)));
                prop_assert_eq!(seen.by_user.values().sum::<usize>(), seen.nonces.len());
                let listed: usize = seen.by_expiry.values().map(Vec::len).sum();
                prop_assert_eq!(listed, seen.nonces.len());
            }
        }
    }

    #[test]
    fn debug_shows_how_many_nonces_not_which_nor_whose() {
        let set = ReplaySet::new(4, 2);
        set.remember(0xfeed_beef, &user("alice"), 100, 10).unwrap();
        let shown = format!("{set:?}");
        assert_eq!(
            shown,
            "ReplaySet { capacity: 4, per_user: 2, remembered: 1, .. }"
        );
    }
}
