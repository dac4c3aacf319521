//! Crash safety: the real binary under a load of refreshes and company-user
//! authentications is killed with SIGKILL and restarted on the same database and data
//! directory. Every refresh token a client received in a 201 must still be in the database
//! and, if it was the latest of its chain, still refresh; a token whose refresh was answered
//! is rotated (401/004 now). A refresh in flight at the kill had no answer: its token either
//! still refreshes or was rotated before the kill, and the database says which.
//!
//! What this relies on: the service answers a token only after its row is committed (SQLite:
//! the group-commit writer of `src/service/token_store.rs` replies after `COMMIT`, in WAL mode
//! with `synchronous = FULL`, set in `src/db.rs`; PostgreSQL: each write is a committed
//! transaction). A process kill leaves the operating system's page cache intact, so this
//! tests that no answer goes out before the commit, not durability across a power loss (that
//! is what `synchronous = FULL`, which syncs the WAL at every commit, is for).

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use self::process::{Api, Service};
use crate::helpers::{Db, on_both_databases};

/// Running `glue-auth serve` as a child process, and talking to it (shared with `instances`).
pub(crate) mod process {
    use std::{
        io::{BufRead, BufReader},
        net::SocketAddr,
        os::unix::process::ExitStatusExt,
        path::Path,
        process::{Child, Command, Stdio},
        sync::{Arc, Mutex, mpsc},
        time::Duration,
    };

    pub(crate) use crate::helpers::{Api, company_user_body, refresh_body, stored_token_hash};

    const BIN: &str = env!("CARGO_BIN_EXE_glue-auth");

    /// The database a test's service processes share, with the demo dataset loaded.
    pub(crate) async fn demo_database(url: &str, data_dir: &Path) {
        let config = crate::helpers::config(data_dir, url, &[]);
        let db = glue_auth::db::connect(url, &config).await.expect("connect and migrate");
        glue_auth::admin::load_demo(&db).await.expect("the demo dataset loads");
        db.close().await.expect("the connection closes");
    }

    /// A `glue-auth serve` process on `127.0.0.1:0`. Dropping it kills it.
    pub(crate) struct Service {
        child: Child,
        pub(crate) addr: SocketAddr,
        /// Its log lines (warnings and errors, plus the start-up line).
        log: Arc<Mutex<Vec<String>>>,
    }

    impl Service {
        /// Starts the binary and waits until it logs the address it listens on.
        pub(crate) async fn start(database_url: &str, data_dir: &Path, extra: &[&str]) -> Self {
            let mut command = Command::new(BIN);
            // Only the command line configures it, whatever the environment holds.
            for (name, _) in std::env::vars_os() {
                if name.to_string_lossy().starts_with("GLUE_AUTH_") {
                    command.env_remove(name);
                }
            }
            let mut child = command
                .args(["--listen", "127.0.0.1:0", "--log", "warn,glue_auth::cli=info"])
                .arg("--data-dir")
                .arg(data_dir)
                .arg("--database-url")
                .arg(database_url)
                .args(extra)
                .arg("serve")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("the binary starts");
            let stderr = child.stderr.take().expect("a piped stderr");
            let log = Arc::new(Mutex::new(Vec::new()));
            let (found, address) = mpsc::channel();
            let lines = log.clone();
            // Reads the log to its end, so the service never blocks on a full pipe.
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(addr) =
                        line.split("address=").nth(1).and_then(|a| a.split_whitespace().next())
                    {
                        let _ = found.send(addr.to_owned());
                    }
                    lines.lock().unwrap().push(line);
                }
            });
            let address = tokio::task::spawn_blocking(move || {
                address.recv_timeout(Duration::from_secs(60)).ok()
            })
            .await
            .unwrap();
            let Some(address) = address else {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the service did not start:\n{}", log.lock().unwrap().join("\n"));
            };
            let addr = address.parse().expect("a socket address in the log");
            Self { child, addr, log }
        }

        /// A client for this process.
        pub(crate) fn api(&self) -> Api {
            Api::new(self.addr)
        }

        /// Kills the process with SIGKILL (no shutdown of any kind) and reaps it.
        pub(crate) fn kill(mut self) {
            self.child.kill().expect("SIGKILL is sent");
            let status = self.child.wait().expect("the process is reaped");
            assert_eq!(status.signal(), Some(9), "it was running and died of SIGKILL: {status}");
        }

        /// Its log so far.
        pub(crate) fn log(&self) -> String {
            self.log.lock().unwrap().join("\n")
        }
    }

    impl Drop for Service {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

on_both_databases!(a_killed_service_loses_no_refresh_token);

/// Demo customers with an active membership in an approved company: (e-mail, company user).
const PERSONAS: [(&str, &str); 12] = [
    ("sonia@acme.com", "ebf4b55a-cab0-5ed0-8fb7-525a3eeedeac"),
    ("Solomon@acme.com", "2816dcbd-855e-567e-b26f-4d57f3310bb8"),
    ("Richi@acme.com", "3db9f6fd-fdec-5605-a982-8d8ea979041c"),
    ("karl@acme.com", "46355100-0a82-5fdb-896e-5c0ce70de816"),
    ("Sarah@acme.com", "b61c4549-7491-5d26-b8c7-639950a710c7"),
    ("Elizabet@acme.com", "ee4423bd-fdd6-51d2-b6b4-eddd4a133d15"),
    ("donald@acme.com", "c615f85e-75c3-5540-9a7e-cf6d293b764b"),
    ("Trever.m@acme.com", "3c79dd9f-dc74-559c-88d5-449660b51132"),
    ("arnold@acme.com", "4ac44bbf-b8f3-542f-8be5-84964cb83d87"),
    ("kevin@acme.com", "1b4d012d-efc1-5a34-9329-a4468ace93d2"),
    ("emma@acme.com", "a72c1064-d283-57f4-a4c4-03e747b7bf25"),
    ("anne.boleyn@acme.com", "c7c148a6-5181-5ac4-b2a7-1bf91242ab12"),
];
/// Concurrent clients of the load.
const CLIENTS: usize = 16;
/// How long the load runs before the kill (at least).
const LOAD: Duration = Duration::from_millis(1500);
/// Answers the load must have had before the kill, so the kill hits a service at work.
const MIN_ANSWERS: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Customer,
    CompanyUser,
}

