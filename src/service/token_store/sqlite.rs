//! The token store on a SQLite file (`docs/design/token-store.md` §1, §3): the groups run on
//! a thread that owns the writer connection (rusqlite on the same SQLite library as sqlx),
//! with its statements prepared once and kept; other writes and the login counters have a
//! connection each, taking turns with the groups. The statements, the decisions and the
//! failure handling are `group`'s, as on PostgreSQL.

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    sync::Arc,
    time::Duration,
};

use rusqlite::{Connection, OpenFlags, Row, types::Value as SqlValue};
use sea_orm::{
    DatabaseConnection, DbBackend, DbErr, RuntimeErr, SqlxSqliteConnector, Statement, Value,
    sqlx::sqlite::{SqliteConnectOptions, SqliteSynchronous},
};
use tokio::sync::{Semaphore, mpsc};
use uuid::Uuid;

use super::{
    MAX_BATCH, Presented, Reply, StoreError, Write, Written,
    group::{GroupDb, apply_group, apply_one, fail_all, fail_batch},
};
use crate::{error::Error, service::membership::Usable};

/// Statements a connection keeps prepared: four kinds, each in up to ten sizes.
const PREPARED: usize = 64;

/// The connections of the store on a SQLite file.
pub(super) struct Connections {
    /// For writes other than refresh tokens: a pool of one.
    pub writer: DatabaseConnection,
    /// For the login counters: a pool of one that commits without syncing the WAL.
    pub counters: DatabaseConnection,
    /// Held by the group writer for each group, and by the others for each of their writes.
    pub turn: Arc<Semaphore>,
}

/// The connect options of a SQLite database kept in a file (an in-memory database exists
/// only in the pool that made it, so it gets no second connection).
pub(super) fn file_options(db: &DatabaseConnection) -> Option<SqliteConnectOptions> {
    if db.get_database_backend() != DbBackend::Sqlite {
        return None;
    }
    let options = db.get_sqlite_connection_pool().connect_options();
    let name = options.get_filename().to_string_lossy();
    let in_memory =
        name.is_empty() || name == ":memory:" || name.starts_with("file:sqlx-in-memory");
    (!in_memory).then(|| (*options).clone())
}

/// Opens the connections of the file `db`'s pool opens with `options`, and starts the group
/// writer on `queue`.
pub(super) async fn start(
    db: &DatabaseConnection,
    options: SqliteConnectOptions,
    queue: mpsc::Receiver<(Write, Reply)>,
) -> Result<Connections, StoreError> {
    let target = Target {
        path: options.get_filename().to_path_buf(),
        read_only: read_only(&options),
        busy_timeout: crate::db::SQLITE_BUSY_TIMEOUT,
    };
    let acquire_timeout = db.get_sqlite_connection_pool().options().get_acquire_timeout();
    let counters = options.clone().synchronous(SqliteSynchronous::Normal);
    let counters = pool_of_one(counters, acquire_timeout).await?;
    let writer = pool_of_one(options, acquire_timeout).await?;
    let turn = Arc::new(Semaphore::new(1));
    start_group_writer(target, turn.clone(), queue)?;
    Ok(Connections { writer, counters, turn })
}

/// A pool of one connection to the file of `options`.
async fn pool_of_one(
    options: SqliteConnectOptions,
    acquire_timeout: Duration,
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
        .map_err(|e| DbErr::Conn(RuntimeErr::SqlxError(e.into())))?;
    Ok(SqlxSqliteConnector::from_sqlx_sqlite_pool(pool))
}

/// Whether the pool opens its SQLite file read-only (`mode=ro`, or `immutable`).
fn read_only(options: &SqliteConnectOptions) -> bool {
    use sea_orm::sqlx::ConnectOptions as _;
    options.to_url_lossy().query_pairs().any(|(key, value)| {
        (key == "mode" && value == "ro") || (key == "immutable" && value == "true")
    })
}

