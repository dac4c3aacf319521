//! What a run reports: the rows of the tables and of results.json, how they print, the scale
//! pass against the base pass, the targets of `docs/benchmarks.md` §2, and results.json.

use std::{fs, path::Path};

use serde::Serialize;
use serde_json::Value;

use crate::{
    Result, attack,
    ceilings::{ARGON2_BOUND, Argon, CEILING_STORE, STORE_CEILING_LABEL},
    options::{DbKind, Scenario},
    scenarios::{DbRun, SIDE_P99_TARGET_MS},
    service::CpuSplit,
    wrk::{WrkErrors, WrkFigures},
};

#[derive(Debug, Clone, Default, Serialize)]
pub struct Row {
    pub scenario: String,
    pub connections: u32,
    pub requests_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub requests: u64,
    /// Non-2xx/3xx answers (wrk counts status > 399) plus socket errors and timeouts.
    pub errors: u64,
    pub error_detail: WrkErrors,
    /// The service's VmHWM over this run (the peak is reset before it starts).
    pub peak_rss_kib: Option<u64>,
    pub ceiling: Option<String>,
    pub ceiling_requests_per_s: Option<f64>,
    pub fraction_of_ceiling: Option<f64>,
    /// Refresh tokens: against the sign-only ceiling (c) too, as its target is worded
    /// (docs/benchmarks.md §2).
    pub fraction_of_sign_ceiling: Option<f64>,
    /// Refresh tokens: against ceiling (d), the token store alone, measured just before.
    pub fraction_of_store_ceiling: Option<f64>,
    /// Logins: against Argon2 with one verify on every CPU at once (`Argon::all_cpus_rps`).
    pub fraction_of_all_cpus_argon2: Option<f64>,
    /// Logins: the verify time (fastest of 15, timed just before the run) behind the bound.
    pub argon2_verify_ms: Option<f64>,
    pub refresh_tokens_in_db: Option<u64>,
    /// Single-use pools: how many items were used; whether a wrk thread ran out.
    pub pool_size: Option<u64>,
    pub pool_used: Option<u64>,
    pub pool_exhausted: bool,
    /// CPU time the service used during the run, in % of one CPU (200% = both of 2 CPUs):
    /// well under the CPU count means it was waiting (database, locks), not computing.
    pub service_cpu_percent: Option<f64>,
    /// Where the machine's CPU time went during the run (`cpu_of` names the subject).
    pub cpu: Option<CpuSplit>,
    pub cpu_of: &'static str,
    /// With `--perf`: the flat profile of the service during this run.
    pub profile: Option<String>,
    /// Seconds the service kept working after wrk stopped (requests it had accepted and
    /// still computed: e.g. queued Argon2 verifies of logins whose clients were gone).
    pub busy_after_load_s: Option<f64>,
    pub note: Option<String>,
}

impl Row {
    pub fn from_figures(scenario: impl Into<String>, connections: u32, f: &WrkFigures) -> Self {
        Self {
            scenario: scenario.into(),
            connections,
            requests_per_s: f.rps(),
            p50_ms: f.latency_us.p50 / 1000.0,
            p99_ms: f.latency_us.p99 / 1000.0,
            p999_ms: f.latency_us.p999 / 1000.0,
            max_ms: f.latency_us.max / 1000.0,
            requests: f.requests,
            errors: f.errors.total(),
            error_detail: f.errors.clone(),
            ..Self::default()
        }
    }

    pub fn against(mut self, name: &str, rps: Option<f64>) -> Self {
        self.ceiling = Some(name.to_owned());
        self.ceiling_requests_per_s = rps;
        self.fraction_of_ceiling = rps.filter(|r| *r > 0.0).map(|r| self.requests_per_s / r);
        self
    }

