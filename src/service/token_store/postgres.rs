//! The token store on PostgreSQL: groups committed on the shared pool, a few at once, and
//! the login counters' pool (`docs/design/token-store.md`).

use std::sync::Arc;

use sea_orm::{DatabaseConnection, TransactionTrait};
use tokio::sync::{Semaphore, mpsc};

use super::{
    MAX_BATCH, Reply, Write, Written,
    group::{Orm, apply_alone, apply_group, fail_all, fail_batch},
};
use crate::error::Error;

/// Groups committing at once on PostgreSQL. One group at a time left its CPU idle: each
/// group waits for five round trips and a WAL flush. Groups in flight together lock their
/// tokens in the same order (by id), so they cannot deadlock one another; and PostgreSQL
/// flushes their commits together.
const POSTGRES_GROUPS: usize = 3;

/// The group-commit task on PostgreSQL (on a SQLite file, `sqlite`): runs until every
/// [`TokenStore`] clone is dropped, up to [`POSTGRES_GROUPS`] groups at once.
pub(super) async fn group_commits(
    writer: DatabaseConnection,
    mut queue: mpsc::Receiver<(Write, Reply)>,
) {
    let slots = Arc::new(Semaphore::new(POSTGRES_GROUPS));
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        if queue.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        let mut group = std::mem::replace(&mut batch, Vec::with_capacity(MAX_BATCH));
        let writer = writer.clone();
        // Each group in a task of its own: should one panic, its callers get 503 (their
        // reply channels close) and the writer goes on with the next group.
        let commit = tokio::spawn(async move { commit_group(&writer, &mut group).await });
        tokio::spawn(async move {
            match commit.await {
                Ok(replies) => {
                    for (reply, result) in replies {
                        // A caller that went away (client disconnected) needs no answer.
                        let _ = reply.send(result);
                    }
                }
                Err(e) => tracing::error!(error = %e, "a group of token writes failed"),
            }
            drop(slot);
        });
    }
}

/// Applies `batch` (emptying it) in one transaction and gives each caller its result, all
/// of them failed if the transaction could not commit. Multi-row statements first; if one
/// fails, each write alone, in a transaction of its own: other instances write too, so a
/// group's later write cannot count on its earlier ones.
async fn commit_group(
    writer: &DatabaseConnection,
    batch: &mut Vec<(Write, Reply)>,
) -> Vec<(Reply, Result<Written, Error>)> {
    let txn = match writer.begin().await {
        Ok(txn) => txn,
        Err(e) => return fail_batch(batch, &e.into()),
    };
    let writes: Vec<&Write> = batch.iter().map(|(write, _)| write).collect();
    match apply_group(&Orm(&txn), &writes).await {
        Ok(results) => {
            let replies = batch.drain(..).map(|(_, reply)| reply);
            if let Err(e) = txn.commit().await {
                return fail_all(replies.collect(), &e.into());
            }
            replies.zip(results.into_iter().map(Ok)).collect()
        }
        Err(e) => {
            tracing::warn!(error = %e, writes = batch.len(), "a group of token writes is applied one by one");
            // Dropping an open transaction rolls it back as well; this is only the prompt way.
            let _ = txn.rollback().await;
            let mut results = Vec::with_capacity(batch.len());
            for (write, reply) in batch.drain(..) {
                results.push((reply, apply_alone(writer, &write).await.map_err(Error::from)));
            }
            results
        }
    }
}

/// The connections of login counters on PostgreSQL: a small pool of the same server whose
/// commits do not wait for the WAL flush (`synchronous_commit = off`), opened lazily. Two
/// counter commits per login, each flushed, cost PostgreSQL CPU on the cores Argon2 needs.
pub(super) fn counters(db: &DatabaseConnection) -> DatabaseConnection {
    let pool = db.get_postgres_connection_pool();
    let options = (*pool.connect_options()).clone().options([("synchronous_commit", "off")]);
    let counters = sea_orm::sqlx::pool::PoolOptions::new()
        .max_connections(COUNTER_CONNECTIONS)
        .acquire_timeout(pool.options().get_acquire_timeout())
        .connect_lazy_with(options);
    sea_orm::SqlxPostgresConnector::from_sqlx_postgres_pool(counters)
}

/// Connections of [`counters`]: a counter write is one short statement.
const COUNTER_CONNECTIONS: u32 = 2;