/// Where and how to open the writer connection: the pool's file and mode.
#[derive(Debug, Clone)]
struct Target {
    path: std::path::PathBuf,
    read_only: bool,
    busy_timeout: Duration,
}

/// Opens the writer connection (so that a file that cannot be opened fails at start), then
/// starts the thread that commits the groups of `queue`, each while holding `turn`.
fn start_group_writer(
    target: Target,
    turn: Arc<Semaphore>,
    queue: mpsc::Receiver<(Write, Reply)>,
) -> Result<(), StoreError> {
    let conn = open(&target).map_err(db_err)?;
    let writer = Writer { target, conn: Some(conn) };
    std::thread::Builder::new()
        .name("sqlite-writer".into())
        .spawn(move || writer.run(&turn, queue))
        .map_err(StoreError::WriterThread)?;
    Ok(())
}

fn open(target: &Target) -> rusqlite::Result<Connection> {
    let access = if target.read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
    };
    let conn = Connection::open_with_flags(&target.path, access | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(target.busy_timeout)?;
    // As `db::connect` sets them for the pool: WAL (recorded in the file), and every commit
    // synced before it is answered.
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
    conn.set_prepared_statement_cache_capacity(PREPARED);
    Ok(conn)
}

struct Writer {
    target: Target,
    /// `None` after a failure left it inside a transaction: opened again for the next group.
    conn: Option<Connection>,
}

impl Writer {
    fn run(mut self, turn: &Semaphore, mut queue: mpsc::Receiver<(Write, Reply)>) {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread().build() else {
            tracing::error!("the SQLite writer cannot start a runtime: token writes fail");
            return;
        };
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while queue.blocking_recv_many(&mut batch, MAX_BATCH) > 0 {
            let Ok(permit) = runtime.block_on(turn.acquire()) else { return };
            // Should a group panic, its callers get 503 (their reply channels close) and the
            // writer goes on with the next group, on a fresh connection.
            let answers = catch_unwind(AssertUnwindSafe(|| self.commit(&runtime, &mut batch)))
                .unwrap_or_else(|_| {
                    tracing::error!("a group of token writes panicked");
                    self.conn = None;
                    batch.clear();
                    Vec::new()
                });
            drop(permit);
            for (reply, result) in answers {
                // A caller that went away (client disconnected) needs no answer.
                let _ = reply.send(result);
            }
        }
    }

    /// Applies `batch` (emptying it) in one transaction and gives each caller its result, all
    /// of them failed if the transaction could not commit. Multi-row statements first; if one
    /// fails, the group again one write at a time, each in a savepoint.
    fn commit(
        &mut self,
        runtime: &tokio::runtime::Runtime,
        batch: &mut Vec<(Write, Reply)>,
    ) -> Vec<(Reply, Result<Written, Error>)> {
        let conn = match self.connection() {
            Ok(conn) => conn,
            Err(e) => return fail_batch(batch, &e),
        };
        let answers = match begin(conn) {
            Err(e) => fail_batch(batch, &e),
            Ok(()) => {
                let writes: Vec<&Write> = batch.iter().map(|(write, _)| write).collect();
                match runtime.block_on(apply_group(&Direct(conn), &writes)) {
                    Ok(results) => {
                        let replies = batch.drain(..).map(|(_, reply)| reply);
                        match run(conn, "COMMIT") {
                            Ok(()) => replies.zip(results.into_iter().map(Ok)).collect(),
                            Err(e) => fail_all(replies.collect(), &e),
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, writes = batch.len(), "a group of token writes is applied one by one");
                        match run(conn, "ROLLBACK").and_then(|()| begin(conn)) {
                            Ok(()) => each(runtime, conn, batch),
                            Err(e) => fail_batch(batch, &e),
                        }
                    }
                }
            }
        };
        self.settle();
        answers
    }

