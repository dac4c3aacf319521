//! What a group of writes does, given what the group read: pure, no database. The group's
//! statements (`group::apply_group`) read the presented tokens, the memberships and which
//! tokens are live, hand them to [`decide`], insert [`Decision::rows`], claim
//! [`Decision::claims`] and answer each caller with [`Decision::results`].

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use super::{NewToken, Presented, Refreshed, StoreError, Write, Written};
use crate::service::membership::Usable;

/// What a group read before deciding.
#[derive(Debug, Default)]
pub(super) struct Read {
    /// The presented tokens that exist, by their stored form.
    pub found: HashMap<String, Presented>,
    /// The usable memberships among those asked for, by uuid.
    pub usable: HashMap<Uuid, Usable>,
    /// The ids of the found tokens that are live (not revoked). On PostgreSQL they are
    /// locked until the group commits.
    pub live: HashSet<i64>,
}

/// A rotation's claim: revoke `old` at `now` and link it to its successor `new`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Claim {
    pub old: i64,
    pub new: i64,
    pub now: i64,
}

/// What a write of the group does, once what decides it is read.
#[derive(Debug)]
enum Plan<'a> {
    /// Insert this token.
    Insert(&'a NewToken),
    /// Insert this token (of a usable membership).
    ForMember(NewToken),
    /// Revoke the presented token and insert its successor.
    Rotate(&'a Presented, NewToken),
    /// Nothing to write: this is the answer.
    Done(Written),
}

/// What a group does, write by write, in the order of its writes.
#[derive(Debug)]
pub(super) struct Decision<'a> {
    plans: Vec<Plan<'a>>,
}

/// Decides each of `writes` from what the group read:
/// - an insert is inserted;
/// - a token for a member is inserted if the membership is usable and the token's
///   customer's, with the membership's id; otherwise it is answered "not usable";
/// - a refresh of an unknown token is `Unknown`; of a token that may not be rotated
///   ([`Presented::rotatable`]) `Refused`; the first refresh of a live token rotates it, and
///   any other refresh of it (later in the group, or of a token no longer live) `Lost`.
///
/// A rotation takes its token out of `read.live`.
pub(super) fn decide<'a>(writes: &[&'a Write], read: &'a mut Read) -> Decision<'a> {
    let Read { found, usable, live } = read;
    let found: &'a HashMap<String, Presented> = found;
    let plans = writes
        .iter()
        .map(|write| match write {
            Write::Insert(new) => Plan::Insert(new),
            Write::ForMember { member, new } => match usable.get(member) {
                Some(usable) if usable.customer_id == new.customer_id => {
                    Plan::ForMember(NewToken { company_user_id: Some(usable.id), ..new.clone() })
                }
                _ => Plan::Done(Written::ForMember(None)),
            },
            Write::Refresh { presented, next } => match found.get(presented) {
                None => Plan::Done(Written::Refreshed(Refreshed::Unknown)),
                Some(old) if !old.rotatable(next.issued_at) => {
                    Plan::Done(Written::Refreshed(Refreshed::Refused(old.clone())))
                }
                Some(old) if live.remove(&old.id) => Plan::Rotate(old, next.row_after(old)),
                Some(_) => Plan::Done(Written::Refreshed(Refreshed::Lost)),
            },
        })
        .collect();
    Decision { plans }
}

impl Decision<'_> {
    /// Every token to insert, in the order of the writes.
    pub fn rows(&self) -> Vec<&NewToken> {
        self.plans
            .iter()
            .filter_map(|plan| match plan {
                Plan::Insert(new) => Some(*new),
                Plan::ForMember(new) | Plan::Rotate(_, new) => Some(new),
                Plan::Done(_) => None,
            })
            .collect()
    }

    /// The claims of the rotations, given the ids the inserted [`Self::rows`] got (by their
    /// stored form).
    pub fn claims(&self, ids: &HashMap<String, i64>) -> Result<Vec<Claim>, StoreError> {
        self.plans
            .iter()
            .filter_map(|plan| match plan {
                Plan::Rotate(old, new) => Some((old.id, new)),
                _ => None,
            })
            .map(|(old, new)| Ok(Claim { old, new: id_of(ids, new)?, now: new.issued_at }))
            .collect()
    }

    /// Each write's answer, once its rows are inserted (with `ids`) and its claims made.
    pub fn results(self, ids: &HashMap<String, i64>) -> Result<Vec<Written>, StoreError> {
        self.plans
            .into_iter()
            .map(|plan| match plan {
                Plan::Insert(new) => id_of(ids, new).map(Written::Inserted),
                Plan::ForMember(new) => Ok(Written::ForMember(Some(id_of(ids, &new)?))),
                Plan::Rotate(old, _) => Ok(Written::Refreshed(Refreshed::Rotated(old.clone()))),
                Plan::Done(written) => Ok(written),
            })
            .collect()
    }
}

