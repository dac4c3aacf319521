//! The test application: the real service on a real socket (port 0), on a fresh SQLite file
//! or a fresh PostgreSQL database, with one helper per kind of request.

use std::{net::SocketAddr, sync::Arc};

use clap::Parser;
use glue_auth::{app::App, cli::Cli, clock::Clock, config::Config};
use reqwest::{Method, RequestBuilder, Response};
use sea_orm::DatabaseConnection;
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::oneshot;

use super::postgres;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub addr: SocketAddr,
    /// Requests to it: `app.post(…)` and the like reach these through `Deref`.
    pub api: Api,
    pub db: DatabaseConnection,
    pub database_url: String,
    /// The service's clock: tests move it forward instead of sleeping.
    pub clock: Arc<Clock>,
    pub data_dir: TempDir,
    _stop: oneshot::Sender<()>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            super::secrets::assert_no_leaks();
        }
    }
}

/// A configuration as the command line would give it, for tests.
pub fn config(data_dir: &std::path::Path, database_url: &str, extra: &[&str]) -> Config {
    let mut args = vec![
        "glue-auth".to_owned(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--data-dir".into(),
        data_dir.display().to_string(),
        "--database-url".into(),
        database_url.into(),
        "--log".into(),
        "warn".into(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args.push("serve".into());
    Cli::try_parse_from(args).expect("a valid test command line").config
}

/// How far `GET /company-users/mine` may lag behind a directory change (the default of
/// `--membership-cache-max-age-ms`): a change committed longer ago than this is listed.
pub fn listing_max_age() -> std::time::Duration {
    let defaults = config(std::path::Path::new("."), "sqlite::memory:", &[]);
    std::time::Duration::from_millis(defaults.membership_cache_max_age_ms)
}

/// A fresh, empty database of the given kind, or `None` when PostgreSQL is unavailable and
/// not required (the test then says so on stderr and passes as skipped).
pub async fn fresh_database(db: Db, data_dir: &std::path::Path, test: &str) -> Option<String> {
    match db {
        Db::Sqlite => Some(format!("sqlite://{}?mode=rwc", data_dir.join("test.db").display())),
        Db::Postgres => match postgres::server() {
            Ok(server) => Some(server.fresh_database().await),
            Err(why) if !postgres::required() => {
                eprintln!("SKIPPED on PostgreSQL: {test}: {why}");
                None
            }
            Err(why) => panic!("PostgreSQL is required (GLUE_AUTH_REQUIRE_POSTGRES=1): {why}"),
        },
    }
}

impl TestApp {
    /// Gives the customer of `email` known creation and change times (Unix seconds), for
    /// answers that show them.
    pub async fn set_customer_times(&self, email: &str, created_at: i64, updated_at: i64) {
        use entity::customer::{Column, Entity};
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
        let updated = Entity::update_many()
            .col_expr(Column::CreatedAt, Expr::value(created_at))
            .col_expr(Column::UpdatedAt, Expr::value(updated_at))
            .filter(Column::Email.eq(email))
            .exec(&self.db)
            .await
            .expect("set the customer's times");
        assert_eq!(updated.rows_affected, 1, "one customer is {email}");
    }

    /// Starts the service on an empty database.
    pub async fn spawn(db: Db, test: &str) -> Option<Self> {
        Self::spawn_with(db, test, &[]).await
    }

    /// Starts the service with extra command-line options.
    pub async fn spawn_with(db: Db, test: &str, extra: &[&str]) -> Option<Self> {
        let data_dir = tempfile::tempdir().expect("a temporary directory");
        let database_url = fresh_database(db, data_dir.path(), test).await?;
        Some(Self::spawn_on(&database_url, data_dir, extra).await)
    }

    /// Starts the service on an existing database (a second instance, another key set).
    pub async fn spawn_on(database_url: &str, data_dir: TempDir, extra: &[&str]) -> Self {
        super::secrets::install();
        let config = config(data_dir.path(), database_url, extra);
        let conn =
            glue_auth::db::connect(database_url, &config).await.expect("connect and migrate");
        let clock = Arc::new(Clock::default());
        let app = App::build_with_clock(config, conn.clone(), clock.clone()).await.expect("start");
        let addr = app.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(app.run(async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            api: Api::new(addr),
            db: conn,
            database_url: database_url.to_owned(),
            clock,
            data_dir,
            _stop: stop,
        }
    }

    /// Starts the service with the demo dataset loaded.
    pub async fn spawn_demo(db: Db, test: &str) -> Option<Self> {
        Self::spawn_demo_with(db, test, &[]).await
    }

    /// Starts the service with extra command-line options and the demo dataset loaded.
    pub async fn spawn_demo_with(db: Db, test: &str, extra: &[&str]) -> Option<Self> {
        let app = Self::spawn_with(db, test, extra).await?;
        glue_auth::admin::load_demo(&app.db).await.expect("the demo dataset loads");
        Some(app)
    }
}

/// The JSON:API body of a POST.
pub fn document(ty: &str, attributes: Value) -> Value {
    serde_json::json!({"data": {"type": ty, "attributes": attributes}})
}

/// Requests to one running service, each answer checked against the OpenAPI document.
#[derive(Clone)]
pub struct Api {
    pub client: reqwest::Client,
    base: String,
}

impl std::ops::Deref for TestApp {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Api {
    pub fn new(addr: SocketAddr) -> Self {
        let client = reqwest::Client::builder().build().expect("an HTTP client");
        Self { client, base: format!("http://{addr}") }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path).send().await.expect("the request is answered")
    }

    /// Sends a request and checks the answer against the OpenAPI document (see `contract`).
    pub async fn send(&self, request: RequestBuilder) -> Answer {
        self.send_with(&self.client, request).await
    }

    /// [`Api::send`] through another client.
    pub async fn send_with(&self, client: &reqwest::Client, request: RequestBuilder) -> Answer {
        let request = request.build().expect("a well-formed request");
        let (method, path) = (request.method().to_string(), request.url().path().to_owned());
        let answer = Answer::of(client.execute(request).await.expect("answered")).await;
        super::contract::check(
            &method,
            &path,
            answer.status,
            answer.header("content-type"),
            &answer.body,
        );
        answer
    }

    /// POSTs raw bytes with the JSON:API media type.
    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> Answer {
        self.send(
            self.request(Method::POST, path)
                .header("content-type", "application/vnd.api+json")
                .body(body),
        )
        .await
    }

    /// `POST path` with a JSON:API document and an optional bearer token.
    pub async fn post(&self, path: &str, body: &Value, token: Option<&str>) -> Answer {
        if let Some(password) = body["data"]["attributes"]["password"].as_str() {
            super::secrets::register(password);
        }
        self.send(self.post_request(path, body, token)).await
    }

    /// `POST path` with a JSON:API document and an optional bearer token, not yet sent.
    fn post_request(&self, path: &str, body: &Value, token: Option<&str>) -> RequestBuilder {
        let request = self
            .request(Method::POST, path)
            .header("content-type", "application/vnd.api+json")
            .body(body.to_string());
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// `PATCH path` with a JSON:API document (its password attributes registered as
    /// secrets) and an optional bearer token.
    pub async fn patch(&self, path: &str, body: &Value, token: Option<&str>) -> Answer {
        self.send(self.patch_request(&self.client, path, body, token)).await
    }

    /// [`Api::patch`] through `client` (say, one bound to another loopback address).
    pub async fn patch_through(
        &self,
        client: &reqwest::Client,
        path: &str,
        body: &Value,
        token: &str,
    ) -> Answer {
        self.send_with(client, self.patch_request(client, path, body, Some(token))).await
    }

    fn patch_request(
        &self,
        client: &reqwest::Client,
        path: &str,
        body: &Value,
        token: Option<&str>,
    ) -> RequestBuilder {
        for name in ["password", "newPassword", "confirmPassword", "restorePasswordKey"] {
            if let Some(secret) = body["data"]["attributes"][name].as_str() {
                super::secrets::register(secret);
            }
        }
        let request = client
            .request(Method::PATCH, self.url(path))
            .header("content-type", "application/vnd.api+json")
            .body(body.to_string());
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// `GET path` with an optional bearer token.
    pub async fn get_as(&self, path: &str, token: Option<&str>) -> Answer {
        let mut req = self.request(Method::GET, path);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        self.send(req).await
    }

    /// `DELETE path` with an optional bearer token.
    pub async fn delete_as(&self, path: &str, token: Option<&str>) -> Answer {
        let mut req = self.request(Method::DELETE, path);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        self.send(req).await
    }

    /// `POST /access-tokens`.
    pub async fn login(&self, username: &str, password: &str) -> Answer {
        let body = document(
            "access-tokens",
            serde_json::json!({"username": username, "password": password}),
        );
        self.post("/access-tokens", &body, None).await
    }

    /// `POST /access-tokens` through `client` (say, one bound to another loopback address),
    /// with extra request headers.
    pub async fn login_through(
        &self,
        client: &reqwest::Client,
        headers: &[(&str, &str)],
        username: &str,
        password: &str,
    ) -> Answer {
        super::secrets::register(password);
        let body = document(
            "access-tokens",
            serde_json::json!({"username": username, "password": password}),
        );
        let mut request = client
            .post(self.url("/access-tokens"))
            .header("content-type", "application/vnd.api+json")
            .body(body.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send_with(client, request).await
    }

    /// Logs in a demo persona (password `change123`): (access token, refresh token).
    pub async fn tokens_of(&self, email: &str) -> (String, String) {
        let answer = self.login(email, "change123").await;
        assert_eq!(answer.status, 201, "login of {email}: {}", answer.body);
        answer.tokens()
    }

    /// `POST /token` with the form `params`.
    pub async fn token(&self, params: &[(&str, &str)]) -> Answer {
        for (name, value) in params {
            if *name == "password" {
                super::secrets::register(value);
            }
        }
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
        self.send(
            self.request(Method::POST, "/token")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body),
        )
        .await
    }

    /// `POST /refresh-tokens`.
    pub async fn refresh(&self, refresh_token: &str) -> Answer {
        self.post("/refresh-tokens", &refresh_body(refresh_token), None).await
    }

    /// `POST path` with a JSON:API document, unchecked: the transport error, if any, is the
    /// caller's (a service that may be dying).
    pub async fn try_post(
        &self,
        path: &str,
        body: &Value,
        token: Option<&str>,
    ) -> reqwest::Result<Response> {
        self.post_request(path, body, token).send().await
    }

    /// `POST /company-user-access-tokens` with an access token.
    pub async fn company_user_token(&self, access: &str, id: &str) -> Answer {
        self.post("/company-user-access-tokens", &company_user_body(id), Some(access)).await
    }
}

/// A client whose connections come from `127.0.0.<n>`.
pub fn client_from(n: u8) -> reqwest::Client {
    use std::net::{IpAddr, Ipv4Addr};
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)))
        .build()
        .expect("an HTTP client")
}

/// Hex SHA-256 of `text`, computed here independently of the service.
pub fn sha256_hex(text: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The stored form of a refresh token the service issued (column `token_hash`): its time
/// key (the first 16 hex digits), then the hex SHA-256 of the whole token.
pub fn stored_token_hash(token: &str) -> String {
    format!("{}{}", &token[..16], sha256_hex(token))
}

pub fn refresh_body(refresh_token: &str) -> Value {
    document("refresh-tokens", serde_json::json!({ "refreshToken": refresh_token }))
}

pub fn company_user_body(id: &str) -> Value {
    document("company-user-access-tokens", serde_json::json!({ "idCompanyUser": id }))
}

/// Sends raw bytes and reads the whole answer (the request should ask to close).
pub async fn raw_http(addr: SocketAddr, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    // The server may answer before it has read everything: ignore a reset while writing.
    let _ = stream.write_all(request).await;
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// The claims and header of a JWT, decoded without verification (to look at them).
pub fn jwt_parts(token: &str) -> (Value, Value) {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let mut parts = token.split('.');
    let mut next = || -> Value {
        let bytes = URL_SAFE_NO_PAD.decode(parts.next().expect("a JWT part")).expect("base64url");
        serde_json::from_slice(&bytes).expect("JSON")
    };
    let header = next();
    let claims = next();
    (header, claims)
}

/// An answer, read whole: status, headers and the JSON body.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub async fn of(resp: Response) -> Self {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("a body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!(
                    "status {status}: the body is not JSON ({e}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        if (200..300).contains(&status) {
            for name in ["accessToken", "refreshToken"] {
                if let Some(token) = body["data"]["attributes"][name].as_str() {
                    super::secrets::register(token);
                }
            }
            for name in ["access_token", "refresh_token"] {
                if let Some(token) = body[name].as_str() {
                    super::secrets::register(token);
                }
            }
        }
        Self { status, headers, body }
    }

    /// The access and refresh token of a token answer.
    pub fn tokens(&self) -> (String, String) {
        let attributes = &self.body["data"]["attributes"];
        (
            attributes["accessToken"].as_str().expect("an access token").to_owned(),
            attributes["refreshToken"].as_str().expect("a refresh token").to_owned(),
        )
    }

    /// The `detail` of each error of a JSON:API error answer, in order.
    pub fn details(&self) -> Vec<&str> {
        let errors = self.body["errors"].as_array().map(Vec::as_slice).unwrap_or_default();
        errors.iter().filter_map(|e| e["detail"].as_str()).collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an OAuth error answer (RFC 6749 §5.2): this status, `error` and
    /// `error_description`, and the `hint` if one is given.
    #[track_caller]
    pub fn assert_oauth_error(&self, status: u16, error: &str, description: &str) {
        assert_eq!(self.status, status, "status; body: {}", self.body);
        assert_eq!(self.header("content-type"), Some("application/json"));
        assert_eq!(self.header("cache-control"), Some("no-store"));
        assert_eq!(self.body["error"], error, "{}", self.body);
        assert_eq!(self.body["error_description"], description, "{}", self.body);
    }

    /// Asserts a JSON:API error answer with one error of this status, code and detail.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: Option<&str>, detail: &str) {
        assert_eq!(self.status, status, "status; body: {}", self.body);
        assert_eq!(self.header("content-type"), Some("application/vnd.api+json"));
        let errors =
            self.body["errors"].as_array().unwrap_or_else(|| panic!("no errors: {}", self.body));
        assert_eq!(errors.len(), 1, "one error expected: {}", self.body);
        assert_eq!(errors[0]["status"], status, "{}", self.body);
        assert_eq!(errors[0]["detail"], detail, "{}", self.body);
        match code {
            Some(code) => assert_eq!(errors[0]["code"], code, "{}", self.body),
            None => assert!(errors[0].get("code").is_none(), "no code expected: {}", self.body),
        }
    }
}

/// Runs each listed test (an `async fn(TestApp-maker)`) once on SQLite and once on PostgreSQL.
/// Each test receives the database kind and its own name.
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Db::Sqlite, concat!(module_path!(), "::sqlite")).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::helpers::Db::Postgres, concat!(module_path!(), "::postgres")).await;
            }
        }
    )*};
}
pub(crate) use on_both_databases;
