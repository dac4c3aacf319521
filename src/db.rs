//! Opening the database: the pool, SQLite's durability settings, and the migrations.

use std::time::Duration;

use migration::MigratorTrait;
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

use crate::config::Config;

/// How long a SQLite connection waits for a lock another connection or process holds.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to `url` and applies pending migrations.
pub async fn connect(url: &str, config: &Config) -> Result<DatabaseConnection, DbErr> {
    if let Some(path) = sqlite_file(url)
        && let Some(dir) = std::path::Path::new(path).parent().filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(|e| {
            DbErr::Custom(format!("cannot create the directory {}: {e}", dir.display()))
        })?;
    }
    let timeout = Duration::from_secs(config.database_timeout);
    let cache_size = format!("-{}", config.sqlite_cache_kib);
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(config.database_max_connections.unwrap_or_else(|| default_pool(url)))
        .min_connections(1)
        .connect_timeout(timeout)
        .acquire_timeout(timeout)
        .sqlx_logging(false)
        // WAL lets readers work beside the one writer. `synchronous = FULL` syncs the WAL at
        // every commit, so a token is never answered before its row survives a power cut.
        .map_sqlx_sqlite_opts(move |opts| {
            opts.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
                .pragma("cache_size", cache_size.clone())
        });
    // sqlx pings a pooled connection before every checkout: a second round trip per query.
    // A SQLite file cannot hang up, so its connections are not pinged. PostgreSQL's are:
    // the ping runs within the acquire timeout, and it is what bounds a request to a server
    // that stopped answering (a query in flight has no client-side timeout).
    if url.starts_with("sqlite:") {
        options.test_before_acquire(false);
    }
    let db = Database::connect(options).await?;
    migration::Migrator::up(&db, None).await?;
    Ok(db)
}

/// The pool size without `--database-max-connections`: 2 per CPU on SQLite, 8 otherwise.
fn default_pool(url: &str) -> u32 {
    if url.starts_with("sqlite:") {
        u32::try_from(crate::config::cpus().saturating_mul(2)).unwrap_or(u32::MAX)
    } else {
        8
    }
}

/// The file path of a `sqlite://` URL, if it names a file.
fn sqlite_file(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then_some(path)
}