fn id_of(ids: &HashMap<String, i64>, new: &NewToken) -> Result<i64, StoreError> {
    ids.get(new.token_hash.as_str()).copied().ok_or(StoreError::NotInserted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::token_store::Successor;

    fn new(hash: &str, customer_id: i32) -> NewToken {
        NewToken {
            token_hash: hash.into(),
            family_id: Uuid::nil(),
            customer_id,
            company_user_id: None,
            scopes: "customer",
            client_id: "frontend".into(),
            issued_at: 50,
            expires_at: 150,
        }
    }

    fn presented(id: i64, hash: &str) -> Presented {
        Presented {
            id,
            token_hash: hash.into(),
            family_id: Uuid::nil(),
            company_user_id: None,
            expires_at: 100,
            revoked_at: None,
            rotated_into_id: None,
            customer_id: 1,
            customer_reference: "DE--1".into(),
            customer_active: true,
            revoked_refresh_tokens_through: None,
            member: None,
        }
    }

    fn refresh(presented: &str, next: &str) -> Write {
        let next = Successor {
            token_hash: next.into(),
            client_id: "frontend".into(),
            issued_at: 50,
            expires_at: 150,
        };
        Write::Refresh { presented: presented.into(), next }
    }

    fn read(found: &[Presented], live: &[i64]) -> Read {
        Read {
            found: found.iter().map(|t| (t.token_hash.clone(), t.clone())).collect(),
            usable: HashMap::new(),
            live: live.iter().copied().collect(),
        }
    }

    fn ids(rows: &[&NewToken]) -> HashMap<String, i64> {
        rows.iter().zip(100..).map(|(row, id)| (row.token_hash.clone(), id)).collect()
    }

    /// The answers as short words, in order.
    fn answers(written: &[Written]) -> Vec<String> {
        written
            .iter()
            .map(|w| match w {
                Written::Inserted(id) => format!("inserted {id}"),
                Written::ForMember(Some(id)) => format!("member {id}"),
                Written::ForMember(None) => "not usable".into(),
                Written::Refreshed(Refreshed::Unknown) => "unknown".into(),
                Written::Refreshed(Refreshed::Refused(t)) => format!("refused {}", t.id),
                Written::Refreshed(Refreshed::Lost) => "lost".into(),
                Written::Refreshed(Refreshed::Rotated(t)) => format!("rotated {}", t.id),
            })
            .collect()
    }

    #[test]
    fn of_refreshes_of_one_token_in_a_group_the_first_rotates_and_the_others_lose() {
        let writes = [refresh("a", "a2"), refresh("a", "a3"), refresh("a", "a4")];
        let writes: Vec<&Write> = writes.iter().collect();
        let mut read = read(&[presented(7, "a")], &[7]);
        let decision = decide(&writes, &mut read);
        let rows = decision.rows();
        assert_eq!(rows.iter().map(|r| r.token_hash.as_str()).collect::<Vec<_>>(), ["a2"]);
        let ids = ids(&rows);
        assert_eq!(decision.claims(&ids).unwrap(), [Claim { old: 7, new: 100, now: 50 }]);
        let written = decision.results(&ids).unwrap();
        assert_eq!(answers(&written), ["rotated 7", "lost", "lost"]);
    }

    #[test]
    fn unknown_refused_and_no_longer_live_tokens_write_nothing() {
        let expired = Presented { expires_at: 40, ..presented(2, "expired") };
        // Rotatable, but another instance revoked it between the read and the lock.
        let taken = presented(3, "taken");
        let writes = [refresh("nobody", "n2"), refresh("expired", "e2"), refresh("taken", "t2")];
        let writes: Vec<&Write> = writes.iter().collect();
        let mut read = read(&[expired, taken], &[2]);
        let decision = decide(&writes, &mut read);
        assert!(decision.rows().is_empty());
        assert!(decision.claims(&HashMap::new()).unwrap().is_empty());
        let written = decision.results(&HashMap::new()).unwrap();
        assert_eq!(answers(&written), ["unknown", "refused 2", "lost"]);
    }

    #[test]
    fn a_member_token_is_written_only_for_a_usable_membership_of_its_customer() {
        let (mine, theirs, gone) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let mut read = read(&[], &[]);
        read.usable.insert(mine, Usable { id: 11, customer_id: 1 });
        read.usable.insert(theirs, Usable { id: 12, customer_id: 2 });
        let writes = [
            Write::ForMember { member: mine, new: new("m", 1) },
            Write::ForMember { member: theirs, new: new("t", 1) },
            Write::ForMember { member: gone, new: new("g", 1) },
            Write::Insert(new("plain", 1)),
        ];
        let writes: Vec<&Write> = writes.iter().collect();
        let decision = decide(&writes, &mut read);
        let rows = decision.rows();
        let stored: Vec<_> =
            rows.iter().map(|r| (r.token_hash.as_str(), r.company_user_id)).collect();
        assert_eq!(stored, [("m", Some(11)), ("plain", None)]);
        let ids = ids(&rows);
        let written = decision.results(&ids).unwrap();
        assert_eq!(answers(&written), ["member 100", "not usable", "not usable", "inserted 101"]);
    }

    #[test]
    fn a_row_the_database_gave_no_id_fails_the_group() {
        let writes = [refresh("a", "a2"), Write::Insert(new("b", 1))];
        let writes: Vec<&Write> = writes.iter().collect();
        let mut read = read(&[presented(7, "a")], &[7]);
        let decision = decide(&writes, &mut read);
        assert!(matches!(decision.claims(&HashMap::new()), Err(StoreError::NotInserted)));
        assert!(matches!(decision.results(&HashMap::new()), Err(StoreError::NotInserted)));
    }
}
