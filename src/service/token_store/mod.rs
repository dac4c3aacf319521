//! Every write of the service goes through the [`TokenStore`]: refresh-token writes are
//! committed in groups by one writer, other writes take turns with them. Why, and what each
//! step bought, is in `docs/design/token-store.md`.

use std::sync::Arc;

use sea_orm::{DatabaseConnection, DbBackend, DbErr, FromQueryResult};
use tokio::sync::{Semaphore, SemaphorePermit, mpsc, oneshot};
use uuid::Uuid;

mod decide;
mod group;
mod postgres;
mod sqlite;
mod statements;

use crate::{auth::tokens::TokenKind, error::Error};

/// Most writes committed together.
pub const MAX_BATCH: usize = 512;
/// Writes waiting for the writer before callers wait to enqueue.
const QUEUE: usize = 4096;

/// A refresh-token row to insert.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub token_hash: String,
    pub family_id: Uuid,
    pub customer_id: i32,
    pub company_user_id: Option<i32>,
    pub scopes: &'static str,
    pub client_id: String,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// A refresh token presented for rotation, with what a refresh needs of its customer and
/// of the company user the new access token will carry (for a company-user token its
/// membership if still usable, for a customer token the default one). No wide rows.
#[derive(Debug, Clone, FromQueryResult)]
pub struct Presented {
    pub id: i64,
    pub token_hash: String,
    pub family_id: Uuid,
    pub company_user_id: Option<i32>,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub rotated_into_id: Option<i64>,
    pub customer_id: i32,
    pub customer_reference: String,
    pub customer_active: bool,
    /// See `customer::Model::revoked_refresh_tokens_through`.
    pub revoked_refresh_tokens_through: Option<i64>,
    pub member: Option<Uuid>,
}

impl Presented {
    /// Whether a refresh at `now` may rotate it: not revoked (by itself or with all of its
    /// customer's tokens, see `Sessions::revoke_all`), not expired, its customer active,
    /// and a company-user token's membership still usable.
    pub fn rotatable(&self, now: i64) -> bool {
        let revoked_with_all = self.revoked_refresh_tokens_through.is_some_and(|id| self.id <= id);
        self.revoked_at.is_none()
            && !revoked_with_all
            && self.expires_at > now
            && self.customer_active
            && (self.company_user_id.is_none() || self.member.is_some())
    }

    /// The kind of token it is, by whether it was issued for a company user.
    pub fn kind(&self) -> TokenKind {
        match self.company_user_id {
            None => TokenKind::Customer,
            Some(_) => TokenKind::CompanyUser,
        }
    }
}

/// The successor of a presented token: its stored form and times (the rest is the
/// presented token's).
#[derive(Debug, Clone)]
pub struct Successor {
    pub token_hash: String,
    pub client_id: String,
    pub issued_at: i64,
    pub expires_at: i64,
}

impl Successor {
    fn row_after(&self, old: &Presented) -> NewToken {
        NewToken {
            token_hash: self.token_hash.clone(),
            family_id: old.family_id,
            customer_id: old.customer_id,
            company_user_id: old.company_user_id,
            scopes: old.kind().scope(),
            client_id: self.client_id.clone(),
            issued_at: self.issued_at,
            expires_at: self.expires_at,
        }
    }
}

/// What a refresh did.
#[derive(Debug)]
pub enum Refreshed {
    /// No token has that stored form.
    Unknown,
    /// The token may not be rotated ([`Presented::rotatable`]): nothing was written.
    Refused(Presented),
    /// Another refresh with the same token won: nothing was written.
    Lost,
    /// Rotated into the successor.
    Rotated(Presented),
}

/// One write of a refresh token.
#[derive(Debug)]
enum Write {
    /// Insert a token.
    Insert(NewToken),
    /// Insert a token of the company user `member`, if that membership is the token's
    /// customer's and usable (`membership::usable_ids`); the row's `company_user_id` is
    /// the membership's.
    ForMember { member: Uuid, new: NewToken },
    /// Rotate the token stored as `presented` into `next`, if it may be.
    Refresh { presented: String, next: Successor },
}

