//! Every write of the service goes through the [`TokenStore`]: refresh-token writes are
//! committed in groups by one writer, other writes take turns with them. Why, and what each
//! step bought, is in `docs/design/token-store.md`.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use entity::{customer, refresh_token};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    FromQueryResult, JoinType, QueryFilter, QuerySelect, QueryTrait, SqlxSqliteConnector,
    Statement, StatementBuilder, TransactionTrait, Value,
    sea_query::{Expr, ExprTrait, LockType, Order, Query},
};
use tokio::sync::{Semaphore, SemaphorePermit, mpsc, oneshot};
use uuid::Uuid;

mod sqlite_writer;

use super::{
    membership::{self, Usable},
    sql::SizedSql,
};
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
    /// `sqlite_writer`) and another for other writes; on PostgreSQL, uses the shared pool.
    /// Either way starts the group commits. An in-memory SQLite database (tests) is written
    /// directly.
    pub async fn open(db: &DatabaseConnection) -> Result<Self, DbErr> {
        let (sender, receiver) = mpsc::channel(QUEUE);
        if db.get_database_backend() == DbBackend::Postgres {
            tokio::spawn(group_commits(db.clone(), receiver));
            let counters = postgres_counters(db);
            return Ok(Self { writer: db.clone(), counters, queue: Some(sender), turn: None });
        }
        let Some(options) = sqlite_file_options(db) else {
            return Ok(Self { writer: db.clone(), counters: db.clone(), queue: None, turn: None });
        };
        let pool = db.get_sqlite_connection_pool();
        let target = sqlite_writer::Target {
            path: options.get_filename().to_path_buf(),
            read_only: sqlite_read_only(&options),
            busy_timeout: crate::db::SQLITE_BUSY_TIMEOUT,
        };
        let acquire_timeout = pool.options().get_acquire_timeout();
        let counters =
            options.clone().synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal);
        let counters = other_writes(counters, acquire_timeout).await?;
        let writer = other_writes(options, acquire_timeout).await?;
        let turn = Arc::new(Semaphore::new(1));
        sqlite_writer::start(target, turn.clone(), receiver)?;
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
            return Ok(apply_alone(&self.writer, &write).await?);
        };
        let (reply, answer) = oneshot::channel();
        let gone = || Error::unavailable("the database writer has stopped");
        queue.send((write, reply)).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

