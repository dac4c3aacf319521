//! The service under attack (`docs/security.md`): guesses sent in parallel, floods of
//! password checks, forwarded addresses, double-sent refreshes, the audit trail, and the
//! database files' modes. The transport's own defences (header deadline, connections per
//! address) are in `limits`.

use std::sync::Arc;

use super::helpers::{Answer, Db, TestApp, client_from, on_both_databases};

on_both_databases!(
    a_hundred_parallel_guesses_for_one_e_mail_check_at_most_the_limit,
    a_burst_of_right_passwords_from_one_address_is_told_to_retry_and_blocks_nothing,
    a_client_with_its_share_of_checks_waiting_is_refused_at_once_and_others_are_served,
    a_full_check_queue_is_refused_with_503_and_a_newcomer_takes_a_place_of_the_busiest,
    behind_a_trusted_proxy_the_forwarded_client_is_the_one_counted,
    without_a_trusted_proxy_forwarded_addresses_are_ignored,
    ipv6_clients_behind_a_proxy_count_by_their_64,
    parallel_refreshes_of_one_token_leave_a_winner_whose_tokens_keep_working,
    spent_login_counters_are_purged_and_live_ones_kept,
    login_audit_lines_name_the_client_and_a_keyed_e_mail_hash_once_a_minute,
    a_customer_beyond_its_session_cap_loses_its_oldest_session,
);

const BLOCKED: &str =
    "Too many log in attempts from your address. Please wait 5 minutes before trying again.";
const AT_ONCE: &str =
    "Too many log in attempts from your address at once. Please try again in a moment.";
const QUEUE_FULL: &str = "Too many log in attempts at once. Please try again in a moment.";
const FAILED: &str = "Failed to authenticate user.";

/// `count` logins at once, each through `client` with `headers`, for `email`; the answers.
async fn parallel_logins(
    app: &Arc<TestApp>,
    client: &reqwest::Client,
    headers: &[(&str, &str)],
    email: &str,
    passwords: impl Fn(usize) -> String,
    count: usize,
) -> Vec<Answer> {
    let tasks: Vec<_> = (0..count)
        .map(|n| {
            let (app, client, email, password) =
                (app.clone(), client.clone(), email.to_owned(), passwords(n));
            let headers: Vec<(String, String)> =
                headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
            tokio::spawn(async move {
                let headers: Vec<(&str, &str)> =
                    headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                app.login_through(&client, &headers, &email, &password).await
            })
        })
        .collect();
    let mut answers = Vec::with_capacity(count);
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

fn count(answers: &[Answer], status: u16) -> usize {
    answers.iter().filter(|a| a.status == status).count()
}

/// Every answer is one of the login's documented refusals or a 401/003.
fn assert_refusals<'a>(answers: impl IntoIterator<Item = &'a Answer>) {
    for answer in answers {
        match (answer.status, answer.body["errors"][0]["code"].as_str()) {
            (401, _) => answer.assert_error(401, Some("003"), FAILED),
            (429, Some(_)) => answer.assert_error(429, Some("4401"), BLOCKED),
            (429, None) => {
                answer.assert_error(429, None, AT_ONCE);
                assert_eq!(answer.header("retry-after"), Some("1"));
            }
            (503, _) => {
                answer.assert_error(503, None, QUEUE_FULL);
                assert_eq!(answer.header("retry-after"), Some("1"));
            }
            _ => panic!("unexpected answer {}: {}", answer.status, answer.body),
        }
    }
}

