//! Every answer the black-box tests receive is checked against the committed OpenAPI
//! document: the status is one the operation documents, the Content-Type is the documented
//! one, and the body validates against the response schema. A failure names the operation
//! and where in the body it is wrong.

use std::{
    collections::HashMap,
    sync::{LazyLock, Mutex},
};

use serde_json::{Map, Value, json};

const DOCUMENT: &str = include_str!("../../openapi/openapi.json");

struct Contract {
    /// (method, path template, operation).
    operations: Vec<(String, String, Value)>,
    /// `components.schemas`, turned into JSON Schema.
    components: Value,
    validators: Mutex<HashMap<String, std::sync::Arc<jsonschema::Validator>>>,
}

static CONTRACT: LazyLock<Contract> = LazyLock::new(|| {
    let doc: Value = serde_json::from_str(DOCUMENT).expect("openapi/openapi.json is JSON");
    let mut operations = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            operations.push((method.to_uppercase(), path.clone(), op.clone()));
        }
    }
    let mut components = doc["components"]["schemas"].clone();
    to_json_schema(&mut components);
    Contract { operations, components, validators: Mutex::default() }
});

/// OpenAPI 3.0 schema objects are not quite JSON Schema: `nullable` becomes a union with
/// null, and objects with declared properties accept no others (strict on drift).
fn to_json_schema(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for child in map.values_mut() {
                to_json_schema(child);
            }
            if map.contains_key("properties")
                && !map.contains_key("additionalProperties")
                && !["allOf", "anyOf", "oneOf"].iter().any(|k| map.contains_key(*k))
            {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            if map.remove("nullable") == Some(Value::Bool(true)) {
                let inner = Value::Object(std::mem::take(map));
                map.insert("anyOf".into(), json!([inner, {"type": "null"}]));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(to_json_schema),
        _ => {}
    }
}

fn matches(template: &str, path: &str) -> Option<usize> {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    if t.len() != p.len() {
        return None;
    }
    let mut params = 0;
    for (t, p) in t.iter().zip(&p) {
        if t.starts_with('{') {
            if p.is_empty() {
                return None;
            }
            params += 1;
        } else if t != p {
            return None;
        }
    }
    Some(params)
}

fn validator(schema: &Value) -> std::sync::Arc<jsonschema::Validator> {
    let key = schema.to_string();
    let mut cache = CONTRACT.validators.lock().expect("the validator cache");
    cache
        .entry(key)
        .or_insert_with(|| {
            let mut schema = schema.clone();
            to_json_schema(&mut schema);
            let mut root = Map::new();
            root.insert("components".into(), json!({"schemas": CONTRACT.components}));
            if let Value::Object(inner) = schema {
                root.extend(inner);
            }
            std::sync::Arc::new(
                jsonschema::draft7::new(&Value::Object(root))
                    .expect("the response schema compiles"),
            )
        })
        .clone()
}

/// Checks one answer; panics with what is wrong. Requests to undocumented routes or methods
/// (404, 405 tests) are not operations and are left alone.
pub fn check(method: &str, path: &str, status: u16, content_type: Option<&str>, body: &Value) {
    let path = if path.len() > 1 { path.trim_end_matches('/') } else { path };
    let Some((_, template, op)) = CONTRACT
        .operations
        .iter()
        .filter(|(m, _, _)| m == method)
        .filter_map(|entry| matches(&entry.1, path).map(|params| (params, entry)))
        .min_by_key(|(params, _)| *params)
        .map(|(_, entry)| entry)
    else {
        return;
    };
    let id = op["operationId"].as_str().unwrap_or("?");
    let at = format!("{id} ({method} {template}) answered {status}");
    let response = op["responses"]
        .get(status.to_string())
        .unwrap_or_else(|| panic!("{at}: the status is not documented; body: {body}"));
    let Some(content) = response.get("content").and_then(Value::as_object) else {
        assert!(body.is_null(), "{at}: documented without a body, got {body}");
        return;
    };
    let content_type = content_type.unwrap_or_else(|| panic!("{at}: no Content-Type"));
    let media = content.get(content_type).unwrap_or_else(|| {
        panic!("{at}: Content-Type {content_type} is not among {:?}", content.keys())
    });
    let validator = validator(&media["schema"]);
    let errors: Vec<String> =
        validator.iter_errors(body).map(|e| format!("at `{}`: {e}", e.instance_path())).collect();
    assert!(
        errors.is_empty(),
        "{at}: the body is off-schema:\n  {}\nbody: {body}",
        errors.join("\n  ")
    );
}

#[test]
fn the_checker_catches_an_undocumented_status_and_an_off_schema_body() {
    let caught = |f: fn()| std::panic::catch_unwind(f).is_err();
    assert!(caught(|| check(
        "GET",
        "/health/live",
        418,
        Some("application/vnd.api+json"),
        &json!({})
    )));
    assert!(caught(|| check(
        "GET",
        "/health/live",
        200,
        Some("application/vnd.api+json"),
        &json!({"data": {"type": "health"}})
    )));
    assert!(caught(|| check("GET", "/health/live", 200, Some("text/plain"), &json!({}))));
    assert!(caught(|| check(
        "GET",
        "/customers",
        403,
        Some("application/vnd.api+json"),
        &json!({"errors": [{"status": "403"}]})
    )));
    // A well-formed answer passes.
    check(
        "GET",
        "/health/live",
        200,
        Some("application/vnd.api+json"),
        &json!({"data": {"type": "health", "id": "live", "attributes": {"status": "up"}}}),
    );
}
