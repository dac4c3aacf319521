//! Sales agents (docs/wire-contract.md §3.12): the agent login, its tokens and their refresh,
//! the login rules it shares with customers, and agent tokens refused where a customer's is
//! needed.

use std::sync::Arc;

use serde_json::{Value, json};

use super::helpers::{Answer, Db, TestApp, client_from, document, jwt_parts, on_both_databases};
use glue_auth::service::directory;

on_both_databases!(
    the_demo_agent_logs_in_with_an_agent_token,
    wrong_password_unknown_username_inactive_agent_and_blank_fields_all_get_4101,
    ten_failures_for_one_agent_block_it,
    an_agent_refresh_rotates_and_a_reuse_revokes_the_family,
    twenty_concurrent_refreshes_of_one_agent_token_let_exactly_one_win,
    a_deactivated_agent_cannot_refresh,
    an_agent_refresh_token_is_revoked_by_the_oauth_revocation_endpoint,
    an_agent_token_is_refused_where_a_customer_token_is_needed,
    agents_come_from_the_import_format_and_keep_a_bcrypt_hash,
);

const AGENT: &str = "admin@spryker.com";
const FAILED: &str = "Failed to authenticate an agent.";

async fn agent_login_from(app: &TestApp, n: u8, username: &str, password: &str) -> Answer {
    let body = document("agent-access-tokens", json!({"username": username, "password": password}));
    let request = client_from(n)
        .post(app.url("/agent-access-tokens"))
        .header("content-type", "application/vnd.api+json")
        .body(body.to_string());
    app.send_with(&client_from(n), request).await
}

async fn agent_login(app: &TestApp, username: &str, password: &str) -> Answer {
    let body = document("agent-access-tokens", json!({"username": username, "password": password}));
    app.post("/agent-access-tokens", &body, None).await
}

async fn agent_id(app: &TestApp, username: &str) -> i32 {
    directory::find_agent(&app.db, username).await.unwrap().expect("the agent").id
}

/// The `sub` of an agent token: Spryker's customer layout with only the agent set.
fn agent_sub(id: i32) -> String {
    format!(
        r#"{{"id_company_user":null,"id_agent":{id},"customer_reference":null,"id_customer":null}}"#
    )
}

async fn the_demo_agent_logs_in_with_an_agent_token(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let answer = agent_login(&app, AGENT, "change123").await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let data = &answer.body["data"];
    assert_eq!(data["type"], "agent-access-tokens");
    assert_eq!(data["id"], Value::Null);
    let keys: Vec<&str> =
        data["attributes"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 4, "exactly Spryker's four attributes: {keys:?}");
    assert_eq!(data["attributes"]["tokenType"], "Bearer");
    assert_eq!(data["attributes"]["expiresIn"], 28800);
    assert_eq!(data["links"]["self"], app.url("/agent-access-tokens"));
    let (access, _) = answer.tokens();
    let (_, claims) = jwt_parts(&access);
    assert_eq!(claims["scopes"], json!(["agent"]));
    assert_eq!(claims["sub"], agent_sub(agent_id(&app, AGENT).await));
    // The username is matched without regard to case.
    assert_eq!(agent_login(&app, "Admin@Spryker.COM", "change123").await.status, 201);
}

async fn wrong_password_unknown_username_inactive_agent_and_blank_fields_all_get_4101(
    db: Db,
    test: &str,
) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let attempts = [(AGENT, "wrong"), ("nobody@spryker.com", "change123"), ("", "change123")];
    for (n, (username, password)) in attempts.into_iter().enumerate() {
        let answer = agent_login_from(&app, 40 + n as u8, username, password).await;
        answer.assert_error(401, Some("4101"), FAILED);
    }
    // Missing fields too, as in Spryker: not a 422.
    let body = document("agent-access-tokens", json!({"username": AGENT}));
    app.post("/agent-access-tokens", &body, None).await.assert_error(401, Some("4101"), FAILED);
    // A customer's credentials are no agent's.
    agent_login(&app, "sonia@acme.com", "change123").await.assert_error(401, Some("4101"), FAILED);
    directory::set_agent_active(&app.db, AGENT, false).await.unwrap();
    agent_login(&app, AGENT, "change123").await.assert_error(401, Some("4101"), FAILED);
    directory::set_agent_active(&app.db, AGENT, true).await.unwrap();
    assert_eq!(agent_login(&app, AGENT, "change123").await.status, 201);
    // The wrong resource type is the body's error.
    let body = document("access-tokens", json!({"username": AGENT, "password": "change123"}));
    assert_eq!(app.post("/agent-access-tokens", &body, None).await.status, 400);
}

