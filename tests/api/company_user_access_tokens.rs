//! `POST /company-user-access-tokens` (docs/wire-contract.md §3.2, Spryker's documentation page),
//! and what its tokens do on refresh and revocation.

use serde_json::{Value, json};
use uuid::Uuid;

use super::helpers::{Answer, Db, TestApp, document, jwt_parts, on_both_databases};
use glue_auth::service::directory;

on_both_databases!(
    the_seed_request_gets_the_seed_response_shape,
    a_company_user_token_refreshes_into_the_same_membership,
    anne_switches_between_her_companies_but_cannot_enter_the_pending_one,
    karl_cannot_use_his_inactive_membership,
    a_foreign_and_a_random_uuid_get_the_same_answer,
    errors_come_in_the_documented_order,
    id_company_user_must_be_a_uuid_string,
    a_company_user_refresh_fails_once_the_membership_is_no_longer_usable,
    a_deactivated_customer_cannot_enter_its_company_users,
    deleting_mine_revokes_the_company_user_refresh_tokens_too,
);

const SONIA: &str = "ebf4b55a-cab0-5ed0-8fb7-525a3eeedeac";
const ANNE_ACME: &str = "72778771-2020-574f-bbaf-05da5889e79e";
const ANNE_BOB: &str = "c7c148a6-5181-5ac4-b2a7-1bf91242ab12";
const ANNE_INITECH: &str = "2da5d436-292a-541e-a559-1d7c8e218357";
const KARL_BOB_INACTIVE: &str = "8f1d1646-13a6-5d2a-9b1e-ff093c406509";
const FAILED: &str = "Failed to authenticate user.";

async fn become_company_user(app: &TestApp, token: &str, id: &Value) -> Answer {
    let body = document("company-user-access-tokens", json!({ "idCompanyUser": id }));
    app.post("/company-user-access-tokens", &body, Some(token)).await
}

async fn the_seed_request_gets_the_seed_response_shape(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let (customer_token, _) = app.tokens_of("sonia@acme.com").await;
    let answer = become_company_user(&app, &customer_token, &json!(SONIA)).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(answer.header("content-type"), Some("application/vnd.api+json"));
    let data = &answer.body["data"];
    assert_eq!(data["type"], "company-user-access-tokens");
    assert_eq!(data["id"], Value::Null);
    assert_eq!(data["links"], json!({"self": app.url("/company-user-access-tokens")}));
    let attributes = data["attributes"].as_object().unwrap();
    let mut names: Vec<&str> = attributes.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["accessToken", "expiresIn", "refreshToken", "tokenType"], "exactly four");
    assert_eq!(
        (attributes["tokenType"].as_str(), attributes["expiresIn"].as_i64()),
        (Some("Bearer"), Some(28800))
    );
    assert_eq!(answer.body.as_object().unwrap().len(), 1, "only data: {}", answer.body);

    let (access, _) = answer.tokens();
    let (_, claims) = jwt_parts(&access);
    assert_eq!(claims["scopes"], json!(["company_user"]));
    let sub = claims["sub"].as_str().unwrap();
    let id_customer = serde_json::from_str::<Value>(sub).unwrap()["id_customer"].as_i64().unwrap();
    assert_eq!(
        sub,
        format!(
            r#"{{"customer_reference":"DE--21","id_customer":{id_customer},"id_company_user":"{SONIA}"}}"#
        ),
        "Spryker's layout, in its order"
    );
    // The company-user token opens the caller's own resources.
    assert_eq!(app.get_as("/customers/DE--21", Some(&access)).await.status, 200);
}

async fn a_company_user_token_refreshes_into_the_same_membership(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let (customer_token, _) = app.tokens_of("anne.boleyn@acme.com").await;
    let (_, refresh) = become_company_user(&app, &customer_token, &json!(ANNE_ACME)).await.tokens();
    let answer = app.refresh(&refresh).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    // Anne's default is BoB-Hotel; the refreshed token stays with Acme.
    assert_eq!(answer.body["data"]["attributes"]["idCompanyUser"], ANNE_ACME);
    let (access, _) = answer.tokens();
    let (_, claims) = jwt_parts(&access);
    assert_eq!(claims["scopes"], json!(["company_user"]));
    assert!(claims["sub"].as_str().unwrap().contains(ANNE_ACME));
}

