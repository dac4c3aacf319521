//! `POST /token` (docs/wire-contract.md §3.8a): the password and refresh grants as Glue
//! answers them, company-user token exchange, and the OAuth error objects.

use serde_json::Value;

use super::helpers::{Answer, Db, TestApp, jwt_parts, on_both_databases};

on_both_databases!(
    a_password_grant_gives_tokens_that_work_and_are_not_cached,
    wrong_unknown_and_inactive_credentials_get_one_invalid_grant,
    missing_and_repeated_parameters_get_invalid_request,
    grant_types_and_clients_are_checked_and_scopes_dropped,
    a_refresh_grant_rotates_and_the_old_token_is_invalid,
    a_token_exchange_switches_to_a_company_user,
    every_refused_exchange_is_one_invalid_grant,
    the_token_endpoint_shares_the_login_limit,
    a_revoked_refresh_token_is_spent_and_revocation_always_answers_200,
    the_metadata_names_the_endpoints_and_grants,
);

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
const SONIA: &str = "ebf4b55a-cab0-5ed0-8fb7-525a3eeedeac";
const ANNE_ACME: &str = "72778771-2020-574f-bbaf-05da5889e79e";
const ANNE_BOB: &str = "c7c148a6-5181-5ac4-b2a7-1bf91242ab12";
const ANNE_INITECH: &str = "2da5d436-292a-541e-a559-1d7c8e218357";
const BOB_HOTEL: &str = "5a15e950-169f-5ff0-8b88-152d1d1cd76e";
const CREDENTIALS: &str = "The user credentials were incorrect.";
const REFRESH: &str = "The refresh token is invalid.";
const GRANT: &str = "The provided authorization grant (e.g., authorization code, resource owner credentials) or refresh token is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.";
const MALFORMED: &str = "The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed.";

fn password_grant<'a>(username: &'a str, password: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![("grant_type", "password"), ("username", username), ("password", password)]
}

/// The access and refresh token of a `/token` answer.
fn tokens(answer: &Answer) -> (String, String) {
    assert_eq!(answer.status, 200, "{}", answer.body);
    let token = |name: &str| answer.body[name].as_str().expect(name).to_owned();
    (token("access_token"), token("refresh_token"))
}

async fn a_password_grant_gives_tokens_that_work_and_are_not_cached(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let answer = app.token(&password_grant("sonia@acme.com", "change123")).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert_eq!(answer.header("pragma"), Some("no-cache"));
    assert_eq!(answer.header("content-type"), Some("application/json; charset=utf-8"));
    let keys: Vec<&String> = answer.body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["access_token", "expires_in", "refresh_token", "token_type"]);
    assert_eq!(
        (&answer.body["token_type"], &answer.body["expires_in"]),
        (&"Bearer".into(), &28800.into())
    );
    let (access, refresh) = tokens(&answer);
    // The same tokens as `POST /access-tokens`: a customer token with its default company
    // user, whose refresh token works there too.
    let (_, claims) = jwt_parts(&access);
    assert!(claims["sub"].as_str().unwrap().contains(SONIA), "{claims}");
    assert_eq!(app.get_as("/customers/DE--21", Some(&access)).await.status, 200);
    assert_eq!(app.refresh(&refresh).await.status, 201);
    // `client_id` may be given (the configured one), and the scope a login has.
    let mut with_client = password_grant("sonia@acme.com", "change123");
    with_client.extend([("client_id", "frontend"), ("scope", "customer")]);
    assert_eq!(app.token(&with_client).await.status, 200);
    // Without a Content-Type (some clients omit it) the body is still the form.
    let body = "grant_type=password&username=sonia%40acme.com&password=change123";
    let bare = app.send(app.request(reqwest::Method::POST, "/token").body(body)).await;
    assert_eq!(bare.status, 200, "{}", bare.body);
}

async fn wrong_unknown_and_inactive_credentials_get_one_invalid_grant(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    for (username, password) in [
        ("sonia@acme.com", "wrong"),
        ("nobody@acme.com", "change123"),
        ("lena.inactive@acme.com", "change123"),
        ("not an e-mail", "change123"),
        ("sonia@acme.com", ""),
    ] {
        let answer = app.token(&password_grant(username, password)).await;
        answer.assert_oauth_error(400, "invalid_grant", CREDENTIALS);
        let keys: Vec<&String> = answer.body.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["error", "error_description"], "Spryker's two keys only");
    }
}

