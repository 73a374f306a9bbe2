//! The revoked sessions and users the gateway knows of, in memory: what every request is
//! checked against, without a network round trip. Knows nothing about where revocations come
//! from (`feed.rs`).
//!
//! A session revocation refuses every token naming that session (`sid`). A user revocation
//! refuses every token of that user (`sub`) issued before it, by a clock that may be up to
//! `skew` seconds ahead (`iat <= at + skew`; a token without `iat` is refused too). An entry
//! is kept for `keep_for` seconds after its revocation, the longest a token issued before it
//! can still be accepted (`RevocationConfig::remembered_for`), and then forgotten: the gateway
//! refuses tokens that would outlive that (`Revocations::check`).

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

/// What a revocation ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// One session: every token whose `sid` names it.
    Session,
    /// A whole user: every token of that `sub` issued at or before the revocation.
    User,
}

impl Kind {
    /// The kind as the feed writes it (`session`, `user`).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "session" => Some(Self::Session),
            "user" => Some(Self::User),
            _ => None,
        }
    }

    /// The kind as the table and the feed write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::User => "user",
        }
    }
}

/// The revocations still relevant, each with the second it happened (Unix seconds).
/// Each id is stored once and shared by the lookup map and the expiry index (`Arc<str>`):
/// about 100 bytes an entry for Better Auth's 32-character ids.
#[derive(Debug, Default)]
pub struct RevocationSet {
    sessions: HashMap<Arc<str>, i64>,
    users: HashMap<Arc<str>, i64>,
    /// The same entries by the second after which they may be forgotten.
    by_expiry: BTreeMap<i64, Vec<(Kind, Arc<str>)>>,
    keep_for: i64,
    skew: i64,
}

impl RevocationSet {
    /// An empty set whose entries are kept `keep_for` seconds after their revocation, and
    /// whose user revocations also refuse tokens issued up to `skew` seconds after them (an
    /// issuer's clock ahead of the database's stamps a token minted before a ban later than
    /// the ban).
    pub fn new(keep_for: i64, skew: i64) -> Self {
        Self {
            keep_for,
            skew,
            ..Self::default()
        }
    }

    /// Records that `subject` (a session or user id) was revoked at `at`; a repeated
    /// revocation keeps the later time, which refuses more and is kept longer.
    /// Returns whether anything changed.
    pub fn revoke(&mut self, kind: Kind, subject: &str, at: i64) -> bool {
        let map = match kind {
            Kind::Session => &mut self.sessions,
            Kind::User => &mut self.users,
        };
        let subject = match map.get_key_value(subject) {
            Some((_, &known)) if known >= at => return false,
            Some((subject, _)) => subject.clone(),
            None => subject.into(),
        };
        map.insert(subject.clone(), at);
        self.by_expiry
            .entry(at.saturating_add(self.keep_for))
            .or_default()
            .push((kind, subject));
        true
    }

    /// Whether a token of user `sub`, for session `sid`, issued at `iat`, is revoked.
    pub fn is_revoked(&self, sid: Option<&str>, sub: &str, iat: Option<i64>) -> bool {
        if sid.is_some_and(|sid| self.sessions.contains_key(sid)) {
            return true;
        }
        match self.users.get(sub) {
            None => false,
            // Fail closed: without `iat` nothing says the token came after the revocation.
            Some(&at) => iat.is_none_or(|iat| iat <= at.saturating_add(self.skew)),
        }
    }

    /// Forgets every entry whose window ended before `now`.
    pub fn expire(&mut self, now: i64) {
        while let Some(entry) = self.by_expiry.first_entry() {
            if *entry.key() >= now {
                break;
            }
            let expires = *entry.key();
            for (kind, subject) in entry.remove() {
                let map = match kind {
                    Kind::Session => &mut self.sessions,
                    Kind::User => &mut self.users,
                };
                // A later revocation of the same subject moved its expiry on: keep it.
                if map
                    .get(&subject)
                    .is_some_and(|at| at.saturating_add(self.keep_for) <= expires)
                {
                    map.remove(&subject);
                }
            }
        }
    }