    /// The connection, opened again if a failure closed it.
    fn connection(&mut self) -> Result<&Connection, StoreError> {
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => open(&self.target).map_err(db_err)?,
        };
        Ok(self.conn.insert(conn))
    }

    /// After a group: a connection still inside a transaction (a COMMIT that failed on a full
    /// disk or an I/O error) is rolled back, or closed if that fails too, so that no later
    /// group runs inside a transaction that will never commit.
    fn settle(&mut self) {
        let Some(conn) = &self.conn else { return };
        if !conn.is_autocommit() && (run(conn, "ROLLBACK").is_err() || !conn.is_autocommit()) {
            self.conn = None;
        }
    }
}

/// The group's transaction: it takes the write lock at once, before its reads.
fn begin(conn: &Connection) -> Result<(), StoreError> {
    run(conn, "BEGIN IMMEDIATE")
}

fn run(conn: &Connection, sql: &str) -> Result<(), StoreError> {
    Ok(conn.execute_batch(sql).map_err(db_err)?)
}

/// The writes of a group that failed, each in a savepoint of the open transaction: one that
/// fails is rolled back to its savepoint and fails only its caller.
fn each(
    runtime: &tokio::runtime::Runtime,
    conn: &Connection,
    batch: &mut Vec<(Write, Reply)>,
) -> Vec<(Reply, Result<Written, Error>)> {
    let mut results = Vec::with_capacity(batch.len());
    let mut pending = batch.drain(..);
    while let Some((write, reply)) = pending.next() {
        // The outer error: the savepoint could not be set, released or rolled back, so the
        // transaction is in doubt and cannot commit.
        let outcome = run(conn, "SAVEPOINT write").and_then(|()| {
            match runtime.block_on(apply_one(&Direct(conn), &write)) {
                Ok(written) => run(conn, "RELEASE write").map(|()| Ok(written)),
                Err(e) => run(conn, "ROLLBACK TO write; RELEASE write").map(|()| Err(e)),
            }
        });
        match outcome {
            Ok(result) => results.push((reply, result.map_err(Error::from))),
            Err(broken) => {
                // Every write of the group fails: those done, this one, and those not tried.
                let replies = results.into_iter().map(|(reply, _)| reply).chain([reply]);
                return fail_all(replies.chain(pending.map(|(_, reply)| reply)).collect(), &broken);
            }
        }
    }
    if let Err(e) = run(conn, "COMMIT") {
        return fail_all(results.into_iter().map(|(reply, _)| reply).collect(), &e);
    }
    results
}

/// [`GroupDb`] on the writer connection: each statement runs at once, on this thread.
struct Direct<'c>(&'c Connection);

impl Direct<'_> {
    fn rows<T>(
        &self,
        stmt: &Statement,
        mut row: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let mut prepared = self.0.prepare_cached(&stmt.sql).map_err(db_err)?;
        let mut rows = prepared.query(rusqlite::params_from_iter(values(stmt)?)).map_err(db_err)?;
        let mut found = Vec::new();
        while let Some(next) = rows.next().map_err(db_err)? {
            found.push(row(next).map_err(db_err)?);
        }
        Ok(found)
    }
}

impl GroupDb for Direct<'_> {
    fn backend(&self) -> DbBackend {
        DbBackend::Sqlite
    }

    async fn presented(&self, stmt: Statement) -> Result<Vec<Presented>, StoreError> {
        // The columns of `presented_query`, in its order.
        self.rows(&stmt, |row| {
            Ok(Presented {
                id: row.get(0)?,
                token_hash: row.get(1)?,
                family_id: row.get(2)?,
                company_user_id: row.get(3)?,
                expires_at: row.get(4)?,
                revoked_at: row.get(5)?,
                rotated_into_id: row.get(6)?,
                customer_id: row.get(7)?,
                customer_reference: row.get(8)?,
                customer_active: row.get(9)?,
                revoked_refresh_tokens_through: row.get(10)?,
                member: row.get(11)?,
            })
        })
    }

    async fn usable(&self, stmt: Statement) -> Result<Vec<(Uuid, Usable)>, StoreError> {
        self.rows(&stmt, |row| {
            Ok((row.get(0)?, Usable { id: row.get(1)?, customer_id: row.get(2)? }))
        })
    }

    async fn ids(&self, stmt: Statement) -> Result<Vec<i64>, StoreError> {
        self.rows(&stmt, |row| row.get(0))
    }

    async fn inserted(&self, stmt: Statement) -> Result<Vec<(i64, String)>, StoreError> {
        self.rows(&stmt, |row| Ok((row.get(0)?, row.get(1)?)))
    }

    async fn execute(&self, stmt: Statement) -> Result<u64, StoreError> {
        let mut prepared = self.0.prepare_cached(&stmt.sql).map_err(db_err)?;
        let changed =
            prepared.execute(rusqlite::params_from_iter(values(&stmt)?)).map_err(db_err)?;
        Ok(changed as u64)
    }
}

