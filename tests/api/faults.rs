//! Database faults: the database goes away or cannot be written while the
//! service runs. Requests then get the 503 `Service Unavailable` envelope within the configured
//! `--database-timeout` (a client that waits longer fails the test), the process stays up, and
//! nothing is half-written: when the fault is gone the service works again without a restart,
//! and every token handed out before the fault still works.
//!
//! - PostgreSQL: a cluster of the test's own is stopped mid-run (`fast`, then `immediate`)
//!   and started again on the same port, then frozen (SIGSTOP) and resumed.
//! - SQLite: the real binary, its database on a full disk (a filled tmpfs), past its process's
//!   file-size limit (`prlimit`, needs no mount), on a read-only mount, or opened read-only.

use std::{
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use entity::{login_attempt, prelude::*, refresh_token};
use reqwest::Method;
use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, QueryOrder, Statement};
use serde_json::{Value, json};

use super::{
    contract,
    helpers::{Answer, TestApp, document},
    postgres::{self, OwnCluster},
};

const BIN: &str = env!("CARGO_BIN_EXE_glue-auth");
/// The service's `--database-timeout` (`GLUE_AUTH_DATABASE_TIMEOUT`) here, in seconds.
const DATABASE_TIMEOUT: u64 = 2;
/// How long a client waits for an answer: the database timeout plus room for a loaded
/// machine. A service that takes longer hangs, and the test fails.
const ANSWER_WITHIN: Duration = Duration::from_secs(DATABASE_TIMEOUT + 5);
const SONIA: &str = "sonia@acme.com";
const PASSWORD: &str = "change123";
/// Sonia's membership in Acme.
const SONIA_ACME: &str = "ebf4b55a-cab0-5ed0-8fb7-525a3eeedeac";

// ---------------------------------------------------------------------------------------
// PostgreSQL

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_mid_run_answers_503_in_bounded_time_and_recovers_without_a_restart() {
    let test = "faults::postgres_stopped_mid_run_answers_503_in_bounded_time_and_recovers_without_a_restart";
    let cluster = match tokio::task::spawn_blocking(OwnCluster::start).await.unwrap() {
        Ok(cluster) => cluster,
        // With an external server (GLUE_AUTH_TEST_DATABASE_URL) there may be no local
        // binaries to run a cluster that this test may stop.
        Err(why)
            if !postgres::required()
                || std::env::var_os("GLUE_AUTH_TEST_DATABASE_URL").is_some() =>
        {
            eprintln!("SKIPPED on PostgreSQL: {test}: no cluster of its own to stop: {why}");
            return;
        }
        Err(why) => panic!("PostgreSQL is required (GLUE_AUTH_REQUIRE_POSTGRES=1): {why}"),
    };
    let timeout = DATABASE_TIMEOUT.to_string();
    let app = TestApp::spawn_on(
        &cluster.url(),
        tempfile::tempdir().unwrap(),
        &["--database-timeout", &timeout],
    )
    .await;
    glue_auth::admin::load_demo(&app.db).await.expect("the demo dataset loads");
    let probe = Probe::new(app.url(""), None);

    // Tokens handed out before the outage.
    let (access, mut refresh) = issued(&probe.login(SONIA, PASSWORD).await, "login");
    let (member_access, mut member_refresh) =
        issued(&probe.become_company_user(&access, SONIA_ACME).await, "company-user token");

    // Stopped cleanly, killed (crash recovery on restart), and frozen (it takes connections
    // but never answers, like a hung host).
    for mode in ["fast", "immediate", "frozen"] {
        tokio::task::block_in_place(|| match mode {
            "frozen" => cluster.freeze(),
            mode => cluster.stop(mode),
        });
        let outage = format!("with PostgreSQL {mode}");

        // Concurrently: each waits for the database timeout at most.
        let (login, refreshed, member_refreshed, became, mine, customers, ready, live) = tokio::join!(
            probe.login(SONIA, PASSWORD),
            probe.refresh(&refresh),
            probe.refresh(&member_refresh),
            probe.become_company_user(&access, SONIA_ACME),
            // Listings are remembered, and answered from memory until the directory's
            // version has gone unread for their bound: only then must they fail.
            async {
                tokio::time::sleep(crate::helpers::listing_max_age()).await;
                probe.get("/company-users/mine", Some(&member_access)).await
            },
            probe.get("/customers", Some(&access)),
            probe.get("/health/ready", None),
            probe.get("/health/live", None),
        );
        for (answer, what) in [
            (&login, "POST /access-tokens"),
            (&refreshed, "POST /refresh-tokens (customer token)"),
            (&member_refreshed, "POST /refresh-tokens (company-user token)"),
            (&became, "POST /company-user-access-tokens"),
            (&mine, "GET /company-users/mine"),
            (&customers, "GET /customers"),
            (&ready, "GET /health/ready"),
        ] {
            probe.assert_unavailable(answer, &format!("{what} {outage}"));
        }
        assert_eq!(live.status, 200, "GET /health/live {outage}: {}", live.body);

        tokio::task::block_in_place(|| match mode {
            "frozen" => cluster.thaw(),
            _ => cluster.restart(),
        });
        probe.wait_until_ready(&outage).await;

        // The same requests succeed again, with the same service and the tokens from
        // before the outage: the refresh tokens presented during it were not consumed.
        let after = format!("after PostgreSQL came back ({mode})");
        issued(&probe.login(SONIA, PASSWORD).await, &format!("login {after}"));
        (_, refresh) = issued(&probe.refresh(&refresh).await, &format!("refresh {after}"));
        let answer = probe.refresh(&member_refresh).await;
        (_, member_refresh) = issued(&answer, &format!("company-user refresh {after}"));
        assert_eq!(answer.body["data"]["attributes"]["idCompanyUser"], SONIA_ACME);
        issued(
            &probe.become_company_user(&access, SONIA_ACME).await,
            &format!("company-user token {after}"),
        );
        for (path, token) in [("/company-users/mine", &member_access), ("/customers", &access)] {
            let answer = probe.get(path, Some(token)).await;
            assert_eq!(answer.status, 200, "GET {path} {after}: {}", answer.body);
        }
    }
}

