//! A bounded cache of verified access tokens, so that a client which sends the same token
//! again skips the signature check. Keyed by a BLAKE2b-256 of the whole token, answering only
//! until the token's `exp`, at most `capacity` entries ([`Generations`]); measured in
//! `docs/design/hot-paths.md` §2.

use std::sync::Mutex;

use blake2::{Blake2b, Digest, digest::consts::U32};

use super::tokens::Principal;
use crate::generations::Generations;

type Key = [u8; 32];

#[derive(Debug, Clone)]
struct Entry {
    principal: Principal,
    /// The first second at which the token is refused.
    refused_from: i64,
}

/// See the module documentation.
#[derive(Debug)]
pub struct VerifiedTokens {
    inner: Mutex<Generations<Key, Entry>>,
}

fn key(token: &str) -> Key {
    Blake2b::<U32>::digest(token.as_bytes()).into()
}

impl VerifiedTokens {
    /// A cache of at most `capacity` tokens (0: no caching).
    pub fn new(capacity: usize) -> Self {
        Self { inner: Mutex::new(Generations::new(capacity)) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generations<Key, Entry>> {
        // The maps stay consistent even if a holder panicked: every change is one call.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whom `token` speaks for, if it was verified before and is still valid at `now`.
    pub fn get(&self, token: &str, now: i64) -> Option<Principal> {
        let key = key(token);
        let mut maps = self.lock();
        let entry = maps.get(key)?;
        if now >= entry.refused_from {
            maps.remove(&key);
            return None;
        }
        Some(entry.principal)
    }

    /// Remembers that `token` verified as `principal` and is refused from `refused_from`.
    pub fn insert(&self, token: &str, principal: Principal, refused_from: i64) {
        let key = key(token);
        self.lock().insert(key, Entry { principal, refused_from });
    }

    /// Tokens held now (for tests and figures).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no token is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::tokens::{Identity, TokenKind};

    fn identity(id: i32) -> Principal {
        Principal::Customer(Identity {
            customer_id: id,
            customer_reference: format!("DE--{id}"),
            company_user: None,
            kind: TokenKind::Customer,
        })
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
    fn capacity_zero_caches_nothing() {
        let cache = VerifiedTokens::new(0);
        cache.insert("token", identity(1), 100);
        assert_eq!(cache.get("token", 0), None);
        assert!(cache.is_empty());
    }
}
