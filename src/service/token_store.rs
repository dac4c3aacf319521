//! Every write of the service goes through the [`TokenStore`].
//!
//! SQLite lets one connection write at a time. Writers sharing a pool meet SQLite's busy
//! handler, which sleeps 1–100 ms between retries: under load most of the time went there.
//! And `synchronous = FULL` syncs the WAL at each commit (~0.35 ms on this disk), which caps
//! one-commit-per-token at a few thousand tokens a second even without contention.
//!
//! So on SQLite one task owns a single writer connection and commits refresh-token writes in
//! groups: it takes every write waiting in its queue (up to [`MAX_BATCH`]), applies them in
//! one transaction and answers each caller only after the commit. No token is handed out
//! before its row is durable, and one WAL sync covers the whole group. Other writes (login
//! counters, revocations, purges) use the same single connection, so they queue in the pool
//! rather than in the busy handler.
//!
//! A group is written with a few multi-row statements, whatever its size ([`apply_group`]):
//! one reads which of the tokens to rotate are still live, one inserts every new token, one
//! revokes the rotated ones and links them to their successors. Of two rotations of one
//! token only the first goes ahead; a rotation that lost writes nothing. (Each statement run
//! through sqlx-sqlite is a round trip to the connection's own thread: two per rotation
//! before, three per group now.) Should a multi-row statement fail (say, a foreign key of
//! one row), the group is rolled back and applied again one write at a time, so one bad
//! write fails only its own caller.
//!
//! What bounds the writer now is the commit: it writes every page the group dirtied to the
//! WAL and syncs it (57 pages take 1.6 ms on the benchmark's disk). A new token's entry in an
//! index keyed by a random value lands on a random page: one page more per token. So no
//! index of `refresh_token` is: the stored form of a token begins with a key in the order of
//! time ([`crate::auth::refresh_token`]), and nothing indexes tokens by customer or family
//! (migration `m20261123_000002`). The new tokens of a group then share the last pages of
//! the table and of its indexes, and each rotation adds the page of the token it revokes.
//!
//! PostgreSQL commits refresh-token writes in groups too, on connections of the shared pool,
//! up to [`POSTGRES_GROUPS`] groups at once: one write per transaction cost PostgreSQL about
//! 0.4 ms of CPU each (commit, WAL flush, a wake-up of its process), which capped the token
//! store near 3,000 writes a second on 2 cores. Other instances write the same tables meanwhile, so there the read of which tokens
//! are live locks them (`FOR UPDATE`) and their customers (`FOR SHARE`, see
//! [`live_query`]): a rotation elsewhere waits for the group's commit, and so does a
//! "revoke all" (`Sessions::revoke_all` locks the customer first). Should a group fail, each
//! of its writes is applied alone, in one statement: an insert, or a rotation that revokes
//! the old token and inserts its successor only if it did ([`ROTATE_POSTGRES`]).
//!
//! The statements are rendered once ([`CachedSql`]).

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use entity::{customer, refresh_token};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryResult, QuerySelect, QueryTrait, SqlxSqliteConnector, Statement, StatementBuilder,
    TransactionTrait, Value,
    sea_query::{Expr, ExprTrait, LockType, Order, Query},
};
use tokio::sync::{Semaphore, mpsc, oneshot};
use uuid::Uuid;

use super::sql::{CachedSql, SizedSql};
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
    /// The store for `db`: on a SQLite file, opens the single writer connection; on
    /// PostgreSQL, uses the shared pool. Either way starts the group-commit task. An
    /// in-memory SQLite database (tests) is written directly.
    pub async fn open(db: &DatabaseConnection) -> Result<Self, DbErr> {
        let writer = if db.get_database_backend() == DbBackend::Postgres {
            db.clone()
        } else if let Some(options) = sqlite_file_options(db) {
            sqlite_writer(db, options).await?
        } else {
            return Ok(Self { writer: db.clone(), queue: None });
        };
        let (sender, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(group_commits(writer.clone(), receiver));
        Ok(Self { writer, queue: Some(sender) })
    }

    /// The connection for writes other than refresh tokens: SQLite's single writer, or
    /// PostgreSQL's pool.
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
            return Ok(apply_alone(&self.writer, write).await?);
        };
        let (reply, answer) = oneshot::channel();
        let gone = || Error::Unavailable(DbErr::Custom("the database writer has stopped".into()));
        queue.send((write, reply)).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