async fn a_hundred_parallel_guesses_for_one_e_mail_check_at_most_the_limit(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let app = Arc::new(app);
    // 100 guesses at once from one address, the right password among them (the 90th).
    let password = |n: usize| if n == 90 { "change123".to_owned() } else { format!("guess-{n}") };
    let answers =
        parallel_logins(&app, &client_from(2), &[], "sonia@acme.com", password, 100).await;
    let refused: Vec<&Answer> = answers.iter().filter(|a| a.status != 201).collect();
    assert_refusals(refused);
    let checked = count(&answers, 401) + count(&answers, 201);
    assert!(checked <= 10, "{checked} passwords were checked; the limit is 10");
    assert!(checked >= 1, "no password was checked at all");
    // From distinct addresses, so that only the e-mail's counter is in play: again at most
    // the limit in all, counting the first round's failures.
    let failed_before = count(&answers, 401);
    let tasks: Vec<_> = (0..40u8)
        .map(|n| {
            let app = app.clone();
            tokio::spawn(async move {
                app.login_through(&client_from(100 + n), &[], "sonia@acme.com", "guess").await
            })
        })
        .collect();
    let mut second = Vec::new();
    for task in tasks {
        second.push(task.await.unwrap());
    }
    assert_refusals(&second);
    if count(&answers, 201) == 0 {
        assert!(
            failed_before + count(&second, 401) <= 10,
            "{} guesses checked for one e-mail",
            failed_before + count(&second, 401)
        );
        // The e-mail is blocked now: the right password from yet another address too.
        app.login_through(&client_from(200), &[], "sonia@acme.com", "change123")
            .await
            .assert_error(429, Some("4401"), BLOCKED);
    }
}

async fn a_burst_of_right_passwords_from_one_address_is_told_to_retry_and_blocks_nothing(
    db: Db,
    test: &str,
) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let app = Arc::new(app);
    // 30 right passwords at once from one address (an office behind one gateway), with a
    // limit of 10: at most 10 are checked at a time; the others are told to retry.
    let answers =
        parallel_logins(&app, &client_from(3), &[], "sonia@acme.com", |_| "change123".into(), 30)
            .await;
    for answer in answers.iter().filter(|a| a.status != 201) {
        answer.assert_error(429, None, AT_ONCE);
        assert_eq!(answer.header("retry-after"), Some("1"));
    }
    assert!(count(&answers, 201) >= 1);
    // None of them was a failure: the address and the e-mail are not blocked.
    let answer = app.login_through(&client_from(3), &[], "sonia@acme.com", "change123").await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    for _ in 0..9 {
        let answer = app.login_through(&client_from(3), &[], "karl@acme.com", "wrong").await;
        answer.assert_error(401, Some("003"), FAILED);
    }
    // The address has nine failures: one more blocks it, the burst counted for nothing.
    let answer = app.login_through(&client_from(3), &[], "karl@acme.com", "change123").await;
    assert_eq!(answer.status, 201, "{}", answer.body);
}

async fn a_client_with_its_share_of_checks_waiting_is_refused_at_once_and_others_are_served(
    db: Db,
    test: &str,
) {
    let options = ["--login-queue-per-address", "2", "--login-block-attempts", "1000"];
    let Some(app) = TestApp::spawn_with(db, test, &options).await else { return };
    glue_auth::admin::load_demo(&app.db).await.unwrap();
    let app = Arc::new(app);
    let flood = {
        let app = app.clone();
        tokio::spawn(async move {
            let client = client_from(4);
            parallel_logins(&app, &client, &[], "nobody@acme.com", |n| format!("x{n}"), 40).await
        })
    };
    // Meanwhile another address logs in.
    let answer = app.login_through(&client_from(5), &[], "sonia@acme.com", "change123").await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let answers = flood.await.unwrap();
    assert_refusals(&answers);
    assert!(count(&answers, 429) >= 1, "40 at once with a share of 2: some are refused");
    assert!(count(&answers, 401) >= 2, "the share itself is checked");
}