/// The connection of a SQLite file for [`TokenStore::writer`]: a pool of one.
async fn other_writes(
    options: sea_orm::sqlx::sqlite::SqliteConnectOptions,
    acquire_timeout: std::time::Duration,
) -> Result<DatabaseConnection, DbErr> {
    let pool = sea_orm::sqlx::pool::PoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        // A file cannot hang up: no ping before each checkout (see `db::connect`).
        .test_before_acquire(false)
        .acquire_timeout(acquire_timeout)
        // After a failed COMMIT (full disk, I/O error) sqlx's idea of the open
        // transaction can differ from SQLite's: later writes then ran as savepoints of a
        // transaction that never committed. A connection still inside a transaction when
        // it comes back is closed instead (the pool opens a fresh one).
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

/// The connections of login counters on PostgreSQL: a small pool of the same server whose
/// commits do not wait for the WAL flush (`synchronous_commit = off`), opened lazily. Two
/// counter commits per login, each flushed, cost PostgreSQL CPU on the cores Argon2 needs.
fn postgres_counters(db: &DatabaseConnection) -> DatabaseConnection {
    let pool = db.get_postgres_connection_pool();
    let options = (*pool.connect_options()).clone().options([("synchronous_commit", "off")]);
    let counters = sea_orm::sqlx::pool::PoolOptions::new()
        .max_connections(COUNTER_CONNECTIONS)
        .acquire_timeout(pool.options().get_acquire_timeout())
        .connect_lazy_with(options);
    sea_orm::SqlxPostgresConnector::from_sqlx_postgres_pool(counters)
}

/// Connections of [`postgres_counters`]: a counter write is one short statement.
const COUNTER_CONNECTIONS: u32 = 2;

/// Whether the pool opens its SQLite file read-only (`mode=ro`, or `immutable`).
fn sqlite_read_only(options: &sea_orm::sqlx::sqlite::SqliteConnectOptions) -> bool {
    use sea_orm::sqlx::ConnectOptions as _;
    options.to_url_lossy().query_pairs().any(|(key, value)| {
        (key == "mode" && value == "ro") || (key == "immutable" && value == "true")
    })
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
async fn apply_alone(db: &DatabaseConnection, write: &Write) -> Result<Written, DbErr> {
    let txn = db.begin().await?;
    let written = apply_one(&Orm(&txn), write).await?;
    txn.commit().await?;
    Ok(written)
}

/// [`apply_group`] for a single write.
async fn apply_one(db: &impl GroupDb, write: &Write) -> Result<Written, DbErr> {
    apply_group(db, &[write])
        .await?
        .pop()
        .ok_or_else(|| DbErr::Custom("a write gave no result".into()))
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

/// The tokens stored as `hashes` that exist, as [`Presented`].
fn presented_query(backend: DbBackend, hashes: &[&str]) -> Statement {
    use refresh_token::Column as T;
    let owner = refresh_token::Entity::belongs_to(customer::Entity)
        .from(T::CustomerId)
        .to(customer::Column::Id)
        .into();
    refresh_token::Entity::find()
        .select_only()
        .columns([T::Id, T::TokenHash, T::FamilyId, T::CompanyUserId, T::ExpiresAt])
        .columns([T::RevokedAt, T::RotatedIntoId, T::CustomerId])
        .column(customer::Column::CustomerReference)
        .column_as(customer::Column::IsActive, "customer_active")
        .column(customer::Column::RevokedRefreshTokensThrough)
        .expr_as(
            Expr::case(
                Expr::col(T::CompanyUserId.as_column_ref()).is_null(),
                membership::default_uuid_of(backend, Expr::col(T::CustomerId.as_column_ref())),
            )
            .finally(membership::usable_uuid_by_id(
                Expr::col(T::CustomerId.as_column_ref()),
                Expr::col(T::CompanyUserId.as_column_ref()),
            )),
            "member",
        )
        .join(JoinType::InnerJoin, owner)
        .filter(T::TokenHash.is_in(hashes.iter().copied()))
        .build(backend)
}
static PRESENTED: SizedSql = SizedSql::new(|backend, n| presented_query(backend, &vec![""; n]));

/// On PostgreSQL, which of `n` tokens are live (not revoked): their ids, locked.
///
/// The tokens found live are locked until the group commits (`FOR UPDATE`, in the order of
/// their ids, as every group takes them), and so are their customers' rows (`FOR SHARE`). A
/// rotation of one of them by another instance waits for the commit, then finds it revoked.
/// A "revoke all" locks the customer first: it waits for the commit, then sees the group's
/// new tokens; a group that comes after it waits for it, then reads the customer's new mark
/// (a locked row is read again as committed, with the join's condition).
fn live_query(olds: &[i64]) -> Statement {
    use customer::Column as C;
    use refresh_token::Column as T;
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
    let mut stmt = StatementBuilder::build(&select, &DbBackend::Postgres);
    stmt.sql.push_str(" FOR SHARE OF \"customer\"");
    stmt
}
static LIVE: SizedSql = SizedSql::new(|_, n| live_query(&vec![0; n]));

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

/// A write of a group, once what decides it (its presented token, its membership) is read.
enum Plan<'a> {
    Insert(&'a NewToken),
    ForMember(NewToken),
    Rotate(&'a Presented, NewToken),
    Done(Written),
}

/// Each of `items` once, in no set order (one row per key in a multi-row read).
fn distinct<T: std::hash::Hash + Eq>(items: impl Iterator<Item = T>) -> Vec<T> {
    items.collect::<HashSet<_>>().into_iter().collect()
}

/// The reads and writes of a group, one statement each (at most [`SizedSql::MAX`] rows),
/// with its rows read as each needs: through sea-orm ([`Orm`]: PostgreSQL, an in-memory
/// SQLite database) or on SQLite's writer connection itself (`sqlite_writer::Direct`).
trait GroupDb {
    fn backend(&self) -> DbBackend;
    /// The rows of [`PRESENTED`].
    async fn presented(&self, stmt: Statement) -> Result<Vec<Presented>, DbErr>;
    /// The rows of `membership::usable_ids_statement`: each membership's uuid, id and
    /// customer.
    async fn usable(&self, stmt: Statement) -> Result<Vec<(Uuid, Usable)>, DbErr>;
    /// The ids of [`LIVE`] (PostgreSQL only).
    async fn ids(&self, stmt: Statement) -> Result<Vec<i64>, DbErr>;
    /// The rows of [`INSERT_MANY`]: each new token's id and stored form.
    async fn inserted(&self, stmt: Statement) -> Result<Vec<(i64, String)>, DbErr>;
    /// Runs [`CLAIM_MANY`]: how many rows it changed.
    async fn execute(&self, stmt: Statement) -> Result<u64, DbErr>;
}

/// [`GroupDb`] through sea-orm.
struct Orm<'a, C>(&'a C);

impl<C: ConnectionTrait> GroupDb for Orm<'_, C> {
    fn backend(&self) -> DbBackend {
        self.0.get_database_backend()
    }

    async fn presented(&self, stmt: Statement) -> Result<Vec<Presented>, DbErr> {
        let rows = self.0.query_all_raw(stmt).await?;
        rows.iter().map(|row| Presented::from_query_result(row, "")).collect()
    }

    async fn usable(&self, stmt: Statement) -> Result<Vec<(Uuid, Usable)>, DbErr> {
        let rows = self.0.query_all_raw(stmt).await?;
        rows.iter()
            .map(|row| {
                let usable =
                    Usable { id: row.try_get_by_index(1)?, customer_id: row.try_get_by_index(2)? };
                Ok((row.try_get_by_index(0)?, usable))
            })
            .collect()
    }

    async fn ids(&self, stmt: Statement) -> Result<Vec<i64>, DbErr> {
        let rows = self.0.query_all_raw(stmt).await?;
        rows.iter().map(|row| row.try_get_by_index(0)).collect()
    }

    async fn inserted(&self, stmt: Statement) -> Result<Vec<(i64, String)>, DbErr> {
        let rows = self.0.query_all_raw(stmt).await?;
        rows.iter().map(|row| Ok((row.try_get_by_index(0)?, row.try_get_by_index(1)?))).collect()
    }

    async fn execute(&self, stmt: Statement) -> Result<u64, DbErr> {
        Ok(self.0.execute_raw(stmt).await?.rows_affected())
    }
}

/// Applies a group of writes with multi-row statements (see the module documentation):
/// each write's result, or the first error (the caller rolls the group back).
async fn apply_group(db: &impl GroupDb, writes: &[&Write]) -> Result<Vec<Written>, DbErr> {
    let backend = db.backend();
    let hashes = distinct(writes.iter().filter_map(|w| match w {
        Write::Refresh { presented, .. } => Some(presented.as_str()),
        Write::Insert(_) | Write::ForMember { .. } => None,
    }));
    let mut found = HashMap::with_capacity(hashes.len());
    for chunk in SizedSql::split(&hashes) {
        let stmt = PRESENTED.bind(backend, chunk.len(), chunk.iter().map(|h| Value::from(*h)));
        found.extend(db.presented(stmt).await?.into_iter().map(|t| (t.token_hash.clone(), t)));
    }
    let members = distinct(writes.iter().filter_map(|w| match w {
        Write::ForMember { member, .. } => Some(*member),
        _ => None,
    }));
    let mut usable = HashMap::with_capacity(members.len());
    for chunk in SizedSql::split(&members) {
        usable.extend(db.usable(membership::usable_ids_statement(backend, chunk)).await?);
    }
    // Which of them are live. On SQLite what was just read: nothing else writes until the
    // commit. On PostgreSQL they are read again, locked (see `live_query`).
    let mut live: HashSet<i64> =
        found.values().filter(|t| t.revoked_at.is_none()).map(|t| t.id).collect();
    if backend == DbBackend::Postgres {
        let ids: Vec<i64> = live.drain().collect();
        for chunk in SizedSql::split(&ids) {
            let stmt = LIVE.bind(backend, chunk.len(), chunk.iter().map(|id| Value::from(*id)));
            live.extend(db.ids(stmt).await?);
        }
    }
    // Every new token: the inserts, and the successors of the first refresh of each live
    // token that may be rotated (a later refresh of the same token lost to it, and so did
    // one of a token no longer live).
    let plans: Vec<Plan> = writes
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
    let rows: Vec<&NewToken> = plans
        .iter()
        .filter_map(|plan| match plan {
            Plan::Insert(new) => Some(*new),
            Plan::ForMember(new) | Plan::Rotate(_, new) => Some(new),
            Plan::Done(_) => None,
        })
        .collect();
    let mut ids: HashMap<String, i64> = HashMap::with_capacity(rows.len());
    for chunk in SizedSql::split(&rows) {
        let values = chunk.iter().flat_map(|new| token_values(new));
        let stmt = INSERT_MANY.bind(backend, chunk.len(), values);
        ids.extend(db.inserted(stmt).await?.into_iter().map(|(id, hash)| (hash, id)));
    }
    let id_of =
        |new: &NewToken| ids.get(new.token_hash.as_str()).copied().ok_or(DbErr::RecordNotInserted);
    let claims = plans
        .iter()
        .filter_map(|plan| match plan {
            Plan::Rotate(old, new) => Some((old.id, new)),
            _ => None,
        })
        .map(|(old, new)| Ok(Claim { old, new: id_of(new)?, now: new.issued_at }))
        .collect::<Result<Vec<_>, DbErr>>()?;
    for chunk in SizedSql::split(&claims) {
        let stmt = CLAIM_MANY.bind(backend, chunk.len(), claim_many_values(chunk));
        let claimed = db.execute(stmt).await?;
        if claimed != chunk.len() as u64 {
            // Cannot happen: nothing else writes them until the commit (on SQLite there is no
            // other writer, PostgreSQL holds their locks); never commit a successor beside a
            // live token.
            return Err(DbErr::Custom(format!("{claimed} of {} tokens claimed", chunk.len())));
        }
    }
    plans
        .into_iter()
        .map(|plan| match plan {
            Plan::Insert(new) => id_of(new).map(Written::Inserted),
            Plan::ForMember(new) => Ok(Written::ForMember(Some(id_of(&new)?))),
            // Claimed above, with its successor's id.
            Plan::Rotate(old, _) => Ok(Written::Refreshed(Refreshed::Rotated(old.clone()))),
            Plan::Done(written) => Ok(written),
        })
        .collect()
}

/// Groups committing at once on PostgreSQL. One group at a time left its CPU idle: each
/// group waits for five round trips and a WAL flush. Groups in flight together lock their
/// tokens in the same order (by id), so they cannot deadlock one another; and PostgreSQL
/// flushes their commits together.
const POSTGRES_GROUPS: usize = 3;

/// The group-commit task on PostgreSQL (on a SQLite file, `sqlite_writer`): runs until every
/// [`TokenStore`] clone is dropped, up to [`POSTGRES_GROUPS`] groups at once.
async fn group_commits(writer: DatabaseConnection, mut queue: mpsc::Receiver<(Write, Reply)>) {
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
        Err(e) => return fail_batch(batch, &e),
    };
    let writes: Vec<&Write> = batch.iter().map(|(write, _)| write).collect();
    match apply_group(&Orm(&txn), &writes).await {
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
            let mut results = Vec::with_capacity(batch.len());
            for (write, reply) in batch.drain(..) {
                results.push((reply, apply_alone(writer, &write).await.map_err(Error::from)));
            }
            results
        }
    }
}

