//! The `glue-auth` binary itself: help, admin verbs, import, serve and its graceful stop.

use std::{
    io::{BufRead, BufReader, Write},
    process::{Command, Output, Stdio},
};

const BIN: &str = env!("CARGO_BIN_EXE_glue-auth");

fn glue_auth(data_dir: &std::path::Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--log", "warn"])
        .args(args)
        .env_remove("GLUE_AUTH_DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn help_explains_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let help = stdout(&glue_auth(dir.path(), &["--help"], None));
    for command in [
        "serve",
        "demo",
        "migrate",
        "openapi",
        "import",
        "customer",
        "company",
        "business-unit",
        "address",
        "role",
        "company-user",
        "agent",
    ] {
        assert!(help.contains(&format!("  {command}")), "{command} missing from:\n{help}");
    }
    let help = stdout(&glue_auth(dir.path(), &["serve", "--help"], None));
    for env in [
        "GLUE_AUTH_LISTEN",
        "GLUE_AUTH_DATA_DIR",
        "GLUE_AUTH_DATABASE_URL",
        "GLUE_AUTH_PUBLIC_BASE_URL",
        "GLUE_AUTH_ACCESS_TOKEN_TTL",
        "GLUE_AUTH_REFRESH_TOKEN_TTL",
        "GLUE_AUTH_ISSUER",
        "GLUE_AUTH_AUDIENCE",
        "GLUE_AUTH_SIGNING_KEYS",
        "GLUE_AUTH_LOG_FORMAT",
    ] {
        assert!(help.contains(env), "{env} missing from:\n{help}");
    }
}

#[test]
fn the_openapi_command_prints_the_document() {
    let dir = tempfile::tempdir().unwrap();
    let json = stdout(&glue_auth(dir.path(), &["openapi"], None));
    assert_eq!(format!("{json}\n"), glue_auth::api::document::json());
    let yaml = stdout(&glue_auth(dir.path(), &["openapi", "--format", "yaml"], None));
    assert!(yaml.contains("operationId: getHealthLive"));
}

#[test]
fn an_admin_builds_a_directory_without_sql() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let company = stdout(&glue_auth(d, &["company", "add", "--name", "Cli GmbH"], None));
    let unit = stdout(&glue_auth(
        d,
        &[
            "business-unit",
            "add",
            "--company",
            &company,
            "--name",
            "HQ",
            "--email",
            "hq@cli.example",
        ],
        None,
    ));
    let address = stdout(&glue_auth(
        d,
        &[
            "address",
            "add",
            "--company",
            &company,
            "--business-unit",
            &unit,
            "--city",
            "Berlin",
            "--iso2-code",
            "DE",
        ],
        None,
    ));
    assert!(uuid::Uuid::parse_str(&address).is_ok(), "{address}");
    let role = stdout(&glue_auth(
        d,
        &[
            "role",
            "add",
            "--company",
            &company,
            "--name",
            "Admin",
            "--permission",
            "SeeCompanyUsersPermissionPlugin",
        ],
        None,
    ));
    // The password comes from stdin, never from the command line.
    stdout(&glue_auth(
        d,
        &[
            "customer",
            "add",
            "--reference",
            "DE--500",
            "--email",
            "ada@cli.example",
            "--first-name",
            "Ada",
            "--gender",
            "Female",
            "--date-of-birth",
            "1815-12-10",
        ],
        Some("first-secret\n"),
    ));
    let member = stdout(&glue_auth(
        d,
        &[
            "company-user",
            "add",
            "--customer",
            "ada@cli.example",
            "--company",
            &company,
            "--business-unit",
            &unit,
            "--role",
            &role,
            "--default",
        ],
        None,
    ));
    stdout(&glue_auth(d, &["customer", "set-password", "DE--500"], Some("second-secret\n")));
    // The password policy holds for the admin verbs too (the password stays as it was).
    let refused = glue_auth(d, &["customer", "set-password", "DE--500"], Some("too-short\n"));
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("12 characters or more"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    stdout(&glue_auth(d, &["company", "set-status", &company, "pending"], None));
    stdout(&glue_auth(d, &["company-user", "deactivate", &member], None));
    stdout(&glue_auth(d, &["company-user", "set-default", &member], None));
    stdout(&glue_auth(d, &["customer", "deactivate", "ada@cli.example"], None));
    stdout(&glue_auth(d, &["customer", "set-profile", "DE--500", "--gender", "none"], None));
    let refused = glue_auth(
        d,
        &["customer", "set-profile", "DE--500", "--date-of-birth", "1815-13-10"],
        None,
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not a YYYY-MM-DD date"));

    let refused = glue_auth(d, &["company", "set-status", &company, "secret"], None);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("not one of pending, approved, denied")
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use sea_orm::EntityTrait;
        let url = format!("sqlite://{}?mode=rwc", d.join("glue-auth.db").display());
        let config = super::helpers::config(d, &url, &[]);
        let db = glue_auth::db::connect(&url, &config).await.unwrap();
        let ada =
            glue_auth::service::directory::find_customer(&db, "DE--500").await.unwrap().unwrap();
        assert!(!ada.is_active);
        // Her gender was made unknown again; her date of birth stays.
        assert_eq!((ada.gender, ada.date_of_birth.as_deref()), (None, Some("1815-12-10")));
        assert!(ada.updated_at >= ada.created_at);
        let pw = glue_auth::auth::password::Password::new;
        assert!(glue_auth::auth::password::verify(
            &pw("second-secret"),
            ada.password_hash.as_deref()
        ));
        assert!(!glue_auth::auth::password::verify(
            &pw("first-secret"),
            ada.password_hash.as_deref()
        ));
        let users = entity::company_user::Entity::find().all(&db).await.unwrap();
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].uuid.to_string(), member);
        assert!(!users[0].is_active && users[0].is_default);
        let companies = entity::company::Entity::find().all(&db).await.unwrap();
        assert_eq!(companies[0].status, "pending");
    });
}

