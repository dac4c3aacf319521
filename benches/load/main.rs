//! The load benchmark (docs/benchmarks.md): `cargo bench --bench load -- [options]` (`--help` lists
//! them; `docs/benchmarks.md` explains the output).
//!
//! What one run does, by itself, all on 127.0.0.1:
//! 1. Times Argon2id verifies in-process (the bound of `POST /access-tokens` is cores ÷ the
//!    fastest one's time), and again just before each login run, which is set against that.
//! 2. Measures the ceilings with a tiny poem server in this process: (a) a ~1 KB static JSON
//!    document, (b) the same plus one ES256 verify and one ES256 sign per request, and
//!    (c) one ES256 sign per request (the refresh work without its database).
//! 3. For SQLite (a temporary file) and PostgreSQL (a throwaway cluster in a temporary
//!    directory), loads a dataset with `glue-auth import` (N customers, each with one company
//!    user in a handful of approved, active companies; one precomputed Argon2id hash for
//!    all), starts the release binary with `serve`, measures start to ready, and drives each
//!    scenario with `wrk` for a fixed duration at each connection count: `POST
//!    /refresh-tokens` (each token used once), `POST /company-user-access-tokens`, `GET
//!    /company-users/mine`, `POST /access-tokens`, then logins together with a paced side load
//!    of the other endpoints (their p99 while Argon2 saturates the CPU).
//! 4. With `--scale`, does step 3 again with 100,000 customers and 1,000,000 refresh tokens
//!    bulk-inserted into the database, and compares.
//! 5. Prints tables and writes every figure to `<target>/bench/results.json`.
//!
//! Anything it starts (the service, PostgreSQL) is stopped at the end, also after an error;
//! a watchdog process removes what is left if the benchmark itself is killed.

mod attack;
mod ceilings;
mod database;
mod options;
mod report;
mod scenarios;
mod service;
mod spryker;
mod wrk;

