//! A throwaway PostgreSQL cluster for the test binary: started once from the system's server
//! binaries in a temporary directory, one fresh database per test, stopped by a watchdog
//! when the test process exits (libtest runs no teardown, even after a failure).

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    sync::{
        OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
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

fn start_cluster() -> Result<Postgres, String> {
    let bin = testkit::bin_dir()
        .ok_or("no PostgreSQL server binaries (PATH, PG_BIN, /usr/lib/postgresql/*/bin)")?;
    let dir = testkit::fresh_temp_dir(&format!("glue-auth-pg-{}", std::process::id()))?;
    let settings =
        ["fsync=off", "synchronous_commit=off", "full_page_writes=off", "max_connections=300"];
    let cluster = testkit::Cluster::start(bin, &dir, &dir.join("server.log"), &settings)?;

    // The watchdog outlives us: when this test process is gone, it stops the server and
    // removes the directory.
    cleanup_on_exit(&format!(
        "{stop} >/dev/null 2>&1; kill {server} 2>/dev/null; sleep 1; rm -rf {dir}",
        stop = cluster.stop_shell(),
        server = cluster.server.id(),
        dir = dir.display()
    ))
    .map_err(|e| format!("start the watchdog: {e}"))?;

    cluster.wait_ready()?;
    Ok(Postgres { admin_url: cluster.url("postgres") })
}

/// Runs the shell command `cleanup` once this test process has exited, however it ends (libtest
/// runs no teardown after a failure). Kill the returned watchdog to call it off.
pub use testkit::cleanup_on_exit;

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
        let bin = testkit::bin_dir()
            .ok_or("no PostgreSQL server binaries (PATH, PG_BIN, /usr/lib/postgresql/*/bin)")?;
        let dir = testkit::fresh_temp_dir(&format!(
            "glue-auth-own-pg-{}-{}",
            std::process::id(),
            NEXT_OWN_CLUSTER.fetch_add(1, Ordering::SeqCst)
        ))?;
        let mut cluster = Self { bin, dir, port: 0, watchdog: None };
        // From here on, dropping `cluster` (or the end of this process) cleans up.
        // A frozen server (see `freeze`) is resumed first, or it would not even quit.
        let thaw = format!(
            "pm=$(head -n 1 {}/postmaster.pid) && kill -CONT $pm && \
             ps -o pid= --ppid $pm | xargs -r kill -CONT",
            cluster.data().display()
        );
        let stop = testkit::pg_ctl_shell(&cluster.bin, &cluster.data(), "stop -m immediate");
        let cleanup = format!(
            "{{ {thaw}; }} >/dev/null 2>&1; {stop} >/dev/null 2>&1; rm -rf {}",
            cluster.dir.display()
        );
        cluster.watchdog =
            Some(cleanup_on_exit(&cleanup).map_err(|e| format!("start the watchdog: {e}"))?);
        testkit::hand_to_server_user(&cluster.dir)?;
        testkit::initdb(&cluster.bin, &cluster.data())?;
        cluster.port = testkit::free_port().map_err(|e| format!("no free port: {e}"))?;
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
        let mut cmd = testkit::as_server_user(&self.bin.join("pg_ctl"));
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
