//! Every write of the service goes through the [`TokenStore`].
//!
//! SQLite lets one connection write at a time. Writers sharing a pool meet SQLite's busy
//! handler, which sleeps 1–100 ms between retries: under load most of the time went there.
//! And `synchronous = FULL` syncs the WAL at each commit (~0.35 ms on this disk), which caps
//! one-commit-per-token at a few thousand tokens a second even without contention.
//!
//! So on SQLite one task owns a single writer connection and commits refresh-token writes in
//! groups: it takes every write waiting in its queue (up to [`MAX_BATCH`]), applies them in
//! one transaction, each rotation inside its own savepoint, and answers each caller only
//! after the commit. No token is handed out before its row is durable, and one WAL sync
//! covers the whole group. Other writes (login counters, revocations, purges) use the same
//! single connection, so they queue in the pool rather than in the busy handler.
//!
//! PostgreSQL runs concurrent transactions and groups their WAL flushes itself: there each
//! write is its own transaction on the shared pool, with the same statements.

use entity::refresh_token;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter,
    SqlxSqliteConnector, TransactionTrait, sea_query::Expr,
};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::error::Error;

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

/// One write of a refresh token.
#[derive(Debug)]
enum Write {
    /// Insert a token; gives its id.
    Insert(NewToken),
    /// Revoke `old` (if nobody has yet) and insert its successor; gives the successor's id,
    /// or `None` when another rotation of `old` won.
    Rotate { old: i64, new: NewToken },
}

type Reply = oneshot::Sender<Result<Option<i64>, Error>>;

/// Where writes go: see the module documentation.
#[derive(Debug, Clone)]
pub struct TokenStore {
    /// The connection writes use: SQLite's single writer, or PostgreSQL's pool.
    writer: DatabaseConnection,
    /// The group-commit queue (SQLite files only).
    queue: Option<mpsc::Sender<(Write, Reply)>>,
}

