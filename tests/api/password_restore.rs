//! `POST /customer-forgotten-password` and `PATCH /customer-restore-password/{id}`
//! (docs/wire-contract.md §3.10): the restore mail, in the outbox and through a real SMTP
//! conversation; keys that work once, are replaced and expire; one answer for every e-mail;
//! the request limit, also for requests sent all at once.

use std::time::Duration;

use sea_orm::EntityTrait;
use serde_json::{Value, json};

use super::{
    helpers::{Api, Db, TestApp, client_from, document, on_both_databases},
    smtp::SmtpServer,
};

on_both_databases!(
    a_restore_mail_lands_in_the_outbox_and_its_key_works_once,
    every_e_mail_gets_the_same_answer_and_only_active_customers_mail,
    a_new_key_replaces_the_old_and_a_key_expires,
    restore_refusals_are_glue_s_and_change_nothing,
    requests_are_limited_per_e_mail_and_address_even_all_at_once,
    mail_goes_out_through_a_real_smtp_server_and_is_retried,
    of_restores_sent_at_once_with_one_key_one_succeeds,
    a_mail_server_that_never_answers_holds_no_answer_up,
    a_purge_keeps_the_request_counts_for_their_whole_window,
);

const NEW: &str = "a long new passphrase";
const LINK: &str = "http://localhost:8000/password/restore/";

fn forgotten(email: &str) -> Value {
    document("customer-forgotten-password", json!({"email": email}))
}

fn restore(key: &str, password: &str, confirm: &str) -> Value {
    document(
        "customer-restore-password",
        json!({"restorePasswordKey": key, "password": password, "confirmPassword": confirm}),
    )
}

/// The messages in the app's outbox so far.
fn outbox(app: &TestApp) -> Vec<String> {
    let dir = app.data_dir.path().join("outbox");
    let mut mails: Vec<(std::time::SystemTime, String)> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .map(|e| {
                    let modified = e.metadata().and_then(|m| m.modified()).unwrap();
                    (modified, std::fs::read_to_string(e.path()).unwrap())
                })
                .collect()
        })
        .unwrap_or_default();
    mails.sort();
    mails.into_iter().map(|(_, text)| text).collect()
}

