//! `PATCH /customer-password/{customerReference}` (docs/wire-contract.md §3.9): a customer
//! changes their own password; every session ends; every refusal changes nothing.

use serde_json::{Value, json};

use super::helpers::{Api, Db, TestApp, client_from, document, on_both_databases};

on_both_databases!(
    a_password_change_ends_every_session_and_the_new_password_works,
    every_refusal_is_glue_s_and_changes_nothing,
    wrong_current_passwords_count_as_failed_logins_even_all_at_once,
    the_length_policy_is_configurable,
);

const NEW: &str = "a long new passphrase";

fn change(password: &str, new: &str, confirm: &str) -> Value {
    document(
        "customer-password",
        json!({"password": password, "newPassword": new, "confirmPassword": confirm}),
    )
}

async fn a_password_change_ends_every_session_and_the_new_password_works(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let (access, first_refresh) = app.tokens_of("sonia@acme.com").await;
    let (_, second_refresh) = app.tokens_of("sonia@acme.com").await;
    let member = app.company_user_token(&access, "ebf4b55a-cab0-5ed0-8fb7-525a3eeedeac").await;
    assert_eq!(member.status, 201, "{}", member.body);
    let (_, member_refresh) = member.tokens();
    // Another customer's session is not touched.
    let (_, karls_refresh) = app.tokens_of("karl@acme.com").await;

    let answer =
        app.patch("/customer-password/DE--21", &change("change123", NEW, NEW), Some(&access)).await;
    assert_eq!(answer.status, 204, "{}", answer.body);
    assert_eq!(answer.body, Value::Null, "no body");

    for refresh in [&first_refresh, &second_refresh, &member_refresh] {
        app.refresh(refresh).await.assert_error(401, Some("004"), "Failed to refresh token.");
    }
    assert_eq!(app.refresh(&karls_refresh).await.status, 201);
    app.login("sonia@acme.com", "change123").await.assert_error(
        401,
        Some("003"),
        "Failed to authenticate user.",
    );
    assert_eq!(app.login("sonia@acme.com", NEW).await.status, 201);
    let audit = super::secrets::lines();
    assert!(
        audit.iter().any(|l| l.contains("event=\"password_changed\"") && l.contains("DE--21")),
        "{audit:?}"
    );
}

async fn every_refusal_is_glue_s_and_changes_nothing(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let (access, refresh) = app.tokens_of("sonia@acme.com").await;
    let path = "/customer-password/DE--21";
    let good = change("change123", NEW, NEW);

    app.patch(path, &good, None).await.assert_error(403, Some("002"), "Missing access token.");
    app.patch(path, &good, Some("not-a-token")).await.assert_error(
        401,
        Some("001"),
        "Invalid access token.",
    );
    let wrong_type =
        json!({"data": {"type": "customers", "attributes": good["data"]["attributes"]}});
    app.patch(path, &wrong_type, Some(&access)).await.assert_error(400, None, "Invalid type.");
    app.patch("/customer-password", &good, Some(&access)).await.assert_error(
        400,
        None,
        "Resource id is not specified.",
    );

    // Every attribute rule at once, each its own 901.
    let only_new = document("customer-password", json!({"newPassword": NEW}));
    let answer = app.patch(path, &only_new, Some(&access)).await;
    assert_eq!(answer.status, 422, "{}", answer.body);
    let details = answer.details();
    assert_eq!(
        details,
        ["password => This field is missing.", "confirmPassword => This field is missing."]
    );
    let answer =
        app.patch(path, &change("change123", "too short", "too short"), Some(&access)).await;
    assert_eq!(answer.status, 422, "{}", answer.body);
    let short = "This value is too short. It should have 12 characters or more.";
    let errors = answer.body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{}", answer.body);
    assert_eq!(errors[0]["detail"], format!("newPassword => {short}"));
    assert_eq!(errors[1]["detail"], format!("confirmPassword => {short}"));
    assert_eq!(errors[0]["code"], "901");
    let long = "x".repeat(129);
    let answer = app.patch(path, &change("change123", &long, &long), Some(&access)).await;
    assert_eq!(answer.status, 422, "{}", answer.body);
    assert_eq!(
        answer.body["errors"][0]["detail"],
        "newPassword => This value is too long. It should have 128 characters or less."
    );

    app.patch("/customer-password/DE--4", &good, Some(&access)).await.assert_error(
        403,
        Some("411"),
        "Unauthorized request.",
    );
    app.patch(path, &change("change123", NEW, "another long passphrase"), Some(&access))
        .await
        .assert_error(
            422,
            Some("406"),
            "Value in field newPassword should be identical to value in the confirmPassword field.",
        );
    app.patch(path, &change("not-hers-at-all", NEW, NEW), Some(&access)).await.assert_error(
        400,
        Some("408"),
        "Invalid password",
    );

    // Nothing changed: the old password logs in, and the session lives on.
    assert_eq!(app.login("sonia@acme.com", "change123").await.status, 201);
    assert_eq!(app.refresh(&refresh).await.status, 201);
}

async fn wrong_current_passwords_count_as_failed_logins_even_all_at_once(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let (access, _) = app.tokens_of("donald@acme.com").await;
    // 30 wrong guesses at once from one address: at most the login limit (10) is checked.
    let client = client_from(21);
    let guesses = (0..30).map(|n| {
        let (app, client, access) = (Api::clone(&app), client.clone(), access.clone());
        tokio::spawn(async move {
            let body = change(&format!("guess number {n}"), NEW, NEW);
            app.patch_through(&client, "/customer-password/DE--19", &body, &access).await
        })
    });
    let mut checked = 0;
    for guess in guesses.collect::<Vec<_>>() {
        let answer = guess.await.unwrap();
        match answer.status {
            400 => {
                answer.assert_error(400, Some("408"), "Invalid password");
                checked += 1;
            }
            429 => {}
            other => panic!("status {other}: {}", answer.body),
        }
    }
    assert!((1..=10).contains(&checked), "{checked} guesses were checked; the limit is 10");
    // The e-mail is blocked now, for logins too, and so is the right current password.
    let blocked = app.login("donald@acme.com", "change123").await;
    assert_eq!(blocked.status, 429, "{}", blocked.body);
    let right =
        app.patch("/customer-password/DE--19", &change("change123", NEW, NEW), Some(&access)).await;
    assert_eq!(right.status, 429, "{}", right.body);
}

async fn the_length_policy_is_configurable(db: Db, test: &str) {
    let options = ["--password-min-length", "24", "--password-max-length", "30"];
    let Some(app) = TestApp::spawn_demo_with(db, test, &options).await else { return };
    let (access, _) = app.tokens_of("sonia@acme.com").await;
    let path = "/customer-password/DE--21";
    let answer = app.patch(path, &change("change123", NEW, NEW), Some(&access)).await;
    assert_eq!(answer.status, 422, "{}", answer.body);
    assert_eq!(
        answer.body["errors"][0]["detail"],
        "newPassword => This value is too short. It should have 24 characters or more."
    );
    let long = "a passphrase longer than thirty";
    assert!(long.chars().count() > 30);
    let answer = app.patch(path, &change("change123", long, long), Some(&access)).await;
    assert_eq!(
        answer.body["errors"][0]["detail"],
        "newPassword => This value is too long. It should have 30 characters or less."
    );
    let fits = "twenty-four characters!!";
    assert_eq!(fits.chars().count(), 24);
    let answer = app.patch(path, &change("change123", fits, fits), Some(&access)).await;
    assert_eq!(answer.status, 204, "{}", answer.body);
}