async fn missing_and_repeated_parameters_get_invalid_request(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let cases: [(&[(&str, &str)], &str); 6] = [
        (&[("grant_type", "password"), ("password", "change123")], "username"),
        (&[("grant_type", "password"), ("username", "sonia@acme.com")], "password"),
        (&[("grant_type", "refresh_token")], "refresh_token"),
        (&[("grant_type", EXCHANGE), ("subject_token_type", ACCESS_TOKEN)], "subject_token"),
        (
            &[
                ("grant_type", "password"),
                ("username", "sonia@acme.com"),
                ("username", "bill.martin@acme.com"),
                ("password", "change123"),
            ],
            "username",
        ),
        (
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", "x"),
                ("subject_token_type", ACCESS_TOKEN),
            ],
            "id_company_user",
        ),
    ];
    for (params, parameter) in cases {
        let answer = app.token(params).await;
        answer.assert_oauth_error(400, "invalid_request", MALFORMED);
        assert!(answer.body.get("hint").is_none(), "{parameter}: {}", answer.body);
    }
    // A JSON body is no form.
    let json = app.send(
        app.request(reqwest::Method::POST, "/token")
            .header("content-type", "application/json")
            .body(r#"{"grant_type":"password"}"#),
    );
    let json = json.await;
    json.assert_oauth_error(400, "invalid_request", MALFORMED);
}

async fn grant_types_and_clients_are_checked_and_scopes_dropped(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    // Spryker answers a missing or unknown grant type with the general invalid_grant.
    for params in [
        vec![("username", "sonia@acme.com"), ("password", "change123")],
        vec![("grant_type", "client_credentials")],
        vec![("grant_type", "")],
    ] {
        let answer = app.token(&params).await;
        answer.assert_oauth_error(400, "invalid_grant", GRANT);
    }
    let mut other_client = password_grant("sonia@acme.com", "change123");
    other_client.push(("client_id", "backoffice"));
    let answer = app.token(&other_client).await;
    answer.assert_oauth_error(400, "invalid_client", "Client authentication failed");
    assert!(answer.header("www-authenticate").is_none(), "no challenge, as Spryker");
    // Scopes it does not grant are dropped, as Spryker does; the token keeps its kind's.
    let mut wider = password_grant("sonia@acme.com", "change123");
    wider.push(("scope", "customer admin"));
    let (access, _) = tokens(&app.token(&wider).await);
    assert_eq!(jwt_parts(&access).1["scopes"], serde_json::json!(["customer"]));
}

async fn a_refresh_grant_rotates_and_the_old_token_is_invalid(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let (_, first) = app.tokens_of("sonia@acme.com").await;
    let rotated = app.token(&[("grant_type", "refresh_token"), ("refresh_token", &first)]).await;
    let (access, second) = tokens(&rotated);
    assert!(jwt_parts(&access).1["sub"].as_str().unwrap().contains(SONIA));
    assert_eq!(rotated.header("cache-control"), Some("no-store"));
    // The first one is spent; an unknown one is invalid alike.
    for spent in [first.as_str(), "not-a-token", ""] {
        let answer = app.token(&[("grant_type", "refresh_token"), ("refresh_token", spent)]).await;
        answer.assert_oauth_error(400, "invalid_request", REFRESH);
    }
    // The rotation is the token store's: the new token rotates at `/refresh-tokens` too.
    assert_eq!(app.refresh(&second).await.status, 201);
}

async fn a_token_exchange_switches_to_a_company_user(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let (customer, _) = app.tokens_of("anne.boleyn@acme.com").await;
    let exchange = |subject: String, member: &'static str| {
        let app = &app;
        async move {
            app.token(&[
                ("grant_type", EXCHANGE),
                ("subject_token", &subject),
                ("subject_token_type", ACCESS_TOKEN),
                ("id_company_user", member),
            ])
            .await
        }
    };
    let to_acme = exchange(customer.clone(), ANNE_ACME).await;
    assert_eq!(to_acme.body["issued_token_type"], ACCESS_TOKEN);
    let (acme, acme_refresh) = tokens(&to_acme);
    assert!(jwt_parts(&acme).1["sub"].as_str().unwrap().contains(ANNE_ACME));
    // A company-user token may switch to another membership of the same customer.
    let (bob, _) = tokens(&exchange(acme, ANNE_BOB).await);
    let company = app.get_as("/companies/mine", Some(&bob)).await;
    assert_eq!(company.body["data"][0]["id"], BOB_HOTEL, "{}", company.body);
    // Its refresh token stays a company-user one.
    let refreshed =
        app.token(&[("grant_type", "refresh_token"), ("refresh_token", &acme_refresh)]).await;
    let (access, _) = tokens(&refreshed);
    assert!(jwt_parts(&access).1["sub"].as_str().unwrap().contains(ANNE_ACME));
    assert!(refreshed.body.get("issued_token_type").is_none());
}

