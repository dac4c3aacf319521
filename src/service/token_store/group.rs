//! A group's reads and writes (`docs/design/token-store.md` §2), the same on both backends:
//! the statements of `statements`, decided by `decide`, run through a [`GroupDb`] (sea-orm,
//! or SQLite's writer connection itself).

use std::collections::{HashMap, HashSet};

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, FromQueryResult, Statement,
    TransactionTrait, Value,
};
use uuid::Uuid;

use super::{
    Presented, Reply, StoreError, Write, Written,
    decide::{self, Read},
    statements::{CLAIM_MANY, INSERT_MANY, LIVE, PRESENTED, claim_many_values, token_values},
};
use crate::{
    error::Error,
    service::{
        membership::{self, Usable},
        sql::SizedSql,
    },
};

/// Applies a group of writes with multi-row statements: each write's result, or the first
/// error (the caller rolls the group back).
pub(super) async fn apply_group(
    db: &impl GroupDb,
    writes: &[&Write],
) -> Result<Vec<Written>, StoreError> {
    let backend = db.backend();
    let mut read = Read::default();
    let hashes = distinct(writes.iter().filter_map(|w| match w {
        Write::Refresh { presented, .. } => Some(presented.as_str()),
        Write::Insert(_) | Write::ForMember { .. } => None,
    }));
    for chunk in SizedSql::split(&hashes) {
        let stmt = PRESENTED.bind(backend, chunk.len(), chunk.iter().map(|h| Value::from(*h)));
        let found = db.presented(stmt).await?;
        read.found.extend(found.into_iter().map(|t| (t.token_hash.clone(), t)));
    }
    let members = distinct(writes.iter().filter_map(|w| match w {
        Write::ForMember { member, .. } => Some(*member),
        _ => None,
    }));
    for chunk in SizedSql::split(&members) {
        read.usable.extend(db.usable(membership::usable_ids_statement(backend, chunk)).await?);
    }
    // Which of them are live. On SQLite what was just read: nothing else writes until the
    // commit. On PostgreSQL they are read again, locked (see `statements::live_query`).
    read.live = read.found.values().filter(|t| t.revoked_at.is_none()).map(|t| t.id).collect();
    if backend == DbBackend::Postgres {
        let ids: Vec<i64> = read.live.drain().collect();
        for chunk in SizedSql::split(&ids) {
            let stmt = LIVE.bind(backend, chunk.len(), chunk.iter().map(|id| Value::from(*id)));
            read.live.extend(db.ids(stmt).await?);
        }
    }
    let decision = decide::decide(writes, &mut read);
    let rows = decision.rows();
    let mut ids: HashMap<String, i64> = HashMap::with_capacity(rows.len());
    for chunk in SizedSql::split(&rows) {
        let values = chunk.iter().flat_map(|new| token_values(new));
        let stmt = INSERT_MANY.bind(backend, chunk.len(), values);
        ids.extend(db.inserted(stmt).await?.into_iter().map(|(id, hash)| (hash, id)));
    }
    let claims = decision.claims(&ids)?;
    for chunk in SizedSql::split(&claims) {
        let stmt = CLAIM_MANY.bind(backend, chunk.len(), claim_many_values(chunk));
        let claimed = db.execute(stmt).await?;
        if claimed != chunk.len() as u64 {
            // Cannot happen: nothing else writes them until the commit (on SQLite there is no
            // other writer, PostgreSQL holds their locks); never commit a successor beside a
            // live token.
            return Err(StoreError::Unclaimed { claimed, expected: chunk.len() });
        }
    }
    decision.results(&ids)
}

/// [`apply_group`] for a single write.
pub(super) async fn apply_one(db: &impl GroupDb, write: &Write) -> Result<Written, StoreError> {
    apply_group(db, &[write]).await?.pop().ok_or(StoreError::NoResult)
}

/// Applies one write in a transaction of its own: on an in-memory SQLite database, and on
/// PostgreSQL for the writes of a group that failed.
pub(super) async fn apply_alone(
    db: &DatabaseConnection,
    write: &Write,
) -> Result<Written, StoreError> {
    let txn = db.begin().await?;
    let written = apply_one(&Orm(&txn), write).await?;
    txn.commit().await?;
    Ok(written)
}

