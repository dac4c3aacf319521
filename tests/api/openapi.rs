//! The OpenAPI document is a product: served, complete, and never drifting from the code.

use super::helpers::{Db, TestApp};

const COMMITTED: &str = include_str!("../../openapi/openapi.json");

/// Rewrite the committed copy with `cargo run -q -- openapi > openapi/openapi.json`.
#[test]
fn the_committed_document_matches_the_code() {
    let generated = glue_auth::api::document::json();
    assert!(
        generated == COMMITTED,
        "openapi/openapi.json is stale: run `cargo run -q -- openapi > openapi/openapi.json` and commit it"
    );
}

#[test]
fn every_operation_has_an_id_a_tag_a_summary_and_documented_errors_with_examples() {
    let doc = glue_auth::api::document::value();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut ids = std::collections::HashSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let at = format!("{method} {path}");
            let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{at}: no operationId"));
            assert!(ids.insert(id.to_owned()), "{at}: duplicate operationId {id}");
            assert!(!op["tags"].as_array().unwrap().is_empty(), "{at}: no tag");
            assert!(!op["summary"].as_str().unwrap_or_default().is_empty(), "{at}: no summary");
            for (status, resp) in op["responses"].as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    // JSON:API error documents, or on the OAuth endpoints RFC 6749 error
                    // objects (docs/wire-contract.md §3.8a).
                    let (media, schema) = match resp["content"].get("application/json") {
                        Some(oauth) => (oauth, "#/components/schemas/OAuthError"),
                        None => (
                            &resp["content"]["application/vnd.api+json"],
                            "#/components/schemas/ErrorDocument",
                        ),
                    };
                    assert_eq!(media["schema"]["$ref"], schema, "{at} {status}");
                    let examples = media["examples"]
                        .as_object()
                        .unwrap_or_else(|| panic!("{at} {status}: no examples"));
                    assert!(!examples.is_empty(), "{at} {status}: no examples");
                    for example in examples.values() {
                        let value = &example["value"];
                        match value["errors"][0]["status"].as_u64() {
                            Some(documented) => assert_eq!(documented.to_string(), *status),
                            None => assert!(value["error"].is_string(), "{at} {status}: {value}"),
                        }
                    }
                }
            }
        }
    }
    assert!(!doc.to_string().contains(glue_auth::api::errors::EXAMPLES_MARKER));
}

async fn served(db: Db, test: &str) {
    let Some(app) = TestApp::spawn(db, test).await else { return };
    let json = app.get("/openapi.json").await;
    assert_eq!(json.status(), 200);
    let served: serde_json::Value = json.json().await.unwrap();
    assert_eq!(served, glue_auth::api::document::value());
    let yaml = app.get("/openapi.yaml").await.text().await.unwrap();
    let from_yaml: serde_json::Value = serde_yaml::from_str(&yaml).unwrap();
    assert_eq!(from_yaml, served);
    let docs = app.get("/docs").await;
    assert_eq!(docs.headers()["content-type"], "text/html; charset=utf-8");
    let html = docs.text().await.unwrap();
    assert!(html.contains("SwaggerUIBundle"), "Swagger UI is served from the binary");
    assert!(html.contains("\"examples\""), "the page shows the finished document");
    assert!(!html.contains("https://cdn"), "no CDN");
}

super::helpers::on_both_databases!(served);
