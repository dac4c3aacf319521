//! Fuzzing: property-based, structure-aware fuzzing of the request-document
//! parsing (the three POST operations) and of the bearer parsing, against the real service
//! on a real socket, on SQLite and on PostgreSQL.
//!
//! For every generated request: no 5xx, the status is the one a model of the contract
//! (docs/wire-contract.md §1.4) predicts from the bytes sent (2xx only for a valid request), the
//! answer is a JSON:API error envelope whose `errors[0].status` is the HTTP status with a non-empty
//! `detail`, the Content-Type is `application/vnd.api+json`, the contract checker of
//! `helpers::send` accepts it, and the database rows of `refresh_token` and `login_attempt`
//! are untouched by a rejected request. Afterwards the service is still healthy.
//!
//! Bounded and reproducible: `GLUE_AUTH_FUZZ_CASES` (default 500 per test) and
//! `GLUE_AUTH_FUZZ_SEED` (default fixed) set the number of cases and the RNG seed; no
//! failure-persistence file is written. Run longer locally with, e.g.,
//! `GLUE_AUTH_FUZZ_CASES=20000 cargo test --test api fuzz:: -- --nocapture`.

/// The fuzzers log the same personas in over and over: neither login blocking nor the cap
/// on sessions per customer (which would revoke the tokens they hold) may get in the way.
const FUZZ_OPTIONS: [&str; 4] =
    ["--login-block-attempts", "1000000", "--max-sessions-per-customer", "0"];

use std::{cell::RefCell, collections::BTreeMap, fmt, sync::Arc};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use proptest::{
    prelude::*,
    sample::{Index, select},
    test_runner::{Config, RngAlgorithm, RngSeed, TestCaseError, TestError, TestRunner},
};
use reqwest::Method;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::{Value, json};
use uuid::Uuid;

use super::helpers::{Answer, Db, TestApp, jwt_parts};

const MEDIA_TYPE: &str = "application/vnd.api+json";
const CHALLENGE: &str = r#"Bearer realm="Access to shop API""#;
const DEFAULT_CASES: u32 = 500;
const DEFAULT_SEED: u64 = 0x6c75_6561_7574_6807;

const USERNAME: &str = "sonia@acme.com";
const PASSWORD: &str = "change123";
/// Sonia's company user in the demo dataset.
const SONIA: &str = "ebf4b55a-cab0-5ed0-8fb7-525a3eeedeac";
/// Stands for the live refresh token in generated documents; replaced when sent. The
/// upper-case spelling (what a case-changing mutation makes of it) stands for the live
/// token upper-cased, which must not refresh.
const REFRESH_PLACEHOLDER: &str = "{{refresh-token}}";
const REFRESH_PLACEHOLDER_UPPER: &str = "{{REFRESH-TOKEN}}";
/// Stands for the live refresh token with its last character changed.
const REFRESH_PLACEHOLDER_FLIPPED: &str = "{{refresh-token-flipped}}";

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(text) => text.trim().parse().unwrap_or_else(|_| panic!("{name}={text}: not a number")),
        Err(_) => default,
    }
}

/// A runner with a bounded number of cases, a fixed seed, and no persistence files.
fn runner() -> TestRunner {
    let config = Config {
        cases: env_number("GLUE_AUTH_FUZZ_CASES", DEFAULT_CASES),
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(env_number("GLUE_AUTH_FUZZ_SEED", DEFAULT_SEED)),
        max_shrink_iters: 1024,
        max_shrink_time: 60_000,
        ..Config::default()
    };
    TestRunner::new(config)
}

/// The service with the demo dataset, a runtime that keeps serving it between cases, and
/// valid credentials to mutate.
struct Harness {
    app: TestApp,
    customer_token: String,
    company_user_token: String,
    first_refresh_token: String,
    // Last: the app's connections are dropped while the runtime still runs.
    rt: tokio::runtime::Runtime,
}

impl Harness {
    /// `None` when PostgreSQL is wanted but unavailable (and not required).
    fn start(db: Db, test: &str) -> Option<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        // Blocking would turn every failed login after the tenth into 429 and hide what the
        // parsing does with a valid document; the fuzzer is not about blocking.
        let (app, customer_token, first_refresh_token, company_user_token) =
            rt.block_on(async {
                let app = TestApp::spawn_with(db, test, &FUZZ_OPTIONS).await?;
                glue_auth::admin::load_demo(&app.db).await.unwrap();
                let (customer, refresh) = app.tokens_of(USERNAME).await;
                let body = json!({"data": {"type": "company-user-access-tokens",
                "attributes": {"idCompanyUser": SONIA}}});
                let answer = app.post("/company-user-access-tokens", &body, Some(&customer)).await;
                assert_eq!(answer.status, 201, "{}", answer.body);
                let (company_user, _) = answer.tokens();
                Some((app, customer, refresh, company_user))
            })?;
        Some(Self { app, customer_token, company_user_token, first_refresh_token, rt })
    }

    async fn rows(&self) -> Rows {
        Rows {
            refresh_tokens: fingerprint(&self.app.db, REFRESH_TOKEN_FINGERPRINT).await,
            login_attempts: fingerprint(&self.app.db, LOGIN_ATTEMPT_FINGERPRINT).await,
        }
    }

    /// The service still works: health, a login, a protected read.
    fn assert_healthy(&self) {
        self.rt.block_on(async {
            for path in ["/health/live", "/health/ready"] {
                let answer = self.app.send(self.app.request(Method::GET, path)).await;
                assert_eq!(answer.status, 200, "{path}: {}", answer.body);
            }
            let (token, _) = self.app.tokens_of(USERNAME).await;
            let answer = self.app.get_as("/customers", Some(&token)).await;
            assert_eq!(answer.status, 200, "{}", answer.body);
            let answer = self.app.get_as("/customers", Some(&self.customer_token)).await;
            assert_eq!(answer.status, 200, "{}", answer.body);
        });
    }
}

/// Aggregates over every column that a write changes: an insert, a delete, a revocation, a
/// rotation or a counted failure moves at least one of them. (Cheaper than reading every
/// row twice per case, which made long runs quadratic.)
/// (Each sum cast to BIGINT: PostgreSQL sums BIGINT columns as NUMERIC.)
const REFRESH_TOKEN_FINGERPRINT: &str = "SELECT COUNT(*), COALESCE(MAX(id), 0), \
    COUNT(revoked_at), CAST(COALESCE(SUM(revoked_at), 0) AS BIGINT), \
    CAST(COALESCE(SUM(rotated_into_id), 0) AS BIGINT), \
    CAST(COALESCE(SUM(expires_at), 0) AS BIGINT), CAST(COALESCE(SUM(issued_at), 0) AS BIGINT), \
    CAST(COALESCE(SUM(LENGTH(token_hash)), 0) AS BIGINT) FROM refresh_token";
const LOGIN_ATTEMPT_FINGERPRINT: &str = "SELECT COUNT(*), \
    CAST(COALESCE(SUM(failures), 0) AS BIGINT), \
    CAST(COALESCE(SUM(window_started_at), 0) AS BIGINT), \
    CAST(COALESCE(SUM(blocked_until), 0) AS BIGINT), \
    CAST(COALESCE(SUM(LENGTH(subject)), 0) AS BIGINT) FROM login_attempt";

async fn fingerprint(db: &DatabaseConnection, sql: &str) -> Vec<i64> {
    let statement = Statement::from_string(db.get_database_backend(), sql);
    let row = db.query_one_raw(statement).await.unwrap().unwrap();
    let columns = sql.matches("COUNT(").count()
        + sql.matches("COALESCE(MAX(").count()
        + sql.matches("CAST(").count();
    (0..columns).map(|i| row.try_get_by_index::<i64>(i).unwrap()).collect()
}

/// The fingerprints of `refresh_token` and `login_attempt`; the first number is the count.
#[derive(Debug, PartialEq, Eq)]
struct Rows {
    refresh_tokens: Vec<i64>,
    login_attempts: Vec<i64>,
}

impl Rows {
    fn refresh_token_count(&self) -> i64 {
        self.refresh_tokens[0]
    }
}