// ---------------------------------------------------------------------------------------
// SQLite

/// A way the SQLite database stops taking writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// The disk holding the database fills up (a small tmpfs and a filler file): the
    /// running service's writes fail with SQLITE_FULL. Needs `mount`.
    FullDisk,
    /// The running service's process gets a file-size limit of 0 (`prlimit`, SIGXFSZ
    /// ignored): its writes fail with EFBIG, SQLITE_IOERR. Needs no privilege.
    FileSizeLimit,
    /// The same, with the service's log in a regular file, which cannot grow either (as
    /// when the log and the database share a full disk).
    FileSizeLimitLogInFile,
    /// The database file is reached through a read-only mount: a service started there
    /// opens it read-only and its writes fail with SQLITE_READONLY. Needs `mount`.
    ///
    /// (A mount cannot turn read-only under a process holding files open for writing, and
    /// SQLite settles read-only at open: so a second service is started on the read-only
    /// file, beside the first, which keeps the database.)
    ReadOnlyMount,
    /// A service opens the database read-only (`mode=ro`): SQLITE_READONLY. Needs nothing.
    ReadOnlyOpen,
}

impl Fault {
    fn describe(self) -> &'static str {
        match self {
            Self::FullDisk => "on a full disk",
            Self::FileSizeLimit => "past the process's file-size limit",
            Self::FileSizeLimitLogInFile => "past the file-size limit, logging to a file",
            Self::ReadOnlyMount => "on a read-only mount",
            Self::ReadOnlyOpen => "opened read-only",
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_on_a_full_disk_answers_503_to_writes_and_loses_nothing() {
    sqlite_write_fault(
        Fault::FullDisk,
        "faults::sqlite_on_a_full_disk_answers_503_to_writes_and_loses_nothing",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_past_its_file_size_limit_answers_503_to_writes_and_loses_nothing() {
    sqlite_write_fault(
        Fault::FileSizeLimit,
        "faults::sqlite_past_its_file_size_limit_answers_503_to_writes_and_loses_nothing",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_past_its_file_size_limit_with_its_log_in_a_file_answers_503_and_loses_nothing() {
    sqlite_write_fault(
        Fault::FileSizeLimitLogInFile,
        "faults::sqlite_past_its_file_size_limit_with_its_log_in_a_file_answers_503_and_loses_nothing",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_on_a_read_only_mount_answers_503_to_writes_and_serves_reads() {
    sqlite_write_fault(
        Fault::ReadOnlyMount,
        "faults::sqlite_on_a_read_only_mount_answers_503_to_writes_and_serves_reads",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_opened_read_only_answers_503_to_writes_and_serves_reads() {
    sqlite_write_fault(
        Fault::ReadOnlyOpen,
        "faults::sqlite_opened_read_only_answers_503_to_writes_and_serves_reads",
    )
    .await;
}

/// One fault, start to end: tokens before it; during it every write gets 503, reads still
/// work and nothing is written; after it the presented tokens refresh once, and every token
/// answered is in the database file.
async fn sqlite_write_fault(fault: Fault, test: &str) {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk");
    let ro = dir.path().join("ro");
    std::fs::create_dir_all(&disk).unwrap();
    std::fs::create_dir_all(&ro).unwrap();
    // Dropped after the services below (declared later, dropped first).
    let _mount = match fault {
        Fault::FullDisk => match Mount::tmpfs(&disk, "4m") {
            Ok(mount) => Some(mount),
            Err(why) => {
                eprintln!(
                    "SKIPPED: {test}: cannot mount a tmpfs to fill up ({why}); \
                     sqlite_past_its_file_size_limit_* still injects a write fault"
                );
                return;
            }
        },
        Fault::ReadOnlyMount => match Mount::read_only_view(&disk, &ro) {
            Ok(mount) => Some(mount),
            Err(why) => {
                eprintln!(
                    "SKIPPED: {test}: cannot mount a read-only view ({why}); \
                     sqlite_opened_read_only_* still refuses writes"
                );
                return;
            }
        },
        Fault::FileSizeLimit | Fault::FileSizeLimitLogInFile if !prlimit_works() => {
            eprintln!("SKIPPED: {test}: no working `prlimit` (util-linux) to limit file sizes");
            return;
        }
        Fault::FileSizeLimit | Fault::FileSizeLimitLogInFile | Fault::ReadOnlyOpen => None,
    };
    let db_file = disk.join("glue.db");
    let url = format!("sqlite://{}?mode=rwc", db_file.display());
    load_demo(&url, dir.path()).await;
    let home = dir.path().join("service");
    let log_file = dir.path().join("service.log");
    let log_file = (fault == Fault::FileSizeLimitLogInFile).then_some(log_file.as_path());
    let mut service = Service::start(&home, &url, &[], log_file);
    let probe = Probe::of(&service);

    // Tokens handed out before the fault.
    let (access, refresh) = issued(&probe.login(SONIA, PASSWORD).await, "login");
    let (_, member_refresh) =
        issued(&probe.become_company_user(&access, SONIA_ACME).await, "company-user token");
    let before = Stored::read(&db_file).await;

    // The fault, on the running service or on a second one that opens the file read-only.
    let key = home.join(glue_auth::auth::keys::DEFAULT_KEY_FILE);
    let key = key.to_str().unwrap();
    let read_only = |url: String| {
        Service::start(&dir.path().join("read-only"), &url, &["--signing-key", key], None)
    };
    let filler = disk.join("filler");
    let mut faulty = match fault {
        Fault::FullDisk => {
            // An empty WAL must grow to take a write (a longer one would be rewritten in
            // place, in pages the disk already has).
            checkpoint_truncate(&db_file).await;
            fill(&filler);
            None
        }
        Fault::FileSizeLimit | Fault::FileSizeLimitLogInFile => {
            set_file_size_limit(service.pid(), "0");
            None
        }
        Fault::ReadOnlyMount => {
            Some(read_only(format!("sqlite://{}?mode=rwc", ro.join("glue.db").display())))
        }
        Fault::ReadOnlyOpen => Some(read_only(format!("sqlite://{}?mode=ro", db_file.display()))),
    };
    {
        let target = faulty.as_mut().unwrap_or(&mut service);
        writes_fail_and_reads_work(target, fault, &access, &refresh, &member_refresh).await;
    }
    assert_eq!(
        Stored::read(&db_file).await,
        before,
        "the writes that failed {} left something behind",
        fault.describe()
    );

    // The fault is gone.
    match fault {
        Fault::FullDisk => std::fs::remove_file(&filler).unwrap(),
        Fault::FileSizeLimit | Fault::FileSizeLimitLogInFile => {
            set_file_size_limit(service.pid(), "unlimited");
        }
        Fault::ReadOnlyMount | Fault::ReadOnlyOpen => drop(faulty.take()),
    }
    let after = format!("after the fault ({})", fault.describe());
    let (_, refreshed) =
        issued(&probe.refresh(&refresh).await, &format!("the refresh token presented {after}"));
    let answer = probe.refresh(&member_refresh).await;
    let (_, member_refreshed) =
        issued(&answer, &format!("the company-user refresh token presented {after}"));
    assert_eq!(answer.body["data"]["attributes"]["idCompanyUser"], SONIA_ACME);
    let (access, logged_in) =
        issued(&probe.login(SONIA, PASSWORD).await, &format!("login {after}"));
    let (_, became) = issued(
        &probe.become_company_user(&access, SONIA_ACME).await,
        &format!("company-user token {after}"),
    );
    // Every token answered is in the file, where every connection sees it.
    let stored = Stored::read(&db_file).await;
    assert_eq!(
        stored.refresh_tokens.len(),
        before.refresh_tokens.len() + 4,
        "4 refresh tokens answered {after}, but the file has {} rows instead of {} + 4:\n{}",
        stored.refresh_tokens.len(),
        before.refresh_tokens.len(),
        service.log()
    );
    for token in [refreshed, member_refreshed, logged_in, became] {
        issued(&probe.refresh(&token).await, &format!("refreshing a token answered {after}"));
    }
    assert!(service.running(), "the service exited:\n{}", service.log());
}

/// During a fault: every writing operation answers 503, reads that need no write answer,
/// and the process stays up.
async fn writes_fail_and_reads_work(
    target: &mut Service,
    fault: Fault,
    access: &str,
    refresh: &str,
    member_refresh: &str,
) {
    let probe = Probe::of(target);
    let fault = fault.describe();
    let writes = [
        (probe.login(SONIA, PASSWORD).await, "POST /access-tokens"),
        (
            probe.login(SONIA, "not-the-password").await,
            "POST /access-tokens with a wrong password (the failure cannot be counted)",
        ),
        (probe.refresh(refresh).await, "POST /refresh-tokens (customer token)"),
        (probe.refresh(member_refresh).await, "POST /refresh-tokens (company-user token)"),
        (probe.become_company_user(access, SONIA_ACME).await, "POST /company-user-access-tokens"),
        (probe.revoke(refresh, access).await, "DELETE /refresh-tokens/{refreshToken}"),
        (probe.login(SONIA, PASSWORD).await, "POST /access-tokens, after several failed writes"),
        (
            probe.become_company_user(access, SONIA_ACME).await,
            "POST /company-user-access-tokens, after several failed writes",
        ),
    ];
    for (answer, what) in &writes {
        probe.assert_unavailable(answer, &format!("{what} {fault}"));
    }
    for (path, token) in [
        ("/customers", Some(access)),
        ("/company-users/mine", Some(access)),
        // Readiness means the database answers; it does not promise writes.
        ("/health/ready", None),
        ("/health/live", None),
    ] {
        let answer = probe.get(path, token).await;
        assert_eq!(answer.status, 200, "GET {path} {fault}: {}\n{}", answer.body, target.log());
    }
    assert!(target.running(), "the service exited {fault}:\n{}", target.log());
}

/// What the service writes: refresh tokens and failed-login counters.
#[derive(Debug, PartialEq)]
struct Stored {
    refresh_tokens: Vec<refresh_token::Model>,
    login_attempts: Vec<login_attempt::Model>,
}

impl Stored {
    /// Reads the file through a connection of the test's own, read-only.
    async fn read(db_file: &Path) -> Self {
        let db = sea_orm::Database::connect(format!("sqlite://{}?mode=ro", db_file.display()))
            .await
            .expect("open the database read-only");
        let stored = Self {
            refresh_tokens: RefreshToken::find()
                .order_by_asc(refresh_token::Column::Id)
                .all(&db)
                .await
                .unwrap(),
            login_attempts: LoginAttempt::find()
                .order_by_asc(login_attempt::Column::Subject)
                .all(&db)
                .await
                .unwrap(),
        };
        db.close().await.unwrap();
        stored
    }
}

/// Creates the database with the demo dataset, then closes it (the service opens it).
async fn load_demo(url: &str, dir: &Path) {
    let config = super::helpers::config(dir, url, &[]);
    let db = glue_auth::db::connect(url, &config).await.expect("create the database");
    glue_auth::admin::load_demo(&db).await.expect("the demo dataset loads");
    db.close().await.unwrap();
}

/// Moves everything in the WAL into the database file and empties the WAL.
async fn checkpoint_truncate(db_file: &Path) {
    let db = sea_orm::Database::connect(format!("sqlite://{}", db_file.display())).await.unwrap();
    let row = db
        .query_one_raw(Statement::from_string(DbBackend::Sqlite, "PRAGMA wal_checkpoint(TRUNCATE)"))
        .await
        .unwrap()
        .expect("a checkpoint result");
    let busy: i32 = row.try_get_by_index(0).unwrap();
    assert_eq!(busy, 0, "the checkpoint could not finish");
    db.close().await.unwrap();
    let wal = PathBuf::from(format!("{}-wal", db_file.display()));
    assert_eq!(std::fs::metadata(&wal).map_or(0, |m| m.len()), 0, "the WAL is empty");
}

/// Fills the file system of `path` with a file there, until not one more byte fits.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0xa5_u8; 64 * 1024];
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    let full = file.write_all(&[0; 4096]).and_then(|()| file.sync_all());
    assert!(full.is_err(), "the disk is full");
}

fn prlimit_works() -> bool {
    Command::new("prlimit").arg("--version").output().is_ok_and(|out| out.status.success())
}

/// Sets the soft file-size limit (RLIMIT_FSIZE, bytes) of a running process.
fn set_file_size_limit(pid: u32, soft: &str) {
    let out = Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--fsize={soft}:"))
        .output()
        .expect("run prlimit");
    assert!(out.status.success(), "prlimit: {}", String::from_utf8_lossy(&out.stderr));
}

// ---------------------------------------------------------------------------------------
// Parts

/// A mount made by this test, undone when dropped (after a failure too); a watchdog undoes
/// it if the test process dies first.
struct Mount {
    target: PathBuf,
    watchdog: Option<Child>,
}

impl Mount {
    /// A tmpfs of `size` (e.g. `4m`) on `target`.
    fn tmpfs(target: &Path, size: &str) -> Result<Self, String> {
        let size = format!("size={size}");
        run("mount", &["-t", "tmpfs", "-o", &size, "tmpfs", &target.display().to_string()])?;
        Ok(Self::made(target))
    }

    /// `source` again at `target`, read-only (a bind mount, remounted read-only).
    fn read_only_view(source: &Path, target: &Path) -> Result<Self, String> {
        let target_name = target.display().to_string();
        run("mount", &["--bind", &source.display().to_string(), &target_name])?;
        let mount = Self::made(target);
        run("mount", &["-o", "remount,bind,ro", &target_name])?;
        Ok(mount)
    }

    fn made(target: &Path) -> Self {
        let watchdog = postgres::cleanup_on_exit(&format!("umount -l {}", target.display())).ok();
        Self { target: target.to_owned(), watchdog }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        // Lazy: detached at once even if a file on it is still open.
        let _ = Command::new("umount").arg("-l").arg(&self.target).output();
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program).args(args).output().map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(format!("{program} {}: {}", args.join(" "), stderr.lines().next().unwrap_or("failed")))
    }
}

/// Where a service's standard error goes, to be read back.
#[derive(Clone)]
enum Log {
    /// A pipe, read by a thread into memory.
    Pipe(Arc<Mutex<String>>),
    /// A regular file: the process's file-size limit applies to it too.
    File(PathBuf),
}

impl Log {
    fn text(&self) -> String {
        match self {
            Self::Pipe(text) => text.lock().unwrap().clone(),
            Self::File(path) => std::fs::read_to_string(path).unwrap_or_default(),
        }
    }
}

/// The real binary, serving on a free port; killed when dropped.
struct Service {
    child: Child,
    addr: String,
    log: Log,
}

impl Service {
    /// Starts `glue-auth serve`, logging to a pipe, or to `log_file` if given.
    fn start(data_dir: &Path, database_url: &str, extra: &[&str], log_file: Option<&Path>) -> Self {
        let timeout = DATABASE_TIMEOUT.to_string();
        let mut cmd = Command::new("sh");
        // SIGXFSZ ignored (an ignored signal stays ignored across exec): a write past the
        // file-size limit then fails with EFBIG instead of killing the process.
        cmd.args(["-c", r#"trap "" XFSZ; exec "$0" "$@""#, BIN])
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--database-url", database_url, "--listen", "127.0.0.1:0"])
            .args(["--database-timeout", &timeout, "--log", "warn,glue_auth::cli=info"])
            .args(extra)
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("GLUE_AUTH_")) {
            cmd.env_remove(name);
        }
        let log = match log_file {
            Some(path) => {
                cmd.stderr(std::fs::File::create(path).expect("create the log file"));
                Log::File(path.to_owned())
            }
            None => {
                cmd.stderr(Stdio::piped());
                Log::Pipe(Arc::default())
            }
        };
        let mut child = cmd.spawn().expect("the binary starts");
        if let (Some(stderr), Log::Pipe(text)) = (child.stderr.take(), &log) {
            let text = text.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let mut text = text.lock().unwrap();
                    text.push_str(&line);
                    text.push('\n');
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr = loop {
            let text = log.text();
            let found = text.lines().find_map(|line| {
                line.split("address=").nth(1).and_then(|rest| rest.split_whitespace().next())
            });
            if let Some(addr) = found {
                break addr.to_owned();
            }
            if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the service did not start on {database_url}:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Self { child, addr, log }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    fn log(&self) -> String {
        self.log.text()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client that waits [`ANSWER_WITHIN`] at most, checking every answer against the OpenAPI
/// document.
struct Probe {
    base: String,
    client: reqwest::Client,
    /// The service's log, shown when an assertion fails.
    log: Option<Log>,
}

impl Probe {
    fn new(base: String, log: Option<Log>) -> Self {
        let client = reqwest::Client::builder().timeout(ANSWER_WITHIN).build().unwrap();
        Self { base: base.trim_end_matches('/').to_owned(), client, log }
    }

    fn of(service: &Service) -> Self {
        Self::new(format!("http://{}", service.addr), Some(service.log.clone()))
    }

    fn log(&self) -> String {
        self.log.as_ref().map(Log::text).unwrap_or_default()
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
    ) -> Answer {
        let mut request = self.client.request(method.clone(), format!("{}{path}", self.base));
        if let Some(body) = body {
            request =
                request.header("content-type", "application/vnd.api+json").body(body.to_string());
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap_or_else(|e| {
            let what = if e.is_timeout() {
                format!("no answer within {ANSWER_WITHIN:?}: it hangs")
            } else {
                "no answer: the connection failed or closed without one".to_owned()
            };
            panic!("{method} {path}: {what} ({e:?})\n{}", self.log())
        });
        let answer = Answer::of(response).await;
        contract::check(
            method.as_str(),
            path,
            answer.status,
            answer.header("content-type"),
            &answer.body,
        );
        answer
    }

    async fn login(&self, username: &str, password: &str) -> Answer {
        let body = document("access-tokens", json!({"username": username, "password": password}));
        self.send(Method::POST, "/access-tokens", Some(&body), None).await
    }

    async fn refresh(&self, refresh_token: &str) -> Answer {
        let body = document("refresh-tokens", json!({"refreshToken": refresh_token}));
        self.send(Method::POST, "/refresh-tokens", Some(&body), None).await
    }

    async fn become_company_user(&self, access_token: &str, id: &str) -> Answer {
        let body = document("company-user-access-tokens", json!({"idCompanyUser": id}));
        self.send(Method::POST, "/company-user-access-tokens", Some(&body), Some(access_token))
            .await
    }

    async fn revoke(&self, refresh_token: &str, access_token: &str) -> Answer {
        let path = format!("/refresh-tokens/{refresh_token}");
        self.send(Method::DELETE, &path, None, Some(access_token)).await
    }

    async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.send(Method::GET, path, None, token).await
    }

    /// Asserts the 503 envelope: `application/vnd.api+json`, one error of status 503.
    #[track_caller]
    fn assert_unavailable(&self, answer: &Answer, what: &str) {
        assert!(
            answer.status == 503,
            "{what}: {} instead of 503 Service Unavailable: {}\n{}",
            answer.status,
            answer.body,
            self.log()
        );
        answer.assert_error(503, None, "Service Unavailable");
    }

    /// Polls `/health/ready` until the database answers again (60 s at most).
    async fn wait_until_ready(&self, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answer = self.get("/health/ready", None).await;
            if answer.status == 200 {
                return;
            }
            self.assert_unavailable(&answer, &format!("GET /health/ready while recovering {what}"));
            assert!(Instant::now() < deadline, "no recovery within 60 s {what}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The access and refresh token of a 201 token answer.
#[track_caller]
fn issued(answer: &Answer, what: &str) -> (String, String) {
    assert_eq!(answer.status, 201, "{what}: {}", answer.body);
    answer.tokens()
}