/// The single writer connection of a SQLite file (see the module documentation).
async fn sqlite_writer(
    db: &DatabaseConnection,
    options: sea_orm::sqlx::sqlite::SqliteConnectOptions,
) -> Result<DatabaseConnection, DbErr> {
    let pool = sea_orm::sqlx::pool::PoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        // A file cannot hang up: no ping before each checkout (see `db::connect`).
        .test_before_acquire(false)
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
    Ok(SqlxSqliteConnector::from_sqlx_sqlite_pool(pool))
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

/// Applies one write in a transaction of its own: on an in-memory SQLite database, and on
/// PostgreSQL for the writes of a group that failed.
async fn apply_alone(db: &DatabaseConnection, write: Write) -> Result<Option<i64>, DbErr> {
    match write {
        // One statement: its own transaction, one round trip.
        Write::Insert(new) => insert(db, &new).await.map(Some),
        Write::Rotate { old, new } if db.get_database_backend() == DbBackend::Postgres => {
            rotate_postgres(db, old, &new).await
        }
        write => {
            let txn = db.begin().await?;
            let result = apply(&txn, write).await?;
            if result.is_some() {
                txn.commit().await?;
            } else {
                txn.rollback().await?;
            }
            Ok(result)
        }
    }
}

/// Applies one write inside a transaction.
async fn apply(db: &impl ConnectionTrait, write: Write) -> Result<Option<i64>, DbErr> {
    match write {
        Write::Insert(new) => insert(db, &new).await.map(Some),
        Write::Rotate { old, new } => {
            let Some(id) = insert_successor(db, old, &new).await? else {
                return Ok(None);
            };
            Ok(claim(db, old, id, new.issued_at).await?.then_some(id))
        }
    }
}

/// The columns of a new token, in the order of [`token_values`].
const TOKEN_COLUMNS: [refresh_token::Column; 8] = [
    refresh_token::Column::TokenHash,
    refresh_token::Column::FamilyId,
    refresh_token::Column::CustomerId,
    refresh_token::Column::CompanyUserId,
    refresh_token::Column::Scopes,
    refresh_token::Column::ClientId,
    refresh_token::Column::IssuedAt,
    refresh_token::Column::ExpiresAt,
];

fn token_values(new: &NewToken) -> [Value; 8] {
    [
        new.token_hash.clone().into(),
        new.family_id.into(),
        new.customer_id.into(),
        new.company_user_id.into(),
        new.scopes.into(),
        new.client_id.clone().into(),
        new.issued_at.into(),
        new.expires_at.into(),
    ]
}

fn sample_token() -> NewToken {
    NewToken {
        token_hash: String::new(),
        family_id: Uuid::nil(),
        customer_id: 0,
        company_user_id: Some(0),
        scopes: "",
        client_id: String::new(),
        issued_at: 0,
        expires_at: 0,
    }
}

fn insert_query(backend: DbBackend, new: &NewToken) -> Statement {
    let insert = Query::insert()
        .into_table(refresh_token::Entity)
        .columns(TOKEN_COLUMNS)
        .values_panic(token_values(new).map(Expr::val))
        .returning_col(refresh_token::Column::Id)
        .to_owned();
    StatementBuilder::build(&insert, &backend)
}
static INSERT: CachedSql = CachedSql::new(|backend| insert_query(backend, &sample_token()));

/// Stores a new token; gives its id.
async fn insert(db: &impl ConnectionTrait, new: &NewToken) -> Result<i64, DbErr> {
    let stmt = INSERT.bind(db.get_database_backend(), token_values(new));
    returned_id(db.query_one_raw(stmt).await?)
}

/// `old`'s successor, inserted only while `old` is live (not revoked), in one statement:
/// a rotation that lost writes nothing.
fn successor_query(backend: DbBackend, old: i64, new: &NewToken) -> Statement {
    let live = Query::select()
        .expr(Expr::Constant(1.into()))
        .from(refresh_token::Entity)
        .and_where(refresh_token::Column::Id.eq(old))
        .and_where(is_live())
        .to_owned();
    let row = Query::select()
        .exprs(token_values(new).map(Expr::val))
        .and_where(Expr::exists(live))
        .to_owned();
    let insert = Query::insert()
        .into_table(refresh_token::Entity)
        .columns(TOKEN_COLUMNS)
        .select_from(row)
        .expect("as many values as columns")
        .returning_col(refresh_token::Column::Id)
        .to_owned();
    StatementBuilder::build(&insert, &backend)
}
static SUCCESSOR: CachedSql =
    CachedSql::new(|backend| successor_query(backend, 0, &sample_token()));

async fn insert_successor(
    db: &impl ConnectionTrait,
    old: i64,
    new: &NewToken,
) -> Result<Option<i64>, DbErr> {
    let values = token_values(new).into_iter().chain([old.into()]);
    let stmt = SUCCESSOR.bind(db.get_database_backend(), values);
    db.query_one_raw(stmt).await?.map(|row| returned_id(Some(row))).transpose()
}

/// Revokes `old` and links it to its successor `id`, if `old` is still live: whether it was.
fn claim_query(backend: DbBackend, old: i64, id: i64, now: i64) -> Statement {
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RevokedAt, Expr::val(now))
        .col_expr(refresh_token::Column::RotatedIntoId, Expr::val(id))
        .filter(refresh_token::Column::Id.eq(old))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .build(backend)
}
static CLAIM: CachedSql = CachedSql::new(|backend| claim_query(backend, 0, 0, 0));