/// One acceptable answer: status, and for errors the code and detail of `errors[0]`
/// (`None` detail: any non-empty one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Expected {
    status: u16,
    code: Option<&'static str>,
    detail: Option<&'static str>,
}

const fn expected(status: u16, code: Option<&'static str>, detail: &'static str) -> Expected {
    Expected { status, code, detail: Some(detail) }
}
const OK: Expected = Expected { status: 200, code: None, detail: None };
const CREATED: Expected = Expected { status: 201, code: None, detail: None };
const POST_DATA_INVALID: Expected = expected(400, None, "Post data is invalid.");
const INVALID_TYPE: Expected = expected(400, None, "Invalid type.");
const VIOLATION: Expected = Expected { status: 422, code: Some("901"), detail: None };
const LOGIN_FAILED: Expected = expected(401, Some("003"), "Failed to authenticate user.");
const REFRESH_FAILED: Expected = expected(401, Some("004"), "Failed to refresh token.");
const SWITCH_FAILED: Expected = expected(401, Some("001"), "Failed to authenticate user.");
const INVALID_TOKEN: Expected = expected(401, Some("001"), "Invalid access token.");
const MISSING_TOKEN: Expected = expected(403, Some("002"), "Missing access token.");
const CUSTOMER_NOT_FOUND: Expected = expected(404, Some("402"), "Customer not found.");

/// The properties every answer has, whatever the request: no 5xx, a documented outcome the
/// model allows, the media type, and for errors the envelope.
fn check_answer(answer: &Answer, allowed: &[Expected]) -> Result<(), String> {
    let status = answer.status;
    if status >= 500 {
        return Err(format!("a server error: {status} {}", answer.body));
    }
    if answer.header("content-type") != Some(MEDIA_TYPE) {
        return Err(format!("Content-Type {:?}", answer.header("content-type")));
    }
    if status < 400 {
        return if allowed.iter().any(|e| e.status == status)
            && (answer.body["data"].is_object() || answer.body["data"].is_array())
        {
            Ok(())
        } else {
            Err(format!("{status} where {allowed:?} was expected: {}", answer.body))
        };
    }
    let errors = answer.body["errors"].as_array().filter(|e| !e.is_empty());
    let Some(errors) = errors else {
        return Err(format!("{status} without an error envelope: {}", answer.body));
    };
    for error in errors {
        if error["status"] != status {
            return Err(format!(
                "errors[].status is not the HTTP status {status}: {}",
                answer.body
            ));
        }
        if error["detail"].as_str().is_none_or(|d| d.trim().is_empty()) {
            return Err(format!("an error without a detail: {}", answer.body));
        }
        if status == 422 && !error["detail"].as_str().is_some_and(|d| d.contains(" => ")) {
            return Err(format!("a 422 detail is not `<attribute> => <message>`: {}", answer.body));
        }
    }
    if status == 401 && answer.header("www-authenticate") != Some(CHALLENGE) {
        return Err(format!("401 with WWW-Authenticate {:?}", answer.header("www-authenticate")));
    }
    let first = &errors[0];
    let fits = |e: &Expected| {
        e.status == status
            && first.get("code").and_then(Value::as_str) == e.code
            && e.detail.is_none_or(|d| first["detail"] == d)
    };
    if allowed.iter().any(fits) {
        Ok(())
    } else {
        Err(format!("{status} {} where {allowed:?} was expected", answer.body))
    }
}

// ------------------------------------------------------------------------------------------
// Request documents.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Login,
    Refresh,
    Switch,
}

impl Op {
    fn path(self) -> &'static str {
        match self {
            Self::Login => "/access-tokens",
            Self::Refresh => "/refresh-tokens",
            Self::Switch => "/company-user-access-tokens",
        }
    }

    fn resource_type(self) -> &'static str {
        &self.path()[1..]
    }

    fn valid_document(self) -> J {
        let attributes = match self {
            Self::Login => {
                J::obj(vec![("username", J::string(USERNAME)), ("password", J::string(PASSWORD))])
            }
            Self::Refresh => J::obj(vec![("refreshToken", J::string(REFRESH_PLACEHOLDER))]),
            Self::Switch => J::obj(vec![("idCompanyUser", J::string(SONIA))]),
        };
        J::obj(vec![(
            "data",
            J::obj(vec![("type", J::string(self.resource_type())), ("attributes", attributes)]),
        )])
    }
}

/// A JSON text as a tree that can hold what `serde_json::Value` cannot: duplicate keys,
/// literals written any way (big numbers, lone surrogate escapes, raw control characters).
#[derive(Debug, Clone)]
enum J {
    /// A literal as written: a number, `true`, `null`, or a string with its quotes.
    Lit(String),
    Arr(Vec<J>),
    /// Members with their keys as written (quotes included).
    Obj(Vec<(String, J)>),
}

fn json_string(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

impl J {
    fn string(text: &str) -> Self {
        Self::Lit(json_string(text))
    }

    fn obj(members: Vec<(&str, J)>) -> Self {
        Self::Obj(members.into_iter().map(|(k, v)| (json_string(k), v)).collect())
    }

    fn render(&self, out: &mut String) {
        match self {
            Self::Lit(text) => out.push_str(text),
            Self::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.render(out);
                }
                out.push(']');
            }
            Self::Obj(members) => {
                out.push('{');
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(key);
                    out.push(':');
                    value.render(out);
                }
                out.push('}');
            }
        }
    }

    /// The path of every node, root first.
    fn paths(&self, at: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        out.push(at.clone());
        let children: Vec<&J> = match self {
            Self::Lit(_) => vec![],
            Self::Arr(items) => items.iter().collect(),
            Self::Obj(members) => members.iter().map(|(_, v)| v).collect(),
        };
        for (i, child) in children.into_iter().enumerate() {
            at.push(i);
            child.paths(at, out);
            at.pop();
        }
    }

    fn all_paths(&self) -> Vec<Vec<usize>> {
        let mut out = Vec::new();
        self.paths(&mut Vec::new(), &mut out);
        out
    }

    fn at(&mut self, path: &[usize]) -> &mut J {
        match path.split_first() {
            None => self,
            Some((&i, rest)) => match self {
                Self::Arr(items) => items[i].at(rest),
                Self::Obj(members) => members[i].1.at(rest),
                Self::Lit(_) => unreachable!("a path into a literal"),
            },
        }
    }

    fn is_string(&self) -> bool {
        matches!(self, Self::Lit(text) if text.len() >= 2 && text.starts_with('"') && text.ends_with('"'))
    }
}

fn pick<T: Clone>(items: &[T], index: &Index) -> Option<T> {
    (!items.is_empty()).then(|| items[index.index(items.len())].clone())
}

/// A change to the document tree.
#[derive(Debug, Clone)]
enum TreeMutation {
    /// Replace any node (the root too) with another value.
    Replace(Index, J),
    /// Remove an object member.
    Remove(Index),
    /// Repeat an object member right after itself, with its value or another one.
    Duplicate(Index, Option<J>),
    /// Add a member to an object (or an item to an array).
    Add(Index, String, J),
    /// Wrap a node in `n` arrays or single-member objects.
    Nest(Index, usize, bool),
    /// Replace a literal (a leaf: the type, an attribute) with another value.
    ReplaceLiteral(Index, J),
    /// Change a string literal.
    Edit(Index, StrEdit),
    /// Change the key of an object member.
    EditKey(Index, StrEdit),
}

#[derive(Debug, Clone)]
enum StrEdit {
    /// Replace one character (a uuid or token that is well-formed but wrong).
    Flip(Index, char),
    Truncate(Index),
    Upper,
    Insert(Index, String),
    Replace(String),
}