async fn anne_switches_between_her_companies_but_cannot_enter_the_pending_one(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let (customer_token, _) = app.tokens_of("anne.boleyn@acme.com").await;
    let to_acme = become_company_user(&app, &customer_token, &json!(ANNE_ACME)).await;
    assert_eq!(to_acme.status, 201, "{}", to_acme.body);
    let (acme_token, _) = to_acme.tokens();
    // A company-user token may switch to another membership of the same customer.
    let back = become_company_user(&app, &acme_token, &json!(ANNE_BOB)).await;
    assert_eq!(back.status, 201, "{}", back.body);
    assert!(jwt_parts(&back.tokens().0).1["sub"].as_str().unwrap().contains(ANNE_BOB));
    // Initech is pending.
    become_company_user(&app, &customer_token, &json!(ANNE_INITECH)).await.assert_error(
        401,
        Some("001"),
        FAILED,
    );
    // Approved now: she may enter.
    let initech: Uuid = "3842c87c-0cc5-5521-998c-0dc6ed23d0d4".parse().unwrap();
    directory::set_company_status(&app.db, initech, Some("approved"), None).await.unwrap();
    assert_eq!(become_company_user(&app, &customer_token, &json!(ANNE_INITECH)).await.status, 201);
}

async fn karl_cannot_use_his_inactive_membership(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let (karl, _) = app.tokens_of("karl@acme.com").await;
    become_company_user(&app, &karl, &json!(KARL_BOB_INACTIVE)).await.assert_error(
        401,
        Some("001"),
        FAILED,
    );
    let (bill, _) = app.tokens_of("bill.martin@acme.com").await;
    become_company_user(&app, &bill, &json!(SONIA)).await.assert_error(401, Some("001"), FAILED);
}

async fn a_foreign_and_a_random_uuid_get_the_same_answer(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    use sea_orm::{EntityTrait, PaginatorTrait};
    let (sonia, _) = app.tokens_of("sonia@acme.com").await;
    let tokens = || entity::refresh_token::Entity::find().count(&app.db);
    let before = tokens().await.unwrap();
    let foreign = become_company_user(&app, &sonia, &json!(ANNE_BOB)).await;
    let random = become_company_user(&app, &sonia, &json!(Uuid::new_v4().to_string())).await;
    foreign.assert_error(401, Some("001"), FAILED);
    // Refused in the token store's transaction: no refresh token was stored for either.
    assert_eq!(tokens().await.unwrap(), before);
    assert_eq!((foreign.status, &foreign.body), (random.status, &random.body));
    assert_eq!(foreign.header("www-authenticate"), random.header("www-authenticate"));
}

async fn errors_come_in_the_documented_order(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let (sonia, _) = app.tokens_of("sonia@acme.com").await;
    let path = "/company-user-access-tokens";
    let good = document("company-user-access-tokens", json!({"idCompanyUser": SONIA}));
    let bad_attribute = document("company-user-access-tokens", json!({"idCompanyUser": "nope"}));
    // Body shape before the token.
    app.post(path, &json!({"data": {"type": "company-user-access-tokens"}}), None)
        .await
        .assert_error(400, None, "Post data is invalid.");
    app.post(path, &document("access-tokens", json!({"idCompanyUser": SONIA})), None)
        .await
        .assert_error(400, None, "Invalid type.");
    // The token before the attributes.
    app.post(path, &good, None).await.assert_error(403, Some("002"), "Missing access token.");
    app.post(path, &bad_attribute, None).await.assert_error(
        403,
        Some("002"),
        "Missing access token.",
    );
    app.post(path, &bad_attribute, Some("forged")).await.assert_error(
        401,
        Some("001"),
        "Invalid access token.",
    );
    // The attributes before the membership.
    app.post(path, &bad_attribute, Some(&sonia)).await.assert_error(
        422,
        Some("901"),
        "idCompanyUser => This is not a valid UUID.",
    );
    let unknown = document(
        "company-user-access-tokens",
        json!({"idCompanyUser": Uuid::new_v4().to_string()}),
    );
    app.post(path, &unknown, Some(&sonia)).await.assert_error(401, Some("001"), FAILED);
}