async fn every_refused_exchange_is_one_invalid_grant(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let (anne, _) = app.tokens_of("anne.boleyn@acme.com").await;
    let (sonia, _) = app.tokens_of("sonia@acme.com").await;
    let random = uuid::Uuid::new_v4().to_string();
    for (subject, member) in [
        (anne.as_str(), SONIA),               // someone else's membership
        (anne.as_str(), ANNE_INITECH),        // a company that is not approved
        (anne.as_str(), random.as_str()),     // no such company user
        (sonia.as_str(), ANNE_ACME),          // someone else's
        ("not.a.token", ANNE_ACME),           // no valid subject token
        (&anne[..anne.len() - 2], ANNE_ACME), // a forged one
    ] {
        let answer = app
            .token(&[
                ("grant_type", EXCHANGE),
                ("subject_token", subject),
                ("subject_token_type", ACCESS_TOKEN),
                ("id_company_user", member),
            ])
            .await;
        answer.assert_oauth_error(400, "invalid_grant", GRANT);
    }
    // The token type must be an access token's.
    let answer = app
        .token(&[
            ("grant_type", EXCHANGE),
            ("subject_token", &anne),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:refresh_token"),
            ("id_company_user", ANNE_ACME),
        ])
        .await;
    answer.assert_oauth_error(400, "invalid_request", MALFORMED);
}

async fn the_token_endpoint_shares_the_login_limit(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    for _ in 0..10 {
        let answer = app.token(&password_grant("karl@acme.com", "wrong")).await;
        answer.assert_oauth_error(400, "invalid_grant", CREDENTIALS);
    }
    // Blocked now, the right password too, here and at `POST /access-tokens`.
    let blocked = app.token(&password_grant("karl@acme.com", "change123")).await;
    blocked.assert_oauth_error(
        429,
        "temporarily_unavailable",
        "Too many log in attempts from your address. Please wait 5 minutes before trying again.",
    );
    assert_eq!(blocked.header("retry-after"), Some("300"));
    let glue = app.login("karl@acme.com", "change123").await;
    assert_eq!((glue.status, &glue.body["errors"][0]["code"]), (429, &Value::from("4401")));
}

async fn a_revoked_refresh_token_is_spent_and_revocation_always_answers_200(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let revoke = |params: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let body =
                form_urlencoded::Serializer::new(String::new()).extend_pairs(&params).finish();
            app.send(
                app.request(reqwest::Method::POST, "/revoke")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body),
            )
            .await
        }
    };
    let (access, refresh) = app.tokens_of("sonia@acme.com").await;
    let (_, kept) = app.tokens_of("sonia@acme.com").await;
    let answer =
        revoke(vec![("token", refresh.clone()), ("token_type_hint", "refresh_token".into())]).await;
    assert_eq!((answer.status, &answer.body), (200, &Value::Null));
    app.token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
        .await
        .assert_oauth_error(400, "invalid_request", REFRESH);
    // Only that one: her other session goes on.
    assert_eq!(app.refresh(&kept).await.status, 201);
    // Spent, unknown, or an access token: the same 200, nothing changes.
    for token in [refresh, "no-such-token".into(), access] {
        assert_eq!(revoke(vec![("token", token)]).await.status, 200);
    }
    let missing = revoke(vec![("token_type_hint", "refresh_token".into())]).await;
    missing.assert_oauth_error(400, "invalid_request", MALFORMED);
    let other = revoke(vec![("token", "x".into()), ("client_id", "backoffice".into())]).await;
    other.assert_oauth_error(400, "invalid_client", "Client authentication failed");
}

async fn the_metadata_names_the_endpoints_and_grants(db: Db, test: &str) {
    let Some(app) = TestApp::spawn(db, test).await else { return };
    let answer = app.get_as("/.well-known/oauth-authorization-server", None).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let metadata = &answer.body;
    assert_eq!(metadata["issuer"], "glue-auth");
    assert_eq!(metadata["token_endpoint"], app.url("/token"));
    assert_eq!(metadata["revocation_endpoint"], app.url("/revoke"));
    assert_eq!(metadata["jwks_uri"], app.url("/.well-known/jwks.json"));
    assert_eq!(
        metadata["grant_types_supported"],
        serde_json::json!(["password", "refresh_token", EXCHANGE])
    );
    assert_eq!(metadata["token_endpoint_auth_methods_supported"], serde_json::json!(["none"]));
    // The endpoints it names answer.
    let jwks = app.get_as("/.well-known/jwks.json", None).await;
    assert_eq!(jwks.status, 200);
}