impl TreeMutation {
    fn apply(&self, doc: &mut J) {
        let paths = doc.all_paths();
        match self {
            Self::Replace(index, value) => {
                if let Some(path) = pick(&paths, index) {
                    *doc.at(&path) = value.clone();
                }
            }
            Self::ReplaceLiteral(index, value) => {
                let literals: Vec<Vec<usize>> =
                    paths.into_iter().filter(|p| matches!(doc.at(p), J::Lit(_))).collect();
                if let Some(path) = pick(&literals, index) {
                    *doc.at(&path) = value.clone();
                }
            }
            Self::Remove(index) | Self::Duplicate(index, _) => {
                let members = members_of(doc, &paths);
                let Some((path, i)) = pick(&members, index) else { return };
                let J::Obj(members) = doc.at(&path) else { return };
                match self {
                    Self::Duplicate(_, value) => {
                        let mut member = members[i].clone();
                        if let Some(value) = value {
                            member.1 = value.clone();
                        }
                        members.insert(i + 1, member);
                    }
                    _ => {
                        members.remove(i);
                    }
                }
            }
            Self::Add(index, key, value) => {
                let containers: Vec<Vec<usize>> = paths
                    .into_iter()
                    .filter(|p| matches!(doc.at(p), J::Arr(_) | J::Obj(_)))
                    .collect();
                let Some(path) = pick(&containers, index) else { return };
                match doc.at(&path) {
                    J::Obj(members) => members.push((key.clone(), value.clone())),
                    J::Arr(items) => items.push(value.clone()),
                    J::Lit(_) => {}
                }
            }
            Self::Nest(index, depth, in_arrays) => {
                let Some(path) = pick(&paths, index) else { return };
                let node = doc.at(&path);
                let mut value = std::mem::replace(node, J::Lit("null".into()));
                for _ in 0..*depth {
                    value = if *in_arrays {
                        J::Arr(vec![value])
                    } else {
                        J::Obj(vec![(json_string("data"), value)])
                    };
                }
                *node = value;
            }
            Self::Edit(index, edit) => {
                let strings: Vec<Vec<usize>> =
                    paths.into_iter().filter(|p| doc.at(p).is_string()).collect();
                let Some(path) = pick(&strings, index) else { return };
                if let J::Lit(text) = doc.at(&path) {
                    edit.apply(text);
                }
            }
            Self::EditKey(index, edit) => {
                let members = members_of(doc, &paths);
                let Some((path, i)) = pick(&members, index) else { return };
                if let J::Obj(members) = doc.at(&path) {
                    edit.apply(&mut members[i].0);
                }
            }
        }
    }
}

impl StrEdit {
    /// Edits a string literal as written (between its quotes).
    fn apply(&self, literal: &mut String) {
        let inner: Vec<char> = literal[1..literal.len() - 1].chars().collect();
        let edited: String = match self {
            Self::Flip(at, by) => {
                let mut chars = inner.clone();
                if let Some(c) = chars.get_mut(at.index(inner.len().max(1))) {
                    *c = if c == by { if *by == '0' { '1' } else { '0' } } else { *by };
                }
                chars.into_iter().collect()
            }
            Self::Truncate(at) => inner[..at.index(inner.len() + 1)].iter().collect(),
            Self::Upper => inner.iter().collect::<String>().to_uppercase(),
            Self::Insert(at, raw) => {
                let at = at.index(inner.len() + 1);
                let mut out: String = inner[..at].iter().collect();
                out.push_str(raw);
                out.extend(&inner[at..]);
                out
            }
            Self::Replace(raw) => raw.clone(),
        };
        *literal = format!("\"{edited}\"");
    }
}

/// (object path, member index) of every object member.
fn members_of(doc: &mut J, paths: &[Vec<usize>]) -> Vec<(Vec<usize>, usize)> {
    let mut out = Vec::new();
    for path in paths {
        if let J::Obj(members) = doc.at(path) {
            out.extend((0..members.len()).map(|i| (path.clone(), i)));
        }
    }
    out
}

/// A change to the bytes of the rendered document.
#[derive(Debug, Clone)]
enum ByteMutation {
    None,
    Truncate(Index),
    Insert(Index, Vec<u8>),
    Overwrite(Index, u8),
    Delete(Index, usize),
    /// Random bytes instead of the document.
    Random(Vec<u8>),
    /// `n` unclosed (or closed) arrays or objects instead of the document.
    Deep(usize, bool, bool),
}

/// Byte sequences that are not UTF-8, or not JSON where they stand.
const ODD_BYTES: &[&[u8]] = &[
    b"\xff",
    b"\xfe\xff",
    b"\xc3",
    b"\xc0\x80",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xef\xbb\xbf",
    b"\0",
    b"\\",
    b"\"",
    b"}",
    b"]",
    b",",
    b":",
];

impl ByteMutation {
    fn apply(&self, body: &mut Vec<u8>) {
        let len = body.len();
        match self {
            Self::None => {}
            Self::Truncate(at) => body.truncate(at.index(len + 1)),
            Self::Insert(at, bytes) => {
                let at = at.index(len + 1);
                body.splice(at..at, bytes.iter().copied());
            }
            Self::Overwrite(at, byte) => {
                if len > 0 {
                    body[at.index(len)] = *byte;
                }
            }
            Self::Delete(at, n) => {
                if len > 0 {
                    let at = at.index(len);
                    body.drain(at..(at + n).min(len));
                }
            }
            Self::Random(bytes) => body.clone_from(bytes),
            Self::Deep(depth, in_arrays, closed) => {
                let (open, close): (&[u8], &[u8]) =
                    if *in_arrays { (b"[", b"]") } else { (br#"{"data":"#, b"}") };
                *body = open.repeat(*depth);
                if *closed {
                    if !*in_arrays {
                        body.extend_from_slice(b"null");
                    }
                    body.extend(close.repeat(*depth));
                }
            }
        }
    }
}

/// Strings that mean something to one of the operations.
const DOMAIN_STRINGS: &[&str] = &[
    USERNAME,
    "SONIA@ACME.COM",
    "Sonia@Acme.Com",
    " sonia@acme.com",
    "sonia@acme.com ",
    "sonia@acme",
    "nobody@acme.com",
    PASSWORD,
    "change123 ",
    "CHANGE123",
    "",
    " ",
    "\t",
    "\u{0}",
    "access-tokens",
    "refresh-tokens",
    "company-user-access-tokens",
    "Access-Tokens",
    "customers",
    REFRESH_PLACEHOLDER,
    REFRESH_PLACEHOLDER_UPPER,
    REFRESH_PLACEHOLDER_FLIPPED,
    SONIA,
    "EBF4B55A-CAB0-5ED0-8FB7-525A3EEEDEAC",
    "{ebf4b55a-cab0-5ed0-8fb7-525a3eeedeac}",
    "ebf4b55acab05ed08fb7525a3eeedeac",
    "urn:uuid:ebf4b55a-cab0-5ed0-8fb7-525a3eeedeac",
    "ebf4b55a-cab0-5ed0-8fb7-525a3eeedeac ",
    "00000000-0000-0000-0000-000000000000",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
    "72778771-2020-574f-bbaf-05da5889e79e",
    "' OR 1=1 --",
    "%00",
    "../../etc/passwd",
    "null",
    "0",
];

/// Number literals, valid JSON or not, in and out of every numeric range.
const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "2147483648",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551616",
    "123456789012345678901234567890",
    "1e308",
    "1e309",
    "1e400",
    "-1e400",
    "1e-400",
    "1E+2",
    "0.1e-99999",
    "00",
    "01",
    "1.",
    ".5",
    "+1",
    "0x10",
    "NaN",
    "Infinity",
    "-",
    "1e",
];

/// Escapes and characters that strings should not (or may rarely) hold, as written.
const ODD_STRING_PARTS: &[&str] = &[
    "\\ud800",
    "\\udc00",
    "\\udbff",
    "\\ud800\\u0041",
    "\\ud800\\ud800",
    "\\ud83d\\ude00",
    "\\u0000",
    "\\u00",
    "\\x41",
    "\\",
    "\\/",
    "\u{0}",
    "\n",
    "\t",
    "\u{7f}",
    "\u{feff}",
    "\u{10ffff}",
    "\u{fffd}",
    "\u{202e}",
];

fn random_text() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..16).prop_map(String::from_iter)
}