use std::{
    path::Path,
    process::{Command, ExitCode},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde_json::json;

use ceilings::{measure_argon2, run_ceilings};
use database::PgCluster;
use options::{DbKind, Options, USAGE, cpus};
use report::print_rows;
use scenarios::{Pass, RunSetup};
use service::WorkDir;

/// The service's allocator (see `src/main.rs`), so that the ceilings served from this
/// process run on the same stack.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Result<T, E = BoxError> = std::result::Result<T, E>;

/// The release binary under test, built by `cargo bench` with the bench profile.
const SERVICE_BIN: &str = env!("CARGO_BIN_EXE_glue-auth");

/// Every customer's password (one Argon2id hash, computed once, for all of them).
const PASSWORD: &str = "bench-password-2026";
const ISSUER: &str = "glue-auth";
const AUDIENCE: &str = "frontend";
const ACCESS_TTL: u64 = 28_800;
const REFRESH_TTL: i64 = 2_592_000;
const MEDIA: &str = "application/vnd.api+json";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes --bench; `cargo test --benches` does not: then do nothing.
    if !args.iter().any(|a| a == "--bench") {
        println!(
            "benches/load/main.rs is a load benchmark: run it with `cargo bench --bench load`"
        );
        return ExitCode::SUCCESS;
    }
    let opts = match Options::parse(&args) {
        Ok(opts) => opts,
        Err(message) if message.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\nbenchmark failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(opts: &Options) -> Result<()> {
    if opts.spryker_import {
        return run_spryker_import(opts);
    }
    let wrk_version = preflight()?;
    if opts.perf {
        Command::new("perf")
            .arg("--version")
            .output()
            .map_err(|e| format!("--perf needs perf ({e}); Debian: apt-get install linux-perf"))?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let work = WorkDir::create()?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(0)
        .build()?;
    let started = SystemTime::now();
    let machine = json!({
        "cpus": cpus(),
        "wrk": wrk_version,
        "git": git_describe(),
        "service_binary": SERVICE_BIN,
        "started_unix": unix_now(),
    });
    println!(
        "glue-auth load benchmark: {} CPUs, {wrk_version}, {} s per run, connections {:?}",
        cpus(),
        opts.duration,
        opts.connections
    );

    let argon = measure_argon2()?;
    println!(
        "Argon2id verify: {:.1} ms in-process (fastest of {}; median {:.1} ms) => bound for POST /access-tokens: {} CPUs / {:.1} ms = {:.1} logins/s",
        argon.verify_ms,
        argon.samples_ms.len(),
        argon.samples_ms.get(argon.samples_ms.len() / 2).copied().unwrap_or(f64::NAN),
        cpus(),
        argon.verify_ms,
        argon.bound_rps
    );
    println!(
        "Argon2id with one verify on each of the {} CPUs at once: {:.1} logins/s in-process ({:.1} ms a verify; for comparison, not the target's bound)",
        cpus(),
        argon.all_cpus_rps,
        f64::from(cpus()) * 1000.0 / argon.all_cpus_rps,
    );

    println!("\nceilings (a tiny poem server in this process, same HTTP stack, no database):");
    let ceilings = run_ceilings(&runtime, opts, &work)?;
    print_rows(&ceilings.rows);

    let mut passes =
        vec![Pass { name: "base", customers: opts.customers, filler_refresh_tokens: 0 }];
    if opts.scale {
        passes.push(Pass {
            name: "scale",
            customers: opts.scale_customers,
            filler_refresh_tokens: opts.scale_refresh_tokens,
        });
    }

    let mut postgres: Option<Result<PgCluster, String>> = None;
    let mut runs = Vec::new();
    let mut skipped = Vec::new();
    let mut failures = Vec::new();
    for pass in &passes {
        for &db in &opts.databases {
            let (url, postmaster) = match db {
                DbKind::Sqlite => (database::sqlite_url(&work, pass.name), None),
                DbKind::Postgres => {
                    let cluster = postgres.get_or_insert_with(|| PgCluster::start(&work));
                    match cluster {
                        Ok(cluster) => (
                            runtime.block_on(
                                cluster.create_database(&format!("bench_{}", pass.name)),
                            )?,
                            Some(cluster.pid()),
                        ),
                        Err(why) => {
                            let message = format!("PostgreSQL skipped: {why}");
                            println!("\n{message}");
                            skipped.push(
                                json!({"pass": pass.name, "database": "PostgreSQL", "reason": why}),
                            );
                            continue;
                        }
                    }
                }
            };
            let setup = RunSetup {
                runtime: &runtime,
                client: &client,
                opts,
                work: &work,
                pass,
                db,
                url,
                postmaster,
                ceilings: &ceilings,
                argon: &argon,
            };
            // A failure of one database run is reported and the others still run.
            match setup.run() {
                Ok(run) => runs.push(run),
                Err(e) => {
                    println!("\n{} FAILED: {e}", setup.label());
                    failures.push(format!("{}: {e}", setup.label()));
                    skipped.push(
                        json!({"pass": pass.name, "database": db.label(), "failed": e.to_string()}),
                    );
                }
            }
        }
    }
    drop(postgres);

    let (scale, targets) = report::print_summary(&runs);

    let results = json!({
        "machine": machine,
        "options": {
            "customers": opts.customers,
            "duration_s": opts.duration,
            "connections": opts.connections,
            "wrk_threads": opts.wrk_threads,
            "service_args": opts.service_args,
            "scale": opts.scale,
            "scale_customers": opts.scale_customers,
            "scale_refresh_tokens": opts.scale_refresh_tokens,
        },
        "argon2": argon,
        "ceilings": ceilings.rows,
        "runs": runs,
        "skipped": skipped,
        "scale_comparison": scale,
        "targets": targets,
        "elapsed_s": started.elapsed().map(|d| d.as_secs_f64()).unwrap_or_default(),
    });
    report::write_results(&opts.output, &results)?;
    if failures.is_empty() { Ok(()) } else { Err(failures.join("\n").into()) }
}

/// `--spryker-import`: the import benchmark alone (`spryker.rs`), into results.json.
fn run_spryker_import(opts: &Options) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let work = WorkDir::create()?;
    let started = SystemTime::now();
    println!(
        "glue-auth import benchmark: {} CPUs, {} customers, git {}",
        cpus(),
        opts.import_customers,
        git_describe().unwrap_or_default()
    );
    let import = spryker::run(&runtime, opts, &work)?;
    let results = json!({
        "machine": {"cpus": cpus(), "git": git_describe(), "started_unix": unix_now()},
        "spryker_import": import,
        "elapsed_s": started.elapsed().map(|d| d.as_secs_f64()).unwrap_or_default(),
    });
    report::write_results(&opts.output, &results)
}

/// Checks the tools: wrk and the binary under test.
fn preflight() -> Result<String> {
    let out = Command::new("wrk").arg("--version").output().map_err(|e| {
        format!(
            "wrk is not installed or not on PATH ({e}). The benchmark drives the load with \
             wrk: install it (Debian/Ubuntu: `apt-get install wrk`) and run again."
        )
    })?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let version = text.lines().next().unwrap_or("wrk").split(" Copyright").next().unwrap_or("wrk");
    if !Path::new(SERVICE_BIN).is_file() {
        return Err(format!(
            "the service binary {SERVICE_BIN} is missing: run through `cargo bench`"
        )
        .into());
    }
    Ok(version.trim().to_owned())
}

fn git_describe() -> Option<String> {
    let rev = Command::new("git").args(["rev-parse", "--short", "HEAD"]).output().ok()?;
    if !rev.status.success() {
        return None;
    }
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .is_ok_and(|o| !o.stdout.is_empty());
    Some(format!(
        "{}{}",
        String::from_utf8_lossy(&rev.stdout).trim(),
        if dirty { "+changes" } else { "" }
    ))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}