/// A statement's values as SQLite stores them, as sqlx binds them: a uuid as its 16 bytes,
/// a boolean as 0 or 1.
fn values(stmt: &Statement) -> Result<Vec<SqlValue>, StoreError> {
    let Some(values) = &stmt.values else { return Ok(Vec::new()) };
    values.0.iter().map(value).collect()
}

fn value(value: &Value) -> Result<SqlValue, StoreError> {
    let integer = |v: Option<i64>| v.map_or(SqlValue::Null, SqlValue::Integer);
    Ok(match value {
        Value::Bool(v) => integer(v.map(i64::from)),
        Value::TinyInt(v) => integer(v.map(i64::from)),
        Value::SmallInt(v) => integer(v.map(i64::from)),
        Value::Int(v) => integer(v.map(i64::from)),
        Value::BigInt(v) => integer(*v),
        Value::TinyUnsigned(v) => integer(v.map(i64::from)),
        Value::SmallUnsigned(v) => integer(v.map(i64::from)),
        Value::Unsigned(v) => integer(v.map(i64::from)),
        Value::String(v) => v.as_ref().map_or(SqlValue::Null, |s| SqlValue::Text(s.to_string())),
        Value::Uuid(v) => v.map_or(SqlValue::Null, |u| SqlValue::Blob(u.as_bytes().to_vec())),
        other => return Err(StoreError::Unbindable(format!("{other:?}"))),
    })
}