/// What a [`Write`] did.
#[derive(Debug)]
enum Written {
    /// The new token's id.
    Inserted(i64),
    /// The new token's id, or `None` when the membership is not usable.
    ForMember(Option<i64>),
    Refreshed(Refreshed),
}

type Reply = oneshot::Sender<Result<Written, Error>>;

/// Where writes go: see the module documentation.
#[derive(Debug, Clone)]
pub struct TokenStore {
    /// The connection other writes use: on a SQLite file a single connection of its own, on
    /// PostgreSQL the pool.
    writer: DatabaseConnection,
    /// The connection login counters are written on (`throttle`): on a SQLite file one of
    /// its own that commits without syncing the WAL (`synchronous = NORMAL`), elsewhere the
    /// writer's. See [`TokenStore::counters`].
    counters: DatabaseConnection,
    /// The group-commit queue (SQLite files and PostgreSQL).
    queue: Option<mpsc::Sender<(Write, Reply)>>,
    /// On a SQLite file: held by the group writer for each group, and by [`Self::writer`]'s
    /// callers for each of their writes.
    turn: Option<Arc<Semaphore>>,
}

/// [`TokenStore::writer`]'s connection, while it is the caller's turn to write.
pub struct WriterTurn<'a> {
    writer: &'a DatabaseConnection,
    _turn: Option<SemaphorePermit<'a>>,
}

impl std::ops::Deref for WriterTurn<'_> {
    type Target = DatabaseConnection;

    fn deref(&self) -> &DatabaseConnection {
        self.writer
    }
}

impl TokenStore {
    /// The store for `db`: on a SQLite file, opens the group writer's connection (see
    /// `sqlite`) and others for other writes; on PostgreSQL, uses the shared pool. Either way
    /// starts the group commits. An in-memory SQLite database (tests) is written directly.
    pub async fn open(db: &DatabaseConnection) -> Result<Self, StoreError> {
        let (sender, receiver) = mpsc::channel(QUEUE);
        if db.get_database_backend() == DbBackend::Postgres {
            tokio::spawn(postgres::group_commits(db.clone(), receiver));
            let counters = postgres::counters(db);
            return Ok(Self { writer: db.clone(), counters, queue: Some(sender), turn: None });
        }
        let Some(options) = sqlite::file_options(db) else {
            return Ok(Self { writer: db.clone(), counters: db.clone(), queue: None, turn: None });
        };
        let sqlite::Connections { writer, counters, turn } =
            sqlite::start(db, options, receiver).await?;
        Ok(Self { writer, counters, queue: Some(sender), turn: Some(turn) })
    }

