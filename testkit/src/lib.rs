//! A throwaway PostgreSQL cluster from the system's server binaries, for the API tests and the
//! load benchmark: where the binaries are, running them as the `postgres` user when root,
//! initdb, starting the server and waiting until it is ready, a free port, a fresh temporary
//! directory, and a watchdog that cleans up once the process that started it all has exited.
//! [`mariadb`] does the same for a MariaDB server.

pub mod mariadb;

use std::{
    io,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// The PostgreSQL server binaries: `$PG_BIN`, `initdb` on PATH, or the newest Debian version.
pub fn bin_dir() -> Option<PathBuf> {
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

/// Whether this process runs as root (effective user id 0).
pub fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            .is_some_and(|euid| euid == "0")
    })
}

/// A command running `program`, as the `postgres` user when root (the server refuses root).
pub fn as_server_user(program: &Path) -> Command {
    if running_as_root() {
        let mut cmd = Command::new("runuser");
        cmd.arg("-u").arg("postgres").arg("--").arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

/// The shell line running `pg_ctl -D DATA ARGS` (from `bin`) as the server's user.
pub fn pg_ctl_shell(bin: &Path, data: &Path, args: &str) -> String {
    let line = format!("{} -D {} {args}", bin.join("pg_ctl").display(), data.display());
    if running_as_root() { format!("runuser -u postgres -- {line}") } else { line }
}

/// A TCP port of 127.0.0.1 that was free when asked.
pub fn free_port() -> io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The directory `name` in the system's temporary directory, created empty.
pub fn fresh_temp_dir(name: &str) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// Gives `dir` to the `postgres` user when root, so that the server may write there.
pub fn hand_to_server_user(dir: &Path) -> Result<(), String> {
    if !running_as_root() {
        return Ok(());
    }
    let status = Command::new("chown")
        .arg("postgres:postgres")
        .arg(dir)
        .status()
        .map_err(|e| format!("chown: {e}"))?;
    if !status.success() {
        return Err("cannot hand the cluster directory to the postgres user".into());
    }
    Ok(())
}

/// Creates a cluster in `data` (user `postgres`, trust, UTF-8, C locale) with `bin`'s initdb.
pub fn initdb(bin: &Path, data: &Path) -> Result<(), String> {
    let out = as_server_user(&bin.join("initdb"))
        .arg("-D")
        .arg(data)
        .args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"])
        .output()
        .map_err(|e| format!("initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!("initdb failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(())
}

/// A quiet `sh` that waits for this process to end, then runs the shell command `cleanup`.
pub fn watchdog(cleanup: &str) -> Command {
    let script = format!(
        "while kill -0 {me} 2>/dev/null; do sleep 0.5; done; {cleanup}",
        me = std::process::id()
    );
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &script]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    cmd
}

/// Runs `cleanup` (shell) once this process has exited, however it ends; kill it to call it off.
pub fn cleanup_on_exit(cleanup: &str) -> io::Result<Child> {
    watchdog(cleanup).spawn()
}

/// A PostgreSQL server on 127.0.0.1, started by [`Cluster::start`]; dropping it stops nothing.
pub struct Cluster {
    /// The directory of the server binaries it runs from.
    pub bin: PathBuf,
    /// Its data directory.
    pub data: PathBuf,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
    /// The server's process (`runuser`, whose child is the postmaster, when root).
    pub server: Child,
    log: PathBuf,
}

impl Cluster {
    /// Runs initdb in `dir/data` and starts the server (socket in `dir`, log `log`, `-c settings`).
    pub fn start(bin: PathBuf, dir: &Path, log: &Path, settings: &[&str]) -> Result<Self, String> {
        hand_to_server_user(dir)?;
        let data = dir.join("data");
        initdb(&bin, &data)?;
        let port = free_port().map_err(|e| format!("no free port: {e}"))?;
        let log_file = std::fs::File::create(log).map_err(|e| e.to_string())?;
        let mut cmd = as_server_user(&bin.join("postgres"));
        cmd.arg("-D").arg(&data).args(["-p", &port.to_string(), "-k"]).arg(dir);
        cmd.args(["-c", "listen_addresses=127.0.0.1"]);
        for setting in settings {
            cmd.args(["-c", setting]);
        }
        let server = cmd
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("start postgres: {e}"))?;
        Ok(Self { bin, data, port, server, log: log.to_path_buf() })
    }

    /// Waits up to 60 s for the server to accept connections, or says why not (with its log).
    pub fn wait_ready(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let probe = Command::new(self.bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres"])
                .output();
            if probe.as_ref().is_ok_and(|out| out.status.success()) {
                return Ok(());
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                return Err(format!("PostgreSQL did not start within 60 s ({probe:?}):\n{log}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The URL of the database `name`, as the `postgres` user.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// The shell line that stops the server at once (`pg_ctl stop -m immediate`).
    pub fn stop_shell(&self) -> String {
        pg_ctl_shell(&self.bin, &self.data, "stop -m immediate")
    }
}