async fn claim(db: &impl ConnectionTrait, old: i64, id: i64, now: i64) -> Result<bool, DbErr> {
    let stmt = CLAIM.bind(db.get_database_backend(), [now.into(), id.into(), old.into()]);
    Ok(db.execute_raw(stmt).await?.rows_affected() == 1)
}

/// A token is live while revoked neither by itself (`revoked_at`) nor with all of its
/// customer's tokens (`customer.revoked_refresh_tokens_through`, see `Sessions::revoke_all`).
/// Checked where a rotation claims the token, so a rotation that read the token before
/// "revoke all" committed cannot go through after it.
fn is_live() -> Expr {
    use customer::Column as C;
    use refresh_token::Column as T;
    let revoked_with_all = Query::select()
        .expr(Expr::Constant(1.into()))
        .from(customer::Entity)
        .and_where(
            Expr::col((customer::Entity, C::Id)).equals((refresh_token::Entity, T::CustomerId)),
        )
        .and_where(
            Expr::col((customer::Entity, C::RevokedRefreshTokensThrough))
                .gte(Expr::col((refresh_token::Entity, T::Id))),
        )
        .to_owned();
    T::RevokedAt.is_null().and(Expr::exists(revoked_with_all).not())
}

/// A rotation on PostgreSQL in one statement (its own transaction, one round trip instead of
/// four). The successor's id is drawn from the sequence first, so one UPDATE revokes `old`
/// and links it, and the successor is inserted only if that UPDATE claimed `old`.
/// Concurrent rotations of one token wait for the first one's row lock, then find `old`
/// revoked: they claim nothing and insert nothing. The customer's row is locked (`owner`)
/// and its "revoke all" mark read from that lock, so a "revoke all" running meanwhile is
/// either seen or waits for this commit (see [`live_query`]). (`rotated_into_id` has no
/// foreign key, so linking to the row inserted later in the statement is fine.)
const ROTATE_POSTGRES: &str = "\
WITH owner AS (SELECT \"revoked_refresh_tokens_through\" AS through FROM \"customer\" \
WHERE \"id\" = (SELECT \"customer_id\" FROM \"refresh_token\" WHERE \"id\" = $2) FOR SHARE), \
successor AS (SELECT nextval(pg_get_serial_sequence('refresh_token', 'id')) AS id), \
claimed AS (\
UPDATE \"refresh_token\" SET \"revoked_at\" = $1, \"rotated_into_id\" = (SELECT id FROM successor) \
WHERE \"id\" = $2 AND \"revoked_at\" IS NULL \
AND EXISTS (SELECT 1 FROM owner WHERE through IS NULL OR through < $2) \
RETURNING \"rotated_into_id\") \
INSERT INTO \"refresh_token\" (\"id\", \"token_hash\", \"family_id\", \"customer_id\", \
\"company_user_id\", \"scopes\", \"client_id\", \"issued_at\", \"expires_at\") \
SELECT \"rotated_into_id\", $3, $4, $5, $6, $7, $8, $9, $10 FROM claimed RETURNING \"id\"";