impl TokenStore {
    /// The store for `db`: on a SQLite file, opens the single writer connection and starts
    /// the group-commit task; otherwise writes directly through `db`.
    pub async fn open(db: &DatabaseConnection) -> Result<Self, DbErr> {
        let Some(options) = sqlite_file_options(db) else {
            return Ok(Self { writer: db.clone(), queue: None });
        };
        let pool = sea_orm::sqlx::pool::PoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(db.get_sqlite_connection_pool().options().get_acquire_timeout())
            // After a failed COMMIT (full disk, I/O error) sqlx's idea of the open
            // transaction can differ from SQLite's: later groups then ran as savepoints of a
            // transaction that never committed, answered but never stored. A connection
            // still inside a transaction when it comes back is closed instead (the pool
            // opens a fresh one).
            .after_release(|conn: &mut sea_orm::sqlx::SqliteConnection, _| {
                Box::pin(async move {
                    use sea_orm::sqlx::Connection as _;
                    // Runs a rollback sqlx still has queued, then asks SQLite itself.
                    conn.ping().await?;
                    Ok(!conn.is_in_transaction())
                })
            })
            .connect_with(options)
            .await
            .map_err(|e| DbErr::Conn(sea_orm::RuntimeErr::SqlxError(e.into())))?;
        let writer = SqlxSqliteConnector::from_sqlx_sqlite_pool(pool);
        let (sender, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(group_commits(writer.clone(), receiver));
        Ok(Self { writer, queue: Some(sender) })
    }

    /// The connection for writes other than refresh tokens.
    pub fn writer(&self) -> &DatabaseConnection {
        &self.writer
    }

    /// Stores a new token and gives its id.
    pub async fn insert(&self, new: NewToken) -> Result<i64, Error> {
        self.submit(Write::Insert(new))
            .await?
            .ok_or_else(|| Error::internal("an insert gave no row id"))
    }

    /// Revokes `old` and stores its successor, atomically: `None` when `old` was already
    /// revoked (another refresh with the same token won).
    pub async fn rotate(&self, old: i64, new: NewToken) -> Result<Option<i64>, Error> {
        self.submit(Write::Rotate { old, new }).await
    }

    async fn submit(&self, write: Write) -> Result<Option<i64>, Error> {
        let Some(queue) = &self.queue else {
            if let Write::Insert(_) = write {
                // One statement: its own transaction, one round trip.
                return Ok(apply(&self.writer, write).await?);
            }
            let txn = self.writer.begin().await?;
            let result = apply(&txn, write).await?;
            if result.is_some() {
                txn.commit().await?;
            } else {
                txn.rollback().await?;
            }
            return Ok(result);
        };
        let (reply, answer) = oneshot::channel();
        let gone = || Error::Unavailable(DbErr::Custom("the database writer has stopped".into()));
        queue.send((write, reply)).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

/// The connect options of a SQLite database kept in a file (an in-memory database exists
/// only in the pool that made it, so it gets no second connection).
fn sqlite_file_options(
    db: &DatabaseConnection,
) -> Option<sea_orm::sqlx::sqlite::SqliteConnectOptions> {
    if db.get_database_backend() != sea_orm::DbBackend::Sqlite {
        return None;
    }
    let options = db.get_sqlite_connection_pool().connect_options();
    let name = options.get_filename().to_string_lossy();
    let in_memory =
        name.is_empty() || name == ":memory:" || name.starts_with("file:sqlx-in-memory");
    (!in_memory).then(|| (*options).clone())
}

/// Applies one write. For a rotation the successor goes in first, then one conditional
/// update both revokes `old` and links it to the successor: if `old` was already revoked
/// nothing matches and the caller undoes the insert (rollback).
async fn apply(db: &impl ConnectionTrait, write: Write) -> Result<Option<i64>, DbErr> {
    match write {
        Write::Insert(new) => insert(db, new).await.map(Some),
        Write::Rotate { old, new } => {
            let now = new.issued_at;
            let id = insert(db, new).await?;
            let claimed = refresh_token::Entity::update_many()
                .col_expr(refresh_token::Column::RevokedAt, Expr::value(now))
                .col_expr(refresh_token::Column::RotatedIntoId, Expr::value(id))
                .filter(refresh_token::Column::Id.eq(old))
                .filter(refresh_token::Column::RevokedAt.is_null())
                .exec(db)
                .await?;
            Ok((claimed.rows_affected == 1).then_some(id))
        }
    }
}

async fn insert(db: &impl ConnectionTrait, new: NewToken) -> Result<i64, DbErr> {
    use sea_orm::ActiveValue::Set;
    let row = refresh_token::ActiveModel {
        token_hash: Set(new.token_hash),
        family_id: Set(new.family_id),
        customer_id: Set(new.customer_id),
        company_user_id: Set(new.company_user_id),
        scopes: Set(new.scopes.to_owned()),
        client_id: Set(new.client_id),
        issued_at: Set(new.issued_at),
        expires_at: Set(new.expires_at),
        ..Default::default()
    };
    Ok(refresh_token::Entity::insert(row).exec(db).await?.last_insert_id)
}

/// The group-commit task: runs until every [`TokenStore`] clone is dropped.
async fn group_commits(writer: DatabaseConnection, mut queue: mpsc::Receiver<(Write, Reply)>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut group = std::mem::replace(&mut batch, Vec::with_capacity(MAX_BATCH));
        let writer = writer.clone();
        // Each group in a task of its own: should one panic, its callers get 503 (their
        // reply channels close) and the writer goes on with the next group.
        match tokio::spawn(async move { commit_group(&writer, &mut group).await }).await {
            Ok(replies) => {
                for (reply, result) in replies {
                    // A caller that went away (client disconnected) needs no answer.
                    let _ = reply.send(result);
                }
            }
            Err(e) => tracing::error!(error = %e, "a group of token writes failed"),
        }
    }
}

/// Applies `batch` (emptying it) in one transaction and gives each caller its result, all
/// of them failed if the transaction could not commit.
async fn commit_group(
    writer: &DatabaseConnection,
    batch: &mut Vec<(Write, Reply)>,
) -> Vec<(Reply, Result<Option<i64>, Error>)> {
    let txn = match writer.begin().await {
        Ok(txn) => txn,
        Err(e) => return fail_all(batch.drain(..).map(|(_, reply)| reply).collect(), &e),
    };
    let mut results = Vec::with_capacity(batch.len());
    for (write, reply) in batch.drain(..) {
        let result = match write {
            // One statement: atomic on its own.
            Write::Insert(_) => apply(&txn, write).await,
            // Several statements: a savepoint keeps a failed or lost rotation from leaving
            // half of itself in the group.
            Write::Rotate { .. } => match txn.begin().await {
                Ok(savepoint) => match apply(&savepoint, write).await {
                    Ok(Some(id)) => savepoint.commit().await.map(|()| Some(id)),
                    Ok(None) => savepoint.rollback().await.map(|()| None),
                    Err(e) => savepoint.rollback().await.and(Err(e)),
                },
                Err(e) => Err(e),
            },
        };
        results.push((reply, result));
    }
    if let Err(e) = txn.commit().await {
        return fail_all(results.into_iter().map(|(reply, _)| reply).collect(), &e);
    }
    results.into_iter().map(|(reply, result)| (reply, result.map_err(Error::from))).collect()
}

/// The same error for every caller of a group that did not commit.
fn fail_all(replies: Vec<Reply>, err: &DbErr) -> Vec<(Reply, Result<Option<i64>, Error>)> {
    tracing::error!(error = %err, writes = replies.len(), "a group of token writes failed");
    let unavailable = crate::error::is_unavailable(err);
    let message = err.to_string();
    replies
        .into_iter()
        .map(|reply| {
            let error = if unavailable {
                Error::Unavailable(DbErr::Custom(message.clone()))
            } else {
                Error::internal(message.clone())
            };
            (reply, Err(error))
        })
        .collect()
}