async fn ten_failures_for_one_agent_block_it(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    // From ten addresses, so only the agent's counter reaches the limit.
    for n in 2..12 {
        agent_login_from(&app, n, AGENT, "wrong").await.assert_error(401, Some("4101"), FAILED);
    }
    let blocked = agent_login_from(&app, 20, AGENT, "change123").await;
    assert_eq!(blocked.status, 429, "{}", blocked.body);
    assert_eq!(blocked.body["errors"][0]["code"], "4401");
    // A customer from the same address is not blocked, nor is the agent after the block.
    let customer = app.login_through(&client_from(20), &[], "sonia@acme.com", "change123").await;
    assert_eq!(customer.status, 201);
    app.clock.advance(301);
    assert_eq!(agent_login_from(&app, 21, AGENT, "change123").await.status, 201);
}

async fn an_agent_refresh_rotates_and_a_reuse_revokes_the_family(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let id = agent_id(&app, AGENT).await;
    let (_, first) = agent_login(&app, AGENT, "change123").await.tokens();
    let (_, other_login) = agent_login(&app, AGENT, "change123").await.tokens();
    let answer = app.refresh(&first).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(answer.body["data"]["type"], "refresh-tokens");
    let (access, second) = answer.tokens();
    let (_, claims) = jwt_parts(&access);
    assert_eq!(
        (claims["scopes"].clone(), claims["sub"].clone()),
        (json!(["agent"]), json!(agent_sub(id)))
    );
    // Within the grace window the used token is refused and nothing is revoked.
    app.refresh(&first).await.assert_error(401, Some("004"), "Failed to refresh token.");
    // The OAuth token endpoint rotates agent tokens too.
    let oauth = app.token(&[("grant_type", "refresh_token"), ("refresh_token", &second)]).await;
    assert_eq!(oauth.status, 200, "{}", oauth.body);
    let third = oauth.body["refresh_token"].as_str().unwrap().to_owned();
    // Past the grace window a reuse revokes the whole family, the live third included.
    app.clock.advance(10);
    app.refresh(&first).await.assert_error(401, Some("004"), "Failed to refresh token.");
    app.refresh(&third).await.assert_error(401, Some("004"), "Failed to refresh token.");
    // Another login is another family.
    assert_eq!(app.refresh(&other_login).await.status, 201);
}

async fn twenty_concurrent_refreshes_of_one_agent_token_let_exactly_one_win(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let (_, token) = agent_login(&app, AGENT, "change123").await.tokens();
    let app = Arc::new(app);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (app, token) = (app.clone(), token.clone());
            tokio::spawn(async move { app.refresh(&token).await.status })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 201 || *s == 401), "{statuses:?}");
    use entity::agent_refresh_token;
    use sea_orm::{EntityTrait, PaginatorTrait};
    assert_eq!(agent_refresh_token::Entity::find().count(&app.db).await.unwrap(), 2);
}

async fn a_deactivated_agent_cannot_refresh(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let (_, refresh) = agent_login(&app, AGENT, "change123").await.tokens();
    directory::set_agent_active(&app.db, AGENT, false).await.unwrap();
    app.refresh(&refresh).await.assert_error(401, Some("004"), "Failed to refresh token.");
    directory::set_agent_active(&app.db, AGENT, true).await.unwrap();
    assert_eq!(app.refresh(&refresh).await.status, 201, "nothing was used up");
}