/// See [`ROTATE_POSTGRES`]: the successor's id, or `None` when another rotation won.
async fn rotate_postgres(
    db: &DatabaseConnection,
    old: i64,
    new: &NewToken,
) -> Result<Option<i64>, DbErr> {
    let values = [new.issued_at.into(), old.into()].into_iter().chain(token_values(new));
    let stmt = Statement::from_sql_and_values(DbBackend::Postgres, ROTATE_POSTGRES, values);
    db.query_one_raw(stmt).await?.map(|row| returned_id(Some(row))).transpose()
}

fn returned_id(row: Option<QueryResult>) -> Result<i64, DbErr> {
    row.ok_or_else(|| DbErr::RecordNotInserted)?.try_get_by_index(0)
}

/// Which of `n` tokens are live (not revoked): their ids.
///
/// On PostgreSQL the tokens found live are locked until the group commits (`FOR UPDATE`, in
/// the order of their ids, as every group takes them), and so are their customers' rows
/// (`FOR SHARE`). A rotation of one of them by another instance waits for the commit, then
/// finds it revoked. A "revoke all" locks the customer first: it waits for the commit, then
/// sees the group's new tokens; a group that comes after it waits for it, then reads the
/// customer's new mark (a locked row is read again as committed, with the join's condition).
fn live_query(backend: DbBackend, olds: &[i64]) -> Statement {
    use customer::Column as C;
    use refresh_token::Column as T;
    if backend != DbBackend::Postgres {
        return refresh_token::Entity::find()
            .select_only()
            .column(T::Id)
            .filter(T::Id.is_in(olds.iter().copied()))
            .filter(is_live())
            .build(backend);
    }
    let token = |column: T| Expr::col((refresh_token::Entity, column));
    let through = Expr::col((customer::Entity, C::RevokedRefreshTokensThrough));
    let select = Query::select()
        .column((refresh_token::Entity, T::Id))
        .from(refresh_token::Entity)
        .inner_join(
            customer::Entity,
            Expr::col((customer::Entity, C::Id)).equals((refresh_token::Entity, T::CustomerId)),
        )
        .and_where(token(T::Id).is_in(olds.iter().copied()))
        .and_where(token(T::RevokedAt).is_null())
        .and_where(through.clone().is_null().or(through.lt(token(T::Id))))
        .order_by((refresh_token::Entity, T::Id), Order::Asc)
        .lock_with_tables(LockType::Update, [refresh_token::Entity])
        .to_owned();
    let mut stmt = StatementBuilder::build(&select, &backend);
    stmt.sql.push_str(" FOR SHARE OF \"customer\"");
    stmt
}
static LIVE: SizedSql = SizedSql::new(|backend, n| live_query(backend, &vec![0; n]));

/// Inserts `news`; gives each row's id with its hash (RETURNING gives rows in no set order).
fn insert_many_query(backend: DbBackend, news: &[&NewToken]) -> Statement {
    let mut insert = Query::insert();
    insert.into_table(refresh_token::Entity).columns(TOKEN_COLUMNS);
    for new in news {
        insert.values_panic(token_values(new).map(Expr::val));
    }
    insert.returning(
        Query::returning().columns([refresh_token::Column::Id, refresh_token::Column::TokenHash]),
    );
    StatementBuilder::build(&insert, &backend)
}
static INSERT_MANY: SizedSql =
    SizedSql::new(|backend, n| insert_many_query(backend, &vec![&sample_token(); n]));

/// A rotation's claim: revoke `old` at `now` and link it to its successor `new`.
#[derive(Debug, Clone, Copy)]
struct Claim {
    old: i64,
    new: i64,
    now: i64,
}