#[test]
fn an_admin_manages_agents_without_sql() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let add = ["agent", "add", "--username", "Agent@cli.example", "--first-name", "Ann"];
    assert_eq!(
        stdout(&glue_auth(d, &add, Some("agent-first-pw\n"))),
        "added agent Agent@cli.example"
    );
    let again = glue_auth(
        d,
        &["agent", "add", "--username", "agent@CLI.example"],
        Some("agent-first-pw\n"),
    );
    assert!(!again.status.success(), "the username is unique without regard to case");
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    stdout(&glue_auth(
        d,
        &["agent", "set-password", "agent@cli.example"],
        Some("agent-second-pw\n"),
    ));
    let weak = glue_auth(d, &["agent", "set-password", "agent@cli.example"], Some("short\n"));
    assert!(String::from_utf8_lossy(&weak.stderr).contains("12 characters or more"));
    let unknown = glue_auth(d, &["agent", "deactivate", "nobody@cli.example"], None);
    assert!(
        String::from_utf8_lossy(&unknown.stderr)
            .contains("agent `nobody@cli.example` does not exist")
    );
    assert_eq!(
        stdout(&glue_auth(d, &["agent", "deactivate", "agent@cli.example"], None)),
        "agent agent@cli.example is inactive"
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let url = format!("sqlite://{}?mode=rwc", d.join("glue-auth.db").display());
        let config = super::helpers::config(d, &url, &[]);
        let db = glue_auth::db::connect(&url, &config).await.unwrap();
        let agent = glue_auth::service::directory::find_agent(&db, "AGENT@cli.example")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (agent.username.as_str(), agent.first_name.as_str()),
            ("Agent@cli.example", "Ann")
        );
        assert!(!agent.is_active);
        let pw = glue_auth::auth::password::Password::new;
        let hash = agent.password_hash.as_deref();
        assert!(glue_auth::auth::password::verify(&pw("agent-second-pw"), hash));
        assert!(!glue_auth::auth::password::verify(&pw("agent-first-pw"), hash));
    });
    stdout(&glue_auth(d, &["agent", "activate", "agent@cli.example"], None));
}

#[test]
fn importing_a_bad_file_fails_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, "companies:\n  - {key: a, name: A}\nroles:\n  - {company: b, name: R}\n")
        .unwrap();
    let out = glue_auth(dir.path(), &["import", file.to_str().unwrap()], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 4: roles[0]: company `b`"), "{err}");
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, "companies:\n  - {key: a, name: A}\n").unwrap();
    let out = stdout(&glue_auth(dir.path(), &["import", good.to_str().unwrap()], None));
    assert!(out.contains("imported 0 customers, 1 companies"), "{out}");
}

/// The address `serve` logs that it listens on.
fn address_in(lines: &mut impl Iterator<Item = std::io::Result<String>>) -> String {
    lines
        .map_while(Result::ok)
        .find_map(|l| {
            l.split("address=")
                .nth(1)
                .map(|a| a.split_whitespace().next().unwrap_or_default().to_owned())
        })
        .expect("the service logs its address")
}

