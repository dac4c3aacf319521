//! The command line: `USAGE`, what it parses into (`Options`), the databases and scenarios
//! it names, and where results go by default (`target_dir`).

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::{Result, SERVICE_BIN};

pub const USAGE: &str = "\
cargo bench --bench load -- [options]

  --customers N          customers (each with one company user) in the dataset [10000]
  --duration S           seconds of load per scenario and connection count [10]
  --connections LIST     wrk connection counts, comma-separated [32,256]
  --db sqlite|postgres|both                                          [both]
  --scenarios LIST       of refresh-tokens, company-user-access-tokens,
                         company-users-mine, access-tokens, token, combined,
                         login-under-attack                            [all]
  --scale                after the normal pass, run a scale pass with
                         --scale-customers customers and --scale-refresh-tokens
                         refresh tokens in the database, and compare
  --scale-customers N    [100000]
  --scale-refresh-tokens N                                           [1000000]
  --wrk-threads N        wrk threads [the number of CPUs]
  --service-arg ARG      pass ARG to `glue-auth serve` (repeatable), e.g.
                         --service-arg=--database-max-connections=32
  --perf                 record a CPU profile of the service (perf) during each
                         scenario run; flat reports go to <target>/bench/perf/
  --perf-call-graph      the same with DWARF call graphs: build with debug info,
                         CARGO_PROFILE_BENCH_DEBUG=line-tables-only cargo bench ...
  --spryker-import       instead of the load scenarios: time `glue-auth
                         import-spryker` of a shop of --import-customers
                         customers from a throwaway MariaDB into --db, against
                         its read and write ceilings (needs mariadb-server)
  --import-customers N                                               [1000000]
  --output FILE          [<target>/bench/results.json; with --spryker-import,
                         <target>/bench/spryker-import.json]
  --help

