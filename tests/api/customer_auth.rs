//! Customer authentication (docs/wire-contract.md §2, §3.1, §3.3, §3.4, §3.7): logins, tokens,
//! refresh with rotation and reuse detection, revocation, blocking, keys.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use super::helpers::{
    Answer, Db, TestApp, client_from, document, jwt_parts, on_both_databases, raw_http, sha256_hex,
    stored_token_hash,
};
use glue_auth::auth::{
    keys::KeySet,
    tokens::{Identity, TokenKind, TokenService},
};
use glue_auth::service::password_policy::PasswordPolicy;

on_both_databases!(
    every_demo_persona_logs_in_with_its_default_company_user,
    the_e_mail_is_matched_without_regard_to_case,
    configured_base_url_and_lifetime_show_in_links_and_expires_in,
    without_a_default_the_oldest_usable_membership_is_carried,
    concurrent_logins_all_complete_through_the_password_check_limit,
    wrong_password_unknown_e_mail_and_inactive_customer_all_get_003,
    login_attributes_are_checked_with_901,
    the_422_reason_phrase_is_unprocessable_content,
    ten_failures_for_one_e_mail_block_it_until_the_block_time_passes,
    ten_failures_from_one_address_block_that_address_only,
    a_successful_login_clears_the_e_mail_s_failures,
    an_expired_access_token_gets_001,
    forged_and_foreign_tokens_get_001,
    malformed_authorization_headers_get_001_and_an_absent_one_002,
    a_token_sent_to_an_unprotected_operation_is_still_checked,
    refresh_rotates_the_token_and_the_old_one_gets_004,
    refresh_with_a_rotated_token_revokes_the_whole_family,
    refresh_tokens_are_stored_as_their_time_key_and_a_hash,
    refresh_tokens_of_the_layout_before_time_keys_still_work,
    twenty_concurrent_refreshes_of_one_token_let_exactly_one_win,
    concurrent_refreshes_of_many_families_rotate_each_once,
    a_token_write_that_fails_beside_others_fails_alone,
    a_rotation_after_revoke_all_claims_nothing,
    a_rotation_waits_for_a_revoke_all_in_progress_and_then_claims_nothing,
    an_expired_refresh_token_gets_004,
    refresh_attributes_are_checked_with_901,
    deleting_a_refresh_token_revokes_only_the_callers_own,
    deleting_mine_revokes_every_refresh_token_of_the_customer,
    customers_shows_the_caller_alone,
    a_valid_token_of_a_deleted_customer_gets_402,
    purging_removes_expired_refresh_tokens_only,
    the_jwks_verifies_tokens_with_an_independent_verifier,
    key_rotation_keeps_old_tokens_valid_and_a_removed_key_ends_them,
);

/// (e-mail, the company user the customer token must carry).
const PERSONAS: [(&str, Option<&str>); 13] = [
    ("sonia@acme.com", Some("ebf4b55a-cab0-5ed0-8fb7-525a3eeedeac")),
    ("bill.martin@acme.com", None),
    ("Trever.m@acme.com", Some("3c79dd9f-dc74-559c-88d5-449660b51132")),
    ("Solomon@acme.com", Some("2816dcbd-855e-567e-b26f-4d57f3310bb8")),
    ("Richi@acme.com", Some("3db9f6fd-fdec-5605-a982-8d8ea979041c")),
    // Karl's BoB-Hotel membership is inactive: his Acme one is carried.
    ("karl@acme.com", Some("46355100-0a82-5fdb-896e-5c0ce70de816")),
    ("Sarah@acme.com", Some("b61c4549-7491-5d26-b8c7-639950a710c7")),
    ("Elizabet@acme.com", Some("ee4423bd-fdd6-51d2-b6b4-eddd4a133d15")),
    ("donald@acme.com", Some("c615f85e-75c3-5540-9a7e-cf6d293b764b")),
    ("arnold@acme.com", Some("4ac44bbf-b8f3-542f-8be5-84964cb83d87")),
    ("kevin@acme.com", Some("1b4d012d-efc1-5a34-9329-a4468ace93d2")),
    ("emma@acme.com", Some("a72c1064-d283-57f4-a4c4-03e747b7bf25")),
    // Anne's default is BoB-Hotel Mitte, though her Acme membership is older.
    ("anne.boleyn@acme.com", Some("c7c148a6-5181-5ac4-b2a7-1bf91242ab12")),
];

async fn every_demo_persona_logs_in_with_its_default_company_user(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    for (email, company_user) in PERSONAS {
        let answer = app.login(email, "change123").await;
        assert_eq!(answer.status, 201, "{email}: {}", answer.body);
        assert_eq!(answer.header("content-type"), Some("application/vnd.api+json"));
        let data = &answer.body["data"];
        assert_eq!(data["type"], "access-tokens");
        assert_eq!(data["id"], Value::Null);
        assert_eq!(data["links"]["self"], app.url("/access-tokens"));
        let attributes = data["attributes"].as_object().unwrap();
        let mut names: Vec<&str> = attributes.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["accessToken", "expiresIn", "idCompanyUser", "refreshToken", "tokenType"]
        );
        assert_eq!(attributes["tokenType"], "Bearer");
        assert_eq!(attributes["expiresIn"], 28800);
        assert_eq!(attributes["idCompanyUser"], json!(company_user), "{email}");
        assert!(attributes["refreshToken"].as_str().unwrap().len() >= 43, "256 bits");

        let (header, claims) = jwt_parts(attributes["accessToken"].as_str().unwrap());
        assert_eq!(
            (header["alg"].as_str(), header["typ"].as_str()),
            (Some("ES256"), Some("at+jwt"))
        );
        assert!(header["kid"].is_string());
        assert_eq!(claims["iss"], "glue-auth");
        assert_eq!(claims["aud"], "frontend");
        assert_eq!(claims["scopes"], json!(["customer"]));
        assert!(claims["jti"].as_str().unwrap().len() >= 32);
        assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 28800);
        let sub: Value =
            serde_json::from_str(claims["sub"].as_str().expect("sub is a string")).unwrap();
        assert_eq!(sub["id_company_user"], json!(company_user));
        assert_eq!(sub["id_agent"], Value::Null);
        assert!(sub["customer_reference"].as_str().unwrap().starts_with("DE--"));
        assert!(sub["id_customer"].is_i64());
    }
}