/// Starts `serve` in `dir`, checks it is ready, stops it with SIGTERM and asserts that it
/// exits 0 (graceful shutdown).
fn serve_then_terminate(dir: &std::path::Path) {
    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args(["--listen", "127.0.0.1:0", "--log", "info", "serve"])
        .env_remove("GLUE_AUTH_DATABASE_URL")
        .env_remove("GLUE_AUTH_SIGNING_KEYS")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = address_in(&mut lines);
    // Served, so the signal handler is in place before the TERM.
    assert_eq!(reqwest::blocking_get(&format!("http://{addr}/health/ready")), 200);
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "graceful shutdown exits 0: {exit}");
}

#[test]
fn serve_stops_gracefully_on_sigterm() {
    serve_then_terminate(tempfile::tempdir().unwrap().path());
}

#[test]
fn serve_writes_its_generated_key_0600_and_refuses_a_readable_key() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    serve_then_terminate(dir.path());
    let key = dir.path().join("signing-key.pem");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the generated key is readable by its owner only");

    // Made world-readable, the key stops the service at start-up, naming the fix.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = glue_auth(dir.path(), &["--listen", "127.0.0.1:0", "serve"], None);
    assert!(!out.status.success(), "the service must not start");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("chmod 600 {}", key.display())), "{stderr}");
    // The same for a key given with --signing-key.
    let given = dir.path().join("given.pem");
    std::fs::copy(&key, &given).unwrap();
    std::fs::set_permissions(&given, std::fs::Permissions::from_mode(0o640)).unwrap();
    let given_arg = given.display().to_string();
    let out = glue_auth(
        dir.path(),
        &["--listen", "127.0.0.1:0", "--signing-key", &given_arg, "serve"],
        None,
    );
    assert!(!out.status.success(), "the service must not start");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("chmod 600 {given_arg}")), "{stderr}");
}

mod reqwest {
    /// A GET over a plain socket (the async client needs a runtime; this test has none).
    pub fn blocking_get(url: &str) -> u16 {
        use std::io::{Read, Write};
        let rest = url.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_once('/').unwrap();
        let mut stream = std::net::TcpStream::connect(host).unwrap();
        write!(stream, "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).unwrap();
        out.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}

#[test]
fn logs_carry_audit_events_and_no_secret_on_sqlite() {
    logs_carry_audit_events_and_no_secret(None);
}

#[test]
fn logs_carry_audit_events_and_no_secret_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let url = tokio::runtime::Runtime::new().unwrap().block_on(crate::helpers::fresh_database(
        crate::helpers::Db::Postgres,
        dir.path(),
        "cli::logs_carry_audit_events_and_no_secret_on_postgres",
    ));
    if let Some(url) = url {
        logs_carry_audit_events_and_no_secret(Some(&url));
    }
}

/// The demo on `database_url` (default: SQLite in the data directory), driven through one
/// of every audited action, with debug logs as JSON.
fn logs_carry_audit_events_and_no_secret(database_url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(BIN);
    if let Some(url) = database_url {
        command.args(["--database-url", url]);
    }
    let mut child = command
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0", "--log", "debug", "--log-format", "json"])
        // The refresh token is presented again at once: without a grace window, a reuse.
        .args(["--refresh-reuse-grace", "0", "demo"])
        .env_remove("GLUE_AUTH_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let docs = stdout
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.split("Swagger UI:").nth(1).map(|u| u.trim().to_owned()))
        .expect("the demo prints where Swagger UI is");
    let base = docs.trim_end_matches("/docs").to_owned();
    let stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap());