async fn an_agent_refresh_token_is_revoked_by_the_oauth_revocation_endpoint(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let (_, revoked) = agent_login(&app, AGENT, "change123").await.tokens();
    let (_, kept) = agent_login(&app, AGENT, "change123").await.tokens();
    let answer = app
        .send(
            app.request(reqwest::Method::POST, "/revoke")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("token={revoked}&token_type_hint=refresh_token")),
        )
        .await;
    assert_eq!(answer.status, 200);
    app.refresh(&revoked).await.assert_error(401, Some("004"), "Failed to refresh token.");
    assert_eq!(app.refresh(&kept).await.status, 201);
}

async fn an_agent_token_is_refused_where_a_customer_token_is_needed(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let (agent, _) = agent_login(&app, AGENT, "change123").await.tokens();
    let refused = "An agent access token cannot be used here: impersonate a customer first.";
    for path in ["/customers", "/company-users/mine", "/companies/mine"] {
        app.get_as(path, Some(&agent)).await.assert_error(403, Some("4105"), refused);
    }
    app.company_user_token(&agent, "ebf4b55a-cab0-5ed0-8fb7-525a3eeedeac").await.assert_error(
        403,
        Some("4105"),
        refused,
    );
    // As a subject token of the OAuth exchange it is refused as an unusable membership.
    let exchange = app
        .token(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
            ("subject_token", &agent),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
            ("id_company_user", "ebf4b55a-cab0-5ed0-8fb7-525a3eeedeac"),
        ])
        .await;
    assert_eq!((exchange.status, &exchange.body["error"]), (400, &json!("invalid_grant")));
    // Sent to an unprotected operation, a valid agent token is accepted as any valid token.
    let login = app
        .post(
            "/access-tokens",
            &document(
                "access-tokens",
                json!({"username": "sonia@acme.com", "password": "change123"}),
            ),
            Some(&agent),
        )
        .await;
    assert_eq!(login.status, 201, "{}", login.body);
    // And a customer's token still works where it did.
    let (sonia, _) = app.tokens_of("sonia@acme.com").await;
    assert_eq!(app.get_as("/customers", Some(&sonia)).await.status, 200);
}

async fn agents_come_from_the_import_format_and_keep_a_bcrypt_hash(db: Db, test: &str) {
    let Some(app) = TestApp::spawn(db, test).await else { return };
    // Spryker's back-office users keep their bcrypt hashes.
    let bcrypt = bcrypt::hash_with_result("agent-pass-1", 4)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoY);
    let text = format!(
        "agents:\n  - {{username: Vitaliy@Spryker.com, first_name: Vitaliy, last_name: Smith, password_hash: '{bcrypt}'}}\n  - {{username: blocked@spryker.com, active: false, password: a-long-demo-password}}\n"
    );
    let policy = glue_auth::service::password_policy::PasswordPolicy::DEMO_DATASET;
    let summary = glue_auth::dataset::import_text(&app.db, &text, &policy).await.unwrap();
    assert_eq!(summary.agents, 2);
    assert_eq!(agent_login(&app, "vitaliy@spryker.com", "agent-pass-1").await.status, 201);
    agent_login(&app, "blocked@spryker.com", "a-long-demo-password").await.assert_error(
        401,
        Some("4101"),
        FAILED,
    );
    // The username is unique without regard to case; a bad hash is named.
    for (row, message) in [
        ("{username: VITALIY@spryker.com, password: x-long-demo-pw}", "already exists"),
        ("{username: x@spryker.com, password_hash: plain}", "neither an Argon2 PHC string"),
    ] {
        let err =
            glue_auth::dataset::import_text(&app.db, &format!("agents:\n  - {row}\n"), &policy)
                .await
                .unwrap_err();
        assert!(err.to_string().contains(message), "{err}");
    }
}
