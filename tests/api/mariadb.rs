//! A throwaway MariaDB server for the test binary (the Spryker import's source): started once
//! from the system's binaries in a temporary directory, one fresh database per test, killed by
//! a watchdog when the test process exits.

use std::sync::{
    OnceLock,
    atomic::{AtomicUsize, Ordering},
};

use sea_orm::ConnectionTrait;

pub struct MariaDb {
    server: testkit::mariadb::Server,
}

static SERVER: OnceLock<Result<MariaDb, String>> = OnceLock::new();
static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

/// Whether `.ci/run` (or a developer) insists on the MariaDB tests running.
pub fn required() -> bool {
    std::env::var("GLUE_AUTH_REQUIRE_MARIADB").is_ok_and(|v| v == "1")
}

/// The shared server, or why there is none.
pub fn server() -> Result<&'static MariaDb, String> {
    SERVER.get_or_init(start).as_ref().map_err(Clone::clone)
}

fn start() -> Result<MariaDb, String> {
    let bins = testkit::mariadb::Binaries::find()
        .ok_or("no MariaDB server binaries (mariadbd, mariadb-install-db)")?;
    let dir = testkit::fresh_temp_dir(&format!("glue-auth-mariadb-{}", std::process::id()))?;
    // Test data need not survive a crash of the machine.
    let settings = ["innodb-flush-log-at-trx-commit=0", "innodb-buffer-pool-size=128M"];
    let mut server = testkit::mariadb::Server::start(&bins, &dir, &settings)?;
    testkit::cleanup_on_exit(&format!(
        "{}; sleep 1; rm -rf {}",
        server.stop_shell(),
        dir.display()
    ))
    .map_err(|e| format!("start the watchdog: {e}"))?;
    server.wait_ready()?;
    Ok(MariaDb { server })
}

impl MariaDb {
    /// Creates an empty database and returns its URL.
    pub async fn fresh_database(&self) -> String {
        let name =
            format!("spryker_{}_{}", std::process::id(), NEXT_DB.fetch_add(1, Ordering::SeqCst));
        let admin =
            sea_orm::Database::connect(self.server.url("mysql")).await.expect("connect to MariaDB");
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name} CHARACTER SET utf8mb4"))
            .await
            .expect("create a database");
        admin.close().await.ok();
        self.server.url(&name)
    }
}
