//! Opening the database: the pool, SQLite's durability settings, and the migrations.

use std::time::Duration;

use migration::MigratorTrait;
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

use crate::config::Config;

/// How long a SQLite connection waits for a lock another connection or process holds.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Db(#[from] DbErr),
    /// A URL of a database the service does not keep its data in (MySQL is only a source
    /// of `import-spryker`).
    #[error("the database URL must start with sqlite: or postgres://, not `{0}`")]
    Unsupported(String),
    /// The SQLite file or its directory could not be made private (`docs/security.md` §6).
    #[error("cannot {what} {}", path.display())]
    File {
        what: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Connects to `url` and applies pending migrations.
pub async fn connect(url: &str, config: &Config) -> Result<DatabaseConnection, ConnectError> {
    if !["sqlite:", "postgres://", "postgresql://"].iter().any(|s| url.starts_with(s)) {
        let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
        return Err(ConnectError::Unsupported(format!("{scheme}:")));
    }
    if let Some(path) = sqlite_file(url) {
        // Only `mode=rwc` lets SQLite create a missing file; otherwise a missing one stays an
        // error of SQLite's.
        private_sqlite_file(std::path::Path::new(path), url.contains("mode=rwc"))?;
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

/// Makes the SQLite file at `path` readable by its owner only before SQLite opens it: its
/// directory, if it has to be made, with mode 0700, and the file with 0600 (an existing one
/// that others could read is narrowed to 0600). SQLite gives its `-wal` and `-shm` files
/// the mode of the database file. The file holds password hashes and e-mails.
fn private_sqlite_file(path: &std::path::Path, create: bool) -> Result<(), ConnectError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    let failed = |what: &'static str, source: std::io::Error| ConnectError::File {
        what,
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| create && !d.as_os_str().is_empty() && !d.exists())
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| failed("create the directory of", e))?;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .mode(0o600)
        .open(path);
    // A read-only file or directory (`mode=ro`, a read-only mount) is SQLite's to refuse or
    // open; only a file we could open is narrowed.
    let Ok(file) = file else { return Ok(()) };
    let mode = file.metadata().map_err(|e| failed("read the mode of", e))?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(file = %path.display(), mode = format!("{:04o}", mode & 0o7777), "the database file was readable by others: narrowed to 0600");
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| failed("narrow the mode of", e))?;
    }
    Ok(())
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
