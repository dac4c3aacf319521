//! A bound on the sessions (refresh-token families) of one customer (`docs/security.md` §6):
//! any valid access token can start one with `POST /company-user-access-tokens`, and each
//! stores refresh tokens that live for the refresh-token lifetime. A customer keeps the
//! `--max-sessions-per-customer` sessions started last; starting one more revokes the oldest.
//!
//! Kept in memory: the tokens are not indexed by customer, on purpose (an index keyed by
//! customer would add a random page to every token write, which is what bounds the token
//! store), so the sessions a customer started are remembered as they start. Each instance
//! bounds the sessions started through it, since it started; a restart forgets.

use std::{
    collections::VecDeque,
    sync::{Mutex, PoisonError},
};

use crate::generations::Generations;

/// Customers whose sessions are remembered; past that the least recently active are
/// forgotten (their older sessions are then no longer counted).
const CUSTOMERS: usize = 50_000;

pub struct SessionCap {
    cap: usize,
    /// Per customer, the first token id of each session started, oldest first.
    started: Mutex<Generations<i32, VecDeque<i64>>>,
}

impl SessionCap {
    /// At most `cap` sessions per customer; 0: no bound.
    pub fn new(cap: usize) -> Self {
        let customers = if cap == 0 { 0 } else { CUSTOMERS };
        Self { cap, started: Mutex::new(Generations::new(customers)) }
    }

    /// Records that `customer` started a session with the token `first`: the first token of
    /// the session to revoke, when the customer now has more than the cap.
    pub fn started(&self, customer: i32, first: i64) -> Option<i64> {
        if self.cap == 0 {
            return None;
        }
        let mut started = self.started.lock().unwrap_or_else(PoisonError::into_inner);
        let mut sessions = started.get(customer).unwrap_or_default();
        sessions.push_back(first);
        let oldest = (sessions.len() > self.cap).then(|| sessions.pop_front()).flatten();
        started.insert(customer, sessions);
        oldest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_beyond_the_cap_names_the_oldest_of_its_customer() {
        let cap = SessionCap::new(2);
        assert_eq!(cap.started(1, 10), None);
        assert_eq!(cap.started(2, 11), None);
        assert_eq!(cap.started(1, 12), None);
        assert_eq!(cap.started(1, 13), Some(10));
        assert_eq!(cap.started(1, 14), Some(12));
        assert_eq!(cap.started(2, 15), None);
        assert_eq!(SessionCap::new(0).started(1, 1), None);
    }
}