/// Each of `items` once, in no set order (one row per key in a multi-row read).
fn distinct<T: std::hash::Hash + Eq>(items: impl Iterator<Item = T>) -> Vec<T> {
    items.collect::<HashSet<_>>().into_iter().collect()
}

/// The reads and writes of a group, one statement each (at most [`SizedSql::MAX`] rows),
/// with its rows read as each needs: through sea-orm ([`Orm`]: PostgreSQL, an in-memory
/// SQLite database) or on SQLite's writer connection itself (`sqlite::Direct`).
pub(super) trait GroupDb {
    fn backend(&self) -> DbBackend;
    /// The rows of [`PRESENTED`].
    async fn presented(&self, stmt: Statement) -> Result<Vec<Presented>, StoreError>;
    /// The rows of `membership::usable_ids_statement`: each membership's uuid, id and
    /// customer.
    async fn usable(&self, stmt: Statement) -> Result<Vec<(Uuid, Usable)>, StoreError>;
    /// The ids of [`LIVE`] (PostgreSQL only).
    async fn ids(&self, stmt: Statement) -> Result<Vec<i64>, StoreError>;
    /// The rows of [`INSERT_MANY`]: each new token's id and stored form.
    async fn inserted(&self, stmt: Statement) -> Result<Vec<(i64, String)>, StoreError>;
    /// Runs [`CLAIM_MANY`]: how many rows it changed.
    async fn execute(&self, stmt: Statement) -> Result<u64, StoreError>;
}

/// [`GroupDb`] through sea-orm.
pub(super) struct Orm<'a, C>(pub &'a C);

impl<C: ConnectionTrait> GroupDb for Orm<'_, C> {
    fn backend(&self) -> DbBackend {
        self.0.get_database_backend()
    }

    async fn presented(&self, stmt: Statement) -> Result<Vec<Presented>, StoreError> {
        let rows = self.0.query_all_raw(stmt).await?;
        Ok(rows
            .iter()
            .map(|row| Presented::from_query_result(row, ""))
            .collect::<Result<_, _>>()?)
    }

    async fn usable(&self, stmt: Statement) -> Result<Vec<(Uuid, Usable)>, StoreError> {
        let rows = self.0.query_all_raw(stmt).await?;
        let usable = rows.iter().map(|row| {
            let usable =
                Usable { id: row.try_get_by_index(1)?, customer_id: row.try_get_by_index(2)? };
            Ok::<_, DbErr>((row.try_get_by_index(0)?, usable))
        });
        Ok(usable.collect::<Result<_, _>>()?)
    }

    async fn ids(&self, stmt: Statement) -> Result<Vec<i64>, StoreError> {
        let rows = self.0.query_all_raw(stmt).await?;
        Ok(rows.iter().map(|row| row.try_get_by_index(0)).collect::<Result<_, _>>()?)
    }

    async fn inserted(&self, stmt: Statement) -> Result<Vec<(i64, String)>, StoreError> {
        let rows = self.0.query_all_raw(stmt).await?;
        let inserted = rows
            .iter()
            .map(|row| Ok::<_, DbErr>((row.try_get_by_index(0)?, row.try_get_by_index(1)?)));
        Ok(inserted.collect::<Result<_, _>>()?)
    }

    async fn execute(&self, stmt: Statement) -> Result<u64, StoreError> {
        Ok(self.0.execute_raw(stmt).await?.rows_affected())
    }
}

/// Fails every write of `batch` (emptying it) with `err`: see [`fail_all`].
pub(super) fn fail_batch(
    batch: &mut Vec<(Write, Reply)>,
    err: &StoreError,
) -> Vec<(Reply, Result<Written, Error>)> {
    fail_all(batch.drain(..).map(|(_, reply)| reply).collect(), err)
}

/// The same error for every caller of a group that did not commit.
pub(super) fn fail_all(
    replies: Vec<Reply>,
    err: &StoreError,
) -> Vec<(Reply, Result<Written, Error>)> {
    tracing::error!(error = %err, writes = replies.len(), "a group of token writes failed");
    let unavailable = err.is_unavailable();
    let message = err.to_string();
    replies
        .into_iter()
        .map(|reply| {
            let error = if unavailable {
                Error::unavailable(message.clone())
            } else {
                Error::internal(message.clone())
            };
            (reply, Err(error))
        })
        .collect()
}