/// rusqlite's error as sqlx's would be classed (`crate::error::is_unavailable`): storage
/// that fails (read-only, I/O error, corrupt, full, cannot open) is the database being
/// unavailable; anything else, a statement that failed.
fn db_err(err: rusqlite::Error) -> DbErr {
    let storage = match &err {
        rusqlite::Error::SqliteFailure(failure, _) => {
            matches!(failure.extended_code & 0xff, 8 | 10 | 11 | 13 | 14)
        }
        _ => false,
    };
    let runtime = RuntimeErr::Internal(format!("SQLite writer: {err}"));
    if storage { DbErr::Conn(runtime) } else { DbErr::Exec(runtime) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_bound_as_sqlx_binds_them() {
        let uuid = Uuid::new_v4();
        let bound = |v: Value| value(&v).unwrap();
        assert_eq!(bound(Value::from(uuid)), SqlValue::Blob(uuid.as_bytes().to_vec()));
        assert_eq!(bound(Value::from(true)), SqlValue::Integer(1));
        assert_eq!(bound(Value::from(7_i32)), SqlValue::Integer(7));
        assert_eq!(bound(Value::from(i64::MAX)), SqlValue::Integer(i64::MAX));
        assert_eq!(bound(Value::from("a")), SqlValue::Text("a".into()));
        assert_eq!(bound(Value::Int(None)), SqlValue::Null);
        assert_eq!(bound(Value::Uuid(None)), SqlValue::Null);
        assert!(value(&Value::from(1.5_f64)).is_err(), "no column of ours takes a float");
    }

    /// `Direct` reads rows by column index, `Orm` by name: the same rows must come out the
    /// same, every column set (a mapping that swapped two columns of one type would not
    /// fail otherwise).
    #[tokio::test]
    async fn the_writer_reads_each_row_as_sea_orm_does() {
        use migration::MigratorTrait as _;
        use sea_orm::ConnectionTrait as _;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let db = sea_orm::Database::connect(url).await.unwrap();
        migration::Migrator::up(&db, None).await.unwrap();
        let (company, member, family) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let rows: [(&str, Vec<Value>); 5] = [
            (
                "INSERT INTO company (id, uuid, name, status, is_active) \
                 VALUES (3, ?, 'Acme', 'approved', 1)",
                vec![company.into()],
            ),
            (
                "INSERT INTO customer (id, customer_reference, email, email_normalized, \
                 is_active, created_at, revoked_refresh_tokens_through) \
                 VALUES (7, 'DE--7', 'a@b.c', 'a@b.c', 1, 1, 2)",
                vec![],
            ),
            (
                "INSERT INTO company_user (id, uuid, customer_id, company_id, is_active, \
                 is_default, created_at) VALUES (11, ?, 7, 3, 1, 1, 1)",
                vec![member.into()],
            ),
            // A company-user token, revoked and rotated; and a customer token.
            (
                "INSERT INTO refresh_token (id, token_hash, family_id, customer_id, \
                 company_user_id, scopes, client_id, issued_at, expires_at, revoked_at, \
                 rotated_into_id) VALUES (1, 'one', ?, 7, 11, 's', 'c', 1, 90, 5, 2)",
                vec![family.into()],
            ),
            (
                "INSERT INTO refresh_token (id, token_hash, family_id, customer_id, scopes, \
                 client_id, issued_at, expires_at) VALUES (2, 'two', ?, 7, 's', 'c', 1, 91)",
                vec![family.into()],
            ),
        ];
        for (sql, values) in rows {
            db.execute_raw(Statement::from_sql_and_values(DbBackend::Sqlite, sql, values))
                .await
                .unwrap();
        }
        let conn =
            open(&Target { path, read_only: false, busy_timeout: crate::db::SQLITE_BUSY_TIMEOUT })
                .unwrap();
        let (orm, direct) = (super::super::group::Orm(&db), Direct(&conn));

        let hashes = ["one", "two"].map(Value::from);
        let stmt = super::super::statements::PRESENTED.bind(DbBackend::Sqlite, 2, hashes);
        let by_id = |mut rows: Vec<Presented>| {
            rows.sort_by_key(|row| row.id);
            format!("{rows:?}")
        };
        let expected = by_id(orm.presented(stmt.clone()).await.unwrap());
        assert!(expected.contains("revoked_at: Some(5)") && expected.contains("Some(11)"));
        assert!(expected.contains(&format!("member: Some({member})")), "{expected}");
        assert_eq!(by_id(direct.presented(stmt).await.unwrap()), expected);

        let stmt = crate::service::membership::usable_ids_statement(DbBackend::Sqlite, &[member]);
        let expected = format!("{:?}", orm.usable(stmt.clone()).await.unwrap());
        assert!(expected.contains("id: 11, customer_id: 7"), "{expected}");
        assert_eq!(format!("{:?}", direct.usable(stmt).await.unwrap()), expected);
    }

    #[test]
    fn failing_storage_is_unavailable_and_a_failing_statement_is_not() {
        let failure = |code: std::ffi::c_int| {
            db_err(rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None))
        };
        for code in [
            rusqlite::ffi::SQLITE_FULL,
            rusqlite::ffi::SQLITE_IOERR_WRITE,
            rusqlite::ffi::SQLITE_READONLY,
            rusqlite::ffi::SQLITE_CANTOPEN,
        ] {
            assert!(crate::error::is_unavailable(&failure(code)), "code {code}");
        }
        for code in [rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY, rusqlite::ffi::SQLITE_ERROR] {
            assert!(!crate::error::is_unavailable(&failure(code)), "code {code}");
        }
    }
}
