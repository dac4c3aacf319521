//! A bounded cache of verified access tokens, so that a client which sends the same token
//! again skips the signature check (an ES256 verify is most of a request's CPU time).
//!
//! - Keyed by the SHA-256 of the whole token: a changed byte anywhere is another key, and
//!   the cache never holds the token itself.
//! - An entry answers only while the token itself would: until its `exp` (plus the same
//!   leeway as a full verification), checked against the caller's clock on every hit.
//! - Bounded: two generations of at most half the capacity each. Inserting into a full
//!   young generation drops the old one and ages the young; a hit in the old generation
//!   moves the entry back to the young. So the tokens in use stay, and memory stays under
//!   `capacity` entries (~200 bytes each).

use std::{collections::HashMap, sync::Mutex};

use aws_lc_rs::digest;

use super::tokens::Identity;

type Key = [u8; 32];

#[derive(Debug, Clone)]
struct Entry {
    identity: Identity,
    /// The first second at which the token is refused.
    refused_from: i64,
}

#[derive(Debug, Default)]
struct Generations {
    young: HashMap<Key, Entry>,
    old: HashMap<Key, Entry>,
}

/// See the module documentation.
#[derive(Debug)]
pub struct VerifiedTokens {
    /// Entries per generation; 0 disables the cache.
    generation: usize,
    inner: Mutex<Generations>,
}

fn key(token: &str) -> Key {
    let mut key = [0u8; 32];
    key.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
    key
}

impl VerifiedTokens {
    /// A cache of at most `capacity` tokens (0: no caching).
    pub fn new(capacity: usize) -> Self {
        Self { generation: capacity / 2, inner: Mutex::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generations> {
        // The maps stay consistent even if a holder panicked: every change is one call.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The identity of `token` if it was verified before and is still valid at `now`.
    pub fn get(&self, token: &str, now: i64) -> Option<Identity> {
        if self.generation == 0 {
            return None;
        }
        let key = key(token);
        let mut maps = self.lock();
        let entry = match maps.young.get(&key) {
            Some(entry) => entry.clone(),
            None => {
                let entry = maps.old.remove(&key)?;
                self.insert_locked(&mut maps, key, entry.clone());
                entry
            }
        };
        if now >= entry.refused_from {
            maps.young.remove(&key);
            return None;
        }
        Some(entry.identity)
    }

    /// Remembers that `token` verified as `identity` and is refused from `refused_from`.
    pub fn insert(&self, token: &str, identity: Identity, refused_from: i64) {
        if self.generation == 0 {
            return;
        }
        let key = key(token);
        let mut maps = self.lock();
        self.insert_locked(&mut maps, key, Entry { identity, refused_from });
    }

    fn insert_locked(&self, maps: &mut Generations, key: Key, entry: Entry) {
        if maps.young.len() >= self.generation && !maps.young.contains_key(&key) {
            maps.old = std::mem::take(&mut maps.young);
        }
        maps.young.insert(key, entry);
    }

    /// Tokens held now (for tests and figures).
    pub fn len(&self) -> usize {
        let maps = self.lock();
        maps.young.len() + maps.old.len()
    }

    /// Whether no token is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::tokens::TokenKind;

    fn identity(id: i32) -> Identity {
        Identity {
            customer_id: id,
            customer_reference: format!("DE--{id}"),
            company_user: None,
            kind: TokenKind::Customer,
        }
    }

    #[test]
    fn an_entry_answers_until_the_token_is_refused() {
        let cache = VerifiedTokens::new(8);
        cache.insert("token", identity(1), 100);
        assert_eq!(cache.get("token", 99), Some(identity(1)));
        assert_eq!(cache.get("token", 100), None);
        assert_eq!(cache.get("token", 99), None, "an expired entry is dropped");
    }

    #[test]
    fn only_the_exact_token_hits() {
        let cache = VerifiedTokens::new(8);
        cache.insert("token", identity(1), 100);
        assert_eq!(cache.get("tokeN", 0), None);
        assert_eq!(cache.get("token ", 0), None);
    }

    #[test]
    fn the_cache_stays_bounded_and_keeps_what_is_used() {
        let cache = VerifiedTokens::new(10);
        cache.insert("kept", identity(0), 100);
        for i in 1..1_000 {
            cache.insert(&format!("t{i}"), identity(i), 100);
            // A token in use survives every turn of the generations.
            assert_eq!(cache.get("kept", 0), Some(identity(0)));
            assert!(cache.len() <= 10, "{} entries", cache.len());
        }
        assert_eq!(cache.get("t1", 0), None, "an unused old token was dropped");
    }

    #[test]
    fn capacity_zero_caches_nothing() {
        let cache = VerifiedTokens::new(0);
        cache.insert("token", identity(1), 100);
        assert_eq!(cache.get("token", 0), None);
        assert!(cache.is_empty());
    }
}