async fn concurrent_logins_all_complete_through_the_password_check_limit(db: Db, test: &str) {
    // 26 at once from one address: the blocking limit and the address's share of the check
    // queue bound the checks one address has under way (`attack` tests both), so they are
    // set above that here.
    let options = ["--login-block-attempts", "30", "--login-queue-per-address", "30"];
    let Some(app) = TestApp::spawn_with(db, test, &options).await else { return };
    glue_auth::admin::load_demo(&app.db).await.unwrap();
    let app = std::sync::Arc::new(app);
    // More logins at once than there are password-check slots (one per CPU): they queue.
    let tasks: Vec<_> = PERSONAS
        .iter()
        .chain(PERSONAS.iter())
        .map(|(email, company_user)| {
            let app = app.clone();
            tokio::spawn(async move { (app.login(email, "change123").await, *company_user) })
        })
        .collect();
    for task in tasks {
        let (answer, company_user) = task.await.unwrap();
        assert_eq!(answer.status, 201, "{}", answer.body);
        assert_eq!(answer.body["data"]["attributes"]["idCompanyUser"], json!(company_user));
    }
}

async fn configured_base_url_and_lifetime_show_in_links_and_expires_in(db: Db, test: &str) {
    let extra = ["--public-base-url", "https://glue.example.com/", "--access-token-ttl", "600"];
    let Some(app) = TestApp::spawn_with(db, test, &extra).await else { return };
    glue_auth::admin::load_demo(&app.db).await.unwrap();
    let answer = app.login("sonia@acme.com", "change123").await;
    assert_eq!(answer.body["data"]["links"]["self"], "https://glue.example.com/access-tokens");
    assert_eq!(answer.body["data"]["attributes"]["expiresIn"], 600);
    let (header_and_claims, _) = answer.tokens();
    let (_, claims) = jwt_parts(&header_and_claims);
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 600);
}

async fn without_a_default_the_oldest_usable_membership_is_carried(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    // Bill has no company: give him two memberships, neither the default, the older first.
    let older = "11111111-1111-4111-8111-111111111111";
    let newer = "22222222-2222-4222-8222-222222222222";
    let text = format!(
        "company_users:\n  - {{uuid: {older}, customer: DE--4, company: 5a15e950-169f-5ff0-8b88-152d1d1cd76e}}\n  - {{uuid: {newer}, customer: DE--4, company: 62de4ab6-b768-5c21-8835-455d9f341625}}\n"
    );
    glue_auth::dataset::import_text(&app.db, &text, &PasswordPolicy::DEFAULT).await.unwrap();
    let answer = app.login("bill.martin@acme.com", "change123").await;
    assert_eq!(answer.body["data"]["attributes"]["idCompanyUser"], older);
    let (_, refresh) = answer.tokens();
    let refreshed = app.refresh(&refresh).await;
    assert_eq!(refreshed.body["data"]["attributes"]["idCompanyUser"], older, "a refresh too");
    let (_, refresh) = refreshed.tokens();
    // The older one's company is denied: the newer usable one is carried.
    let bob: uuid::Uuid = "5a15e950-169f-5ff0-8b88-152d1d1cd76e".parse().unwrap();
    glue_auth::service::directory::set_company_status(&app.db, bob, Some("denied"), None)
        .await
        .unwrap();
    let answer = app.login("bill.martin@acme.com", "change123").await;
    assert_eq!(answer.body["data"]["attributes"]["idCompanyUser"], newer);
    let refreshed = app.refresh(&refresh).await;
    assert_eq!(refreshed.body["data"]["attributes"]["idCompanyUser"], newer, "a refresh too");
}

async fn the_e_mail_is_matched_without_regard_to_case(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    assert_eq!(app.login("SONIA@Acme.com", "change123").await.status, 201);
    assert_eq!(app.login("trever.m@acme.com", "change123").await.status, 201);
}

async fn wrong_password_unknown_e_mail_and_inactive_customer_all_get_003(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let cases = [
        ("sonia@acme.com", "wrong"),
        ("nobody@acme.com", "change123"),
        ("lena.inactive@acme.com", "change123"),
    ];
    let mut bodies = Vec::new();
    for (email, password) in cases {
        let answer = app.login(email, password).await;
        answer.assert_error(401, Some("003"), "Failed to authenticate user.");
        assert_eq!(answer.header("www-authenticate"), Some(r#"Bearer realm="Access to shop API""#));
        bodies.push(answer.body);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "one answer for all three");
}

async fn login_attributes_are_checked_with_901(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let cases: [(Value, &[&str]); 6] = [
        (
            json!({"username": "", "password": "x"}),
            &["username => This value should not be blank."],
        ),
        (
            json!({"username": "sonia", "password": "x"}),
            &["username => This value is not a valid email address."],
        ),
        (
            json!({"username": "sonia@acme.com", "password": ""}),
            &["password => This value should not be blank."],
        ),
        (json!({}), &["username => This field is missing.", "password => This field is missing."]),
        (
            json!({"username": 5, "password": null}),
            &[
                "username => This value should be of type string.",
                "password => This value should not be blank.",
            ],
        ),
        (
            json!({"username": "  ", "password": "   "}),
            &[
                "username => This value should not be blank.",
                "password => This value should not be blank.",
            ],
        ),
    ];
    for (attributes, details) in cases {
        let answer =
            app.post("/access-tokens", &document("access-tokens", attributes.clone()), None).await;
        assert_eq!(answer.status, 422, "{attributes}: {}", answer.body);
        let got: Vec<&str> = answer.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                assert_eq!((e["code"].as_str(), e["status"].as_u64()), (Some("901"), Some(422)));
                e["detail"].as_str().unwrap()
            })
            .collect();
        assert_eq!(got, details, "{attributes}");
    }
    // Body shape comes first (400), then the type (400).
    app.post("/access-tokens", &json!({"data": {"type": "access-tokens"}}), None)
        .await
        .assert_error(400, None, "Post data is invalid.");
    app.post("/access-tokens", &document("refresh-tokens", json!({})), None).await.assert_error(
        400,
        None,
        "Invalid type.",
    );
    app.post_raw("/access-tokens", "{not json").await.assert_error(
        400,
        None,
        "Post data is invalid.",
    );
    app.post_raw("/access-tokens", "").await.assert_error(400, None, "Post data is invalid.");
}