/// One rotation chain as a client sees it: the last refresh token it received in a 201.
#[derive(Debug)]
struct Chain {
    kind: Kind,
    latest: String,
    /// The latest token was presented when the service died, and no answer came back.
    ambiguous: bool,
}

/// What one client did and received before the kill.
#[derive(Debug, Default)]
struct Record {
    chains: Vec<Chain>,
    /// Tokens presented to a refresh that was answered 201: rotated.
    rotated: Vec<String>,
    /// Every refresh token received in a 201.
    received: Vec<String>,
    /// An access token received before the kill (to check the key survives the restart).
    access: String,
    refreshes: usize,
    company_user_auths: usize,
    /// The request at the kill never reached the service (connection refused).
    unsent: bool,
    /// The client stopped because the service died (not because of a wrong answer).
    stopped_by_kill: bool,
    /// Answers that should not happen while the service runs.
    unexpected: Vec<String>,
}

/// The status and body of an answer, or `None` when no whole answer came (the kill).
async fn answer_of(response: reqwest::Response) -> Option<(u16, Value)> {
    let status = response.status().as_u16();
    let bytes = response.bytes().await.ok()?;
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| json!({ "not json": String::from_utf8_lossy(&bytes) }));
    Some((status, body))
}

fn tokens(body: &Value) -> (String, String) {
    let attributes = &body["data"]["attributes"];
    (
        attributes["accessToken"].as_str().expect("an access token").to_owned(),
        attributes["refreshToken"].as_str().expect("a refresh token").to_owned(),
    )
}