/// Revokes each claim's `old` (if still live) and links it to its successor.
fn claim_many_query(backend: DbBackend, claims: &[Claim]) -> Statement {
    use refresh_token::Column as T;
    let by_old = |then: fn(&Claim) -> i64, otherwise: T| {
        let mut cases = claims.iter();
        let first = cases.next().expect("at least one claim");
        let mut case = Expr::case(T::Id.eq(first.old), then(first));
        for claim in cases {
            case = case.case(T::Id.eq(claim.old), then(claim));
        }
        case.finally(Expr::col(otherwise.as_column_ref()))
    };
    refresh_token::Entity::update_many()
        .col_expr(T::RevokedAt, by_old(|c| c.now, T::RevokedAt).into())
        .col_expr(T::RotatedIntoId, by_old(|c| c.new, T::RotatedIntoId).into())
        .filter(T::Id.is_in(claims.iter().map(|c| c.old)))
        .filter(T::RevokedAt.is_null())
        .build(backend)
}
static CLAIM_MANY: SizedSql = SizedSql::new(|backend, n| {
    claim_many_query(backend, &vec![Claim { old: 0, new: 0, now: 0 }; n])
});

fn claim_many_values(claims: &[Claim]) -> Vec<Value> {
    let revoked = claims.iter().flat_map(|c| [c.old.into(), c.now.into()]);
    let linked = claims.iter().flat_map(|c| [c.old.into(), c.new.into()]);
    revoked.chain(linked).chain(claims.iter().map(|c| c.old.into())).collect()
}

/// Applies a group of writes with multi-row statements (see the module documentation):
/// each write's result, or the first error (the caller rolls the group back).
async fn apply_group(
    db: &impl ConnectionTrait,
    writes: &[&Write],
) -> Result<Vec<Option<i64>>, DbErr> {
    let backend = db.get_database_backend();
    // The tokens to rotate that are live now. Nothing else writes them until the commit:
    // on SQLite this is the only writer, on PostgreSQL this read locks them.
    let olds: Vec<i64> = writes
        .iter()
        .filter_map(|w| match w {
            Write::Rotate { old, .. } => Some(*old),
            Write::Insert(_) => None,
        })
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut live = HashSet::with_capacity(olds.len());
    for chunk in SizedSql::split(&olds) {
        let stmt = LIVE.bind(backend, chunk.len(), chunk.iter().map(|id| Value::from(*id)));
        for row in db.query_all_raw(stmt).await? {
            live.insert(row.try_get_by_index::<i64>(0)?);
        }
    }
    // Every new token: the inserts, and the successors of the first rotation of each live
    // token (a later rotation of the same token lost to it).
    let mut rows = Vec::with_capacity(writes.len());
    let mut rotations = Vec::new();
    for write in writes {
        match write {
            Write::Insert(new) => rows.push(new),
            Write::Rotate { old, new } if live.remove(old) => {
                rotations.push((*old, new.token_hash.as_str(), new.issued_at));
                rows.push(new);
            }
            Write::Rotate { .. } => {}
        }
    }
    let mut ids: HashMap<String, i64> = HashMap::with_capacity(rows.len());
    for chunk in SizedSql::split(&rows) {
        let values = chunk.iter().flat_map(|new| token_values(new));
        for row in db.query_all_raw(INSERT_MANY.bind(backend, chunk.len(), values)).await? {
            ids.insert(row.try_get_by_index(1)?, row.try_get_by_index(0)?);
        }
    }
    let id_of = |hash: &str| ids.get(hash).copied().ok_or(DbErr::RecordNotInserted);
    let claims = rotations
        .iter()
        .map(|&(old, hash, now)| Ok(Claim { old, new: id_of(hash)?, now }))
        .collect::<Result<Vec<_>, DbErr>>()?;
    for chunk in SizedSql::split(&claims) {
        let stmt = CLAIM_MANY.bind(backend, chunk.len(), claim_many_values(chunk));
        let claimed = db.execute_raw(stmt).await?.rows_affected();
        if claimed != chunk.len() as u64 {
            // Cannot happen: nothing else writes them until the commit (on SQLite there is no
            // other writer, PostgreSQL holds their locks); never commit a successor beside a
            // live token.
            return Err(DbErr::Custom(format!("{claimed} of {} tokens claimed", chunk.len())));
        }
    }
    writes
        .iter()
        .map(|write| match write {
            Write::Insert(new) => id_of(&new.token_hash).map(Some),
            Write::Rotate { new, .. } => Ok(ids.get(&new.token_hash).copied()),
        })
        .collect()
}

