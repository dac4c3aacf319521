//! Bad input, systematically: malformed requests against every operation.
//! Each gets a documented 4xx JSON:API error (the contract checker validates every answer
//! against the document), and afterwards the database holds exactly what it held before.

use reqwest::{Method, RequestBuilder};
use sea_orm::{DatabaseConnection, EntityTrait};
use serde_json::json;

use super::helpers::{Db, TestApp, document, on_both_databases, raw_http};
use entity::prelude::*;

on_both_databases!(malformed_requests_get_documented_4xx_errors_and_change_nothing);

/// Every row of every table, to compare before and after.
async fn dump(db: &DatabaseConnection) -> String {
    format!(
        "{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
        Customer::find().all(db).await.unwrap(),
        Company::find().all(db).await.unwrap(),
        CompanyBusinessUnit::find().all(db).await.unwrap(),
        CompanyUnitAddress::find().all(db).await.unwrap(),
        CompanyUnitAddressToBusinessUnit::find().all(db).await.unwrap(),
        CompanyRole::find().all(db).await.unwrap(),
        CompanyRolePermission::find().all(db).await.unwrap(),
        CompanyUser::find().all(db).await.unwrap(),
        CompanyUserRole::find().all(db).await.unwrap(),
        RefreshToken::find().all(db).await.unwrap(),
        LoginAttempt::find().all(db).await.unwrap(),
    )
}

struct Case {
    what: String,
    request: RequestBuilder,
    status: u16,
    code: Option<&'static str>,
}

fn case(
    what: impl Into<String>,
    request: RequestBuilder,
    status: u16,
    code: Option<&'static str>,
) -> Case {
    Case { what: what.into(), request, status, code }
}

