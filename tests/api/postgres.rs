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

/// Runs the shell command `cleanup` once this test process has exited, however it ends (libtest
/// runs no teardown after a failure). Kill the returned watchdog to call it off.
pub fn cleanup_on_exit(cleanup: &str) -> std::io::Result<std::process::Child> {
    let script = format!(
        "while kill -0 {me} 2>/dev/null; do sleep 0.5; done; {cleanup}",
        me = std::process::id()
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}

static NEXT_OWN_CLUSTER: AtomicUsize = AtomicUsize::new(0);

/// A PostgreSQL cluster of one test's own, which the test may stop and start again on the same
/// port and data directory (the shared cluster above is never stopped). Dropping it stops the
/// server and removes its directory; a watchdog does the same if the test process dies first.
pub struct OwnCluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    watchdog: Option<std::process::Child>,
}

impl OwnCluster {
    /// Creates a cluster in a temporary directory and starts it, or says why it cannot.
    pub fn start() -> Result<Self, String> {
        let bin = bin_dir()
            .ok_or("no PostgreSQL server binaries (PATH, PG_BIN, /usr/lib/postgresql/*/bin)")?;
        let dir = std::env::temp_dir().join(format!(
            "glue-auth-own-pg-{}-{}",
            std::process::id(),
            NEXT_OWN_CLUSTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let mut cluster = Self { bin, dir, port: 0, watchdog: None };
        // From here on, dropping `cluster` (or the end of this process) cleans up.
        // A frozen server (see `freeze`) is resumed first, or it would not even quit.
        let thaw = format!(
            "pm=$(head -n 1 {}/postmaster.pid) && kill -CONT $pm && \
             ps -o pid= --ppid $pm | xargs -r kill -CONT",
            cluster.data().display()
        );
        let stop = cluster.pg_ctl_shell("stop -m immediate");
        let cleanup = format!(
            "{{ {thaw}; }} >/dev/null 2>&1; {stop} >/dev/null 2>&1; rm -rf {}",
            cluster.dir.display()
        );
        cluster.watchdog =
            Some(cleanup_on_exit(&cleanup).map_err(|e| format!("start the watchdog: {e}"))?);
        if running_as_root() {
            let status = Command::new("chown")
                .arg("postgres:postgres")
                .arg(&cluster.dir)
                .status()
                .map_err(|e| format!("chown: {e}"))?;
            if !status.success() {
                return Err("cannot hand the cluster directory to the postgres user".into());
            }
        }
        let out = as_server_user(&cluster.bin.join("initdb"))
            .arg("-D")
            .arg(cluster.data())
            .args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"])
            .output()
            .map_err(|e| format!("initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!("initdb failed: {}", String::from_utf8_lossy(&out.stderr)));
        }
        cluster.port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        // The settings go into the data directory, so a restart keeps port and socket.
        // `synchronous_commit` stays on: this cluster is killed (`stop -m immediate`), and
        // with it off a commit is acknowledged before its WAL is written, so the last
        // ~200 ms of acknowledged commits (a rotated refresh token) would be lost. Without
        // `fsync` the WAL still reaches the kernel before the answer, which a killed server
        // keeps (the machine does not crash).
        let settings = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n\
             fsync = off\nsynchronous_commit = on\nfull_page_writes = off\n\
             max_connections = 50\nshared_buffers = 16MB\n",
            cluster.port,
            cluster.dir.display()
        );
        {
            use std::io::Write;
            std::fs::OpenOptions::new()
                .append(true)
                .open(cluster.data().join("postgresql.conf"))
                .and_then(|mut f| f.write_all(settings.as_bytes()))
                .map_err(|e| format!("configure the cluster: {e}"))?;
        }
        cluster.pg_ctl(&["start", "-w", "-t", "60", "-l"], Some("server.log"))?;
        Ok(cluster)
    }

    /// The URL of the cluster's `postgres` database (the test owns the whole cluster).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server (`fast`: clients are disconnected and it shuts down cleanly;
    /// `immediate`: it quits at once, like a crash, and recovers from its WAL on restart).
    pub fn stop(&self, mode: &str) {
        self.pg_ctl(&["stop", "-w", "-t", "60", "-m", mode], None)
            .unwrap_or_else(|e| panic!("stopping PostgreSQL ({mode}): {e}"));
    }

    /// Starts the server again on the same port and data directory.
    pub fn restart(&self) {
        self.pg_ctl(&["start", "-w", "-t", "60", "-l"], Some("server.log"))
            .unwrap_or_else(|e| panic!("restarting PostgreSQL: {e}"));
    }

    /// Freezes the server (SIGSTOP to the postmaster, then to its children): connections
    /// are still accepted by the kernel but nothing answers, like a hung host.
    pub fn freeze(&self) {
        self.signal("STOP").unwrap_or_else(|e| panic!("freezing PostgreSQL: {e}"));
    }

    /// Resumes a frozen server.
    pub fn thaw(&self) {
        self.signal("CONT").unwrap_or_else(|e| panic!("thawing PostgreSQL: {e}"));
    }

    /// Sends `signal` to the postmaster and its children, by process id, while the
    /// postmaster is stopped (so it forks no child meanwhile): STOP goes to the postmaster
    /// first, CONT to it last. A child that ends meanwhile is no error.
    fn signal(&self, signal: &str) -> Result<(), String> {
        let postmaster = std::fs::read_to_string(self.data().join("postmaster.pid"))
            .ok()
            .and_then(|text| text.lines().next().map(str::to_owned))
            .ok_or("the server is not running (no postmaster.pid)")?;
        let kill = |pid: &str| {
            Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(pid)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let signal_postmaster = || {
            if kill(&postmaster) {
                Ok(())
            } else {
                Err(format!("kill -{signal} {postmaster} failed"))
            }
        };
        if signal == "STOP" {
            signal_postmaster()?;
        }
        for entry in std::fs::read_dir("/proc").map_err(|e| format!("/proc: {e}"))? {
            let Ok(entry) = entry else { continue };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
            // `pid (comm) state ppid ...`: the name may hold spaces, so split after `)`.
            let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1));
            if ppid == Some(postmaster.as_str()) {
                kill(&entry.file_name().to_string_lossy());
            }
        }
        if signal != "STOP" {
            signal_postmaster()?;
        }
        Ok(())
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Runs `pg_ctl -D DATA ARGS [DIR/FILE]` as the server's user.
    fn pg_ctl(&self, args: &[&str], file: Option<&str>) -> Result<(), String> {
        let output = self.dir.join("pg_ctl.out");
        let out = std::fs::File::create(&output).map_err(|e| e.to_string())?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = as_server_user(&self.bin.join("pg_ctl"));
        cmd.arg("-D").arg(self.data()).args(args);
        if let Some(file) = file {
            cmd.arg(self.dir.join(file));
        }
        // The server started by pg_ctl writes to its log file, never to our descriptors.
        let status = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .status()
            .map_err(|e| format!("pg_ctl: {e}"))?;
        if status.success() {
            return Ok(());
        }
        let said = std::fs::read_to_string(&output).unwrap_or_default();
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        Err(format!("pg_ctl {args:?} failed ({status}): {said}\nserver log:\n{log}"))
    }

    /// The shell line running `pg_ctl -D DATA ARGS` as the server's user.
    fn pg_ctl_shell(&self, args: &str) -> String {
        let pg_ctl = self.bin.join("pg_ctl");
        let line = format!("{} -D {} {args}", pg_ctl.display(), self.data().display());
        if running_as_root() { format!("runuser -u postgres -- {line}") } else { line }
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        if self.data().join("postmaster.pid").exists() {
            // A frozen server would not even quit.
            let _ = self.signal("CONT");
            let _ = self.pg_ctl(&["stop", "-w", "-t", "60", "-m", "immediate"], None);
        }
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