async fn a_full_check_queue_is_refused_with_503_and_a_newcomer_takes_a_place_of_the_busiest(
    db: Db,
    test: &str,
) {
    // Two places per address, four in all: two flooding addresses fill the queue.
    let options =
        ["--login-queue-per-address", "2", "--login-queue", "4", "--login-block-attempts", "1000"];
    let Some(app) = TestApp::spawn_with(db, test, &options).await else { return };
    glue_auth::admin::load_demo(&app.db).await.unwrap();
    let app = Arc::new(app);
    let floods: Vec<_> = [6u8, 7, 8]
        .into_iter()
        .map(|n| {
            let app = app.clone();
            tokio::spawn(async move {
                let client = client_from(n);
                let mut answers = Vec::new();
                for _ in 0..3 {
                    let password = |m: usize| format!("x{m}");
                    answers.extend(
                        parallel_logins(&app, &client, &[], "nobody@acme.com", password, 12).await,
                    );
                }
                answers
            })
        })
        .collect();
    // Whatever the floods hold, a newcomer gets a place: the queue is full only when some
    // address holds two, and the newcomer holds none.
    for n in 0..5u8 {
        let answer =
            app.login_through(&client_from(20 + n), &[], "sonia@acme.com", "change123").await;
        assert_eq!(answer.status, 201, "{}", answer.body);
    }
    let mut answers = Vec::new();
    for flood in floods {
        answers.extend(flood.await.unwrap());
    }
    assert_refusals(&answers);
    assert!(count(&answers, 503) >= 1, "a full queue refuses with 503");
}

/// `--trusted-proxy 127.0.0.9`: requests from that address are a proxy's.
const PROXY: u8 = 9;

async fn behind_a_trusted_proxy_the_forwarded_client_is_the_one_counted(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_with(db, test, &["--trusted-proxy", "127.0.0.9/32"]).await
    else {
        return;
    };
    glue_auth::admin::load_demo(&app.db).await.unwrap();
    let proxy = client_from(PROXY);
    // The client wrote a fake entry; the proxy appended the real one.
    let forwarded = [("x-forwarded-for", "127.0.0.9, 203.0.113.7")];
    for n in 0..10 {
        let answer = app.login_through(&proxy, &forwarded, &format!("n{n}@acme.com"), "x").await;
        answer.assert_error(401, Some("003"), FAILED);
    }
    // 203.0.113.7 is blocked, whatever it writes on the left …
    let spoofed = [("x-forwarded-for", "198.51.100.1, 203.0.113.7")];
    app.login_through(&proxy, &spoofed, "sonia@acme.com", "change123").await.assert_error(
        429,
        Some("4401"),
        BLOCKED,
    );
    // … and the proxy's other clients are not.
    let other = [("x-forwarded-for", "203.0.113.8")];
    let answer = app.login_through(&proxy, &other, "sonia@acme.com", "change123").await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    // A peer that is no trusted proxy cannot pass for another client.
    let answer = app.login_through(&client_from(10), &other, "karl@acme.com", "change123").await;
    assert_eq!(answer.status, 201, "{}", answer.body);
}

async fn without_a_trusted_proxy_forwarded_addresses_are_ignored(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let peer = client_from(11);
    // Ten failures, each claiming another client: all count against the peer.
    for n in 0..10 {
        let forwarded = format!("203.0.113.{n}");
        let headers = [("x-forwarded-for", forwarded.as_str())];
        let answer = app.login_through(&peer, &headers, &format!("n{n}@acme.com"), "x").await;
        answer.assert_error(401, Some("003"), FAILED);
    }
    let headers = [("x-forwarded-for", "203.0.113.99")];
    app.login_through(&peer, &headers, "sonia@acme.com", "change123").await.assert_error(
        429,
        Some("4401"),
        BLOCKED,
    );
}

async fn ipv6_clients_behind_a_proxy_count_by_their_64(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_with(db, test, &["--trusted-proxy", "127.0.0.9"]).await else {
        return;
    };
    glue_auth::admin::load_demo(&app.db).await.unwrap();
    let proxy = client_from(PROXY);
    // Ten failures from ten addresses of one /64.
    for n in 1..=10 {
        let forwarded = format!("2001:db8:1:2::{n:x}");
        let headers = [("x-forwarded-for", forwarded.as_str())];
        let answer = app.login_through(&proxy, &headers, &format!("n{n}@acme.com"), "x").await;
        answer.assert_error(401, Some("003"), FAILED);
    }
    let same_64 = [("x-forwarded-for", "2001:db8:1:2:ffff::1")];
    app.login_through(&proxy, &same_64, "sonia@acme.com", "change123").await.assert_error(
        429,
        Some("4401"),
        BLOCKED,
    );
    let next_64 = [("x-forwarded-for", "[2001:db8:1:3::1]:4711")];
    let answer = app.login_through(&proxy, &next_64, "sonia@acme.com", "change123").await;
    assert_eq!(answer.status, 201, "{}", answer.body);
}