    /// The connection for writes other than refresh tokens, once it is the caller's turn to
    /// write: on a SQLite file, one write (statement or transaction) at a time, between the
    /// groups of refresh tokens. Hold it for one write, not longer.
    pub async fn writer(&self) -> Result<WriterTurn<'_>, Error> {
        self.turn_on(&self.writer).await
    }

    /// `connection`, once it is the caller's turn to write (on a SQLite file).
    async fn turn_on<'a>(
        &'a self,
        connection: &'a DatabaseConnection,
    ) -> Result<WriterTurn<'a>, Error> {
        let turn = match &self.turn {
            Some(turn) => Some(turn.acquire().await.map_err(Error::internal)?),
            None => None,
        };
        Ok(WriterTurn { writer: connection, _turn: turn })
    }

    /// [`Self::writer`] for the login counters. On a SQLite file their commits do not wait
    /// for the WAL to reach the disk: a login writes its counters twice (before and after
    /// its password check), and with a sync each (~0.35 ms, more under load) the refresh-token
    /// groups waited behind them: company-user tokens beside a load of logins had a p99 of
    /// 60 ms instead of 6 ms. A power cut (not a crash: the WAL is written) can lose the last
    /// counts; the next synced commit, a group's, makes them durable too. On PostgreSQL the
    /// same: a pool of its own with `synchronous_commit = off` (a server crash, too, can lose
    /// the last fraction of a second of counts there).
    pub async fn counters(&self) -> Result<WriterTurn<'_>, Error> {
        self.turn_on(&self.counters).await
    }

    /// Stores a new token and gives its id.
    pub async fn insert(&self, new: NewToken) -> Result<i64, Error> {
        match self.submit(Write::Insert(new)).await? {
            Written::Inserted(id) => Ok(id),
            _ => Err(Error::internal("an insert was answered as another write")),
        }
    }

    /// Stores a new token of the company user `member` (its `company_user_id` is set here)
    /// if that membership is `new.customer_id`'s and usable, in the same transaction as the
    /// check: its id, or `None` when the membership is not usable.
    pub async fn insert_for_member(
        &self,
        member: Uuid,
        new: NewToken,
    ) -> Result<Option<i64>, Error> {
        match self.submit(Write::ForMember { member, new }).await? {
            Written::ForMember(id) => Ok(id),
            _ => Err(Error::internal("an insert for a member was answered as another write")),
        }
    }

    /// Refreshes with the token whose stored form is `presented`: reads it, and if it may be
    /// rotated, revokes it and stores `next` as its successor, atomically. Of concurrent
    /// refreshes with one token at most one rotates it (across instances too).
    pub async fn refresh(&self, presented: String, next: Successor) -> Result<Refreshed, Error> {
        match self.submit(Write::Refresh { presented, next }).await? {
            Written::Refreshed(refreshed) => Ok(refreshed),
            _ => Err(Error::internal("a refresh was answered as another write")),
        }
    }

    async fn submit(&self, write: Write) -> Result<Written, Error> {
        let Some(queue) = &self.queue else {
            return Ok(group::apply_alone(&self.writer, &write).await?);
        };
        let (reply, answer) = oneshot::channel();
        let gone = || Error::unavailable("the database writer has stopped");
        queue.send((write, reply)).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

/// What went wrong in the token store, beyond a statement the database refused.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Db(#[from] DbErr),
    /// A rotation's claim found its token no longer live although the group holds it.
    #[error("{claimed} of {expected} tokens claimed")]
    Unclaimed { claimed: u64, expected: usize },
    /// The database answered an insert without the id of one of its rows.
    #[error("a new token's id was not returned")]
    NotInserted,
    /// A group of one write gave no result.
    #[error("a write gave no result")]
    NoResult,
    /// A value of a type no column of ours has.
    #[error("the SQLite writer cannot bind {0}")]
    Unbindable(String),
    #[error("cannot start the SQLite writer thread")]
    WriterThread(#[source] std::io::Error),
}

impl StoreError {
    /// Whether the database cannot serve us now (see `crate::error::is_unavailable`).
    fn is_unavailable(&self) -> bool {
        matches!(self, Self::Db(err) if crate::error::is_unavailable(err))
    }
}

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Db(err) => err.into(),
            other => Error::internal(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_may_be_rotated_only_while_live_unexpired_and_its_membership_usable() {
        let token = Presented {
            id: 10,
            token_hash: "hash".into(),
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
        };
        assert!(token.rotatable(99), "a customer token needs no membership");
        assert!(!token.rotatable(100), "expired");
        assert!(!Presented { revoked_at: Some(50), ..token.clone() }.rotatable(99));
        assert!(!Presented { customer_active: false, ..token.clone() }.rotatable(99));
        let through = |id| Presented { revoked_refresh_tokens_through: Some(id), ..token.clone() };
        assert!(!through(10).rotatable(99), "revoked with all of its customer's tokens");
        assert!(through(9).rotatable(99), "issued after a revoke-all");
        let company_user = Presented { company_user_id: Some(3), ..token.clone() };
        assert!(!company_user.rotatable(99), "its membership is no longer usable");
        let member = Some(Uuid::nil());
        assert!(Presented { member, ..company_user.clone() }.rotatable(99));
        let successor = Successor {
            token_hash: "next".into(),
            client_id: "frontend".into(),
            issued_at: 99,
            expires_at: 199,
        };
        let row = successor.row_after(&company_user);
        assert_eq!(
            (row.customer_id, row.company_user_id, row.scopes),
            (1, Some(3), "company_user")
        );
        assert_eq!(successor.row_after(&token).scopes, "customer");
    }
}
