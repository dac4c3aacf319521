//! A throwaway MariaDB (or MySQL) server from the system's binaries (Debian: `apt-get install
//! mariadb-server`), for the tests of the Spryker import: `mariadb-install-db` in a temporary
//! directory, `mariadbd` on a free port of 127.0.0.1, run as the `mysql` user when root.
//! `root` has no password on 127.0.0.1, as `mariadb-install-db` leaves it.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::{free_port, running_as_root};

/// The server binaries: `mariadbd` (or `mysqld`) and `mariadb-install-db`, from `$MARIADB_BIN`,
/// `PATH`, or `/usr/sbin` and `/usr/bin`.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub server: PathBuf,
    pub install_db: PathBuf,
}

fn find(names: &[&str], extra: &[&str]) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> =
        std::env::var_os("MARIADB_BIN").map(PathBuf::from).into_iter().collect();
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.extend(extra.iter().map(PathBuf::from));
    dirs.iter().flat_map(|d| names.iter().map(move |n| d.join(n))).find(|f| f.is_file())
}

impl Binaries {
    pub fn find() -> Option<Self> {
        Some(Self {
            server: find(&["mariadbd", "mysqld"], &["/usr/sbin", "/usr/bin"])?,
            install_db: find(
                &["mariadb-install-db", "mysql_install_db"],
                &["/usr/bin", "/usr/sbin"],
            )?,
        })
    }
}

/// A running server; [`Server::stop_shell`] is the shell line that stops it.
pub struct Server {
    pub port: u16,
    pub pid_file: PathBuf,
    pub server: std::process::Child,
    log: PathBuf,
}

/// A command running `program` as the `mysql` user when root (the server refuses root).
fn as_server_user(program: &Path) -> Command {
    if running_as_root() {
        let mut cmd = Command::new("runuser");
        cmd.arg("-u").arg("mysql").arg("--").arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

impl Server {
    /// Creates a data directory in `dir/data` and starts the server on a free port, with
    /// `settings` (`name=value`, as `--name=value`) after the test-friendly defaults.
    pub fn start(bins: &Binaries, dir: &Path, settings: &[&str]) -> Result<Self, String> {
        if running_as_root() {
            let status = Command::new("chown")
                .arg("mysql:mysql")
                .arg(dir)
                .status()
                .map_err(|e| format!("chown: {e}"))?;
            if !status.success() {
                return Err("cannot hand the server directory to the mysql user".into());
            }
        }
        let data = dir.join("data");
        let out = as_server_user(&bins.install_db)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args([
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
            ])
            .output()
            .map_err(|e| format!("mariadb-install-db: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mariadb-install-db failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let port = free_port().map_err(|e| format!("no free port: {e}"))?;
        let log = dir.join("server.log");
        let pid_file = dir.join("server.pid");
        let mut cmd = as_server_user(&bins.server);
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", dir.join("server.sock").display()))
            .arg(format!("--port={port}"))
            .arg(format!("--pid-file={}", pid_file.display()))
            .arg(format!("--log-error={}", log.display()))
            .args([
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                "--skip-log-bin",
                "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_unicode_ci",
            ]);
        for setting in settings {
            cmd.arg(format!("--{setting}"));
        }
        let server = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("start mariadbd: {e}"))?;
        Ok(Self { port, pid_file, server, log })
    }

    /// Waits up to 60 s for the server to accept TCP connections, or says why not (its log).
    pub fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            // The port opens once the server is ready for connections.
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            let exited = self.server.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                return Err(format!("MariaDB did not start ({exited:?}):\n{log}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The URL of the database `name`, as `root`.
    pub fn url(&self, name: &str) -> String {
        format!("mysql://root@127.0.0.1:{}/{name}", self.port)
    }

    /// The shell line that stops the server at once (SIGKILL to the pid in its pid file).
    pub fn stop_shell(&self) -> String {
        format!(
            "kill -9 $(cat {pid}) 2>/dev/null; kill -9 {child} 2>/dev/null",
            pid = self.pid_file.display(),
            child = self.server.id()
        )
    }
}
