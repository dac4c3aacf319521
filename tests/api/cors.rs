//! CORS (docs/wire-contract.md §1.7): pages of the allowed origins may call every route from
//! a browser; any other origin gets no CORS headers.

use reqwest::Method;

use super::helpers::{Answer, Db, TestApp, on_both_databases};

on_both_databases!(
    an_allowed_origin_gets_its_preflight_and_its_answers_marked,
    another_origin_and_a_service_without_origins_get_no_cors_headers,
);

const SHOP: &str = "https://shop.example";
const ORIGINS: [&str; 4] =
    ["--cors-allow-origin", SHOP, "--cors-allow-origin", "http://localhost:*"];

async fn preflight(app: &TestApp, path: &str, origin: &str, method: &str, headers: &str) -> Answer {
    app.send(
        app.request(Method::OPTIONS, path)
            .header("origin", origin)
            .header("access-control-request-method", method)
            .header("access-control-request-headers", headers),
    )
    .await
}

async fn an_allowed_origin_gets_its_preflight_and_its_answers_marked(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_with(db, test, &ORIGINS).await else { return };
    glue_auth::admin::load_demo(&app.db).await.unwrap();
    for (path, method, headers, origin) in [
        ("/token", "POST", "content-type", SHOP),
        ("/company-users/mine", "GET", "authorization", SHOP),
        ("/refresh-tokens/mine", "DELETE", "authorization", "http://localhost:5173"),
        ("/access-tokens", "POST", "content-type, authorization", "http://localhost:8080"),
    ] {
        let answer = preflight(&app, path, origin, method, headers).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
        assert_eq!(answer.header("access-control-allow-origin"), Some(origin));
        let methods = answer.header("access-control-allow-methods").unwrap().to_ascii_uppercase();
        assert!(methods.contains(method), "{methods}");
        let allowed = answer.header("access-control-allow-headers").unwrap().to_ascii_lowercase();
        assert!(allowed.contains("authorization") && allowed.contains("content-type"), "{allowed}");
        assert!(answer.header("access-control-allow-credentials").is_none(), "no credentials mode");
    }
    // The answers themselves carry the origin and what the page may read.
    let (token, _) = app.tokens_of("sonia@acme.com").await;
    let answer = app
        .send(app.request(Method::GET, "/customers").header("origin", SHOP).bearer_auth(&token))
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("access-control-allow-origin"), Some(SHOP));
    let exposed = answer.header("access-control-expose-headers").unwrap().to_ascii_lowercase();
    for header in ["retry-after", "www-authenticate", "x-request-id"] {
        assert!(exposed.contains(header), "{header} in {exposed}");
    }
    // An error too, so that the page can read why.
    let refused = app.send(app.request(Method::GET, "/customers").header("origin", SHOP)).await;
    refused.assert_error(403, Some("002"), "Missing access token.");
    assert_eq!(refused.header("access-control-allow-origin"), Some(SHOP));
}

async fn another_origin_and_a_service_without_origins_get_no_cors_headers(db: Db, test: &str) {
    let Some(app) = TestApp::spawn_with(db, test, &ORIGINS).await else { return };
    for origin in ["https://evil.example", "https://shop.example.evil", "http://localhost.evil:80"]
    {
        let answer = preflight(&app, "/token", origin, "POST", "content-type").await;
        assert!(answer.header("access-control-allow-origin").is_none(), "{origin}");
        let answer =
            app.send(app.request(Method::GET, "/health/live").header("origin", origin)).await;
        assert_eq!(answer.status, 200, "served, only not readable by that page");
        assert!(answer.header("access-control-allow-origin").is_none(), "{origin}");
        assert_eq!(answer.header("vary"), Some("Origin"));
    }
    let Some(closed) = TestApp::spawn(db, &format!("{test}-closed")).await else { return };
    let answer =
        closed.send(closed.request(Method::GET, "/health/live").header("origin", SHOP)).await;
    assert!(answer.header("access-control-allow-origin").is_none());
    assert!(answer.header("vary").is_none());
}