async fn the_422_reason_phrase_is_unprocessable_content(db: Db, test: &str) {
    let Some(app) = TestApp::spawn(db, test).await else { return };
    let body = document("access-tokens", json!({"username": "", "password": ""})).to_string();
    let request = format!(
        "POST /access-tokens HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let raw = raw_http(app.addr, request.as_bytes()).await;
    assert!(raw.starts_with("HTTP/1.1 422 Unprocessable Content\r\n"), "{raw}");
    // A body sent without Content-Type is still read as JSON (Glue does so).
    assert!(raw.contains("This value should not be blank."), "{raw}");
}

async fn login_from(app: &TestApp, n: u8, email: &str, password: &str) -> Answer {
    app.login_through(&client_from(n), &[], email, password).await
}

const BLOCKED: &str =
    "Too many log in attempts from your address. Please wait 5 minutes before trying again.";

async fn ten_failures_for_one_e_mail_block_it_until_the_block_time_passes(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    // From ten different addresses, so only the e-mail's counter reaches the limit.
    for n in 2..12 {
        login_from(&app, n, "sonia@acme.com", "wrong").await.assert_error(
            401,
            Some("003"),
            "Failed to authenticate user.",
        );
    }
    let blocked = login_from(&app, 20, "sonia@acme.com", "change123").await;
    blocked.assert_error(429, Some("4401"), BLOCKED);
    // Another e-mail from the same address is not blocked.
    assert_eq!(login_from(&app, 20, "karl@acme.com", "change123").await.status, 201);
    // Still blocked well before the block time ends (a margin for real time passing on a
    // busy machine); free after it.
    app.clock.advance(250);
    assert_eq!(login_from(&app, 21, "sonia@acme.com", "change123").await.status, 429);
    app.clock.advance(51);
    assert_eq!(login_from(&app, 21, "sonia@acme.com", "change123").await.status, 201);
}

async fn ten_failures_from_one_address_block_that_address_only(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    for i in 0..10 {
        let answer = login_from(&app, 30, &format!("nobody{i}@acme.com"), "x").await;
        answer.assert_error(401, Some("003"), "Failed to authenticate user.");
    }
    login_from(&app, 30, "sonia@acme.com", "change123").await.assert_error(
        429,
        Some("4401"),
        BLOCKED,
    );
    assert_eq!(login_from(&app, 31, "sonia@acme.com", "change123").await.status, 201);
    // A window that has passed starts counting again from one.
    app.clock.advance(601);
    for i in 0..9 {
        assert_eq!(login_from(&app, 30, &format!("again{i}@acme.com"), "x").await.status, 401);
    }
    assert_eq!(login_from(&app, 30, "sonia@acme.com", "change123").await.status, 201);
}

async fn a_successful_login_clears_the_e_mail_s_failures(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    // Each failure from an address of its own, so only the e-mail's counter grows.
    let fail_from = async |addresses: std::ops::Range<u8>| {
        for n in addresses {
            let answer = login_from(&app, n, "sonia@acme.com", "wrong").await;
            answer.assert_error(401, Some("003"), "Failed to authenticate user.");
        }
    };
    fail_from(40..49).await;
    assert_eq!(login_from(&app, 100, "sonia@acme.com", "change123").await.status, 201);
    // Nine more in the same window: had the success not cleared the counter, the tenth
    // failure would have blocked the e-mail.
    fail_from(50..59).await;
    assert_eq!(login_from(&app, 101, "sonia@acme.com", "change123").await.status, 201);
    // Ten failures after a success block it.
    fail_from(60..70).await;
    login_from(&app, 102, "sonia@acme.com", "change123").await.assert_error(
        429,
        Some("4401"),
        BLOCKED,
    );
}

async fn an_expired_access_token_gets_001(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let (token, _) = app.tokens_of("sonia@acme.com").await;
    assert_eq!(app.get_as("/customers", Some(&token)).await.status, 200);
    app.clock.advance(28_800 + 31);
    app.get_as("/customers", Some(&token)).await.assert_error(
        401,
        Some("001"),
        "Invalid access token.",
    );
}

/// A token service on the app's own key, with other settings.
fn service_on_app_key(app: &TestApp, issuer: &str, audience: &str) -> TokenService {
    let keys = KeySet::load(&[], app.data_dir.path()).unwrap();
    TokenService::new(keys, issuer, audience, 28_800)
}

fn sonia() -> Identity {
    Identity {
        customer_id: 1,
        customer_reference: "DE--21".into(),
        company_user: None,
        kind: TokenKind::Customer,
    }
}

async fn forged_and_foreign_tokens_get_001(db: Db, test: &str) {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let now = glue_auth::clock::now();
    let (good, _) = app.tokens_of("sonia@acme.com").await;
    let (header, claims) = jwt_parts(&good);
    let signing_input = |h: &Value, c: &Value| {
        format!("{}.{}", B64.encode(h.to_string()), B64.encode(c.to_string()))
    };

    let mut none_header = header.clone();
    none_header["alg"] = json!("none");
    let alg_none = format!("{}.", signing_input(&none_header, &claims));

    // HS256 keyed with the public key (the classic algorithm confusion).
    let jwks: Value = app.get("/.well-known/jwks.json").await.json().await.unwrap();
    let public = jwks["keys"][0].to_string();
    let mut hs_header = header.clone();
    hs_header["alg"] = json!("HS256");
    let input = signing_input(&hs_header, &claims);
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, public.as_bytes());
    let hs256 = format!("{input}.{}", B64.encode(aws_lc_rs::hmac::sign(&key, input.as_bytes())));

    // Signed by the service's own key, its header without `typ` (RFC 9068 requires it).
    let mut untyped_header = header.clone();
    untyped_header.as_object_mut().unwrap().remove("typ");
    let untyped_input = signing_input(&untyped_header, &claims);
    let app_keys = KeySet::load(&[], app.data_dir.path()).unwrap();
    let signature = app_keys.signing_key().sign(untyped_input.as_bytes()).unwrap();
    let untyped = format!("{untyped_input}.{}", B64.encode(signature));

    let mut tampered_claims = claims.clone();
    tampered_claims["scopes"] = json!(["company_user"]);
    let tampered = format!(
        "{}.{}",
        signing_input(&header, &tampered_claims),
        good.rsplit('.').next().unwrap()
    );

    let stranger_dir = tempfile::tempdir().unwrap();
    let stranger = TokenService::new(
        KeySet::load(&[], stranger_dir.path()).unwrap(),
        "glue-auth",
        "frontend",
        28_800,
    );
    let unknown_key = stranger.issue(&sonia(), now).unwrap();
    let other_audience =
        service_on_app_key(&app, "glue-auth", "backoffice").issue(&sonia(), now).unwrap();
    let other_issuer =
        service_on_app_key(&app, "someone-else", "frontend").issue(&sonia(), now).unwrap();
    let from_the_future =
        service_on_app_key(&app, "glue-auth", "frontend").issue(&sonia(), now + 3600).unwrap();

    for (what, token) in [
        ("alg none", alg_none),
        ("HS256 with the public key", hs256),
        ("tampered claims", tampered),
        ("no typ", untyped),
        ("unknown key", unknown_key),
        ("other audience", other_audience),
        ("other issuer", other_issuer),
        ("issued in the future", from_the_future),
        ("garbage", "not.a.jwt".to_owned()),
    ] {
        let answer = app.get_as("/customers", Some(&token)).await;
        assert_eq!(answer.status, 401, "{what}: {}", answer.body);
        answer.assert_error(401, Some("001"), "Invalid access token.");
    }
    // A token made by the same key and settings is accepted: the refusals above are real.
    let genuine = service_on_app_key(&app, "glue-auth", "frontend").issue(&sonia(), now).unwrap();
    assert_eq!(app.get_as("/customers", Some(&genuine)).await.status, 200);
}