async fn parallel_refreshes_of_one_token_leave_a_winner_whose_tokens_keep_working(
    db: Db,
    test: &str,
) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let app = Arc::new(app);
    let (_, token) = app.tokens_of("sonia@acme.com").await;
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (app, token) = (app.clone(), token.clone());
            tokio::spawn(async move { app.refresh(&token).await })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let answer = task.await.unwrap();
        if answer.status == 201 {
            winners.push(answer.tokens());
        } else {
            answer.assert_error(401, Some("004"), "Failed to refresh token.");
        }
    }
    assert_eq!(winners.len(), 1, "exactly one of ten wins");
    let (access, next) = winners.pop().unwrap();
    // The losers revoked nothing: the winner's tokens work and refresh again.
    assert_eq!(app.get_as("/customers", Some(&access)).await.status, 200);
    let answer = app.refresh(&next).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let (_, latest) = answer.tokens();
    // Presented again within the window (a margin for real seconds passing): refused, and
    // still nothing revoked.
    app.clock.advance(7);
    app.refresh(&token).await.assert_error(401, Some("004"), "Failed to refresh token.");
    let answer = app.refresh(&latest).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let (_, latest) = answer.tokens();
    // After the window (10 s after its rotation) it is a reuse: the family is revoked.
    app.clock.advance(3);
    app.refresh(&token).await.assert_error(401, Some("004"), "Failed to refresh token.");
    app.refresh(&latest).await.assert_error(401, Some("004"), "Failed to refresh token.");
}

async fn spent_login_counters_are_purged_and_live_ones_kept(db: Db, test: &str) {
    use entity::login_attempt;
    use sea_orm::{EntityTrait, PaginatorTrait};
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    // Five unknown e-mails from one address: six counters (five e-mails, one address).
    for n in 0..5 {
        let answer = app.login_through(&client_from(12), &[], &format!("g{n}@x.com"), "x").await;
        answer.assert_error(401, Some("003"), FAILED);
    }
    // Ten for another e-mail from ten addresses: it is blocked (and those counters live).
    for n in 0..10 {
        let answer = app.login_through(&client_from(30 + n), &[], "karl@acme.com", "x").await;
        answer.assert_error(401, Some("003"), FAILED);
    }
    let rows = || async { login_attempt::Entity::find().count(&app.db).await.unwrap() };
    assert_eq!(rows().await, 6 + 11);
    let policy = glue_auth::service::throttle::Policy { attempts: 10, window: 600, block: 300 };
    let purge = || glue_auth::service::throttle::purge(&app.db, app.clock.now(), policy);
    assert_eq!(purge().await.unwrap(), 0, "nothing is spent yet");
    // Neither the windows (600 s) nor the e-mail's block (300 s) have passed (a margin for
    // real seconds passing).
    app.clock.advance(290);
    assert_eq!(purge().await.unwrap(), 0);
    app.clock.advance(311);
    // 601 s: every window is over, and the block (until 300 s after the tenth failure) too.
    assert_eq!(purge().await.unwrap(), 17);
    assert_eq!(rows().await, 0);
    // Gone counters start again from nothing: Karl logs in.
    assert_eq!(
        app.login_through(&client_from(30), &[], "karl@acme.com", "change123").await.status,
        201
    );
}