async fn malformed_requests_get_documented_4xx_errors_and_change_nothing(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let (token, refresh) = app.tokens_of("sonia@acme.com").await;
    let before = dump(&app.db).await;
    let json_api = "application/vnd.api+json";
    let post = |path: &str, body: &str| {
        app.request(Method::POST, path)
            .header("content-type", json_api)
            .bearer_auth(&token)
            .body(body.to_owned())
    };
    let get = |path: &str| app.request(Method::GET, path).bearer_auth(&token);
    let posts = ["/access-tokens", "/company-user-access-tokens", "/refresh-tokens"];
    let types = ["access-tokens", "company-user-access-tokens", "refresh-tokens"];
    let mut cases = Vec::new();

    for (path, ty) in posts.iter().zip(types) {
        for (what, body) in [
            ("not JSON", "hello".to_owned()),
            ("truncated JSON", format!(r#"{{"data":{{"type":"{ty}","attributes":{{"#)),
            ("a JSON string", r#""data""#.to_owned()),
            ("an array", "[]".to_owned()),
            ("null", "null".to_owned()),
            ("data is an array", r#"{"data":[]}"#.to_owned()),
            ("data without type", r#"{"data":{"attributes":{}}}"#.to_owned()),
            ("data without attributes", format!(r#"{{"data":{{"type":"{ty}"}}}}"#)),
            ("attributes is an array", format!(r#"{{"data":{{"type":"{ty}","attributes":[]}}}}"#)),
            ("type is a number", r#"{"data":{"type":5,"attributes":{}}}"#.to_owned()),
            ("nested 10,000 levels deep", format!("{}{}", "[".repeat(10_000), "]".repeat(10_000))),
            (
                "invalid UTF-8",
                String::from_utf8_lossy(b"{\"data\":\xff\xfe}")
                    .into_owned()
                    .replace('\u{fffd}', "\u{1}"),
            ),
            ("a NUL byte outside strings", "{\"data\":\u{0}}".to_owned()),
        ] {
            cases.push(case(format!("POST {path}: {what}"), post(path, &body), 400, None));
        }
        cases.push(case(
            format!("POST {path}: wrong type"),
            post(path, &document("customers", json!({})).to_string()),
            400,
            None,
        ));
        cases.push(case(
            format!("POST {path}: duplicate type key, the wrong one last"),
            post(path, &format!(r#"{{"data":{{"type":"{ty}","type":"x","attributes":{{}}}}}}"#)),
            400,
            None,
        ));
        cases.push(case(
            format!("POST {path}: vnd.api+xml"),
            app.request(Method::POST, path)
                .header("content-type", "application/vnd.api+xml")
                .bearer_auth(&token)
                .body("<data/>"),
            415,
            None,
        ));
        cases.push(case(
            format!("POST {path}: Accept application/xml"),
            post(path, "{}").header("accept", "application/xml"),
            406,
            None,
        ));
    }

    let login = |attributes: serde_json::Value| {
        post("/access-tokens", &document("access-tokens", attributes).to_string())
    };
    for (what, attributes) in [
        ("username is a number", json!({"username": 1, "password": "x"})),
        ("username is an array", json!({"username": ["a@b.de"], "password": "x"})),
        ("username is an object", json!({"username": {"a": 1}, "password": "x"})),
        ("username is true", json!({"username": true, "password": "x"})),
        ("password is a number", json!({"username": "sonia@acme.com", "password": 123})),
        ("password is an object", json!({"username": "sonia@acme.com", "password": {}})),
        ("username has a NUL byte", json!({"username": "so\u{0}nia@acme.com", "password": "x"})),
        (
            "username is 1,000 characters",
            json!({"username": format!("{}@acme.com", "a".repeat(1000)), "password": "x"}),
        ),
        ("both missing, unknown fields", json!({"user": "sonia@acme.com", "pass": "x"})),
    ] {
        cases.push(case(format!("login: {what}"), login(attributes), 422, Some("901")));
    }
    let switch = |attributes: serde_json::Value| {
        post(
            "/company-user-access-tokens",
            &document("company-user-access-tokens", attributes).to_string(),
        )
    };
    for (what, value) in [
        ("a number", json!(7)),
        ("true", json!(true)),
        ("an array", json!(["ebf4b55a-cab0-5ed0-8fb7-525a3eeedeac"])),
        ("an object", json!({"id": 1})),
        ("null", json!(null)),
        ("a uuid with a NUL", json!("ebf4b55a-cab0-5ed0-8fb7-525a3eeed\u{0}ac")),
        ("4 KiB", json!("e".repeat(4096))),
        ("a SQL fragment", json!("' OR 1=1 --")),
    ] {
        cases.push(case(
            format!("idCompanyUser is {what}"),
            switch(json!({"idCompanyUser": value})),
            422,
            Some("901"),
        ));
    }
    cases.push(case(
        "unknown fields beside an unknown company user",
        switch(json!({"idCompanyUser": "00000000-0000-4000-8000-000000000000", "admin": true})),
        401,
        Some("001"),
    ));
    let refresh_with = |value: serde_json::Value| {
        app.request(Method::POST, "/refresh-tokens")
            .header("content-type", json_api)
            .body(document("refresh-tokens", json!({"refreshToken": value})).to_string())
    };
    cases.push(case("refreshToken is an array", refresh_with(json!([refresh])), 422, Some("901")));
    cases.push(case("refreshToken is a number", refresh_with(json!(0)), 422, Some("901")));
    cases.push(case(
        "refreshToken is unknown, with a NUL",
        refresh_with(json!("abc\u{0}def")),
        401,
        Some("004"),
    ));

    // Authorization variants, on a read-only operation.
    let forged =
        format!("{}.{}.", token.split('.').next().unwrap(), token.split('.').nth(1).unwrap());
    for (what, header) in [
        ("Bearer without a token", "Bearer".to_owned()),
        ("two tokens", format!("Bearer {token} {token}")),
        ("Basic", "Basic c29uaWE6Y2hhbmdlMTIz".to_owned()),
        ("no scheme", token.clone()),
        ("an unsigned token", format!("Bearer {forged}")),
        ("a 16 KiB token", format!("Bearer {}", "a".repeat(16 * 1024))),
        ("a token with a space inside", format!("Bearer {} x", &token[..20])),
    ] {
        cases.push(case(
            format!("GET /customers: {what}"),
            app.request(Method::GET, "/customers").header("authorization", header),
            401,
            Some("001"),
        ));
    }
    cases.push(case(
        "GET /customers: no token",
        app.request(Method::GET, "/customers"),
        403,
        Some("002"),
    ));

    // Odd path parameters.
    for (what, path, status, code) in [
        ("a 4 KiB reference", format!("/customers/{}", "R".repeat(4096)), 404, Some("402")),
        ("a NUL in the reference", "/customers/DE%00--21".to_owned(), 404, Some("402")),
        ("an encoded slash", "/customers/DE--21%2F..".to_owned(), 404, Some("402")),
        // The client resolves an encoded dot-dot to `/`: no route there.
        ("an encoded dot-dot", "/customers/%2E%2E".to_owned(), 404, None),
    ] {
        cases.push(case(format!("GET {what}"), get(&path), status, code));
    }
    cases.push(case(
        "DELETE a 4 KiB refresh token",
        app.request(Method::DELETE, &format!("/refresh-tokens/{}", "t".repeat(4096)))
            .bearer_auth(&token),
        204,
        None,
    ));
    cases.push(case(
        "GET with an absurd Accept",
        get("/customers").header("accept", "image/png;q=1, text/*;q=0.5"),
        406,
        None,
    ));

    assert!(cases.len() + 4 >= 60, "{} cases", cases.len());
    let count = cases.len() + 4;
    for case in cases {
        let answer = app.send(case.request).await;
        assert_eq!(answer.status, case.status, "{}: {}", case.what, answer.body);
        if case.status != 204 {
            let error = &answer.body["errors"][0];
            assert_eq!(error["status"], case.status, "{}", case.what);
            assert_eq!(error["code"].as_str(), case.code, "{}: {}", case.what, answer.body);
        }
    }

    // 1 MiB strings, over raw sockets: the server answers 413 before reading the body, which
    // an HTTP client still writing it reports as a broken connection.
    for (path, ty) in posts.iter().zip(types) {
        let body = document(ty, json!({"x": "a".repeat(1 << 20)})).to_string();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {json_api}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let raw = raw_http(app.addr, &[head.as_bytes(), body.as_bytes()].concat()).await;
        assert!(raw.starts_with("HTTP/1.1 413 "), "{path}: {raw}");
        assert!(
            raw.contains(r#"{"errors":[{"detail":"Payload too large.","status":413}]}"#),
            "{raw}"
        );
    }

    // Outside what HTTP clients send: a raw request with a path that climbs.
    let raw = raw_http(
        app.addr,
        b"GET /health/../customers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 4"), "{raw}");
    assert!(raw.contains("\"errors\""), "{raw}");

    assert_eq!(dump(&app.db).await, before, "{count} bad requests changed the database");
}