async fn id_company_user_must_be_a_uuid_string(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let (sonia, _) = app.tokens_of("sonia@acme.com").await;
    for (attributes, detail) in [
        (json!({}), "idCompanyUser => This field is missing."),
        (json!({"idCompanyUser": ""}), "idCompanyUser => This value should not be blank."),
        (json!({"idCompanyUser": null}), "idCompanyUser => This value should not be blank."),
        (json!({"idCompanyUser": 42}), "idCompanyUser => This value should be of type string."),
        (json!({"idCompanyUser": ["x"]}), "idCompanyUser => This value should be of type string."),
        (
            json!({"idCompanyUser": "ebf4b55acab05ed08fb7525a3eeedeac"}),
            "idCompanyUser => This is not a valid UUID.",
        ),
        (
            json!({"idCompanyUser": "{ebf4b55a-cab0-5ed0-8fb7-525a3eeedeac}"}),
            "idCompanyUser => This is not a valid UUID.",
        ),
        (
            json!({"idCompanyUser": "ebf4b55a-cab0-5ed0-8fb7-525a3eeedeaX"}),
            "idCompanyUser => This is not a valid UUID.",
        ),
    ] {
        let answer = app
            .post(
                "/company-user-access-tokens",
                &document("company-user-access-tokens", attributes.clone()),
                Some(&sonia),
            )
            .await;
        answer.assert_error(422, Some("901"), detail);
    }
    // Upper-case hex is a uuid too.
    assert_eq!(become_company_user(&app, &sonia, &json!(SONIA.to_uppercase())).await.status, 201);
}

async fn a_company_user_refresh_fails_once_the_membership_is_no_longer_usable(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let (anne, _) = app.tokens_of("anne.boleyn@acme.com").await;
    let (_, acme_refresh) = become_company_user(&app, &anne, &json!(ANNE_ACME)).await.tokens();
    let (_, bob_refresh) = become_company_user(&app, &anne, &json!(ANNE_BOB)).await.tokens();
    // Her Acme membership ends: its refresh token is refused; BoB's still works.
    directory::set_company_user_active(&app.db, ANNE_ACME.parse().unwrap(), false).await.unwrap();
    app.refresh(&acme_refresh).await.assert_error(401, Some("004"), "Failed to refresh token.");
    let (_, bob_refresh) = app.refresh(&bob_refresh).await.tokens();
    // BoB-Hotel's approval is withdrawn: refused too.
    let bob: Uuid = "5a15e950-169f-5ff0-8b88-152d1d1cd76e".parse().unwrap();
    directory::set_company_status(&app.db, bob, Some("denied"), None).await.unwrap();
    app.refresh(&bob_refresh).await.assert_error(401, Some("004"), "Failed to refresh token.");
}

async fn a_deactivated_customer_cannot_enter_its_company_users(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let (sonia, refresh) = app.tokens_of("sonia@acme.com").await;
    directory::set_customer_active(&app.db, "DE--21", false).await.unwrap();
    become_company_user(&app, &sonia, &json!(SONIA)).await.assert_error(401, Some("001"), FAILED);
    app.refresh(&refresh).await.assert_error(401, Some("004"), "Failed to refresh token.");
}

async fn deleting_mine_revokes_the_company_user_refresh_tokens_too(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let (anne, customer_refresh) = app.tokens_of("anne.boleyn@acme.com").await;
    let (acme_access, acme_refresh) =
        become_company_user(&app, &anne, &json!(ANNE_ACME)).await.tokens();
    let (_, bob_refresh) = become_company_user(&app, &anne, &json!(ANNE_BOB)).await.tokens();
    let (_, sonias) = app.tokens_of("sonia@acme.com").await;
    // Called with a company-user token: every refresh token of the customer goes.
    assert_eq!(app.delete_as("/refresh-tokens/mine", Some(&acme_access)).await.status, 204);
    for token in [customer_refresh, acme_refresh, bob_refresh] {
        app.refresh(&token).await.assert_error(401, Some("004"), "Failed to refresh token.");
    }
    assert_eq!(app.refresh(&sonias).await.status, 201, "other customers are untouched");
}