/// One client of the load: refreshes its current chain, and every fourth request
/// authenticates as its company user, which starts a new chain it continues with. It stops at
/// the first request without an answer.
async fn client(
    api: Api,
    company_user: &'static str,
    (access, refresh): (String, String),
    answers: Arc<AtomicUsize>,
) -> Record {
    let mut record = Record {
        chains: vec![Chain { kind: Kind::Customer, latest: refresh.clone(), ambiguous: false }],
        received: vec![refresh],
        access,
        ..Record::default()
    };
    let mut current = 0;
    let give_up = Instant::now() + Duration::from_secs(60);
    for n in 1.. {
        if Instant::now() > give_up {
            break;
        }
        if n % 4 == 0 {
            let body = process::company_user_body(company_user);
            let sent =
                api.try_post("/company-user-access-tokens", &body, Some(&record.access)).await;
            // No answer: nothing was handed out, so nothing to check.
            let Some((status, body)) = (match sent {
                Ok(response) => answer_of(response).await,
                Err(_) => None,
            }) else {
                record.stopped_by_kill = true;
                break;
            };
            if status != 201 {
                record.unexpected.push(format!("company-user authentication: {status} {body}"));
                break;
            }
            let (access, refresh) = tokens(&body);
            record.received.push(refresh.clone());
            record.chains.push(Chain {
                kind: Kind::CompanyUser,
                latest: refresh,
                ambiguous: false,
            });
            current = record.chains.len() - 1;
            record.access = access;
            record.company_user_auths += 1;
        } else {
            let presented = record.chains[current].latest.clone();
            let sent =
                api.try_post("/refresh-tokens", &process::refresh_body(&presented), None).await;
            let answer = match sent {
                Ok(response) => answer_of(response).await,
                Err(e) if e.is_connect() => {
                    // Never reached the service: the token is still the latest of its chain.
                    record.unsent = true;
                    record.stopped_by_kill = true;
                    break;
                }
                Err(_) => None,
            };
            let Some((status, body)) = answer else {
                record.chains[current].ambiguous = true;
                record.stopped_by_kill = true;
                break;
            };
            if status != 201 {
                record.unexpected.push(format!("refresh: {status} {body}"));
                break;
            }
            let (access, refresh) = tokens(&body);
            record.rotated.push(presented);
            record.received.push(refresh.clone());
            record.chains[current].latest = refresh;
            record.access = access;
            record.refreshes += 1;
        }
        answers.fetch_add(1, Ordering::Relaxed);
    }
    record
}

/// `token_hash` → revoked, for every refresh-token row.
async fn stored_tokens(url: &str, data_dir: &std::path::Path) -> HashMap<String, bool> {
    use sea_orm::EntityTrait;
    let config = crate::helpers::config(data_dir, url, &[]);
    let db = glue_auth::db::connect(url, &config).await.expect("the database opens");
    let rows = entity::refresh_token::Entity::find().all(&db).await.expect("the tokens");
    db.close().await.expect("the connection closes");
    rows.into_iter().map(|row| (row.token_hash, row.revoked_at.is_some())).collect()
}

/// Refreshes every token, 8 at a time: (token, status, error code).
async fn refresh_all(api: &Api, tokens: Vec<String>) -> Vec<(String, u16, Value)> {
    let mut tasks = tokio::task::JoinSet::new();
    let per_task = tokens.len().div_ceil(8).max(1);
    for chunk in tokens.chunks(per_task) {
        let (api, chunk) = (api.clone(), chunk.to_vec());
        tasks.spawn(async move {
            let mut out = Vec::with_capacity(chunk.len());
            for token in chunk {
                let answer = api.refresh(&token).await;
                out.push((token, answer.status, answer.body["errors"][0]["code"].clone()));
            }
            out
        });
    }
    tasks.join_all().await.into_iter().flatten().collect()
}