    let rt = tokio::runtime::Runtime::new().unwrap();
    let secrets = rt.block_on(async {
        let client = ::reqwest::Client::new();
        let post = |path: &str, body: serde_json::Value, token: Option<&str>| {
            let mut req = client.post(format!("{base}{path}")).json(&body);
            if let Some(token) = token {
                req = req.bearer_auth(token);
            }
            req.send()
        };
        let body = |ty: &str, attributes: serde_json::Value| serde_json::json!({"data": {"type": ty, "attributes": attributes}});
        let login: serde_json::Value = post("/access-tokens", body("access-tokens", serde_json::json!({"username": "sonia@acme.com", "password": "change123"})), None).await.unwrap().json().await.unwrap();
        let access = login["data"]["attributes"]["accessToken"].as_str().unwrap().to_owned();
        let refresh = login["data"]["attributes"]["refreshToken"].as_str().unwrap().to_owned();
        post("/access-tokens", body("access-tokens", serde_json::json!({"username": "sonia@acme.com", "password": "wrong-secret-pw"})), None).await.unwrap();
        let switched: serde_json::Value = post("/company-user-access-tokens", body("company-user-access-tokens", serde_json::json!({"idCompanyUser": "ebf4b55a-cab0-5ed0-8fb7-525a3eeedeac"})), Some(&access)).await.unwrap().json().await.unwrap();
        let company_refresh = switched["data"]["attributes"]["refreshToken"].as_str().unwrap().to_owned();
        let rotated: serde_json::Value = post("/refresh-tokens", body("refresh-tokens", serde_json::json!({"refreshToken": refresh})), None).await.unwrap().json().await.unwrap();
        let new_refresh = rotated["data"]["attributes"]["refreshToken"].as_str().unwrap().to_owned();
        post("/refresh-tokens", body("refresh-tokens", serde_json::json!({"refreshToken": refresh})), None).await.unwrap();
        client.delete(format!("{base}/refresh-tokens/{company_refresh}")).bearer_auth(&access).send().await.unwrap();
        client.delete(format!("{base}/refresh-tokens/mine")).bearer_auth(&access).send().await.unwrap();
        client.get(format!("{base}/customers")).bearer_auth("forged.token.value").send().await.unwrap();
        // The demo lets pages served on this machine call it.
        let page = client.get(format!("{base}/health/live")).header("origin", "http://localhost:5173").send().await.unwrap();
        assert_eq!(page.headers()["access-control-allow-origin"], "http://localhost:5173");
        vec!["change123".to_owned(), "wrong-secret-pw".to_owned(), access, refresh, company_refresh, new_refresh]
    });
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(child.wait().unwrap().success());
    let log = log.join().unwrap();

    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "a secret ({}…) is in the log",
            &secret[..6.min(secret.len())]
        );
    }
    // Every line is JSON; the audit trail has one event per thing that happened.
    let events: Vec<serde_json::Value> =
        log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let audit: Vec<&str> = events
        .iter()
        .filter(|e| e["target"] == "glue_auth::audit")
        .filter_map(|e| e["event"].as_str())
        .collect();
    for expected in [
        "login_succeeded",
        "login_failed",
        "company_user_token_issued",
        "refresh",
        "refresh_reuse_detected",
        "revoke",
        "revoke_all",
    ] {
        assert!(audit.contains(&expected), "no {expected} in {audit:?}");
    }
    // A failed login names its client and a keyed hash of the e-mail, never the e-mail.
    let failed = events.iter().find(|e| e["event"] == "login_failed").unwrap();
    assert_eq!(failed["client"], "127.0.0.1", "{failed}");
    let email = failed["email"].as_str().unwrap();
    assert!(email.len() == 16 && email.bytes().all(|b| b.is_ascii_hexdigit()), "{failed}");
    assert!(!log.contains("sonia@acme.com"), "an e-mail is in the log");
    let issued = events.iter().find(|e| e["event"] == "company_user_token_issued").unwrap();
    assert_eq!(
        (issued["customer"].as_str(), issued["company_user"].as_str()),
        (Some("DE--21"), Some("ebf4b55a-cab0-5ed0-8fb7-525a3eeedeac"))
    );
    let requests = events.iter().filter(|e| e["target"] == "glue_auth::request").count();
    assert_eq!(requests, 9, "one line per request");
}

/// `--sqlite-cache-kib` sets the page cache of every pooled SQLite connection.
#[test]
fn the_sqlite_page_cache_is_the_one_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("glue-auth.db").display());
    let rt = tokio::runtime::Runtime::new().unwrap();
    for (extra, kib) in
        [(&[][..], glue_auth::config::SQLITE_CACHE_KIB), (&["--sqlite-cache-kib", "512"][..], 512)]
    {
        rt.block_on(async {
            let config = super::helpers::config(dir.path(), &url, extra);
            let db = glue_auth::db::connect(&url, &config).await.unwrap();
            let pool = db.get_sqlite_connection_pool();
            // Three connections held at once: three distinct ones are asked.
            let mut held = Vec::new();
            for _ in 0..3 {
                held.push(pool.acquire().await.unwrap());
            }
            for conn in &mut held {
                let (size,): (i64,) = sea_orm::sqlx::query_as("PRAGMA cache_size")
                    .fetch_one(&mut **conn)
                    .await
                    .unwrap();
                assert_eq!(size, -i64::from(kib), "{extra:?}");
            }
        });
    }
}