/// The inside of a string literal (without quotes), as written.
fn string_inner() -> impl Strategy<Value = String> {
    let escaped = |text: String| {
        let literal = json_string(&text);
        literal[1..literal.len() - 1].to_owned()
    };
    prop_oneof![
        4 => random_text().prop_map(escaped),
        3 => select(DOMAIN_STRINGS).prop_map(move |s| escaped(s.to_owned())),
        2 => (random_text(), select(ODD_STRING_PARTS), random_text())
            .prop_map(move |(a, odd, b)| format!("{}{odd}{}", escaped(a), escaped(b))),
        1 => (1usize..20_000).prop_map(|n| "a".repeat(n)),
    ]
}

fn literal() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => select(&["null", "true", "false", "True", "nul"][..]).prop_map(str::to_owned),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => (-1e300f64..1e300).prop_map(|f| serde_json::Number::from_f64(f).unwrap().to_string()),
        2 => select(NUMBERS).prop_map(str::to_owned),
        1 => (1usize..5_000).prop_map(|n| "9".repeat(n)),
        6 => string_inner().prop_map(|inner| format!("\"{inner}\"")),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(&[
            "data", "type", "attributes", "id", "username", "password", "refreshToken",
            "idCompanyUser", "Data", "TYPE", "data ", "meta", "included", "relationships",
            "__proto__", "",
        ][..])
        .prop_map(json_string),
        1 => string_inner().prop_map(|inner| format!("\"{inner}\"")),
    ]
}

fn value() -> impl Strategy<Value = J> {
    literal().prop_map(J::Lit).prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(J::Arr),
            prop::collection::vec((key(), inner), 0..4).prop_map(J::Obj),
        ]
    })
}

fn tree_mutation() -> impl Strategy<Value = TreeMutation> {
    let edit = prop_oneof![
        (any::<Index>(), select(&['0', '1', 'a', 'f', 'F', 'g', '-', '_', 'A', ' '][..]))
            .prop_map(|(at, by)| StrEdit::Flip(at, by)),
        any::<Index>().prop_map(StrEdit::Truncate),
        Just(StrEdit::Upper),
        (any::<Index>(), string_inner()).prop_map(|(at, raw)| StrEdit::Insert(at, raw)),
        string_inner().prop_map(StrEdit::Replace),
    ];
    prop_oneof![
        2 => (any::<Index>(), value()).prop_map(|(at, v)| TreeMutation::Replace(at, v)),
        2 => any::<Index>().prop_map(TreeMutation::Remove),
        2 => (any::<Index>(), prop::option::of(value()))
            .prop_map(|(at, v)| TreeMutation::Duplicate(at, v)),
        2 => (any::<Index>(), key(), value()).prop_map(|(at, k, v)| TreeMutation::Add(at, k, v)),
        1 => (any::<Index>(), 1usize..200, any::<bool>())
            .prop_map(|(at, n, arrays)| TreeMutation::Nest(at, n, arrays)),
        4 => (any::<Index>(), value()).prop_map(|(at, v)| TreeMutation::ReplaceLiteral(at, v)),
        4 => (any::<Index>(), edit.clone()).prop_map(|(at, e)| TreeMutation::Edit(at, e)),
        2 => (any::<Index>(), edit).prop_map(|(at, e)| TreeMutation::EditKey(at, e)),
    ]
}

fn byte_mutation() -> impl Strategy<Value = ByteMutation> {
    prop_oneof![
        48 => Just(ByteMutation::None),
        3 => any::<Index>().prop_map(ByteMutation::Truncate),
        2 => (any::<Index>(), select(ODD_BYTES))
            .prop_map(|(at, bytes)| ByteMutation::Insert(at, bytes.to_vec())),
        1 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(at, bytes)| ByteMutation::Insert(at, bytes)),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(at, b)| ByteMutation::Overwrite(at, b)),
        1 => (any::<Index>(), 1usize..16).prop_map(|(at, n)| ByteMutation::Delete(at, n)),
        2 => prop::collection::vec(any::<u8>(), 0..256).prop_map(ByteMutation::Random),
        1 => (1usize..7_000, any::<bool>(), any::<bool>())
            .prop_map(|(n, arrays, closed)| ByteMutation::Deep(n, arrays, closed)),
    ]
}

/// One generated POST.
#[derive(Clone)]
struct BodyCase {
    op: Op,
    content_type: Option<&'static str>,
    /// With the refresh-token placeholders.
    body: Vec<u8>,
    mutations: Vec<TreeMutation>,
    bytes: ByteMutation,
}

impl fmt::Debug for BodyCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "POST {} (Content-Type {:?}) body b\"{}\" (from {:?} then {:?})",
            self.op.path(),
            self.content_type,
            self.body.escape_ascii(),
            self.mutations,
            self.bytes
        )
    }
}

fn replace_bytes(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while !rest.is_empty() {
        if rest.starts_with(needle) {
            out.extend_from_slice(with);
            rest = &rest[needle.len()..];
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    out
}

impl BodyCase {
    /// The bytes to send, with the live refresh token in place of the placeholders.
    fn wire_body(&self, refresh_token: &str) -> Vec<u8> {
        let mut flipped = refresh_token.to_owned();
        let last = flipped.pop().map_or('A', |c| if c == 'A' { 'B' } else { 'A' });
        flipped.push(last);
        [
            (REFRESH_PLACEHOLDER, refresh_token.to_owned()),
            (REFRESH_PLACEHOLDER_UPPER, refresh_token.to_uppercase()),
            (REFRESH_PLACEHOLDER_FLIPPED, flipped),
        ]
        .iter()
        .fold(self.body.clone(), |body, (placeholder, token)| {
            replace_bytes(&body, placeholder.as_bytes(), token.as_bytes())
        })
    }
}

fn body_case() -> impl Strategy<Value = BodyCase> {
    (
        select(&[Op::Login, Op::Refresh, Op::Switch][..]),
        select(&[Some(MEDIA_TYPE), Some("application/json"), None, Some("text/plain")][..]),
        prop::collection::vec(tree_mutation(), 0..3),
        byte_mutation(),
    )
        .prop_map(|(op, content_type, mutations, bytes)| {
            let mut doc = op.valid_document();
            for mutation in &mutations {
                mutation.apply(&mut doc);
            }
            let mut text = String::new();
            doc.render(&mut text);
            let mut body = text.into_bytes();
            bytes.apply(&mut body);
            BodyCase { op, content_type, body, mutations, bytes }
        })
}

/// `Attributes::string` of docs/wire-contract.md §1.4 step 6: a present, non-null, non-blank
/// string.
fn required_string<'a>(
    attributes: &'a serde_json::Map<String, Value>,
    name: &str,
) -> Option<&'a str> {
    match attributes.get(name) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s),
        _ => None,
    }
}

/// What the contract says the answer to `body` is (docs/wire-contract.md §1.4, §3.1–3.3). Bodies
/// are JSON documents when RFC 8259 and serde_json agree they are (serde_json also refuses lone
/// surrogates and numbers out of the f64 range: 400 for those is fine).
fn expect_body(op: Op, body: &[u8], refresh_token: &str) -> Vec<Expected> {
    let Ok(doc) = serde_json::from_slice::<Value>(body) else { return vec![POST_DATA_INVALID] };
    let Some(data) = doc.get("data").and_then(Value::as_object) else {
        return vec![POST_DATA_INVALID];
    };
    let (Some(Value::String(ty)), Some(Value::Object(attributes))) =
        (data.get("type"), data.get("attributes"))
    else {
        return vec![POST_DATA_INVALID];
    };
    if ty != op.resource_type() {
        return vec![INVALID_TYPE];
    }
    match op {
        Op::Login => {
            let (Some(username), Some(password)) =
                (required_string(attributes, "username"), required_string(attributes, "password"))
            else {
                return vec![VIOLATION];
            };
            if username.eq_ignore_ascii_case(USERNAME) && password == PASSWORD {
                vec![CREATED]
            } else if username == USERNAME {
                vec![LOGIN_FAILED]
            } else {
                // Whether the username passes as an e-mail is the service's judgement.
                vec![VIOLATION, LOGIN_FAILED]
            }
        }
        Op::Refresh => match required_string(attributes, "refreshToken") {
            None => vec![VIOLATION],
            Some(token) if token == refresh_token => vec![CREATED],
            Some(_) => vec![REFRESH_FAILED],
        },
        Op::Switch => {
            let id = required_string(attributes, "idCompanyUser");
            match id.filter(|id| id.len() == 36).and_then(|id| Uuid::parse_str(id).ok()) {
                None => vec![VIOLATION],
                Some(id) if id == Uuid::parse_str(SONIA).unwrap() => vec![CREATED],
                Some(_) => vec![SWITCH_FAILED],
            }
        }
    }
}