async fn malformed_authorization_headers_get_001_and_an_absent_one_002(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let (token, _) = app.tokens_of("sonia@acme.com").await;
    for header in [
        "Bearer".to_owned(),
        "Bearer ".to_owned(),
        format!("Bearer {token} {token}"),
        format!("Basic {token}"),
        token.clone(),
        String::new(),
    ] {
        let answer = app
            .send(app.request(reqwest::Method::GET, "/customers").header("authorization", &header))
            .await;
        answer.assert_error(401, Some("001"), "Invalid access token.");
    }
    let resp = app
        .request(reqwest::Method::GET, "/customers")
        .header("authorization", format!("bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "the scheme is case-insensitive (RFC 9110)");
    app.get_as("/customers", None).await.assert_error(403, Some("002"), "Missing access token.");
}

async fn a_token_sent_to_an_unprotected_operation_is_still_checked(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let body =
        document("access-tokens", json!({"username": "sonia@acme.com", "password": "change123"}));
    app.post("/access-tokens", &body, Some("nonsense")).await.assert_error(
        401,
        Some("001"),
        "Invalid access token.",
    );
    let (token, refresh) = app.tokens_of("karl@acme.com").await;
    assert_eq!(app.post("/access-tokens", &body, Some(&token)).await.status, 201);
    let refresh_body = document("refresh-tokens", json!({"refreshToken": refresh}));
    app.post("/refresh-tokens", &refresh_body, Some("nonsense")).await.assert_error(
        401,
        Some("001"),
        "Invalid access token.",
    );
}

async fn refresh_rotates_the_token_and_the_old_one_gets_004(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let (_, first) = app.tokens_of("sonia@acme.com").await;
    let answer = app.refresh(&first).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let data = &answer.body["data"];
    assert_eq!((data["type"].as_str(), &data["id"]), (Some("refresh-tokens"), &Value::Null));
    assert_eq!(data["links"]["self"], app.url("/refresh-tokens"));
    assert_eq!(data["attributes"]["idCompanyUser"], "ebf4b55a-cab0-5ed0-8fb7-525a3eeedeac");
    assert_eq!(data["attributes"]["expiresIn"], 28800);
    let (access, second) = answer.tokens();
    assert_ne!(first, second);
    assert_eq!(app.get_as("/customers", Some(&access)).await.status, 200);
    app.refresh(&first).await.assert_error(401, Some("004"), "Failed to refresh token.");
    app.refresh("never-issued").await.assert_error(401, Some("004"), "Failed to refresh token.");
}

async fn refresh_with_a_rotated_token_revokes_the_whole_family(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let (_, first) = app.tokens_of("sonia@acme.com").await;
    let (_, other_login) = app.tokens_of("sonia@acme.com").await;
    let (_, second) = app.refresh(&first).await.tokens();
    let (_, third) = app.refresh(&second).await.tokens();
    // An attacker replays the first token after the grace window (`--refresh-reuse-grace`,
    // 10 s): the family, including the live third, dies.
    app.clock.advance(10);
    app.refresh(&first).await.assert_error(401, Some("004"), "Failed to refresh token.");
    app.refresh(&third).await.assert_error(401, Some("004"), "Failed to refresh token.");
    // Another login is another family and lives on.
    assert_eq!(app.refresh(&other_login).await.status, 201);
}

async fn refresh_tokens_are_stored_as_their_time_key_and_a_hash(db: Db, test: &str) {
    use entity::refresh_token;
    use sea_orm::EntityTrait;
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let (_, first) = app.tokens_of("sonia@acme.com").await;
    let (_, second) = app.refresh(&first).await.tokens();
    let mut stored: Vec<String> = refresh_token::Entity::find()
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.token_hash)
        .collect();
    stored.sort();
    let mut expected = Vec::new();
    for token in [&first, &second] {
        // 16 lowercase hex digits of a time key, then 256 random bits in URL-safe base64.
        assert_eq!(token.len(), 59, "{token}");
        let (key, secret) = token.split_at(16);
        assert!(key.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{key}");
        let micros = u64::from_str_radix(key, 16).unwrap();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        assert!(now.as_micros() as u64 - micros < 60_000_000, "a key of the last minute");
        assert_eq!(URL_SAFE_NO_PAD.decode(secret).unwrap().len(), 32);
        expected.push(stored_token_hash(token));
    }
    // Only the key and a hash: the secret is nowhere in the database's row. The successor's
    // key sorts after its predecessor's (the index grows at its end).
    assert_eq!(stored, expected);
}

/// Tokens issued before the time key (a bare 43-character secret, stored as its bare hash)
/// still refresh, are rotated into tokens of the new layout, and revoke.
async fn refresh_tokens_of_the_layout_before_time_keys_still_work(db: Db, test: &str) {
    use entity::refresh_token;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let mut old_tokens = Vec::new();
    for n in 0..2u8 {
        let (_, issued) = app.tokens_of("sonia@acme.com").await;
        let old = URL_SAFE_NO_PAD.encode([n + 1; 32]);
        // Rewrite the row as the service stored tokens before keys.
        refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::TokenHash, Expr::value(sha256_hex(&old)))
            .filter(refresh_token::Column::TokenHash.eq(stored_token_hash(&issued)))
            .exec(&app.db)
            .await
            .unwrap();
        app.refresh(&issued).await.assert_error(401, Some("004"), "Failed to refresh token.");
        old_tokens.push(old);
    }
    let answer = app.refresh(&old_tokens[0]).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let (_, successor) = answer.tokens();
    assert_eq!(successor.len(), 59, "{successor}");
    assert_eq!(app.refresh(&successor).await.status, 201);
    // A replay of the old token is a reuse, as for any other token.
    app.refresh(&old_tokens[0]).await.assert_error(401, Some("004"), "Failed to refresh token.");
    // The other one is revoked by its owner.
    let (sonia, _) = app.tokens_of("sonia@acme.com").await;
    let path = format!("/refresh-tokens/{}", old_tokens[1]);
    assert_eq!(app.delete_as(&path, Some(&sonia)).await.status, 204);
    app.refresh(&old_tokens[1]).await.assert_error(401, Some("004"), "Failed to refresh token.");
}

async fn twenty_concurrent_refreshes_of_one_token_let_exactly_one_win(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let (_, token) = app.tokens_of("sonia@acme.com").await;
    let app = std::sync::Arc::new(app);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (app, token) = (app.clone(), token.clone());
            tokio::spawn(async move { app.refresh(&token).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        let answer = task.await.unwrap();
        if answer.status != 201 {
            answer.assert_error(401, Some("004"), "Failed to refresh token.");
        }
        statuses.push(answer.status);
    }
    // Requests that read the token after the winner rotated it are reuses (docs/wire-contract.md
    // §2.3) and may revoke the family; the point here is that no second pair of tokens is issued.
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
}

/// Many rotations at once share the writer's groups (SQLite) or the pool (PostgreSQL):
/// each family rotates exactly once per round, and the rows link up.
async fn concurrent_refreshes_of_many_families_rotate_each_once(db: Db, test: &str) {
    use entity::refresh_token;
    use sea_orm::EntityTrait;
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let mut tokens = Vec::new();
    for _ in 0..3 {
        for (email, _) in PERSONAS {
            tokens.push(app.tokens_of(email).await.1);
        }
    }
    let families = tokens.len();
    let app = std::sync::Arc::new(app);
    let refresh_all = |tokens: Vec<String>| {
        let tasks: Vec<_> = tokens
            .into_iter()
            .map(|token| {
                let app = app.clone();
                tokio::spawn(async move { app.refresh(&token).await })
            })
            .collect();
        async move {
            let mut answers = Vec::new();
            for task in tasks {
                answers.push(task.await.unwrap());
            }
            answers
        }
    };
    // Round 1: every token once, all at the same time.
    let answers = refresh_all(tokens.clone()).await;
    let successors: Vec<String> = answers
        .iter()
        .map(|answer| {
            assert_eq!(answer.status, 201, "{}", answer.body);
            answer.tokens().1
        })
        .collect();
    let distinct: std::collections::HashSet<_> = successors.iter().chain(&tokens).collect();
    assert_eq!(distinct.len(), 2 * families, "every successor is new");
    let rows = refresh_token::Entity::find().all(&app.db).await.unwrap();
    assert_eq!(rows.len(), 2 * families);
    let live: Vec<_> = rows.iter().filter(|r| r.revoked_at.is_none()).collect();
    assert_eq!(live.len(), families);
    for old in rows.iter().filter(|r| r.revoked_at.is_some()) {
        let into = old.rotated_into_id.expect("a rotated token names its successor");
        let successor = rows.iter().find(|r| r.id == into).expect("the successor exists");
        assert!(successor.revoked_at.is_none());
        assert_eq!(successor.family_id, old.family_id);
        assert_eq!(successor.customer_id, old.customer_id);
    }
    // Round 2: each successor twice at once: one of each pair wins.
    let doubled: Vec<String> = successors.iter().flat_map(|t| [t.clone(), t.clone()]).collect();
    let answers = refresh_all(doubled).await;
    for pair in answers.chunks(2) {
        let won = pair.iter().filter(|a| a.status == 201).count();
        assert_eq!(won, 1, "{:?}", pair.iter().map(|a| &a.body).collect::<Vec<_>>());
    }
}

/// A write that cannot be stored (here: a token of a customer that does not exist) fails
/// its own caller only, even when it was committed in one group with others: inserts and
/// refreshes beside it go through.
async fn a_token_write_that_fails_beside_others_fails_alone(db: Db, test: &str) {
    use entity::refresh_token;
    use glue_auth::{
        auth::refresh_token::stored_form,
        service::token_store::{NewToken, Refreshed, Successor, TokenStore},
    };
    use sea_orm::{EntityTrait, PaginatorTrait};
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let customer = entity::customer::Entity::find().one(&app.db).await.unwrap().unwrap();
    let mut presented = Vec::new();
    for (email, _) in &PERSONAS[..4] {
        presented.push(stored_form(&app.tokens_of(email).await.1));
    }
    let store = TokenStore::open(&app.db).await.unwrap();
    let token = |n: usize, customer_id: i32| NewToken {
        token_hash: format!("{n:064x}"),
        family_id: uuid::Uuid::new_v4(),
        customer_id,
        company_user_id: None,
        scopes: "customer",
        client_id: "test".into(),
        issued_at: 1,
        expires_at: i64::MAX,
    };
    let before = refresh_token::Entity::find().count(&app.db).await.unwrap();
    // The test holds the writer's turn while the writes queue up, so the group writer then
    // finds them waiting together and commits them as one group.
    let turn = store.writer().await.unwrap();
    let hold = sea_orm::TransactionTrait::begin(&*turn).await.unwrap();
    let writes: Vec<_> = (0..40)
        .map(|n| {
            let customer_id = if n == 17 { i32::MAX } else { customer.id };
            let store = store.clone();
            tokio::spawn(async move { store.insert(token(n, customer_id)).await })
        })
        .collect();
    let refreshes: Vec<_> = presented
        .into_iter()
        .enumerate()
        .map(|(n, presented)| {
            let store = store.clone();
            let next = Successor {
                token_hash: format!("successor {n}"),
                client_id: "test".into(),
                issued_at: 1,
                expires_at: i64::MAX,
            };
            tokio::spawn(async move { store.refresh(presented, next).await })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    hold.rollback().await.unwrap();
    drop(turn);
    for (n, write) in writes.into_iter().enumerate() {
        let result = write.await.unwrap();
        assert_eq!(result.is_err(), n == 17, "write {n}: {result:?}");
    }
    for refresh in refreshes {
        let refreshed = refresh.await.unwrap().unwrap();
        assert!(matches!(refreshed, Refreshed::Rotated(..)), "{refreshed:?}");
    }
    let after = refresh_token::Entity::find().count(&app.db).await.unwrap();
    assert_eq!(after - before, 39 + 4);
    let revoked = refresh_token::Entity::find().all(&app.db).await.unwrap();
    assert_eq!(revoked.iter().filter(|t| t.rotated_into_id.is_some()).count(), 4);
}

/// A successor, to refresh through the token store directly.
fn successor() -> glue_auth::service::token_store::Successor {
    glue_auth::service::token_store::Successor {
        token_hash: "successor".into(),
        client_id: "test".into(),
        issued_at: 1,
        expires_at: i64::MAX,
    }
}

/// After "revoke all", the token store refuses to rotate the customer's earlier tokens and
/// writes nothing; a token issued later is not affected.
async fn a_rotation_after_revoke_all_claims_nothing(db: Db, test: &str) {
    use entity::refresh_token;
    use glue_auth::{
        auth::refresh_token::stored_form,
        service::token_store::{Refreshed, TokenStore},
    };
    use sea_orm::{EntityTrait, PaginatorTrait};
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let (sonia, refresh) = app.tokens_of("sonia@acme.com").await;
    assert_eq!(app.delete_as("/refresh-tokens/mine", Some(&sonia)).await.status, 204);
    let store = TokenStore::open(&app.db).await.unwrap();
    let refreshed = store.refresh(stored_form(&refresh), successor()).await.unwrap();
    let Refreshed::Refused(token) = refreshed else { panic!("{refreshed:?}") };
    assert!(token.revoked_at.is_none() && token.revoked_refresh_tokens_through >= Some(token.id));
    assert_eq!(refresh_token::Entity::find().count(&app.db).await.unwrap(), 1);
    // A token issued after "revoke all" is not affected by it.
    let (_, later) = app.tokens_of("sonia@acme.com").await;
    assert_eq!(app.refresh(&later).await.status, 201);
}

/// On PostgreSQL other instances write too: a rotation that meets a "revoke all" still in
/// progress (the customer's row locked, the mark not yet committed) waits for it and then
/// claims nothing, rather than rotating on what it read before.
async fn a_rotation_waits_for_a_revoke_all_in_progress_and_then_claims_nothing(db: Db, test: &str) {
    use entity::refresh_token;
    use glue_auth::{
        auth::refresh_token::stored_form,
        service::token_store::{Refreshed, TokenStore},
    };
    use sea_orm::{ConnectionTrait, EntityTrait, PaginatorTrait, TransactionTrait};
    if db != Db::Postgres {
        return; // One writer on SQLite: nothing runs beside a rotation.
    }
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let (_, refresh) = app.tokens_of("sonia@acme.com").await;
    let row = refresh_token::Entity::find().one(&app.db).await.unwrap().unwrap();
    // What `DELETE /refresh-tokens/mine` does on PostgreSQL, held open half-way.
    let revoke_all = app.db.begin().await.unwrap();
    let customer = row.customer_id;
    revoke_all
        .execute_unprepared(&format!("SELECT id FROM customer WHERE id = {customer} FOR UPDATE"))
        .await
        .unwrap();
    let store = TokenStore::open(&app.db).await.unwrap();
    let rotation =
        tokio::spawn(async move { store.refresh(stored_form(&refresh), successor()).await });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!rotation.is_finished(), "the rotation went ahead beside a revoke-all in progress");
    revoke_all
        .execute_unprepared(&format!(
            "UPDATE customer SET revoked_refresh_tokens_through = \
             (SELECT MAX(id) FROM refresh_token) WHERE id = {customer}"
        ))
        .await
        .unwrap();
    revoke_all.commit().await.unwrap();
    let refreshed = rotation.await.unwrap().unwrap();
    assert!(matches!(refreshed, Refreshed::Lost), "{refreshed:?}");
    assert_eq!(refresh_token::Entity::find().count(&app.db).await.unwrap(), 1);
}

async fn an_expired_refresh_token_gets_004(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let (_, token) = app.tokens_of("sonia@acme.com").await;
    app.clock.advance(2_592_000);
    app.refresh(&token).await.assert_error(401, Some("004"), "Failed to refresh token.");
}

async fn refresh_attributes_are_checked_with_901(db: Db, test: &str) {
    let Some(app) = TestApp::spawn(db, test).await else { return };
    for (attributes, detail) in [
        (json!({"refreshToken": ""}), "refreshToken => This value should not be blank."),
        (json!({"refreshToken": null}), "refreshToken => This value should not be blank."),
        (json!({}), "refreshToken => This field is missing."),
        (json!({"refreshToken": 12}), "refreshToken => This value should be of type string."),
    ] {
        let answer =
            app.post("/refresh-tokens", &document("refresh-tokens", attributes), None).await;
        answer.assert_error(422, Some("901"), detail);
    }
}

async fn deleting_a_refresh_token_revokes_only_the_callers_own(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let (sonia, sonias_refresh) = app.tokens_of("sonia@acme.com").await;
    let (bill, bills_refresh) = app.tokens_of("bill.martin@acme.com").await;
    // Someone else's token: 204, and nothing happens to it.
    let answer = app.delete_as(&format!("/refresh-tokens/{bills_refresh}"), Some(&sonia)).await;
    assert_eq!((answer.status, &answer.body), (204, &Value::Null));
    let (_, bills_refresh) = app.refresh(&bills_refresh).await.tokens();
    // Unknown: 204.
    assert_eq!(app.delete_as("/refresh-tokens/unknown-token", Some(&sonia)).await.status, 204);
    // Her own: revoked, and a later refresh is no reuse of a rotated token (plain 004).
    assert_eq!(
        app.delete_as(&format!("/refresh-tokens/{sonias_refresh}"), Some(&sonia)).await.status,
        204
    );
    app.refresh(&sonias_refresh).await.assert_error(401, Some("004"), "Failed to refresh token.");
    // Access tokens stay valid until they expire.
    assert_eq!(app.get_as("/customers", Some(&sonia)).await.status, 200);
    assert_eq!(app.refresh(&bills_refresh).await.status, 201);
    // Without a token: 403/002; DELETE on the collection: 400.
    app.delete_as(&format!("/refresh-tokens/{bills_refresh}"), None).await.assert_error(
        403,
        Some("002"),
        "Missing access token.",
    );
    app.delete_as("/refresh-tokens", Some(&bill)).await.assert_error(
        400,
        None,
        "Resource id is not specified.",
    );
}

async fn deleting_mine_revokes_every_refresh_token_of_the_customer(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let (sonia, first) = app.tokens_of("sonia@acme.com").await;
    let (_, second) = app.tokens_of("sonia@acme.com").await;
    // A rotated one, and one of her company user.
    let (_, second) = app.refresh(&second).await.tokens();
    let (_, company_users) =
        app.company_user_token(&sonia, "ebf4b55a-cab0-5ed0-8fb7-525a3eeedeac").await.tokens();
    let (_, karls) = app.tokens_of("karl@acme.com").await;
    let answer = app.delete_as("/refresh-tokens/mine", Some(&sonia)).await;
    assert_eq!((answer.status, &answer.body), (204, &Value::Null));
    for token in [first, second, company_users] {
        app.refresh(&token).await.assert_error(401, Some("004"), "Failed to refresh token.");
    }
    assert_eq!(app.refresh(&karls).await.status, 201);
}

/// Found by the fuzzer: tokens outlive customers (they are valid until `exp`), and
/// `GET /customers` then answers its documented 404/402 (the contract check of `get_as`
/// holds the answer to the OpenAPI document).
async fn a_valid_token_of_a_deleted_customer_gets_402(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let gone = Identity {
        customer_id: 1_795_375_588,
        customer_reference: "DE--999".into(),
        company_user: None,
        kind: TokenKind::Customer,
    };
    let token =
        service_on_app_key(&app, "glue-auth", "frontend").issue(&gone, app.clock.now()).unwrap();
    for path in ["/customers", "/customers/DE--999"] {
        app.get_as(path, Some(&token)).await.assert_error(404, Some("402"), "Customer not found.");
    }
}

async fn customers_shows_the_caller_alone(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let (token, _) = app.tokens_of("sonia@acme.com").await;
    app.set_customer_times("sonia@acme.com", 1_700_000_000, 1_700_000_061).await;
    let expected = json!({
        "type": "customers", "id": "DE--21",
        "attributes": {
            "firstName": "Sonia", "lastName": "Wagner", "email": "sonia@acme.com",
            "salutation": "Ms", "gender": null, "dateOfBirth": null,
            "createdAt": "2023-11-14 22:13:20.000000", "updatedAt": "2023-11-14 22:14:21.000000"
        },
        "links": {"self": app.url("/customers/DE--21")}
    });
    let collection = app.get_as("/customers", Some(&token)).await;
    assert_eq!(
        collection.body,
        json!({"data": [expected.clone()], "links": {"self": app.url("/customers")}})
    );
    let one = app.get_as("/customers/DE--21", Some(&token)).await;
    assert_eq!(one.body, json!({"data": expected}));
    app.get_as("/customers/DE--4", Some(&token)).await.assert_error(
        404,
        Some("402"),
        "Customer not found.",
    );
    app.get_as("/customers/DE--21", None).await.assert_error(
        403,
        Some("002"),
        "Missing access token.",
    );
    // Her gender and date of birth, once known, and the record's change.
    let profile = glue_auth::service::directory::Profile {
        gender: Some(Some("Female".into())),
        date_of_birth: Some(Some("1990-05-17".into())),
    };
    glue_auth::service::directory::set_customer_profile(&app.db, "DE--21", profile).await.unwrap();
    let attributes =
        &app.get_as("/customers/DE--21", Some(&token)).await.body["data"]["attributes"];
    assert_eq!(
        (&attributes["gender"], &attributes["dateOfBirth"]),
        (&json!("Female"), &json!("1990-05-17"))
    );
    assert_eq!(attributes["createdAt"], "2023-11-14 22:13:20.000000");
    let updated = attributes["updatedAt"].as_str().unwrap();
    assert!(updated > "2026-" && updated.len() == 26 && updated.ends_with(".000000"), "{updated}");
    // Unknown again.
    let unknown =
        glue_auth::service::directory::Profile { gender: Some(None), date_of_birth: None };
    glue_auth::service::directory::set_customer_profile(&app.db, "DE--21", unknown).await.unwrap();
    let attributes =
        &app.get_as("/customers/DE--21", Some(&token)).await.body["data"]["attributes"];
    assert_eq!(
        (&attributes["gender"], &attributes["dateOfBirth"]),
        (&json!(null), &json!("1990-05-17"))
    );
}

async fn purging_removes_expired_refresh_tokens_only(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let (_, old) = app.tokens_of("sonia@acme.com").await;
    app.clock.advance(2_592_000);
    let (_, live) = app.tokens_of("sonia@acme.com").await;
    let purged =
        glue_auth::service::sessions::purge_expired(&app.db, app.clock.now()).await.unwrap();
    assert_eq!(purged, 1);
    app.refresh(&old).await.assert_error(401, Some("004"), "Failed to refresh token.");
    assert_eq!(app.refresh(&live).await.status, 201);
}

async fn the_jwks_verifies_tokens_with_an_independent_verifier(db: Db, test: &str) {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let answer = app.get("/.well-known/jwks.json").await;
    assert_eq!(answer.status(), 200);
    let jwks: Value = answer.json().await.unwrap();
    let (token, _) = app.tokens_of("sonia@acme.com").await;
    let (header, _) = jwt_parts(&token);
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("the token's kid is published");
    assert_eq!(
        (key["kty"].as_str(), key["crv"].as_str(), key["use"].as_str()),
        (Some("EC"), Some("P-256"), Some("sig"))
    );
    assert!(key.get("d").is_none(), "no private part");
    // Verify with the bare curve primitive from the published x and y: no JWT library.
    let mut point = vec![4u8];
    point.extend(B64.decode(key["x"].as_str().unwrap()).unwrap());
    point.extend(B64.decode(key["y"].as_str().unwrap()).unwrap());
    let (signed, signature) = token.rsplit_once('.').unwrap();
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
        .verify(signed.as_bytes(), &B64.decode(signature).unwrap())
        .expect("the published key verifies the token");
}

async fn key_rotation_keeps_old_tokens_valid_and_a_removed_key_ends_them(db: Db, test: &str) {
    let Some(old_app) = TestApp::spawn_demo(db, test).await else { return };
    let old_key = old_app.data_dir.path().join("signing-key.pem");
    let (old_token, _) = old_app.tokens_of("sonia@acme.com").await;

    // A new key, generated elsewhere, signs first; the old one still verifies.
    let new_dir = tempfile::tempdir().unwrap();
    KeySet::load(&[], new_dir.path()).unwrap();
    let new_key = new_dir.path().join("signing-key.pem");
    let rotated = TestApp::spawn_on(
        &old_app.database_url,
        tempfile::tempdir().unwrap(),
        &["--signing-key", new_key.to_str().unwrap(), "--signing-key", old_key.to_str().unwrap()],
    )
    .await;
    assert_eq!(rotated.get_as("/customers", Some(&old_token)).await.status, 200);
    let (new_token, _) = rotated.tokens_of("sonia@acme.com").await;
    assert_ne!(jwt_parts(&new_token).0["kid"], jwt_parts(&old_token).0["kid"]);
    let jwks: Value = rotated.get("/.well-known/jwks.json").await.json().await.unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);

    // Once the old key is removed, its tokens are refused.
    let new_only = TestApp::spawn_on(
        &old_app.database_url,
        tempfile::tempdir().unwrap(),
        &["--signing-key", new_key.to_str().unwrap()],
    )
    .await;
    new_only.get_as("/customers", Some(&old_token)).await.assert_error(
        401,
        Some("001"),
        "Invalid access token.",
    );
    assert_eq!(new_only.get_as("/customers", Some(&new_token)).await.status, 200);
}
