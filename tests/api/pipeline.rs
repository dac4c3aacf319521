//! The request pipeline of docs/wire-contract.md §1: media types, routing, the body limit, the
//! envelope.

use reqwest::Method;

use super::helpers::{Db, TestApp, on_both_databases, raw_http};

on_both_databases!(
    an_unknown_route_answers_404_in_the_envelope,
    a_known_path_with_a_wrong_method_answers_405_with_allow,
    an_accept_that_rules_json_out_answers_406,
    accept_headers_that_admit_json_are_served,
    a_vnd_api_body_of_another_format_answers_415,
    a_body_over_the_limit_answers_413_before_routing,
    a_trailing_slash_is_ignored,
    readiness_reports_the_database,
    every_response_carries_a_request_id,
    an_internal_error_reaches_the_client_as_the_generic_500_only,
);

async fn an_unknown_route_answers_404_in_the_envelope(db: Db, test: &str) {
    let Some(app) = TestApp::spawn(db, test).await else { return };
    let answer = app.send(app.request(Method::POST, "/nowhere")).await;
    answer.assert_error(404, None, "Not Found");
    assert_eq!(answer.body, serde_json::json!({"errors":[{"status":404,"detail":"Not Found"}]}));
    let answer = app.get_as("/health/nothing/here", None).await;
    answer.assert_error(404, None, "Not Found");
}

async fn a_known_path_with_a_wrong_method_answers_405_with_allow(db: Db, test: &str) {
    let Some(app) = TestApp::spawn(db, test).await else { return };
    for method in [Method::POST, Method::DELETE, Method::PUT, Method::PATCH] {
        let answer = app.send(app.request(method.clone(), "/health/live")).await;
        answer.assert_error(405, None, "Method Not Allowed");
        assert_eq!(answer.header("allow"), Some("GET"), "{method}");
    }
    let answer = app.send(app.request(Method::DELETE, "/openapi.json")).await;
    answer.assert_error(405, None, "Method Not Allowed");
    assert_eq!(answer.header("allow"), Some("GET"));
}

async fn an_accept_that_rules_json_out_answers_406(db: Db, test: &str) {
    let Some(app) = TestApp::spawn(db, test).await else { return };
    for accept in ["text/html", "application/xml", "application/json;q=0", "image/*"] {
        app.send(app.request(Method::GET, "/health/live").header("accept", accept))
            .await
            .assert_error(406, None, "Not acceptable.");
    }
    // 406 comes before routing.
    app.send(app.request(Method::GET, "/nowhere").header("accept", "text/html"))
        .await
        .assert_error(406, None, "Not acceptable.");
}

async fn accept_headers_that_admit_json_are_served(db: Db, test: &str) {
    let Some(app) = TestApp::spawn(db, test).await else { return };
    for accept in [
        "*/*",
        "application/*",
        "application/json",
        "application/vnd.api+json",
        "application/vnd.api+json; ext=\"x\"",
        "text/html, application/json;q=0.5",
        "",
    ] {
        let answer =
            app.send(app.request(Method::GET, "/health/live").header("accept", accept)).await;
        assert_eq!(answer.status, 200, "Accept: {accept:?}: {}", answer.body);
        assert_eq!(answer.header("content-type"), Some("application/vnd.api+json"));
    }
    // Swagger UI is HTML: a browser's Accept must reach it.
    let resp =
        app.request(Method::GET, "/docs").header("accept", "text/html").send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

async fn a_vnd_api_body_of_another_format_answers_415(db: Db, test: &str) {
    let Some(app) = TestApp::spawn(db, test).await else { return };
    let answer = app
        .send(
            app.request(Method::POST, "/health/live")
                .header("content-type", "application/vnd.api+xml")
                .body("<data/>"),
        )
        .await;
    answer.assert_error(415, None, "Unsupported media type.");
}

async fn a_body_over_the_limit_answers_413_before_routing(db: Db, test: &str) {
    let Some(app) = TestApp::spawn(db, test).await else { return };
    let big = vec![b'x'; 64 * 1024 + 1];
    // Raw sockets: the server answers 413 before reading the body, which an HTTP client
    // still writing it may report as a broken connection.
    let head = format!(
        "POST /nowhere HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        big.len()
    );
    let raw = raw_http(app.addr, &[head.as_bytes(), &big].concat()).await;
    assert!(raw.starts_with("HTTP/1.1 413 "), "{raw}");
    assert!(raw.contains(r#"{"errors":[{"detail":"Payload too large.","status":413}]}"#), "{raw}");
    // A chunked body (no Content-Length) is cut off at the limit too.
    let mut request = b"POST /nowhere HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for chunk in big.chunks(8192) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let raw = raw_http(app.addr, &request).await;
    assert!(raw.starts_with("HTTP/1.1 413 "), "{raw}");
    assert!(raw.contains(r#"{"errors":[{"detail":"Payload too large.","status":413}]}"#), "{raw}");
    // Exactly at the limit is fine: routing answers.
    app.post_raw("/nowhere", vec![b'x'; 64 * 1024]).await.assert_error(404, None, "Not Found");
}

async fn a_trailing_slash_is_ignored(db: Db, test: &str) {
    let Some(app) = TestApp::spawn(db, test).await else { return };
    let answer = app.get_as("/health/live/", None).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["data"]["id"], "live");
}

async fn readiness_reports_the_database(db: Db, test: &str) {
    let Some(app) = TestApp::spawn(db, test).await else { return };
    let answer = app.get_as("/health/ready", None).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.body["data"],
        serde_json::json!({"type":"health","id":"ready","attributes":{"status":"up"}})
    );
    // With the database gone, readiness fails with 503 and liveness stays up.
    app.db.clone().close().await.unwrap();
    app.get_as("/health/ready", None).await.assert_error(503, None, "Service Unavailable");
    assert_eq!(app.get("/health/live").await.status(), 200);
}

async fn every_response_carries_a_request_id(db: Db, test: &str) {
    let Some(app) = TestApp::spawn(db, test).await else { return };
    let a = app.get_as("/health/live", None).await;
    let b = app.get_as("/nowhere", None).await;
    let (a, b) = (
        a.header("x-request-id").unwrap().to_owned(),
        b.header("x-request-id").unwrap().to_owned(),
    );
    assert_ne!(a, b);
    assert!(uuid::Uuid::parse_str(&a).is_ok());
}

/// What went wrong inside stays in the log; the client gets the generic
/// envelope, with no SQL, table name or error text.
async fn an_internal_error_reaches_the_client_as_the_generic_500_only(db: Db, test: &str) {
    use sea_orm::ConnectionTrait;
    let Some(app) = TestApp::spawn_demo(db, test).await else { return };
    let (token, _) = app.tokens_of("sonia@acme.com").await;
    // A schema the code does not expect: every query of companies fails inside.
    app.db.execute_unprepared("ALTER TABLE company RENAME TO company_gone").await.unwrap();
    let answer = app.get_as("/company-users/mine", Some(&token)).await;
    assert_eq!(answer.status, 500, "{}", answer.body);
    assert_eq!(
        answer.body,
        serde_json::json!({"errors": [{"status": 500, "detail": "Internal Server Error"}]})
    );
    assert_eq!(answer.header("content-type"), Some("application/vnd.api+json"));
    // The service itself is still up.
    assert_eq!(app.get("/health/live").await.status(), 200);
}