/// Rows may change only as the outcome explains: a 201 adds one refresh token (a refresh
/// also revokes the presented one); a login that reached the password check counts.
fn check_rows(op: Op, status: u16, before: &Rows, after: &Rows) -> Result<(), String> {
    if status == 201 {
        if after.refresh_token_count() != before.refresh_token_count() + 1 {
            return Err(format!(
                "a 201 took refresh_token from {} to {} rows",
                before.refresh_token_count(),
                after.refresh_token_count()
            ));
        }
    } else if after.refresh_tokens != before.refresh_tokens {
        return Err(format!("a rejected request ({status}) changed refresh_token"));
    }
    let login_checked = op == Op::Login && matches!(status, 201 | 401);
    if !login_checked && after.login_attempts != before.login_attempts {
        return Err(format!("a request answered {status} changed login_attempt"));
    }
    if op == Op::Login && status == 401 && after.login_attempts == before.login_attempts {
        return Err("a failed login was not counted in login_attempt".into());
    }
    Ok(())
}

#[derive(Default)]
struct Tally {
    /// (operation, status) → answers.
    statuses: BTreeMap<(String, u16), u32>,
    /// What the inputs held (to see that the generators reach what they are meant to).
    features: BTreeMap<&'static str, u32>,
    created: usize,
    requests: usize,
}

/// The notable traits of a request body.
fn features(body: &[u8], mutations: &[TreeMutation]) -> Vec<&'static str> {
    let mut out = Vec::new();
    let text = String::from_utf8_lossy(body).to_lowercase();
    if std::str::from_utf8(body).is_err() {
        out.push("invalid UTF-8");
    }
    if ["\\ud8", "\\ud9", "\\uda", "\\udb", "\\udc", "\\udd", "\\ude", "\\udf"]
        .iter()
        .any(|s| text.contains(s))
    {
        out.push("a surrogate escape");
    }
    if body.contains(&0) || text.contains("\\u0000") {
        out.push("a NUL");
    }
    if body.len() > 8 * 1024 {
        out.push("over 8 KiB");
    }
    let (mut depth, mut deepest, mut in_string, mut escaped, mut digits, mut longest) =
        (0usize, 0usize, false, false, 0usize, 0usize);
    for &b in body {
        digits = if b.is_ascii_digit() && !in_string { digits + 1 } else { 0 };
        longest = longest.max(digits);
        match (in_string, escaped, b) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (true, false, b'"') | (false, _, b'"') => in_string = !in_string,
            (false, _, b'[' | b'{') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (false, _, b']' | b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if deepest > 128 {
        out.push("nested deeper than 128");
    }
    if longest > 20 {
        out.push("a number of over 20 digits");
    }
    if mutations.iter().any(|m| matches!(m, TreeMutation::Duplicate(..))) {
        out.push("a duplicated key");
    }
    if mutations.iter().any(|m| matches!(m, TreeMutation::Remove(..))) {
        out.push("a removed key");
    }
    if mutations.iter().any(|m| matches!(m, TreeMutation::Add(..))) {
        out.push("an added key");
    }
    out
}

impl Tally {
    fn count(&mut self, what: String, status: u16) {
        *self.statuses.entry((what, status)).or_default() += 1;
        self.requests += 1;
        self.created += usize::from(status == 201);
    }
}

fn report(test: &str, outcome: Result<(), TestError<impl fmt::Debug>>, tally: &Tally) {
    eprintln!("{test}: {} requests", tally.requests);
    for ((what, status), n) in &tally.statuses {
        eprintln!("  {what:<50} {status}: {n}");
    }
    for (feature, n) in &tally.features {
        eprintln!("  with {feature}: {n}");
    }
    match outcome {
        Ok(()) => {}
        Err(TestError::Fail(reason, input)) => {
            panic!("{test} failed: {reason}\nminimal input: {input:#?}")
        }
        Err(TestError::Abort(reason)) => panic!("{test} aborted: {reason}"),
    }
}

#[test]
fn fuzzed_request_documents_get_envelopes_and_change_nothing_on_sqlite() {
    fuzzed_request_documents(Db::Sqlite, "fuzz::request_documents::sqlite");
}

#[test]
fn fuzzed_request_documents_get_envelopes_and_change_nothing_on_postgres() {
    fuzzed_request_documents(Db::Postgres, "fuzz::request_documents::postgres");
}

fn fuzzed_request_documents(db: Db, test: &str) {
    let Some(harness) = Harness::start(db, test) else { return };
    let refresh_token = RefCell::new(harness.first_refresh_token.clone());
    let tally = RefCell::new(Tally::default());
    let initial = harness.rt.block_on(harness.rows());

    let outcome = runner().run(&body_case(), |case| {
        let live = refresh_token.borrow().clone();
        let body = case.wire_body(&live);
        let allowed = expect_body(case.op, &body, &live);
        let (answer, before, after) = harness.rt.block_on(async {
            let before = harness.rows().await;
            let mut request = harness.app.request(Method::POST, case.op.path()).body(body.clone());
            if let Some(content_type) = case.content_type {
                request = request.header("content-type", content_type);
            }
            if case.op == Op::Switch {
                request = request.bearer_auth(&harness.customer_token);
            }
            // `send` also checks the answer against the OpenAPI document.
            let answer = harness.app.send(request).await;
            (answer, before, harness.rows().await)
        });
        let mut counts = tally.borrow_mut();
        counts.count(format!("POST {}", case.op.path()), answer.status);
        for feature in features(&body, &case.mutations) {
            *counts.features.entry(feature).or_default() += 1;
        }
        drop(counts);
        if case.op == Op::Refresh && answer.status == 201 {
            // The presented token is rotated now, whatever the checks below say.
            if let Some(next) = answer.body["data"]["attributes"]["refreshToken"].as_str() {
                *refresh_token.borrow_mut() = next.to_owned();
            }
        }
        let sent = || format!("sent body b\"{}\"", body.escape_ascii());
        check_answer(&answer, &allowed)
            .and_then(|()| check_rows(case.op, answer.status, &before, &after))
            .map_err(|why| TestCaseError::fail(format!("{why}\n{}", sent())))
    });
    let tally = tally.into_inner();
    report(test, outcome, &tally);

    let last = harness.rt.block_on(harness.rows());
    assert_eq!(
        last.refresh_token_count(),
        initial.refresh_token_count() + i64::try_from(tally.created).unwrap(),
        "one refresh token per 201, none for the rejected requests"
    );
    assert!(tally.created > 0, "some mutated documents stayed valid");
    harness.assert_healthy();
}

// ------------------------------------------------------------------------------------------
// Authorization headers.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthOp {
    /// `GET /customers`: protected.
    Customers,
    /// `POST /company-user-access-tokens` with a valid body: protected, issues a token.
    Switch,
    /// `POST /refresh-tokens` with an unknown refresh token: unprotected, yet a token sent
    /// is validated (docs/wire-contract.md §1.4 step 5).
    Refresh,
}

impl AuthOp {
    fn request(self, app: &TestApp) -> reqwest::RequestBuilder {
        let post = |path: &str, body: Value| {
            app.request(Method::POST, path)
                .header("content-type", MEDIA_TYPE)
                .body(body.to_string())
        };
        match self {
            Self::Customers => app.request(Method::GET, "/customers"),
            Self::Switch => post(
                "/company-user-access-tokens",
                json!({"data": {"type": "company-user-access-tokens",
                    "attributes": {"idCompanyUser": SONIA}}}),
            ),
            Self::Refresh => post(
                "/refresh-tokens",
                json!({"data": {"type": "refresh-tokens",
                    "attributes": {"refreshToken": "not-a-refresh-token"}}}),
            ),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Customers => "GET /customers",
            Self::Switch => "POST /company-user-access-tokens",
            Self::Refresh => "POST /refresh-tokens",
        }
    }