    /// Logins: against the Argon2 bound, and beside it Argon2 on all CPUs at once.
    pub fn against_argon2(mut self, argon: &Argon) -> Self {
        self.argon2_verify_ms = Some(argon.verify_ms);
        self.fraction_of_all_cpus_argon2 =
            Some(argon.all_cpus_rps).filter(|r| *r > 0.0).map(|r| self.requests_per_s / r);
        self.against(ARGON2_BOUND, Some(argon.bound_rps))
    }
}

pub const SCENARIO_WIDTH: usize = 44;

pub fn print_header() {
    println!(
        "  {:<SCENARIO_WIDTH$} {:>5} {:>9} {:>8} {:>8} {:>8} {:>7} {:>9} {:>5}  {:<16} notes",
        "scenario",
        "conns",
        "req/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "errors",
        "peak RSS",
        "CPU%",
        "of ceiling",
    );
}

pub fn print_row(r: &Row) {
    let rss =
        r.peak_rss_kib.map_or_else(|| "-".to_owned(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
    let share = match (&r.ceiling, r.fraction_of_ceiling) {
        (Some(name), Some(f)) => format!("{:>5.1}% of {name}", f * 100.0),
        _ => String::new(),
    };
    let mut notes = Vec::new();
    if r.requests == 0 {
        notes.push("NO REQUEST COMPLETED during the run".to_owned());
    }
    if let Some(f) = r.fraction_of_sign_ceiling {
        notes.push(format!("{:.1}% of (c)", f * 100.0));
    }
    if let Some(f) = r.fraction_of_store_ceiling {
        notes.push(format!("{:.1}% of {CEILING_STORE}", f * 100.0));
    }
    if let Some(ms) = r.argon2_verify_ms {
        notes.push(format!("bound from verifies timed just before: {ms:.1} ms"));
    }
    if let Some(f) = r.fraction_of_all_cpus_argon2 {
        notes.push(format!("{:.1}% of argon2 on all CPUs at once", f * 100.0));
    }
    if let Some(n) = r.refresh_tokens_in_db {
        notes.push(format!("{n} refresh tokens in db"));
    }
    if r.pool_exhausted {
        notes.push("POOL RAN OUT: a wrk thread stopped early, req/s is low".into());
    }
    if r.errors > 0 {
        let e = &r.error_detail;
        notes.push(format!(
            "errors: status {} connect {} read {} write {} timeout {}",
            e.status, e.connect, e.read, e.write, e.timeout
        ));
    }
    if let Some(busy) = r.busy_after_load_s.filter(|b| *b >= 0.5) {
        notes.push(format!("service still busy {busy:.1} s after the load stopped"));
    }
    notes.extend(r.cpu.map(|c| c.describe(r.cpu_of)));
    notes.extend(r.note.iter().cloned());
    println!(
        "  {:<SCENARIO_WIDTH$} {:>5} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>7} {:>9} {:>5}  {:<16} {}",
        r.scenario,
        r.connections,
        r.requests_per_s,
        r.p50_ms,
        r.p99_ms,
        r.p999_ms,
        r.errors,
        rss,
        r.service_cpu_percent.map_or_else(|| "-".to_owned(), |c| format!("{c:.0}")),
        share,
        notes.join("; ")
    );
}

pub fn print_rows(rows: &[Row]) {
    print_header();
    for r in rows {
        print_row(r);
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ScaleRatio {
    database: &'static str,
    scenario: String,
    connections: u32,
    base_rps: f64,
    scale_rps: f64,
    ratio: f64,
}

fn scale_comparison(runs: &[DbRun]) -> Vec<ScaleRatio> {
    let mut out = Vec::new();
    for scale in runs.iter().filter(|r| r.pass == "scale") {
        let Some(base) = runs.iter().find(|r| r.pass == "base" && r.database == scale.database)
        else {
            continue;
        };
        for row in &scale.rows {
            if let Some(b) = base
                .rows
                .iter()
                .find(|b| b.scenario == row.scenario && b.connections == row.connections)
                && b.requests_per_s > 0.0
            {
                out.push(ScaleRatio {
                    database: scale.database.label(),
                    scenario: row.scenario.clone(),
                    connections: row.connections,
                    base_rps: b.requests_per_s,
                    scale_rps: row.requests_per_s,
                    ratio: row.requests_per_s / b.requests_per_s,
                });
            }
        }
    }
    out
}

#[derive(Debug, Clone, Serialize)]
pub struct Target {
    target: String,
    measured: String,
    met: bool,
}

fn targets(runs: &[DbRun], scale: &[ScaleRatio]) -> Vec<Target> {
    let mut out = Vec::new();
    let pct = |f: Option<f64>| f.map_or_else(|| "-".to_owned(), |f| format!("{:.1}%", f * 100.0));
    for run in runs.iter().filter(|r| r.pass == "base") {
        let db = run.database.label();
        let find = |s: Scenario| run.rows.iter().filter(move |r| r.scenario == s.label());
        let (cuat_share, cuat_p99) = match run.database {
            DbKind::Sqlite => (0.75, Some(20.0)),
            DbKind::Postgres => (0.50, None),
        };
        for r in find(Scenario::CompanyUserAccessTokens) {
            let share_ok = r.fraction_of_ceiling.is_some_and(|f| f >= cuat_share);
            let p99_ok = r.connections != 32 || cuat_p99.is_none_or(|p| r.p99_ms <= p);
            out.push(Target {
                target: format!(
                    "{db}: POST /company-user-access-tokens ≥ {:.0}% of verify+sign{} ({} conns)",
                    cuat_share * 100.0,
                    if r.connections == 32 && cuat_p99.is_some() { ", p99 ≤ 20 ms" } else { "" },
                    r.connections
                ),
                measured: format!(
                    "{} ({:.0}/s), p99 {:.1} ms",
                    pct(r.fraction_of_ceiling),
                    r.requests_per_s,
                    r.p99_ms
                ),
                met: share_ok && p99_ok && r.errors == 0,
            });
        }
        if run.database == DbKind::Sqlite {
            for r in find(Scenario::RefreshTokens) {
                out.push(Target {
                    target: format!(
                        "{db}: POST /refresh-tokens ≥ 60% of the sign-only ceiling ({} conns)",
                        r.connections
                    ),
                    measured: format!(
                        "{} ({:.0}/s); {} of {CEILING_STORE}, the token store alone",
                        pct(r.fraction_of_sign_ceiling),
                        r.requests_per_s,
                        pct(r.fraction_of_store_ceiling)
                    ),
                    met: r.fraction_of_sign_ceiling.is_some_and(|f| f >= 0.60) && r.errors == 0,
                });
            }
        }
        for r in find(Scenario::CompanyUsersMine) {
            out.push(Target {
                target: format!(
                    "{db}: GET /company-users/mine ≥ 50% of static ({} conns)",
                    r.connections
                ),
                measured: format!("{} ({:.0}/s)", pct(r.fraction_of_ceiling), r.requests_per_s),
                met: r.fraction_of_ceiling.is_some_and(|f| f >= 0.50) && r.errors == 0,
            });
        }
        for r in find(Scenario::AccessTokens).chain(find(Scenario::TokenLogins)) {
            out.push(Target {
                target: format!(
                    "{db}: {} ≥ 85% of the Argon2 bound ({} conns)",
                    r.scenario.trim(),
                    r.connections
                ),
                measured: format!("{} ({:.1}/s)", pct(r.fraction_of_ceiling), r.requests_per_s),
                met: r.fraction_of_ceiling.is_some_and(|f| f >= 0.85) && r.errors == 0,
            });
        }
        if let Some(c) = &run.combined {
            out.push(Target {
                target: format!("{db}: other endpoints' p99 ≤ 50 ms while logins saturate the CPU"),
                measured: c
                    .side
                    .iter()
                    .map(|r| format!("{} p99 {:.1} ms", r.scenario.trim(), r.p99_ms))
                    .collect::<Vec<_>>()
                    .join(", "),
                met: !c.side.is_empty()
                    && c.side.iter().all(|r| r.requests > 0)
                    && c.worst_side_p99_ms.is_some_and(|p| p <= SIDE_P99_TARGET_MS),
            });
        }
        if let Some(a) = &run.under_attack {
            out.push(Target {
                target: format!(
                    "{db}: correct logins' p99 ≤ {:.0} ms while {} addresses flood logins",
                    a.target_p99_ms, a.flood_addresses
                ),
                measured: format!(
                    "p99 {:.1} ms ({} logins, {} failed; one verify {:.1} ms)",
                    a.p99_ms, a.logins, a.failed_logins, a.verify_ms
                ),
                met: attack::met(a),
            });
        }
        let peak = run
            .rows
            .iter()
            .chain(run.combined.iter().map(|c| &c.login))
            .filter_map(|r| r.peak_rss_kib)
            .max();
        out.push(Target {
            target: format!("{db}: peak RSS under load ≤ 100 MiB"),
            measured: peak.map_or_else(|| "-".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0)),
            met: peak.is_some_and(|k| k <= 100 * 1024),
        });
        out.push(Target {
            target: format!("{db}: start to ready ≤ 1 s on an existing database"),
            measured: format!("{:.0} ms", run.start_to_ready_ms),
            met: run.start_to_ready_ms <= 1000.0,
        });
    }
    // Ceiling (d) is no scenario: its scale ratio is printed, not judged.
    for s in scale.iter().filter(|s| s.scenario != STORE_CEILING_LABEL) {
        out.push(Target {
            target: format!(
                "{}: {} at scale within 10% of the base pass ({} conns)",
                s.database, s.scenario, s.connections
            ),
            measured: format!("{:.1}%", s.ratio * 100.0),
            met: s.ratio >= 0.90,
        });
    }
    out
}

/// Prints the summary: each run's tables, the scale pass against the base pass, the targets.
pub fn print_summary(runs: &[DbRun]) -> (Vec<ScaleRatio>, Vec<Target>) {
    let scale = scale_comparison(runs);
    let targets = targets(runs, &scale);
    println!("\n== summary");
    for run in runs {
        println!(
            "\n{} ({} pass): {} customers, {} refresh tokens loaded; dataset {} in {:.1} s; start to ready {:.0} ms",
            run.database.label(),
            run.pass,
            run.customers,
            run.filler_refresh_tokens,
            run.dataset_load_method,
            run.dataset_load_seconds,
            run.start_to_ready_ms
        );
        print_rows(&run.rows);
        if let Some(c) = &run.combined {
            print_row(&c.login);
            for row in &c.side {
                print_row(row);
            }
        }
        for s in &run.skipped {
            println!("  {:<SCENARIO_WIDTH$} skipped: {}", s.scenario, s.reason);
        }
    }
    if !scale.is_empty() {
        println!("\nscale pass ÷ base pass, requests/s (docs/benchmarks.md §2: within 10%):");
        for s in &scale {
            println!(
                "  {:<11} {:<34} {:>4} conns  {:>9.1} -> {:>9.1}  {:>6.1}%",
                s.database,
                s.scenario,
                s.connections,
                s.base_rps,
                s.scale_rps,
                s.ratio * 100.0
            );
        }
    }
    println!("\ntargets (docs/benchmarks.md §2):");
    for t in &targets {
        println!("  [{}] {} : {}", if t.met { "met" } else { "NOT met" }, t.target, t.measured);
    }
    (scale, targets)
}

/// Writes every figure to `path` (creating its directory) and says where.
pub fn write_results(path: &Path, results: &Value) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::write(path, serde_json::to_string_pretty(results)?)?;
    println!("\nall figures: {}", path.display());
    Ok(())
}
