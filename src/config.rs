//! The service's configuration: one struct, every field a command-line option and a
//! `GLUE_AUTH_*` environment variable. Nothing else in the code reads the environment.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, ValueEnum};

use crate::client_address::{ForwardedHeader, ProxyNet, TrustedProxies};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address and port the HTTP server listens on.
    #[arg(long, env = "GLUE_AUTH_LISTEN", default_value = "127.0.0.1:8080", global = true)]
    pub listen: SocketAddr,

    /// Directory for the embedded SQLite database and the generated signing key.
    #[arg(long, env = "GLUE_AUTH_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,

    /// Database URL: `sqlite://PATH` or `postgres://USER:PASSWORD@HOST/DB`.
    /// Default: the SQLite file `glue-auth.db` in the data directory (`demo.db` for `demo`).
    #[arg(long, env = "GLUE_AUTH_DATABASE_URL", global = true)]
    pub database_url: Option<String>,

    /// Most database connections the service holds open (readers, on SQLite, which adds
    /// its one writer). Default: 2 per CPU on SQLite, whose connections each run on a
    /// thread of their own (more only switched threads: 8 served `GET
    /// /company-users/mine` 25-35% slower than 4 on 2 CPUs); 8 on PostgreSQL.
    #[arg(long, env = "GLUE_AUTH_DATABASE_MAX_CONNECTIONS", global = true)]
    pub database_max_connections: Option<u32>,

    /// Page cache of each pooled SQLite connection, in KiB. Each connection keeps a private
    /// copy of the pages it read, beside the kernel's cache of the file: at the default,
    /// SQLite's own, the pool's caches were about 10 MiB of the service's peak RSS in the
    /// load benchmark; at 1,024 that peak was 3-5 MiB lower, and company-user tokens 7-14%
    /// slower.
    #[arg(long, env = "GLUE_AUTH_SQLITE_CACHE_KIB", default_value_t = SQLITE_CACHE_KIB, global = true)]
    pub sqlite_cache_kib: u32,

    /// Seconds to wait for a database connection before answering 503.
    #[arg(long, env = "GLUE_AUTH_DATABASE_TIMEOUT", default_value_t = 5, global = true)]
    pub database_timeout: u64,

    /// Public base URL used in `links` (e.g. `https://glue.example.com`).
    /// Default: `http://` followed by the request's `Host` header.
    #[arg(long, env = "GLUE_AUTH_PUBLIC_BASE_URL", global = true)]
    pub public_base_url: Option<String>,

    /// Lifetime of access tokens, in seconds (`expiresIn`).
    #[arg(long, env = "GLUE_AUTH_ACCESS_TOKEN_TTL", default_value_t = 28_800, global = true)]
    pub access_token_ttl: u64,

    /// Verified access tokens remembered, so a reused token skips the signature check
    /// (about 200 bytes each; an entry never outlives its token; 0 turns the cache off).
    #[arg(long, env = "GLUE_AUTH_ACCESS_TOKEN_CACHE", default_value_t = 100_000, global = true)]
    pub access_token_cache: usize,

    /// Customers whose usable memberships are remembered for `GET /company-users/mine`
    /// (about 150 bytes each plus 300 per membership, its answer included; 0 turns the
    /// cache off).
    #[arg(long, env = "GLUE_AUTH_MEMBERSHIP_CACHE", default_value_t = 50_000, global = true)]
    pub membership_cache: usize,

    /// How far, in milliseconds, `GET /company-users/mine` may lag behind a change of the
    /// directory made by anyone: the directory's version is read every half of this, and
    /// remembered memberships are served only within it of the last read (0: no cache).
    #[arg(
        long,
        env = "GLUE_AUTH_MEMBERSHIP_CACHE_MAX_AGE_MS",
        default_value_t = 250,
        global = true
    )]
    pub membership_cache_max_age_ms: u64,

    /// Lifetime of refresh tokens, in seconds.
    #[arg(long, env = "GLUE_AUTH_REFRESH_TOKEN_TTL", default_value_t = 2_592_000, global = true)]
    pub refresh_token_ttl: u64,

    /// The `iss` claim of issued tokens, and the only issuer accepted.
    #[arg(long, env = "GLUE_AUTH_ISSUER", default_value = "glue-auth", global = true)]
    pub issuer: String,

    /// The client id: the `aud` claim of issued tokens, and the only audience accepted.
    #[arg(long, env = "GLUE_AUTH_AUDIENCE", default_value = "frontend", global = true)]
    pub audience: String,

    /// PEM private key files (ES256, RS256 or EdDSA). The first signs, all verify.
    /// Repeat the option, or separate with commas in the environment. Default: an ES256 key
    /// generated in the data directory on first start.
    #[arg(
        long = "signing-key",
        env = "GLUE_AUTH_SIGNING_KEYS",
        value_delimiter = ',',
        global = true
    )]
    pub signing_keys: Vec<PathBuf>,

    /// Login attempts, per e-mail and per client address, within the window: an attempt is
    /// counted before its password is checked, a successful one is not kept; reaching the
    /// limit blocks further attempts.
    #[arg(long, env = "GLUE_AUTH_LOGIN_BLOCK_ATTEMPTS", default_value_t = 10, value_parser = clap::value_parser!(i32).range(1..), global = true)]
    pub login_block_attempts: i32,

    /// Seconds within which the failed logins are counted.
    #[arg(long, env = "GLUE_AUTH_LOGIN_BLOCK_WINDOW", default_value_t = 600, global = true)]
    pub login_block_window: i64,

    /// Seconds an e-mail or address stays blocked (429) once the limit is reached.
    #[arg(long, env = "GLUE_AUTH_LOGIN_BLOCK_DURATION", default_value_t = 300, global = true)]
    pub login_block_duration: i64,

    /// The fewest characters a new password may have (docs/wire-contract.md §3.9): in a
    /// password change or restore, the admin verbs and the import. Length is the only rule.
    #[arg(long, env = "GLUE_AUTH_PASSWORD_MIN_LENGTH", default_value_t = 12, value_parser = clap::value_parser!(u64).range(1..=1024), global = true)]
    pub password_min_length: u64,

    /// The most characters a new password may have.
    #[arg(long, env = "GLUE_AUTH_PASSWORD_MAX_LENGTH", default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..=4096), global = true)]
    pub password_max_length: u64,

    /// The SMTP server that delivers password-restore mail, e.g.
    /// `smtp://user:secret@mail.example:587?tls=required` (STARTTLS),
    /// `smtps://user:secret@mail.example` (TLS) or `smtp://127.0.0.1:25` (plain). Without
    /// it, each message is written as an `.eml` file into `<data-dir>/outbox/`.
    #[arg(long, env = "GLUE_AUTH_SMTP_URL", global = true)]
    pub smtp_url: Option<String>,

    /// The sender of the service's mail.
    #[arg(
        long,
        env = "GLUE_AUTH_MAIL_FROM",
        default_value = "Shop <no-reply@localhost>",
        global = true
    )]
    pub mail_from: String,

    /// The link a password-restore mail carries: `{key}` is replaced by the restore key,
    /// which the shop's page sends to `PATCH /customer-restore-password`.
    #[arg(
        long,
        env = "GLUE_AUTH_PASSWORD_RESET_URL",
        default_value = "http://localhost:8000/password/restore/{key}",
        global = true
    )]
    pub password_reset_url: String,

    /// Seconds a restore key works; a new one replaces the old at once.
    #[arg(long, env = "GLUE_AUTH_PASSWORD_RESET_TTL", default_value_t = 3_600, value_parser = clap::value_parser!(i64).range(60..), global = true)]
    pub password_reset_ttl: i64,

    /// `POST /customer-forgotten-password` requests per e-mail and per client address within
    /// `--password-reset-window`; more get 429 until the window has passed.
    #[arg(long, env = "GLUE_AUTH_PASSWORD_RESET_REQUESTS", default_value_t = 5, value_parser = clap::value_parser!(i32).range(1..), global = true)]
    pub password_reset_requests: i32,

    /// Seconds within which password-reset requests are counted.
    #[arg(long, env = "GLUE_AUTH_PASSWORD_RESET_WINDOW", default_value_t = 3_600, value_parser = clap::value_parser!(i64).range(1..), global = true)]
    pub password_reset_window: i64,

    /// Password checks one client address may have waiting at once; one more gets 429 with
    /// `Retry-After`. Clients take turns, one check each.
    #[arg(long, env = "GLUE_AUTH_LOGIN_QUEUE_PER_ADDRESS", default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub login_queue_per_address: u64,

    /// Password checks all clients may have waiting at once. When full, a newcomer takes the
    /// place of the newest check of the client holding the most places, if it holds more
    /// than the newcomer; otherwise it gets 503 with `Retry-After`.
    #[arg(long, env = "GLUE_AUTH_LOGIN_QUEUE", default_value_t = 1_024, value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub login_queue: u64,

    /// Origins whose pages may call the service from a browser (CORS), e.g.
    /// `https://shop.example`; `*` stands for any characters (`http://localhost:*`). Repeat
    /// the option, or separate with commas in the environment. Default: none (`demo`:
    /// `http://localhost:*` and `http://127.0.0.1:*`).
    #[arg(
        long = "cors-allow-origin",
        env = "GLUE_AUTH_CORS_ALLOW_ORIGINS",
        value_delimiter = ',',
        global = true
    )]
    pub cors_allow_origins: Vec<String>,

    /// Proxies (CIDR networks or addresses) whose forwarding header names the client: the
    /// client is then the right-most entry that is not a trusted proxy. Repeat the option,
    /// or separate with commas in the environment. Default: none, the peer is the client.
    #[arg(
        long = "trusted-proxy",
        env = "GLUE_AUTH_TRUSTED_PROXIES",
        value_delimiter = ',',
        global = true
    )]
    pub trusted_proxies: Vec<ProxyNet>,

    /// The header in which trusted proxies name the client.
    #[arg(long, env = "GLUE_AUTH_FORWARDED_HEADER", value_enum, default_value_t = ForwardedHeader::XForwardedFor, global = true)]
    pub forwarded_header: ForwardedHeader,

    /// Sessions (logins and company-user authentications, each with its refresh tokens) one
    /// customer keeps: starting one more revokes the customer's oldest. Counted by each
    /// instance since its start. 0: no bound.
    #[arg(long, env = "GLUE_AUTH_MAX_SESSIONS_PER_CUSTOMER", default_value_t = 100, global = true)]
    pub max_sessions_per_customer: u64,

    /// Seconds after its rotation within which a refresh token presented again is refused
    /// (401/004) without revoking its family: a request sent twice, or two tabs refreshing
    /// at once. Later, a reuse revokes the family. 0: every reuse revokes it.
    #[arg(long, env = "GLUE_AUTH_REFRESH_REUSE_GRACE", default_value_t = 10, global = true)]
    pub refresh_reuse_grace: u64,

    /// Seconds between purges of expired refresh tokens and spent login counters while
    /// serving; 0 turns it off
    /// (`glue-auth purge-tokens` purges on demand).
    #[arg(long, env = "GLUE_AUTH_PURGE_INTERVAL", default_value_t = 3600, global = true)]
    pub purge_interval: u64,

    /// Largest request body accepted, in bytes; larger bodies get 413.
    #[arg(long, env = "GLUE_AUTH_BODY_LIMIT", default_value_t = 65_536, global = true)]
    pub body_limit: usize,

    /// Most bytes of request headers (names, values and their separators); more gets 431.
    /// Beyond about 400 KiB the HTTP parser itself refuses the request with a bare 431.
    #[arg(long, env = "GLUE_AUTH_HEADER_LIMIT", default_value_t = 32_768, global = true)]
    pub header_limit: usize,

    /// Seconds a request may take, reading its body included; then it gets 408 and the
    /// connection is closed.
    #[arg(long, env = "GLUE_AUTH_REQUEST_TIMEOUT", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub request_timeout: u64,

    /// Seconds a client may take to send a request's headers, from the connection's start or
    /// the first byte of a request; then the connection gets 408 and is closed.
    #[arg(long, env = "GLUE_AUTH_HEADER_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub header_timeout: u64,

    /// Most connections open at once from one client address (an IPv6 /64 counts as one; a
    /// trusted proxy has no such limit); one more gets a 503 envelope and is closed.
    #[arg(long, env = "GLUE_AUTH_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub max_connections_per_address: u64,

    /// Most client connections open at once; one more gets a 503 envelope and is closed.
    #[arg(long, env = "GLUE_AUTH_MAX_CONNECTIONS", default_value_t = 4_096, value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub max_connections: u64,

    /// Seconds an idle keep-alive connection stays open.
    #[arg(long, env = "GLUE_AUTH_IDLE_TIMEOUT", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub idle_timeout: u64,

    /// Most items a collection returns per page: without `page[limit]`, and the cap of a
    /// larger `page[limit]`.
    #[arg(long, env = "GLUE_AUTH_PAGE_LIMIT", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub page_limit: u64,

    /// Log line format.
    #[arg(long, env = "GLUE_AUTH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// Log filter in `tracing` syntax, e.g. `info` or `glue_auth=debug,sqlx=warn`.
    #[arg(long, env = "GLUE_AUTH_LOG", default_value = "info", global = true)]
    pub log: String,
}

impl Config {
    /// The proxies whose forwarding header is believed.
    pub fn trusted_proxies(&self) -> TrustedProxies {
        TrustedProxies::new(self.trusted_proxies.clone(), self.forwarded_header)
    }

    /// The database URL to use, with `default_file` in the data directory when none is set.
    pub fn database_url_or(&self, default_file: &str) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}?mode=rwc", self.data_dir.join(default_file).display()),
        }
    }
}

/// SQLite's own default page cache per connection, KiB (`--sqlite-cache-kib`).
pub const SQLITE_CACHE_KIB: u32 = 2_000;

/// The CPUs this process may use (1 when the system cannot tell): the defaults that scale
/// with the machine (password-check threads, SQLite's pool) read it here.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}