    /// The answers the contract allows for a token of this verdict.
    fn expected(self, token: TokenVerdict) -> Vec<Expected> {
        match (self, token) {
            (Self::Refresh, TokenVerdict::Missing | TokenVerdict::Valid) => vec![REFRESH_FAILED],
            (Self::Refresh, TokenVerdict::Lenient) => vec![REFRESH_FAILED, INVALID_TOKEN],
            (_, TokenVerdict::Missing) => vec![MISSING_TOKEN],
            (Self::Customers, TokenVerdict::Valid) => vec![OK],
            (Self::Switch, TokenVerdict::Valid) => vec![CREATED],
            (Self::Customers, TokenVerdict::Lenient) => vec![OK, INVALID_TOKEN],
            (Self::Switch, TokenVerdict::Lenient) => vec![CREATED, INVALID_TOKEN],
            (_, TokenVerdict::Invalid) => vec![INVALID_TOKEN],
            // A token of a customer that no longer exists: 404/402 as for
            // `/customers/{reference}` (docs/wire-contract.md §3.7), or a refused token.
            (Self::Customers, TokenVerdict::Signed) => vec![OK, INVALID_TOKEN, CUSTOMER_NOT_FOUND],
            (Self::Switch, TokenVerdict::Signed) => vec![CREATED, INVALID_TOKEN, SWITCH_FAILED],
            (Self::Refresh, TokenVerdict::Signed) => vec![REFRESH_FAILED, INVALID_TOKEN],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenVerdict {
    Missing,
    /// `Bearer`, in any case (RFC 9110 §11.1), one or more spaces, a token we issued.
    Valid,
    /// A token we issued, framed in a way RFC 6750 does not allow but a lenient parser may
    /// (a tab among the spaces): either answer is fine.
    Lenient,
    Invalid,
    /// Signed with the service's key over fuzzed claims: valid or not, as the claims say.
    Signed,
}

/// What RFC 6750 §2.1 and docs/wire-contract.md §1.4 step 5 make of an `Authorization` header
/// value.
fn judge(header: Option<&[u8]>, issued: &[String], signed: Option<&[u8]>) -> TokenVerdict {
    let Some(value) = header else { return TokenVerdict::Missing };
    // HTTP drops the whitespace around a field value (RFC 9110 §5.5).
    let value = value.trim_ascii_start();
    let value = value
        .iter()
        .rposition(|b| *b != b' ' && *b != b'\t')
        .map_or(&value[..0], |end| &value[..=end]);
    let Ok(value) = std::str::from_utf8(value) else { return TokenVerdict::Invalid };
    if !value.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)) {
        return TokenVerdict::Invalid;
    }
    let Some((scheme, rest)) = value.split_once(' ') else { return TokenVerdict::Invalid };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return TokenVerdict::Invalid;
    }
    let candidate = rest.trim_matches([' ', '\t']);
    if signed == Some(candidate.as_bytes()) {
        TokenVerdict::Signed
    } else if !issued.iter().any(|t| t == candidate) {
        TokenVerdict::Invalid
    } else if rest.trim_start_matches(' ') == candidate {
        TokenVerdict::Valid
    } else {
        TokenVerdict::Lenient
    }
}

#[derive(Clone)]
struct AuthCase {
    op: AuthOp,
    header: Option<Vec<u8>>,
    how: String,
    /// The token in the header, when it is signed with the service's key.
    signed: Option<Vec<u8>>,
}

impl fmt::Debug for AuthCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.header {
            None => write!(f, "{} without Authorization", self.op.name()),
            Some(header) => write!(
                f,
                "{} with Authorization b\"{}\" ({})",
                self.op.name(),
                header.escape_ascii(),
                self.how
            ),
        }
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

const B64_SEGMENT: &str = "[A-Za-z0-9_-]{0,120}";

/// A JWT header a forger might try: algorithms, key ids, `typ` and `crit` of every kind.
fn forged_header(kid: String) -> impl Strategy<Value = String> {
    let alg = select(vec![
        Some(json!("ES256")),
        Some(json!("RS256")),
        Some(json!("HS256")),
        Some(json!("none")),
        Some(json!("None")),
        Some(json!("EdDSA")),
        Some(json!("ES384")),
        Some(json!("PS256")),
        Some(json!("es256")),
        Some(json!("")),
        Some(json!(1)),
        Some(Value::Null),
        None,
    ]);
    let kids = select(vec![
        Some(json!(kid)),
        Some(json!(format!("{kid}x"))),
        Some(json!(kid.to_uppercase())),
        Some(json!("")),
        Some(json!(7)),
        Some(json!([kid])),
        Some(Value::Null),
        None,
    ]);
    let kid = prop_oneof![3 => kids, 1 => "[a-z0-9.-]{0,16}".prop_map(|k| Some(json!(k)))];
    let typ = select(vec![
        Some(json!("at+jwt")),
        Some(json!("AT+JWT")),
        Some(json!("application/at+jwt")),
        Some(json!("JWT")),
        Some(json!("jwt")),
        Some(json!("")),
        Some(json!("applicationé/at+jwt")),
        Some(json!(5)),
        None,
    ]);
    let crit = select(vec![
        None,
        None,
        Some(json!(["exp"])),
        Some(json!([])),
        Some(json!("b64")),
        Some(json!(["kid", "kid"])),
    ]);
    let extra = select(vec![
        None,
        Some(("jku", json!("http://127.0.0.1:1/jwks.json"))),
        Some(("jwk", json!({"kty": "oct", "k": "AAAA"}))),
        Some(("x5u", json!("http://127.0.0.1:1/x5"))),
        Some(("b64", json!(false))),
    ]);
    let raw = select(vec![
        "not json".to_owned(),
        "{}".to_owned(),
        "[]".to_owned(),
        "null".to_owned(),
        r#"{"alg":"ES256","alg":"none"}"#.to_owned(),
        r#"{"alg":"ES256","kid":"\ud800"}"#.to_owned(),
        "{\"alg\":\"ES256\",\"kid\":\"\u{0}\"}".to_owned(),
        r#"{"alg":"ES256","typ":"at+jwt","kid":"#.to_owned(),
    ]);
    prop_oneof![
        5 => (alg, kid, typ, crit, extra).prop_map(|(alg, kid, typ, crit, extra)| {
            let mut header = serde_json::Map::new();
            for (name, value) in [("alg", alg), ("kid", kid), ("typ", typ), ("crit", crit)] {
                if let Some(value) = value {
                    header.insert(name.into(), value);
                }
            }
            if let Some((name, value)) = extra {
                header.insert(name.into(), value);
            }
            Value::Object(header).to_string()
        }),
        1 => raw,
    ]
}

/// The claims of `token` with one claim changed or removed.
fn tampered_claims(token: &str) -> impl Strategy<Value = (String, String)> + use<> {
    let (_, claims) = jwt_parts(token);
    let names = vec!["exp", "nbf", "iat", "aud", "iss", "scopes", "sub", "jti", "extra"];
    let values = vec![
        None,
        Some(json!(0)),
        Some(json!(i64::MAX)),
        Some(json!(1e300)),
        Some(json!(-1)),
        Some(json!("x")),
        Some(json!(["company_user"])),
        Some(json!(["customer", "company_user"])),
        Some(json!("{\"id_customer\":1,\"customer_reference\":\"DE--1\"}")),
        Some(json!(null)),
        Some(json!({})),
    ];
    (select(names), select(values)).prop_map(move |(name, value)| {
        let mut claims = claims.clone();
        match &value {
            Some(value) => claims[name] = value.clone(),
            None => {
                claims.as_object_mut().unwrap().remove(name);
            }
        }
        (b64(claims.to_string().as_bytes()), format!("claim {name} set to {value:?}"))
    })
}

/// A token text, what it is, and whether it is signed with the service's own key.
type TokenText = (Vec<u8>, String, bool);