async fn a_killed_service_loses_no_refresh_token(db: Db, test: &str) {
    let data_dir = tempfile::tempdir().expect("a temporary directory");
    let Some(url) = crate::helpers::fresh_database(db, data_dir.path(), test).await else {
        return;
    };
    process::demo_database(&url, data_dir.path()).await;

    let service = Service::start(&url, data_dir.path(), &[]).await;
    let api = service.api();
    let mut logins = Vec::with_capacity(CLIENTS);
    for i in 0..CLIENTS {
        let answer = api.login(PERSONAS[i % PERSONAS.len()].0, "change123").await;
        assert_eq!(answer.status, 201, "login: {}", answer.body);
        logins.push(answer.tokens());
    }

    // The load, then SIGKILL while it runs.
    let answers = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = logins
        .into_iter()
        .enumerate()
        .map(|(i, tokens)| {
            let company_user = PERSONAS[i % PERSONAS.len()].1;
            tokio::spawn(client(api.clone(), company_user, tokens, answers.clone()))
        })
        .collect();
    let started = Instant::now();
    while (started.elapsed() < LOAD || answers.load(Ordering::Relaxed) < MIN_ANSWERS)
        && started.elapsed() < Duration::from_secs(60)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let answered_before_kill = answers.load(Ordering::Relaxed);
    let load_time = started.elapsed();
    service.kill();
    let mut records = Vec::with_capacity(CLIENTS);
    for client in clients {
        records.push(client.await.expect("a client task"));
    }
    let unexpected: Vec<&String> = records.iter().flat_map(|r| &r.unexpected).collect();
    assert!(unexpected.is_empty(), "wrong answers while the service ran: {unexpected:?}");
    assert!(
        records.iter().all(|r| r.stopped_by_kill),
        "every client was still at work when the service was killed"
    );

    // The database as the killed process left it: every token answered in a 201 is there.
    let stored = stored_tokens(&url, data_dir.path()).await;
    let received: Vec<&String> = records.iter().flat_map(|r| &r.received).collect();
    let missing: Vec<&&String> =
        received.iter().filter(|t| !stored.contains_key(&process::stored_token_hash(t))).collect();
    let all_chains = || records.iter().flat_map(|r| &r.chains);
    let latest: Vec<&Chain> = all_chains().filter(|c| !c.ambiguous).collect();
    let ambiguous: Vec<&Chain> = all_chains().filter(|c| c.ambiguous).collect();
    let rotated: Vec<String> = records.iter().flat_map(|r| r.rotated.clone()).collect();
    let revoked = |token: &str| stored.get(&process::stored_token_hash(token)).copied();
    assert!(
        latest.iter().all(|c| revoked(&c.latest) == Some(false)),
        "the latest token of each chain is stored and live"
    );
    assert!(
        rotated.iter().all(|t| revoked(t) == Some(true)),
        "each rotated token is stored and revoked"
    );

    // Restarted on the same database and data directory (same signing key).
    let service = Service::start(&url, data_dir.path(), &[]).await;
    let api = service.api();
    let customer = api.get_as("/customers", Some(&records[0].access)).await;
    assert_eq!(customer.status, 200, "an access token from before the kill: {}", customer.body);

    // First the latest tokens (a rotated token presented first would revoke its family).
    let latest_answers = refresh_all(&api, latest.iter().map(|c| c.latest.clone()).collect()).await;
    let lost: Vec<_> = latest_answers.iter().filter(|(_, status, _)| *status != 201).collect();
    let ambiguous_answers =
        refresh_all(&api, ambiguous.iter().map(|c| c.latest.clone()).collect()).await;
    let (mut ambiguous_live, mut ambiguous_rotated) = (0, 0);
    for (token, status, code) in &ambiguous_answers {
        match (status, code.as_str()) {
            (201, _) => ambiguous_live += 1,
            (401, Some("004")) => ambiguous_rotated += 1,
            _ => panic!("an in-flight token neither refreshes nor was rotated: {status} {code}"),
        }
        assert_eq!(
            *status == 401,
            revoked(token) == Some(true),
            "an in-flight token fails after the restart exactly when it was rotated before the kill"
        );
    }
    let rotated_answers = refresh_all(&api, rotated.clone()).await;
    let not_refused: Vec<_> = rotated_answers
        .iter()
        .filter(|(_, status, code)| (*status, code.as_str()) != (401, Some("004")))
        .collect();

    let company_user_chains = latest.iter().filter(|c| c.kind == Kind::CompanyUser).count();
    let refreshes: usize = records.iter().map(|r| r.refreshes).sum();
    let company_user_auths: usize = records.iter().map(|r| r.company_user_auths).sum();
    let unsent = records.iter().filter(|r| r.unsent).count();
    eprintln!(
        "{test}: {answered_before_kill} answers in {load_time:.1?} before SIGKILL ({refreshes} refreshes, \
         {company_user_auths} company-user authentications) by {CLIENTS} clients; \
         {} refresh tokens received, {} missing from the database; after the restart \
         {} latest tokens refreshed ({company_user_chains} company-user chains), {} lost; \
         {} rotated tokens refused (401/004), {} not; {} in flight at the kill: \
         {ambiguous_live} still refreshed, {ambiguous_rotated} had been rotated; \
         {unsent} requests never reached the service",
        received.len(),
        missing.len(),
        latest_answers.len() - lost.len(),
        lost.len(),
        rotated_answers.len() - not_refused.len(),
        not_refused.len(),
        ambiguous.len(),
    );
    assert!(missing.is_empty(), "tokens answered in a 201 but not stored: {}", missing.len());
    assert!(lost.is_empty(), "latest tokens that no longer refresh: {lost:?}");
    assert!(not_refused.is_empty(), "rotated tokens not refused: {not_refused:?}");
    assert!(refreshes > 0 && company_user_chains > 0, "the load did both kinds of work");
    assert!(service.log().lines().all(|l| !l.contains("ERROR")), "{}", service.log());
}