/// Groups committing at once on PostgreSQL. One group at a time left its CPU idle: each
/// group waits for five round trips and a WAL flush. Groups in flight together lock their
/// tokens in the same order (by id), so they cannot deadlock one another; and PostgreSQL
/// flushes their commits together.
const POSTGRES_GROUPS: usize = 3;

/// The group-commit task: runs until every [`TokenStore`] clone is dropped. On SQLite one
/// group at a time (one writer), on PostgreSQL up to [`POSTGRES_GROUPS`].
async fn group_commits(writer: DatabaseConnection, mut queue: mpsc::Receiver<(Write, Reply)>) {
    let at_once = match writer.get_database_backend() {
        DbBackend::Postgres => POSTGRES_GROUPS,
        _ => 1,
    };
    let slots = Arc::new(Semaphore::new(at_once));
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
        let answer = async move {
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
        };
        // The next group starts once a slot is free: at once on PostgreSQL, after this
        // group's answers on SQLite.
        tokio::spawn(answer);
    }
}

/// Applies `batch` (emptying it) in one transaction and gives each caller its result, all
/// of them failed if the transaction could not commit. Multi-row statements first; if one
/// fails, the group again one write at a time.
async fn commit_group(
    writer: &DatabaseConnection,
    batch: &mut Vec<(Write, Reply)>,
) -> Vec<(Reply, Result<Option<i64>, Error>)> {
    let txn = match writer.begin().await {
        Ok(txn) => txn,
        Err(e) => return fail_all(batch.drain(..).map(|(_, reply)| reply).collect(), &e),
    };
    let writes: Vec<&Write> = batch.iter().map(|(write, _)| write).collect();
    match apply_group(&txn, &writes).await {
        Ok(results) => {
            let replies = batch.drain(..).map(|(_, reply)| reply);
            if let Err(e) = txn.commit().await {
                return fail_all(replies.collect(), &e);
            }
            replies.zip(results.into_iter().map(Ok)).collect()
        }
        Err(e) => {
            tracing::warn!(error = %e, writes = batch.len(), "a group of token writes is applied one by one");
            // Dropping an open transaction rolls it back as well; this is only the prompt way.
            let _ = txn.rollback().await;
            if writer.get_database_backend() == DbBackend::Postgres {
                commit_alone(writer, batch).await
            } else {
                commit_each(writer, batch).await
            }
        }
    }
}

/// [`commit_group`] on PostgreSQL, one write at a time, each in a transaction of its own:
/// other instances write too, so a group's later write cannot count on its earlier ones.
async fn commit_alone(
    writer: &DatabaseConnection,
    batch: &mut Vec<(Write, Reply)>,
) -> Vec<(Reply, Result<Option<i64>, Error>)> {
    let mut results = Vec::with_capacity(batch.len());
    for (write, reply) in batch.drain(..) {
        results.push((reply, apply_alone(writer, write).await.map_err(Error::from)));
    }
    results
}