/// Token texts: issued ones, one character flipped, forged, random, truncated, long, and
/// signed with the service's key over fuzzed claims.
fn token_text(issued: &[String], kid: String, signer: &Arc<Signer>) -> BoxedStrategy<TokenText> {
    let customer = issued[0].clone();
    let parts: Vec<String> = customer.split('.').map(str::to_owned).collect();
    let (real_header, real_claims, real_signature) =
        (parts[0].clone(), parts[1].clone(), parts[2].clone());
    let tokens = issued.to_vec();

    let valid = select(tokens.clone()).prop_map(|t| (t.into_bytes(), "an issued token".into()));
    let flipped = (
        select(tokens.clone()),
        any::<Index>(),
        select(&['A', 'a', 'z', '0', '9', '_', '-', '.', '=', '+', '/', ' ', '~', 'é'][..]),
    )
        .prop_map(|(token, at, by)| {
            let mut chars: Vec<char> = token.chars().collect();
            let at = at.index(chars.len());
            let by = if chars[at] == by { if by == 'A' { 'B' } else { 'A' } } else { by };
            let was = chars[at];
            chars[at] = by;
            (String::from_iter(chars).into_bytes(), format!("char {at} '{was}' flipped to '{by}'"))
        });
    let segments = prop::collection::vec(B64_SEGMENT, 0..=5)
        .prop_map(|parts| (parts.join(".").into_bytes(), "random base64url segments".into()));
    let (claims, signature) = (real_claims.clone(), real_signature.clone());
    let forged = (
        forged_header(kid),
        select(vec![Some(claims), None]),
        prop_oneof![Just(signature), Just(String::new()), B64_SEGMENT.prop_map(String::from),],
        1usize..=4,
    )
        .prop_map(move |(header, claims, signature, parts)| {
            let claims = claims.unwrap_or_else(|| b64(br#"{"sub":"{}","scopes":["customer"]}"#));
            let all = [b64(header.as_bytes()), claims, signature, "x".into()];
            (all[..parts].join(".").into_bytes(), format!("forged header {header}, {parts} parts"))
        });
    let (header, signature) = (real_header.clone(), real_signature.clone());
    let tampered = tampered_claims(&customer).prop_map(move |(claims, how)| {
        (format!("{header}.{claims}.{signature}").into_bytes(), how)
    });
    let truncated = (select(tokens.clone()), any::<Index>()).prop_map(|(token, at)| {
        let at = at.index(token.len());
        (token.as_bytes()[..at].to_vec(), format!("truncated to {at} bytes"))
    });
    let framed = (
        select(tokens.clone()),
        select(&["", ".", "=", "==", "\\", "%20", ",", ";"][..]),
        select(&["", ".", "=", ",", "\"", "'"][..]),
    )
        .prop_map(|(token, before, after)| {
            (format!("{before}{token}{after}").into_bytes(), "an issued token, framed".into())
        });
    let long =
        (select(tokens), select(&[8191usize, 8192, 8193, 12_000, 16 * 1024][..]), any::<bool>())
            .prop_map(|(token, len, padded)| {
                let text = if padded {
                    let mut text = token;
                    while text.len() < len {
                        text.push('A');
                    }
                    text
                } else {
                    "a".repeat(len)
                };
                (text.into_bytes(), format!("{len} bytes long"))
            });
    let bytes = prop::collection::vec(any::<u8>(), 0..200).prop_map(|bytes| {
        // Only what a header value can hold: tab, visible ASCII, space, obs-text.
        let bytes = bytes
            .into_iter()
            .map(|b| if b < 0x20 && b != b'\t' || b == 0x7f { b'?' } else { b })
            .collect();
        (bytes, "random bytes".into())
    });
    let unsigned = prop_oneof![
        3 => valid,
        4 => flipped,
        2 => segments,
        4 => forged,
        2 => tampered,
        1 => truncated,
        1 => framed,
        1 => long,
        1 => bytes,
    ]
    .prop_map(|(bytes, how)| (bytes, how, false));
    let signed = signed_token(signer.clone(), &customer)
        .prop_map(|(token, how)| (token.into_bytes(), how, true));
    prop_oneof![19 => unsigned, 6 => signed].boxed()
}

/// The service's own signing key, read from its data directory: tokens signed with it get
/// past the signature check, to the checks and the parsing of the header and the claims.
struct Signer {
    key: aws_lc_rs::signature::EcdsaKeyPair,
    kid: String,
}

impl Signer {
    fn read(data_dir: &std::path::Path, kid: String) -> Self {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
        let pem = std::fs::read_to_string(data_dir.join("signing-key.pem")).unwrap();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD.decode(body).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der).unwrap();
        Self { key, kid }
    }

    /// `header.claims.signature`, signed as the service signs (ES256, fixed-size signature).
    fn sign(&self, header: &str, claims: &str) -> String {
        let message = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
        let signature =
            self.key.sign(&aws_lc_rs::rand::SystemRandom::new(), message.as_bytes()).unwrap();
        format!("{message}.{}", b64(signature.as_ref()))
    }
}

/// Sets (`Some`) or removes (`None`) members of a JSON object.
type Edits = Vec<(&'static str, Option<Value>)>;

fn edit(object: &mut Value, edits: &Edits) {
    for (name, value) in edits {
        match value {
            Some(value) => object[*name] = value.clone(),
            None => {
                object.as_object_mut().map(|o| o.remove(*name));
            }
        }
    }
}

/// Tokens signed with the service's key whose header and claims are fuzzed from those of an
/// issued token: other customers and company users, ids out of range or of the wrong type,
/// `sub` that is no JSON, scopes, times at and beyond the leeway, audiences, issuers.
fn signed_token(
    signer: Arc<Signer>,
    token: &str,
) -> impl Strategy<Value = (String, String)> + use<> {
    let (header, claims) = jwt_parts(token);
    let sub: Value = serde_json::from_str(claims["sub"].as_str().unwrap()).unwrap();
    let iat = claims["iat"].as_i64().unwrap();
    let values = vec![
        Some(json!(0)),
        Some(json!(-1)),
        Some(json!(1)),
        Some(json!(2)),
        Some(json!(999_999)),
        Some(json!(i32::MAX)),
        Some(json!(i64::from(i32::MAX) + 1)),
        Some(json!(i64::MAX)),
        Some(json!(i64::MIN)),
        Some(json!(u64::MAX)),
        Some(json!(1e300)),
        Some(json!(1.5)),
        Some(json!(iat - 3600)),
        Some(json!(iat + 3600)),
        Some(json!(iat + 28_800 * 4)),
        Some(json!("1")),
        Some(json!("")),
        Some(json!("x")),
        Some(json!("glue-auth")),
        Some(json!("frontend")),
        Some(json!(["frontend"])),
        Some(json!(["frontend", "other"])),
        Some(json!(["customer"])),
        Some(json!(["company_user"])),
        Some(json!(["customer", "company_user"])),
        Some(json!([])),
        Some(json!("customer")),
        Some(json!(SONIA)),
        Some(json!("72778771-2020-574f-bbaf-05da5889e79e")),
        Some(json!("00000000-0000-0000-0000-000000000000")),
        Some(json!("DE--21")),
        Some(json!("DE--1")),
        Some(json!(null)),
        Some(json!(true)),
        Some(json!({})),
        None,
    ];
    let claim = select(vec!["iss", "aud", "exp", "nbf", "iat", "jti", "scopes", "sub", "extra"]);
    let sub_member =
        select(vec!["id_customer", "customer_reference", "id_company_user", "id_agent", "extra"]);
    // Mostly one change at a time, so that each reaches its own check.
    let claim_edits = prop_oneof![
        2 => Just(Vec::new()),
        1 => prop::collection::vec((claim, select(values.clone())), 1..3),
    ];
    let sub_edits = prop::collection::vec((sub_member, select(values)), 0..3);
    let sub_form = prop_oneof![
        8 => Just("a JSON string"),
        1 => Just("an object"),
        1 => Just("a broken JSON string"),
    ];
    let header_edits = prop::collection::vec(
        (
            select(vec!["typ", "crit", "kid", "alg", "cty"]),
            select(vec![
                Some(json!("at+jwt")),
                Some(json!("application/at+jwt")),
                Some(json!("JWT")),
                Some(json!(["exp"])),
                Some(json!("ES256")),
                Some(json!("ES384")),
                Some(json!("x")),
                Some(json!(1)),
                None,
            ]),
        ),
        0..2,
    );
    let header_edits = prop_oneof![3 => Just(Vec::new()), 1 => header_edits];
    (claim_edits, sub_edits, sub_form, header_edits).prop_map(
        move |(claim_edits, sub_edits, sub_form, header_edits)| {
            let (mut header, mut claims, mut sub) = (header.clone(), claims.clone(), sub.clone());
            header["kid"] = json!(signer.kid);
            edit(&mut header, &header_edits);
            edit(&mut sub, &sub_edits);
            claims["sub"] = match sub_form {
                "a JSON string" => json!(sub.to_string()),
                "an object" => sub,
                _ => json!(sub.to_string()[1..]),
            };
            edit(&mut claims, &claim_edits);
            let how = format!("signed by the service: header {header}, claims {claims}");
            (signer.sign(&header.to_string(), &claims.to_string()), how)
        },
    )
}

fn auth_case(
    issued: &[String],
    kid: String,
    signer: &Arc<Signer>,
) -> impl Strategy<Value = AuthCase> {
    let scheme = select(
        &[
            "Bearer",
            "Bearer",
            "Bearer",
            "bearer",
            "BEARER",
            "bEaReR",
            "Bearer:",
            "Basic",
            "Token",
            "JWT",
            "Bearer,",
            "",
            "Bearerr",
            "Bear",
            "Bearer\u{e9}",
        ][..],
    );
    let separator = select(&[" ", " ", " ", "  ", "\t", "", " \t", "\t ", ",", "="][..]);
    let suffix = select(&["", "", "", " ", "  ", "\t", " x", " Bearer", ",", " , Bearer x"][..]);
    let prefix = select(&["", "", "", " ", "\t"][..]);
    let header = (prefix, scheme, separator, token_text(issued, kid.clone(), signer), suffix)
        .prop_map(|(prefix, scheme, separator, (token, how, signed), suffix)| {
            let mut header = format!("{prefix}{scheme}{separator}").into_bytes();
            header.extend(&token);
            header.extend_from_slice(suffix.as_bytes());
            (header, how, signed.then_some(token))
        });
    let canonical = token_text(issued, kid, signer).prop_map(|(token, how, signed)| {
        let mut header = b"Bearer ".to_vec();
        header.extend(&token);
        (header, how, signed.then_some(token))
    });
    (
        select(&[AuthOp::Customers, AuthOp::Switch, AuthOp::Refresh][..]),
        prop_oneof![
            1 => Just(None),
            10 => header.prop_map(Some),
            10 => canonical.prop_map(Some),
        ],
    )
        .prop_map(|(op, header)| match header {
            None => AuthCase { op, header: None, how: "no header".into(), signed: None },
            Some((header, how, signed)) => AuthCase { op, header: Some(header), how, signed },
        })
}

#[test]
fn fuzzed_authorization_headers_get_envelopes_and_change_nothing_on_sqlite() {
    fuzzed_authorization_headers(Db::Sqlite, "fuzz::authorization_headers::sqlite");
}

#[test]
fn fuzzed_authorization_headers_get_envelopes_and_change_nothing_on_postgres() {
    fuzzed_authorization_headers(Db::Postgres, "fuzz::authorization_headers::postgres");
}

fn fuzzed_authorization_headers(db: Db, test: &str) {
    let Some(harness) = Harness::start(db, test) else { return };
    let issued = vec![harness.customer_token.clone(), harness.company_user_token.clone()];
    let (header, _) = jwt_parts(&harness.customer_token);
    let kid = header["kid"].as_str().unwrap().to_owned();
    let tally = RefCell::new(Tally::default());
    let initial = harness.rt.block_on(harness.rows());

    let signer = Arc::new(Signer::read(harness.app.data_dir.path(), kid.clone()));
    let outcome = runner().run(&auth_case(&issued, kid, &signer), |case| {
        let verdict = judge(case.header.as_deref(), &issued, case.signed.as_deref());
        let allowed = case.op.expected(verdict);
        let (answer, before, after) = harness.rt.block_on(async {
            let before = harness.rows().await;
            let mut request = case.op.request(&harness.app);
            if let Some(header) = &case.header {
                let value = reqwest::header::HeaderValue::from_bytes(header).unwrap();
                request = request.header("authorization", value);
            }
            let answer = harness.app.send(request).await;
            (answer, before, harness.rows().await)
        });
        tally.borrow_mut().count(format!("{} [{verdict:?}]", case.op.name()), answer.status);
        let sent = || format!("verdict {verdict:?}; sent {case:?}");
        check_answer(&answer, &allowed)
            .and_then(|()| check_rows(Op::Switch, answer.status, &before, &after))
            .map_err(|why| TestCaseError::fail(format!("{why}\n{}", sent())))?;
        Ok(())
    });
    let tally = tally.into_inner();
    report(test, outcome, &tally);

    let last = harness.rt.block_on(harness.rows());
    assert_eq!(
        last.refresh_token_count(),
        initial.refresh_token_count() + i64::try_from(tally.created).unwrap(),
        "one refresh token per 201, none for the rejected requests"
    );
    assert!(tally.created > 0, "some headers were valid");
    harness.assert_healthy();
}

/// The models the fuzzers judge answers by, on hand-picked inputs.
#[test]
fn the_fuzzers_models_follow_the_spec() {
    let login = |body: &str| expect_body(Op::Login, body.as_bytes(), "rt");
    let doc = |attributes: &str| {
        format!(r#"{{"data":{{"type":"access-tokens","attributes":{attributes}}}}}"#)
    };
    assert_eq!(login("nope"), [POST_DATA_INVALID]);
    assert_eq!(login(r#"{"data":{"type":"access-tokens"}}"#), [POST_DATA_INVALID]);
    assert_eq!(login(r#"{"data":{"type":"x","attributes":{}}}"#), [INVALID_TYPE]);
    assert_eq!(login(&doc(r#"{"username":"sonia@acme.com","password":"change123"}"#)), [CREATED]);
    assert_eq!(
        login(&doc(r#"{"username":"sonia@acme.com","password":"change1234"}"#)),
        [LOGIN_FAILED]
    );
    assert_eq!(login(&doc(r#"{"username":"sonia@acme.com","password":" "}"#)), [VIOLATION]);
    // The last of duplicate keys counts, as in serde_json (the service's parser).
    assert_eq!(
        login(&doc(r#"{"username":1,"username":"sonia@acme.com","password":"change123"}"#)),
        [CREATED]
    );
    assert_eq!(login(&doc(r#"{"username":"\ud800","password":"x"}"#)), [POST_DATA_INVALID]);
    assert_eq!(
        expect_body(
            Op::Refresh,
            br#"{"data":{"type":"refresh-tokens","attributes":{"refreshToken":"rt"}}}"#,
            "rt"
        ),
        [CREATED]
    );
    assert_eq!(
        expect_body(Op::Switch, format!(r#"{{"data":{{"type":"company-user-access-tokens","attributes":{{"idCompanyUser":"{}"}}}}}}"#, SONIA.to_uppercase()).as_bytes(), "rt"),
        [CREATED]
    );

    let issued = ["T.o.k".to_owned()];
    let verdict = |header: &str| judge(Some(header.as_bytes()), &issued, Some(b"S.i.g"));
    assert_eq!(judge(None, &issued, None), TokenVerdict::Missing);
    assert_eq!(verdict("Bearer S.i.g"), TokenVerdict::Signed);
    for valid in ["Bearer T.o.k", "bearer  T.o.k", "BEARER T.o.k\t", " Bearer T.o.k "] {
        assert_eq!(verdict(valid), TokenVerdict::Valid, "{valid}");
    }
    assert_eq!(verdict("Bearer \tT.o.k"), TokenVerdict::Lenient);
    for invalid in
        ["Bearer\tT.o.k", "Bearer T.o.k x", "Basic T.o.k", "Bearer T.o.", "Bearer", "T.o.k"]
    {
        assert_eq!(verdict(invalid), TokenVerdict::Invalid, "{invalid}");
    }
}