    /// Entries held now (sessions and users).
    pub fn len(&self) -> usize {
        self.sessions.len() + self.users.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A 900 s token lifetime with a 30 s leeway: a 930 s window, kept 990 s.
    const KEEP: i64 = 990;
    const SKEW: i64 = 30;

    #[test]
    fn a_revoked_session_refuses_its_tokens_and_no_others() {
        let mut set = RevocationSet::new(KEEP, SKEW);
        assert!(set.revoke(Kind::Session, "s1", 1_000));
        assert!(set.is_revoked(Some("s1"), "alice", Some(990)));
        assert!(
            set.is_revoked(Some("s1"), "alice", Some(1_010)),
            "whatever its iat"
        );
        assert!(
            !set.is_revoked(Some("s2"), "alice", Some(990)),
            "her other session"
        );
        assert!(!set.is_revoked(None, "alice", Some(990)));
    }

    #[test]
    fn a_user_revocation_refuses_tokens_issued_before_it_by_a_clock_up_to_the_skew_ahead() {
        let mut set = RevocationSet::new(KEEP, SKEW);
        set.revoke(Kind::User, "alice", 1_000);
        assert!(set.is_revoked(Some("s1"), "alice", Some(999)));
        assert!(
            set.is_revoked(None, "alice", Some(1_000)),
            "the same second"
        );
        // An issuer whose clock runs ahead of the database's stamps a token minted just
        // before the ban with a later `iat`: it was served for its whole life before.
        assert!(
            set.is_revoked(None, "alice", Some(1_000 + SKEW)),
            "minted before the ban by a clock the skew ahead"
        );
        assert!(
            !set.is_revoked(None, "alice", Some(1_001 + SKEW)),
            "signed in again after"
        );
        assert!(set.is_revoked(None, "alice", None), "no iat: fail closed");
        assert!(!set.is_revoked(None, "bob", Some(999)));
    }

    #[test]
    fn entries_are_forgotten_once_no_token_they_cover_can_be_valid() {
        let mut set = RevocationSet::new(KEEP, SKEW);
        set.revoke(Kind::Session, "s1", 1_000);
        set.revoke(Kind::User, "alice", 1_100);
        set.expire(1_000 + KEEP);
        assert_eq!(set.len(), 2, "kept through the last second of its window");
        set.expire(1_000 + KEEP + 1);
        assert!(!set.is_revoked(Some("s1"), "bob", Some(999)));
        assert!(set.is_revoked(None, "alice", Some(1_050)));
        set.expire(1_100 + KEEP + 1);
        assert!(set.is_empty());
    }

    #[test]
    fn a_later_revocation_of_the_same_user_moves_its_time_and_expiry_on() {
        let mut set = RevocationSet::new(KEEP, SKEW);
        set.revoke(Kind::User, "alice", 1_000);
        assert!(set.revoke(Kind::User, "alice", 1_500));
        assert!(
            !set.revoke(Kind::User, "alice", 1_200),
            "an older one changes nothing"
        );
        assert!(set.is_revoked(None, "alice", Some(1_400)));
        set.expire(1_000 + KEEP + 1);
        assert!(
            set.is_revoked(None, "alice", Some(1_400)),
            "the later one still holds"
        );
        set.expire(1_500 + KEEP + 1);
        assert!(set.is_empty());
    }

    proptest! {
        /// Against a model that keeps everything and judges by time: the set answers the
        /// same for every token whose revocation window is still open, and holds no entry
        /// whose window has closed.
        #[test]
        fn behaves_like_the_model(
            events in proptest::collection::vec((any::<bool>(), 0u8..6, 0i64..3_000), 0..60),
            probes in proptest::collection::vec((any::<bool>(), 0u8..6, 0i64..3_000), 1..40),
            now in 0i64..4_000,
        ) {
            let name = |n: u8| format!("id{n}");
            let mut set = RevocationSet::new(KEEP, SKEW);
            let mut model: Vec<(Kind, String, i64)> = Vec::new();
            for (session, n, at) in events {
                let kind = if session { Kind::Session } else { Kind::User };
                set.revoke(kind, &name(n), at);
                model.push((kind, name(n), at));
            }
            set.expire(now);
            let live: Vec<_> = model.iter().filter(|(_, _, at)| at + KEEP >= now).collect();
            for (with_sid, n, iat) in probes {
                let sid = with_sid.then(|| name(n));
                let sub = name(n.wrapping_add(1) % 6);
                let expected = live.iter().any(|(kind, subject, at)| match kind {
                    Kind::Session => sid.as_deref() == Some(subject.as_str()),
                    Kind::User => *subject == sub && iat <= *at + SKEW,
                });
                prop_assert_eq!(set.is_revoked(sid.as_deref(), &sub, Some(iat)), expected);
            }
            let distinct: std::collections::HashSet<_> =
                live.iter().map(|(kind, subject, _)| (*kind, subject.clone())).collect();
            prop_assert_eq!(set.len(), distinct.len());
        }
    }
}