/// [`commit_group`] on SQLite, one write at a time: a write that fails fails only its
/// caller.
async fn commit_each(
    writer: &DatabaseConnection,
    batch: &mut Vec<(Write, Reply)>,
) -> Vec<(Reply, Result<Option<i64>, Error>)> {
    let txn = match writer.begin().await {
        Ok(txn) => txn,
        Err(e) => return fail_all(batch.drain(..).map(|(_, reply)| reply).collect(), &e),
    };
    let mut results = Vec::with_capacity(batch.len());
    // Set when the group must be rolled back as a whole.
    let mut broken = None;
    for (write, reply) in batch.drain(..) {
        let result = match write {
            _ if broken.is_some() => Ok(None),
            // One statement: a failed one leaves nothing behind.
            Write::Insert(new) => insert(&txn, &new).await.map(Some),
            // The successor goes in only while `old` is live (one statement), then `old` is
            // claimed. Nothing else writes in between (this is the only writer), so the
            // claim cannot lose; should it fail anyway, the successor would stay with its
            // predecessor live: the whole group is rolled back instead.
            Write::Rotate { old, new } => match insert_successor(&txn, old, &new).await {
                Ok(Some(id)) => match claim(&txn, old, id, new.issued_at).await {
                    Ok(true) => Ok(Some(id)),
                    Ok(false) => {
                        broken =
                            Some(DbErr::Custom(format!("token {old} changed under the writer")));
                        Ok(None)
                    }
                    Err(e) => {
                        broken = Some(e);
                        Ok(None)
                    }
                },
                other => other,
            },
        };
        results.push((reply, result));
    }
    let replies = |results: Vec<(Reply, _)>| results.into_iter().map(|(reply, _)| reply).collect();
    if let Some(e) = broken {
        let _ = txn.rollback().await;
        return fail_all(replies(results), &e);
    }
    if let Err(e) = txn.commit().await {
        return fail_all(replies(results), &e);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::sql::tests::{assert_same, assert_same_sized};

    #[test]
    fn cached_statements_match_a_fresh_rendering() {
        let new = NewToken {
            token_hash: "hash".into(),
            family_id: Uuid::new_v4(),
            customer_id: 7,
            company_user_id: None,
            scopes: "customer",
            client_id: "frontend".into(),
            issued_at: 100,
            expires_at: 200,
        };
        assert_same(&INSERT, &token_values(&new), |b| insert_query(b, &new));
        let successor: Vec<Value> = token_values(&new).into_iter().chain([5i64.into()]).collect();
        assert_same(&SUCCESSOR, &successor, |b| successor_query(b, 5, &new));
        assert_same(&CLAIM, &[100i64.into(), 9i64.into(), 5i64.into()], |b| {
            claim_query(b, 5, 9, 100)
        });
    }

    #[test]
    fn the_postgres_rotation_inserts_the_columns_of_a_new_token() {
        use sea_orm::Iden;
        let names: Vec<String> =
            TOKEN_COLUMNS.iter().map(|c| format!("\"{}\"", c.to_string())).collect();
        let list = format!("(\"id\", {})", names.join(", "));
        assert!(ROTATE_POSTGRES.contains(&list), "{ROTATE_POSTGRES}\n{list}");
        // $1 and $2 are the claim's; the token's values follow, in TOKEN_COLUMNS' order.
        assert!(ROTATE_POSTGRES.contains("$3, $4, $5, $6, $7, $8, $9, $10 FROM claimed"));
    }

    #[test]
    fn on_postgres_the_live_tokens_and_their_customers_are_locked_in_order() {
        let sql = live_query(DbBackend::Postgres, &[3, 1, 2]).sql;
        assert!(
            sql.ends_with(
                "ORDER BY \"refresh_token\".\"id\" ASC \
                 FOR UPDATE OF \"refresh_token\" FOR SHARE OF \"customer\""
            ),
            "{sql}"
        );
        // The customer's mark is a condition of the join, read again on a locked row.
        assert!(sql.contains("INNER JOIN \"customer\""), "{sql}");
        let sqlite = live_query(DbBackend::Sqlite, &[3, 1, 2]).sql;
        assert!(!sqlite.contains("FOR "), "{sqlite}");
    }

    #[test]
    fn cached_multi_row_statements_match_a_fresh_rendering() {
        let token = |n: i64| NewToken {
            token_hash: format!("hash {n}"),
            family_id: Uuid::new_v4(),
            customer_id: n as i32,
            company_user_id: (n % 2 == 0).then_some(n as i32),
            scopes: "company_user",
            client_id: "frontend".into(),
            issued_at: 100 + n,
            expires_at: 200 + n,
        };
        for rows in [1usize, 2, 8, 64] {
            let ids: Vec<i64> = (1..=rows as i64).collect();
            let values: Vec<Value> = ids.iter().map(|id| (*id).into()).collect();
            assert_same_sized(&LIVE, rows, &values, |b| live_query(b, &ids));

            let news: Vec<NewToken> = ids.iter().map(|n| token(*n)).collect();
            let refs: Vec<&NewToken> = news.iter().collect();
            let values: Vec<Value> = news.iter().flat_map(token_values).collect();
            assert_same_sized(&INSERT_MANY, rows, &values, |b| insert_many_query(b, &refs));

            let claims: Vec<Claim> =
                ids.iter().map(|&id| Claim { old: id, new: id + 1000, now: id + 50 }).collect();
            assert_same_sized(&CLAIM_MANY, rows, &claim_many_values(&claims), |b| {
                claim_many_query(b, &claims)
            });
        }
    }
}