Needs wrk (Debian: apt-get install wrk), except for --spryker-import. PostgreSQL runs
from the server binaries in $PG_BIN, on PATH, or in /usr/lib/postgresql/*/bin (Debian:
apt-get install postgresql); without them the PostgreSQL part is skipped with a message.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DbKind {
    Sqlite,
    Postgres,
}

impl DbKind {
    pub fn label(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scenario {
    RefreshTokens,
    CompanyUserAccessTokens,
    CompanyUsersMine,
    AccessTokens,
    /// The same logins through the OAuth form endpoint (`grant_type=password`).
    TokenLogins,
}

impl Scenario {
    /// The order they run in: refresh first, while the refresh-token table is smallest.
    pub const ALL: [Self; 5] = [
        Self::RefreshTokens,
        Self::CompanyUserAccessTokens,
        Self::CompanyUsersMine,
        Self::AccessTokens,
        Self::TokenLogins,
    ];

    /// Logins: each request is one Argon2 verify, measured against the Argon2 bound.
    pub fn is_login(self) -> bool {
        matches!(self, Self::AccessTokens | Self::TokenLogins)
    }

    pub fn lua(self) -> &'static str {
        match self {
            Self::RefreshTokens => "refresh",
            Self::CompanyUserAccessTokens => "cuat",
            Self::CompanyUsersMine => "mine",
            Self::AccessTokens => "login",
            Self::TokenLogins => "token",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::RefreshTokens => "POST /refresh-tokens",
            Self::CompanyUserAccessTokens => "POST /company-user-access-tokens",
            Self::CompanyUsersMine => "GET /company-users/mine",
            Self::AccessTokens => "POST /access-tokens",
            Self::TokenLogins => "POST /token (password)",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::RefreshTokens => "refresh-tokens",
            Self::CompanyUserAccessTokens => "company-user-access-tokens",
            Self::CompanyUsersMine => "company-users-mine",
            Self::AccessTokens => "access-tokens",
            Self::TokenLogins => "token",
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Self::RefreshTokens => "/refresh-tokens",
            Self::CompanyUserAccessTokens => "/company-user-access-tokens",
            Self::CompanyUsersMine => "/company-users/mine",
            Self::AccessTokens => "/access-tokens",
            Self::TokenLogins => "/token",
        }
    }

    pub fn expected_status(self) -> u16 {
        match self {
            Self::CompanyUsersMine | Self::TokenLogins => 200,
            _ => 201,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub customers: usize,
    pub duration: u64,
    pub connections: Vec<u32>,
    pub databases: Vec<DbKind>,
    pub scenarios: Vec<Scenario>,
    pub combined: bool,
    /// The "login under attack" run (`attack`).
    pub attack: bool,
    pub scale: bool,
    pub scale_customers: usize,
    pub scale_refresh_tokens: usize,
    pub wrk_threads: u32,
    pub perf: bool,
    pub perf_call_graph: bool,
    pub service_args: Vec<String>,
    /// `--spryker-import`: the import benchmark instead of the load scenarios.
    pub spryker_import: bool,
    pub import_customers: usize,
    pub output: PathBuf,
}

pub fn target_dir() -> PathBuf {
    // <target>/<profile>/glue-auth
    Path::new(SERVICE_BIN)
        .parent()
        .and_then(Path::parent)
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf)
}

pub fn cpus() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(1))
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let mut opts = Self {
            customers: 10_000,
            duration: 10,
            connections: vec![32, 256],
            databases: vec![DbKind::Sqlite, DbKind::Postgres],
            scenarios: Scenario::ALL.to_vec(),
            combined: true,
            attack: true,
            scale: false,
            scale_customers: 100_000,
            scale_refresh_tokens: 1_000_000,
            wrk_threads: cpus(),
            perf: false,
            perf_call_graph: false,
            service_args: Vec::new(),
            spryker_import: false,
            import_customers: 1_000_000,
            output: target_dir().join("bench").join("results.json"),
        };
        let mut output_given = false;
        let mut it = args.iter().filter(|a| *a != "--bench");
        while let Some(arg) = it.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (arg.as_str(), None),
            };
            let mut value = || -> Result<String, String> {
                inline
                    .clone()
                    .or_else(|| it.next().cloned())
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            let number = |v: String| -> Result<usize, String> {
                v.replace('_', "").parse().map_err(|_| format!("{name}: `{v}` is not a number"))
            };
            match name {
                "--help" | "-h" => return Err(String::new()),
                "--customers" => opts.customers = number(value()?)?.max(1),
                "--duration" => opts.duration = number(value()?)?.max(1) as u64,
                "--connections" => {
                    opts.connections = value()?
                        .split(',')
                        .map(|c| {
                            c.trim().parse::<u32>().map_err(|_| format!("--connections: `{c}`"))
                        })
                        .collect::<Result<_, _>>()?;
                    if opts.connections.is_empty() || opts.connections.contains(&0) {
                        return Err("--connections: give positive numbers".into());
                    }
                }
                "--db" => {
                    opts.databases = match value()?.as_str() {
                        "sqlite" => vec![DbKind::Sqlite],
                        "postgres" | "postgresql" => vec![DbKind::Postgres],
                        "both" => vec![DbKind::Sqlite, DbKind::Postgres],
                        other => {
                            return Err(format!("--db: `{other}` is not sqlite, postgres or both"));
                        }
                    }
                }
                "--scenarios" => {
                    let list = value()?;
                    opts.scenarios.clear();
                    opts.combined = false;
                    opts.attack = false;
                    for item in list.split(',').map(str::trim) {
                        if item == "combined" {
                            opts.combined = true;
                            continue;
                        }
                        if item == "login-under-attack" {
                            opts.attack = true;
                            continue;
                        }
                        let found = Scenario::ALL
                            .into_iter()
                            .find(|s| s.name() == item || s.lua() == item)
                            .ok_or_else(|| format!("--scenarios: unknown scenario `{item}`"))?;
                        opts.scenarios.push(found);
                    }
                    opts.scenarios.sort();
                    opts.scenarios.dedup();
                }
                "--scale" => opts.scale = true,
                "--perf" => opts.perf = true,
                "--perf-call-graph" => {
                    opts.perf = true;
                    opts.perf_call_graph = true;
                }
                "--service-arg" => opts.service_args.push(value()?),
                "--scale-customers" => opts.scale_customers = number(value()?)?.max(1),
                "--scale-refresh-tokens" => opts.scale_refresh_tokens = number(value()?)?,
                "--wrk-threads" => {
                    opts.wrk_threads = u32::try_from(number(value()?)?.max(1)).unwrap_or(1);
                }
                "--spryker-import" => opts.spryker_import = true,
                "--import-customers" => opts.import_customers = number(value()?)?.max(1),
                "--output" => {
                    opts.output = PathBuf::from(value()?);
                    output_given = true;
                }
                other => return Err(format!("unknown option `{other}`")),
            }
        }
        if opts.spryker_import && !output_given {
            opts.output = target_dir().join("bench").join("spryker-import.json");
        }
        Ok(opts)
    }
}
