//! The OpenAPI document: generated from the Rust types by poem-openapi, then finished here
//! with what poem-openapi has no field for (examples on error responses). The served copy,
//! the `openapi` command and the committed `openapi/openapi.json` all come from [`json`].

use poem_openapi::OpenApiService;
use serde_json::{Map, Value, json};

use super::{Apis, apis, errors::EXAMPLES_MARKER};

const DESCRIPTION: &str = "\
Company-account authentication of Spryker's Glue Storefront API: log in as a customer, \
list the companies you work for, and exchange the customer token for a token of one \
company user (`POST /company-user-access-tokens`); refresh and revoke tokens.

Every body is JSON:API (`application/vnd.api+json`); request bodies are also accepted as \
`application/json` or without a Content-Type, as Glue does. Every error is \
`{\"errors\":[{\"code\":\"001\",\"status\":401,\"detail\":\"...\"}]}`.";

pub fn service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(apis(), "glue-auth", env!("CARGO_PKG_VERSION")).description(DESCRIPTION)
}

/// The finished document as a JSON value.
pub fn value() -> Value {
    let raw = service().spec();
    let mut doc: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
    finish(&mut doc);
    doc
}

/// The finished document, pretty JSON with a final newline (the committed form).
pub fn json() -> String {
    let mut out = serde_json::to_string_pretty(&value()).unwrap_or_default();
    out.push('\n');
    out
}

/// The finished document as YAML.
pub fn yaml() -> String {
    serde_yaml::to_string(&value()).unwrap_or_default()
}

/// Swagger UI, served from the binary (no CDN), showing the finished document.
pub fn swagger_ui_html() -> String {
    let service = service();
    // poem-openapi inlines its raw document into the page; put the finished one in its place.
    service.swagger_ui_html().replacen(&service.spec(), &json(), 1)
}

/// Finishes poem-openapi's document for generators and tools.
fn finish(doc: &mut Value) {
    plain_enum_references(doc);
    error_examples(doc);
}

/// poem-openapi writes a documented field of an enum type as `allOf: [{$ref}, {description}]`;
/// SDK generators (openapi-python-client) cannot take `allOf` of a non-object. The enum's
/// own description says what the field's did, so the field becomes a plain `$ref`.
fn plain_enum_references(doc: &mut Value) {
    let Some(schemas) = doc.pointer("/components/schemas").and_then(Value::as_object) else {
        return;
    };
    let enums: std::collections::HashSet<String> = schemas
        .iter()
        .filter(|(_, s)| s.get("enum").is_some())
        .map(|(name, _)| format!("#/components/schemas/{name}"))
        .collect();
    fn walk(value: &mut Value, enums: &std::collections::HashSet<String>) {
        match value {
            Value::Object(map) => {
                let target = map
                    .get("allOf")
                    .and_then(Value::as_array)
                    .and_then(|all| all.first())
                    .and_then(|first| first.get("$ref"))
                    .and_then(Value::as_str)
                    .filter(|r| enums.contains(*r))
                    .map(str::to_owned);
                if let Some(target) = target {
                    *value = json!({ "$ref": target });
                    return;
                }
                map.values_mut().for_each(|v| walk(v, enums));
            }
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, enums)),
            _ => {}
        }
    }
    walk(doc, &enums);
}

/// An error example's one-line summary: a Glue error's code and detail, or an OAuth
/// error's code and description.
fn summary(example: &Value) -> String {
    if let Some(oauth) = example["error"].as_str() {
        let description = example["error_description"].as_str().unwrap_or_default();
        return format!("{oauth}: {description}");
    }
    let error = &example["errors"][0];
    let detail = error["detail"].as_str().unwrap_or_default();
    match error["code"].as_str() {
        Some(code) => format!("{code} {detail}"),
        None => detail.to_owned(),
    }
}

/// Moves the examples carried by error-response schemas to their media types, and lists the
/// possible errors in each response's description.
fn error_examples(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return };
    for operation in
        paths.values_mut().filter_map(Value::as_object_mut).flat_map(|p| p.values_mut())
    {
        let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) else {
            continue;
        };
        for response in responses.values_mut() {
            let Some(content) = response.get_mut("content").and_then(Value::as_object_mut) else {
                continue;
            };
            let mut cases = Vec::new();
            for media in content.values_mut() {
                let Some(examples) = media
                    .pointer_mut(&format!("/schema/example/{EXAMPLES_MARKER}"))
                    .map(Value::take)
                else {
                    continue;
                };
                let schema_ref = media.pointer("/schema/allOf/0").cloned().unwrap_or(Value::Null);
                let mut named = Map::new();
                for example in examples.as_array().into_iter().flatten() {
                    let summary = summary(example);
                    cases.push(summary.clone());
                    let mut key = slug(&summary);
                    if example.get("error").is_some() {
                        // OAuth's descriptions are long sentences: their first words tell
                        // them apart.
                        let words: Vec<&str> = key.split('-').collect();
                        key = (6..=words.len())
                            .map(|n| words[..n].join("-"))
                            .find(|short| !named.contains_key(short))
                            .unwrap_or(key);
                    }
                    named.insert(key, json!({"summary": summary, "value": example}));
                }
                media["schema"] = schema_ref;
                media["examples"] = Value::Object(named);
            }
            if !cases.is_empty() {
                let list: Vec<String> = cases.iter().map(|c| format!("- {c}")).collect();
                let reason = response["description"].as_str().unwrap_or_default().to_owned();
                let reason = if reason == "Unprocessable Entity" {
                    "Unprocessable Content".into()
                } else {
                    reason
                };
                response["description"] = json!(format!("{reason}\n\n{}", list.join("\n")));
            }
        }
    }
}

fn slug(text: &str) -> String {
    let mut out = String::new();
    for ch in text.chars() {
        if ch.is_ascii_alphanumeric() {
            out.push(ch.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}
