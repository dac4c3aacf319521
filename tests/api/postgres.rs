//! A throwaway PostgreSQL cluster for the test binary: started once from the system's server
//! binaries in a temporary directory, one fresh database per test, stopped by a watchdog
//! when the test process exits (libtest runs no teardown, even after a failure).

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{
        OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

/// Where tests get PostgreSQL databases from.
pub struct Postgres {
    /// URL of the maintenance database, where test databases are created.
    admin_url: String,
}

static CLUSTER: OnceLock<Result<Postgres, String>> = OnceLock::new();
static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

/// Whether `.ci/run` (or a developer) insists on PostgreSQL tests running.
pub fn required() -> bool {
    std::env::var("GLUE_AUTH_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

/// The shared server, or why there is none.
pub fn server() -> Result<&'static Postgres, String> {
    CLUSTER
        .get_or_init(|| match std::env::var("GLUE_AUTH_TEST_DATABASE_URL") {
            Ok(url) => Ok(Postgres { admin_url: url }),
            Err(_) => start_cluster(),
        })
        .as_ref()
        .map_err(Clone::clone)
}

impl Postgres {
    /// Creates an empty database and returns its URL.
    pub async fn fresh_database(&self) -> String {
        use sea_orm::ConnectionTrait;
        let name =
            format!("glue_test_{}_{}", std::process::id(), NEXT_DB.fetch_add(1, Ordering::SeqCst));
        let admin =
            sea_orm::Database::connect(&self.admin_url).await.expect("connect to PostgreSQL");
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create a test database");
        admin.close().await.ok();
        let (base, _) = self.admin_url.rsplit_once('/').expect("a database URL has a path");
        format!("{base}/{name}")
    }
}

fn bin_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    if let Some(path) = std::env::var_os("PATH") {
        // Resolve symlinks: a PATH entry may link `initdb` alone, not its sibling tools.
        let found = std::env::split_paths(&path)
            .map(|d| d.join("initdb"))
            .find(|f| f.is_file())
            .and_then(|f| std::fs::canonicalize(f).ok())
            .and_then(|f| f.parent().map(Path::to_path_buf));
        if found.is_some() {
            return found;
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").is_file())
        .collect();
    versions.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions.pop()
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            .is_some_and(|euid| euid == "0")
    })
}

/// A command run as the unprivileged `postgres` user when we are root (initdb and postgres
/// refuse to run as root).
fn as_server_user(program: &Path) -> Command {
    if running_as_root() {
        let mut cmd = Command::new("runuser");
        cmd.arg("-u").arg("postgres").arg("--").arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn start_cluster() -> Result<Postgres, String> {
    let bin = bin_dir()
        .ok_or("no PostgreSQL server binaries (PATH, PG_BIN, /usr/lib/postgresql/*/bin)")?;
    let dir = std::env::temp_dir().join(format!("glue-auth-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    if running_as_root() {
        let status = Command::new("chown")
            .arg("postgres:postgres")
            .arg(&dir)
            .status()
            .map_err(|e| format!("chown: {e}"))?;
        if !status.success() {
            return Err("cannot hand the cluster directory to the postgres user".into());
        }
    }
    let data = dir.join("data");
    let out = as_server_user(&bin.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"])
        .output()
        .map_err(|e| format!("initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!("initdb failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    let log = std::fs::File::create(dir.join("server.log")).map_err(|e| e.to_string())?;
    let server = as_server_user(&bin.join("postgres"))
        .arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string(), "-k"])
        .arg(&dir)
        .args([
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
        ])
        .args(["-c", "full_page_writes=off", "-c", "max_connections=300"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("start postgres: {e}"))?;

    // The watchdog outlives us: when this test process is gone, it stops the server and
    // removes the directory.
    let pg_ctl = bin.join("pg_ctl");
    let stop = if running_as_root() {
        format!(
            "runuser -u postgres -- {} -D {} stop -m immediate",
            pg_ctl.display(),
            data.display()
        )
    } else {
        format!("{} -D {} stop -m immediate", pg_ctl.display(), data.display())
    };
    let script = format!(
        "while kill -0 {me} 2>/dev/null; do sleep 0.5; done; {stop} >/dev/null 2>&1; \
         kill {server} 2>/dev/null; sleep 1; rm -rf {dir}",
        me = std::process::id(),
        server = server.id(),
        dir = dir.display()
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("start the watchdog: {e}"))?;

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let probe = Command::new(bin.join("pg_isready"))
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
            .output();
        if probe.as_ref().is_ok_and(|out| out.status.success()) {
            break;
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
            return Err(format!("PostgreSQL did not start within 60 s ({probe:?}):\n{log}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(Postgres { admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres") })
}