async fn login_audit_lines_name_the_client_and_a_keyed_e_mail_hash_once_a_minute(
    db: Db,
    test: &str,
) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    // An address of this test's own (tests share the process's log).
    let address = if db == Db::Sqlite { 13 } else { 14 };
    for _ in 0..3 {
        let answer =
            app.login_through(&client_from(address), &[], "donald@acme.com", "wrong").await;
        answer.assert_error(401, Some("003"), FAILED);
    }
    let client = format!("client=127.0.0.{address} ");
    let lines: Vec<String> = super::secrets::lines()
        .into_iter()
        .filter(|l| l.contains("event=\"login_failed\"") && l.contains(&client))
        .collect();
    assert_eq!(lines.len(), 1, "three failures, one line a minute: {lines:?}");
    let line = &lines[0];
    assert!(!line.contains("donald"), "the e-mail itself is not logged: {line}");
    // The keyed hash of the e-mail, as the service's key gives it.
    let keys = glue_auth::auth::keys::KeySet::load(&[], app.data_dir.path()).unwrap();
    let audit = glue_auth::service::audit::AuditLog::new(
        keys.signing_key().derived_secret(),
        std::time::Duration::from_secs(60),
    );
    let expected = format!("email={}", audit.email_key("donald@acme.com"));
    assert!(line.contains(&expected), "{line} lacks {expected}");
}

async fn a_customer_beyond_its_session_cap_loses_its_oldest_session(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_with(db, test, &["--max-sessions-per-customer", "3"]).await
    else {
        return;
    };
    glue_auth::admin::load_demo(&app.db).await.unwrap();
    const SONIA: &str = "ebf4b55a-cab0-5ed0-8fb7-525a3eeedeac";
    let refresh_failed = |answer: Answer| {
        answer.assert_error(401, Some("004"), "Failed to refresh token.");
    };
    // Sonia's three sessions; the first one is refreshed (its family has two tokens), the
    // third is a company-user authentication. Karl's one is his own.
    let (_, first) = app.tokens_of("sonia@acme.com").await;
    let (_, first) = app.refresh(&first).await.tokens();
    let (access, second) = app.tokens_of("sonia@acme.com").await;
    let answer = app.company_user_token(&access, SONIA).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let (_, third) = answer.tokens();
    let (_, karl) = app.tokens_of("karl@acme.com").await;
    // Refreshed again, within the cap: its family now has three tokens.
    let answer = app.refresh(&first).await;
    assert_eq!(answer.status, 201, "within the cap: {}", answer.body);
    let (_, first) = answer.tokens();
    // The fourth revokes the oldest, its whole family; the fifth the next.
    let (_, fourth) = app.tokens_of("sonia@acme.com").await;
    refresh_failed(app.refresh(&first).await);
    let (_, fifth) = app.tokens_of("sonia@acme.com").await;
    refresh_failed(app.refresh(&second).await);
    for token in [third, fourth, fifth, karl] {
        let answer = app.refresh(&token).await;
        assert_eq!(answer.status, 201, "{}", answer.body);
    }
}

/// The mode bits of `path` that group and others have.
fn others_bits(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o077
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_directory_and_the_database_files_are_the_owner_s_alone() {
    use std::os::unix::fs::PermissionsExt;
    let app = TestApp::spawn_demo(Db::Sqlite, "attack::private_files").await.unwrap();
    // A login writes the WAL; its `-wal` and `-shm` files exist from the first connection.
    assert_eq!(app.login("sonia@acme.com", "change123").await.status, 201);
    for name in ["test.db", "test.db-wal", "test.db-shm"] {
        let path = app.data_dir.path().join(name);
        assert_eq!(others_bits(&path), 0, "{} is open to others", path.display());
    }
    // A data directory the service makes is 0700, every level of it; an existing database
    // file that others could read is narrowed to 0600.
    let root = tempfile::tempdir().unwrap();
    let nested = root.path().join("a").join("b");
    let url = format!("sqlite://{}?mode=rwc", nested.join("glue-auth.db").display());
    let config = super::helpers::config(&nested, &url, &[]);
    let db = glue_auth::db::connect(&url, &config).await.unwrap();
    db.close().await.unwrap();
    for dir in [root.path().join("a"), nested.clone()] {
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", dir.display());
    }
    let file = nested.join("glue-auth.db");
    assert_eq!(others_bits(&file), 0);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let db = glue_auth::db::connect(&url, &config).await.unwrap();
    db.close().await.unwrap();
    assert_eq!(others_bits(&file), 0, "narrowed again");
}