/// Fails every write of `batch` (emptying it) with `err`: see [`fail_all`].
fn fail_batch(
    batch: &mut Vec<(Write, Reply)>,
    err: &DbErr,
) -> Vec<(Reply, Result<Written, Error>)> {
    fail_all(batch.drain(..).map(|(_, reply)| reply).collect(), err)
}

/// The same error for every caller of a group that did not commit.
fn fail_all(replies: Vec<Reply>, err: &DbErr) -> Vec<(Reply, Result<Written, Error>)> {
    tracing::error!(error = %err, writes = replies.len(), "a group of token writes failed");
    let unavailable = crate::error::is_unavailable(err);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::sql::tests::assert_same_sized;

    #[test]
    fn on_postgres_the_live_tokens_and_their_customers_are_locked_in_order() {
        let sql = live_query(&[3, 1, 2]).sql;
        assert!(
            sql.ends_with(
                "ORDER BY \"refresh_token\".\"id\" ASC \
                 FOR UPDATE OF \"refresh_token\" FOR SHARE OF \"customer\""
            ),
            "{sql}"
        );
        // The customer's mark is a condition of the join, read again on a locked row.
        assert!(sql.contains("INNER JOIN \"customer\""), "{sql}");
    }

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
            let locked = LIVE.bind(DbBackend::Postgres, rows, values.iter().cloned());
            assert_eq!(locked, live_query(&ids));

            let hashes: Vec<String> = ids.iter().map(|n| format!("hash {n}")).collect();
            let hashes: Vec<&str> = hashes.iter().map(String::as_str).collect();
            let values: Vec<Value> = hashes.iter().map(|h| (*h).into()).collect();
            assert_same_sized(&PRESENTED, rows, &values, |b| presented_query(b, &hashes));

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