/// Waits up to 10 s until the outbox holds `n` messages.
async fn wait_for_outbox(app: &TestApp, n: usize) -> Vec<String> {
    for _ in 0..100 {
        let mails = outbox(app);
        if mails.len() >= n {
            return mails;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{n} messages expected in the outbox, found {}", outbox(app).len());
}

/// The body of a message, decoded, and the restore key its link (`link`) carries.
fn key_in(message: &str, link: &str) -> (String, String) {
    let (headers, body) = message
        .split_once("\r\n\r\n")
        .or_else(|| message.split_once("\n\n"))
        .expect("headers and a body");
    let body =
        if headers.to_ascii_lowercase().contains("content-transfer-encoding: quoted-printable") {
            let decoded =
                quoted_printable::decode(body, quoted_printable::ParseMode::Robust).unwrap();
            String::from_utf8(decoded).unwrap()
        } else {
            body.to_owned()
        };
    let at = body.find(link).unwrap_or_else(|| panic!("no link {link} in {body}"));
    let key: String = body[at + link.len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    super::secrets::register(&key);
    (body, key)
}

async fn a_restore_mail_lands_in_the_outbox_and_its_key_works_once(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let (_, old_refresh) = app.tokens_of("sonia@acme.com").await;
    let answer = app.post("/customer-forgotten-password", &forgotten("Sonia@ACME.com"), None).await;
    assert_eq!((answer.status, &answer.body), (204, &Value::Null));
    let mails = wait_for_outbox(&app, 1).await;
    let mail = &mails[0];
    assert!(mail.contains("To: sonia@acme.com"), "{mail}");
    assert!(mail.contains("Subject: Choose a new password"), "{mail}");
    let (body, key) = key_in(mail, LINK);
    assert!(body.contains("Hello Sonia Wagner,"), "{body}");
    assert!(body.contains("within 60 minutes"), "{body}");
    assert_eq!(key.len(), 59, "a time key and 256 random bits: {key}");
    // Only a hash of the key is stored.
    let stored = entity::password_restore_key::Entity::find().all(&app.db).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].key_hash.contains(&key[16..]), "the key itself is not stored");

    let answer = app.patch("/customer-restore-password/any", &restore(&key, NEW, NEW), None).await;
    assert_eq!((answer.status, &answer.body), (204, &Value::Null));
    app.refresh(&old_refresh).await.assert_error(401, Some("004"), "Failed to refresh token.");
    assert_eq!(app.login("sonia@acme.com", "change123").await.status, 401);
    assert_eq!(app.login("sonia@acme.com", NEW).await.status, 201);
    // Spent: the same key again is refused, and changes nothing.
    app.patch(
        "/customer-restore-password/any",
        &restore(&key, "yet another passphrase", "yet another passphrase"),
        None,
    )
    .await
    .assert_error(422, Some("415"), "Restore password key is not valid.");
    assert_eq!(app.login("sonia@acme.com", NEW).await.status, 201);
    assert!(entity::password_restore_key::Entity::find().all(&app.db).await.unwrap().is_empty());
    let audit = super::secrets::lines();
    for event in ["password_reset_requested", "password_restored"] {
        assert!(
            audit.iter().any(|l| l.contains(&format!("event=\"{event}\"")) && l.contains("DE--21")),
            "{event}: {audit:?}"
        );
    }
}

async fn every_e_mail_gets_the_same_answer_and_only_active_customers_mail(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    for email in ["nobody@acme.com", "lena.inactive@acme.com", "karl@acme.com"] {
        let answer = app.post("/customer-forgotten-password", &forgotten(email), None).await;
        assert_eq!((answer.status, &answer.body), (204, &Value::Null), "{email}");
    }
    let mails = wait_for_outbox(&app, 1).await;
    // Give any other message time to arrive: none may.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mails_now = outbox(&app);
    assert_eq!(mails_now.len(), 1, "only Karl's: {mails_now:?}");
    assert!(mails[0].contains("To: karl@acme.com"), "{}", mails[0]);
    // A malformed address is refused as Glue refuses it.
    let answer = app.post("/customer-forgotten-password", &forgotten("not an address"), None).await;
    answer.assert_error(422, Some("901"), "email => This value is not a valid email address.");
}

async fn a_new_key_replaces_the_old_and_a_key_expires(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    for n in 1..=2 {
        let answer =
            app.post("/customer-forgotten-password", &forgotten("karl@acme.com"), None).await;
        assert_eq!(answer.status, 204);
        // One at a time, so that the second key is the newer.
        wait_for_outbox(&app, n).await;
    }
    let mails = outbox(&app);
    let (_, first) = key_in(&mails[0], LINK);
    let (_, second) = key_in(&mails[1], LINK);
    assert_ne!(first, second);
    app.patch("/customer-restore-password/x", &restore(&first, NEW, NEW), None).await.assert_error(
        422,
        Some("415"),
        "Restore password key is not valid.",
    );
    // The second works within the hour, not after it.
    app.clock.advance(3_600);
    app.patch("/customer-restore-password/x", &restore(&second, NEW, NEW), None)
        .await
        .assert_error(422, Some("415"), "Restore password key is not valid.");
    assert_eq!(app.login("karl@acme.com", "change123").await.status, 201, "nothing changed");
}

async fn restore_refusals_are_glue_s_and_change_nothing(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let answer = app.post("/customer-forgotten-password", &forgotten("karl@acme.com"), None).await;
    assert_eq!(answer.status, 204);
    let (_, key) = key_in(&wait_for_outbox(&app, 1).await[0], LINK);
    let path = "/customer-restore-password/DE--16";
    app.patch("/customer-restore-password", &restore(&key, NEW, NEW), None).await.assert_error(
        400,
        None,
        "Resource id is not specified.",
    );
    let wrong_type =
        json!({"data": {"type": "customer-password", "attributes": {"restorePasswordKey": key}}});
    app.patch(path, &wrong_type, None).await.assert_error(400, None, "Invalid type.");
    let answer = app.patch(path, &restore(" ", NEW, NEW), None).await;
    answer.assert_error(422, Some("901"), "restorePasswordKey => This value should not be blank.");
    let answer = app.patch(path, &restore(&key, "short", "short"), None).await;
    assert_eq!(answer.status, 422, "{}", answer.body);
    let details = answer.details();
    let short = "This value is too short. It should have 12 characters or more.";
    assert_eq!(details, [format!("password => {short}"), format!("confirmPassword => {short}")]);
    app.patch(path, &restore(&key, NEW, "another long passphrase"), None).await.assert_error(
        422,
        Some("406"),
        "Value in field password should be identical to value in the confirmPassword field.",
    );
    app.patch(path, &restore("00000000000000000000000000000000", NEW, NEW), None)
        .await
        .assert_error(422, Some("415"), "Restore password key is not valid.");
    app.patch(path, &restore(&key, NEW, NEW), Some("not-a-token")).await.assert_error(
        401,
        Some("001"),
        "Invalid access token.",
    );
    // Nothing changed, and the key still works.
    assert_eq!(app.login("karl@acme.com", "change123").await.status, 201);
    assert_eq!(app.patch(path, &restore(&key, NEW, NEW), None).await.status, 204);
}

async fn requests_are_limited_per_e_mail_and_address_even_all_at_once(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    // 20 requests at once for one e-mail, from 20 addresses: 5 are accepted.
    let requests = (0..20u8).map(|n| {
        let api = Api::clone(&app);
        tokio::spawn(async move {
            let client = client_from(30 + n);
            let body = forgotten("donald@acme.com");
            let request = client
                .post(api.url("/customer-forgotten-password"))
                .header("content-type", "application/vnd.api+json")
                .body(body.to_string());
            api.send_with(&client, request).await.status
        })
    });
    let mut statuses = Vec::new();
    for request in requests.collect::<Vec<_>>() {
        statuses.push(request.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 204).count(), 5, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 204 || *s == 429), "{statuses:?}");
    let limited =
        app.post("/customer-forgotten-password", &forgotten("donald@acme.com"), None).await;
    limited.assert_error(
        429,
        None,
        "Too many password reset requests. Please wait and try again later.",
    );
    // From one address, five requests for other e-mails fill its share too.
    let client = client_from(60);
    for n in 0..6 {
        let request = client
            .post(app.url("/customer-forgotten-password"))
            .header("content-type", "application/vnd.api+json")
            .body(forgotten(&format!("someone{n}@acme.com")).to_string());
        let status = app.send_with(&client, request).await.status;
        assert_eq!(status, if n < 5 { 204 } else { 429 }, "request {n}");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(outbox(&app).len(), 5, "one mail per accepted request for Donald");
}

async fn mail_goes_out_through_a_real_smtp_server_and_is_retried(db: Db, test: &str) {
    // The server refuses the first delivery (451): the service tries again 2 s later.
    let smtp = SmtpServer::start(1).await;
    let url = smtp.url();
    let options = [
        "--smtp-url",
        url.as_str(),
        "--mail-from",
        "Acme Shop <shop@acme.example>",
        "--password-reset-url",
        "https://shop.example/restore?key={key}",
    ];
    let Some(app) = TestApp::spawn_demo_with(db, test, &options).await else { return };
    let answer =
        app.post("/customer-forgotten-password", &forgotten("anne.boleyn@acme.com"), None).await;
    assert_eq!(answer.status, 204);
    let received = smtp.wait_for(1).await;
    let mail = &received[0];
    assert_eq!(
        (mail.from.as_str(), mail.to.as_slice()),
        ("shop@acme.example", &["anne.boleyn@acme.com".to_owned()][..])
    );
    assert!(mail.data.contains("From: \"Acme Shop\" <shop@acme.example>"), "{}", mail.data);
    let (_, key) = key_in(&mail.data, "https://shop.example/restore?key=");
    assert!(outbox(&app).is_empty(), "with SMTP nothing goes to the outbox");
    let answer = app.patch("/customer-restore-password/x", &restore(&key, NEW, NEW), None).await;
    assert_eq!(answer.status, 204, "{}", answer.body);
    assert_eq!(app.login("anne.boleyn@acme.com", NEW).await.status, 201);
    let log = super::secrets::lines();
    assert!(!log.iter().any(|l| l.contains(&key)), "the key is never logged");
}

async fn of_restores_sent_at_once_with_one_key_one_succeeds(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let answer = app.post("/customer-forgotten-password", &forgotten("karl@acme.com"), None).await;
    assert_eq!(answer.status, 204);
    let (_, key) = key_in(&wait_for_outbox(&app, 1).await[0], LINK);
    let restores = (0..10).map(|n| {
        let (api, key) = (Api::clone(&app), key.clone());
        tokio::spawn(async move {
            let password = format!("passphrase number {n:02}");
            let answer = api
                .patch("/customer-restore-password/x", &restore(&key, &password, &password), None)
                .await;
            (answer.status, password)
        })
    });
    let mut won = Vec::new();
    for restore in restores.collect::<Vec<_>>() {
        let (status, password) = restore.await.unwrap();
        match status {
            204 => won.push(password),
            422 => {}
            other => panic!("status {other}"),
        }
    }
    assert_eq!(won.len(), 1, "one restore wins: {won:?}");
    assert_eq!(app.login("karl@acme.com", &won[0]).await.status, 201);
}

async fn a_mail_server_that_never_answers_holds_no_answer_up(db: Db, test: &str) {
    // A listener that never accepts: connections wait in its backlog, no greeting comes.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("smtp://{}", silent.local_addr().unwrap());
    let Some(app) = TestApp::spawn_demo_with(db, test, &["--smtp-url", &url]).await else {
        return;
    };
    for email in ["karl@acme.com", "nobody@acme.com"] {
        let body = forgotten(email);
        let sent = app.post("/customer-forgotten-password", &body, None);
        let answer = tokio::time::timeout(Duration::from_secs(10), sent)
            .await
            .expect("answered while the mail server is silent");
        assert_eq!(answer.status, 204, "{email}");
    }
    drop(silent);
}

async fn a_purge_keeps_the_request_counts_for_their_whole_window(db: Db, test: &str) {
    use glue_auth::service::throttle::{Policy, purge};
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let body = forgotten("donald@acme.com");
    let ask = || app.post("/customer-forgotten-password", &body, None);
    for _ in 0..4 {
        assert_eq!(ask().await.status, 204);
    }
    // Past the login window (600 s), within the reset window (3600 s): a purge keeps them.
    app.clock.advance(700);
    let config = super::helpers::config(app.data_dir.path(), &app.database_url, &[]);
    purge(&app.db, app.clock.now(), Policy::for_purge(&config)).await.unwrap();
    assert_eq!(ask().await.status, 204, "the fifth");
    assert_eq!(ask().await.status, 429, "the sixth within the hour");
}
