//! The scenarios on one database in one pass: the dataset and its pools, each wrk scenario at
//! each connection count, ceiling (d), logins with the paced side load, login under attack.

use std::{
    fs,
    io::{BufWriter, Write as _},
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use clap::Parser as _;
use glue_auth::{
    auth::{
        keys::KeySet,
        refresh_token::stored_form,
        tokens::{Identity, TokenKind, TokenService},
    },
    service::token_store::{Refreshed, Successor, TokenStore},
};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use serde::Serialize;
use serde_json::{Value, json};

use crate::{
    ACCESS_TTL, AUDIENCE, BoxError, ISSUER, MEDIA, PASSWORD, REFRESH_TTL, Result, attack,
    ceilings::{
        Argon, CEILING_SIGN, CEILING_STATIC, CEILING_VERIFY_SIGN, Ceilings, STORE_CEILING_LABEL,
        minted, random_secret,
    },
    database::{
        Member, count_refresh_tokens, drop_unused, import, insert_filler, insert_refresh_rows,
        load_members, max_refresh_id, refresh_row, settle,
    },
    options::{DbKind, Options, Scenario, target_dir},
    report::{Row, SCENARIO_WIDTH, print_header, print_row},
    service::{
        CpuReading, IDLE_LIMIT, Service, WorkDir, cpu_percent, cpu_ticks, finish_perf,
        proc_status_kib, reset_peak_rss, start_perf, wait_idle,
    },
    unix_now,
    wrk::{RunningWrk, WrkFigures, WrkJob, run_wrk, spawn_wrk},
};

/// No other endpoint's p99 above this while logins saturate the CPU (docs/benchmarks.md §2).
pub const SIDE_P99_TARGET_MS: f64 = 50.0;
/// The side load of the combined scenario: per endpoint, one wrk thread with this many
/// connections, each pausing this long before each request (≤ 160 requests/s).
const SIDE_CONNECTIONS: u32 = 4;
const SIDE_DELAY_MS: u32 = 25;
/// Most distinct customers in a pool file (spread over all customers).
pub const MAX_POOL: usize = 20_000;

pub struct Pass {
    pub name: &'static str,
    pub customers: usize,
    pub filler_refresh_tokens: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub scenario: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Combined {
    pub login_connections: u32,
    pub login: Row,
    /// Paced side loads on the other endpoints while logins saturate the CPU.
    pub side: Vec<Row>,
    pub side_p99_target_ms: f64,
    pub worst_side_p99_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DbRun {
    pub pass: &'static str,
    pub database: DbKind,
    pub customers: usize,
    pub filler_refresh_tokens: usize,
    pub dataset_load_method: String,
    pub dataset_load_seconds: f64,
    pub refresh_token_fill_seconds: Option<f64>,
    /// spawn → `/health/ready` answers 200, on the loaded (existing) database.
    pub start_to_ready_ms: f64,
    pub idle_rss_kib: Option<u64>,
    pub rows: Vec<Row>,
    pub combined: Option<Combined>,
    pub under_attack: Option<attack::UnderAttack>,
    pub skipped: Vec<Skipped>,
}

pub struct RunSetup<'a> {
    pub runtime: &'a tokio::runtime::Runtime,
    pub client: &'a reqwest::Client,
    pub opts: &'a Options,
    pub work: &'a WorkDir,
    pub pass: &'a Pass,
    pub db: DbKind,
    pub url: String,
    /// The PostgreSQL server's process, whose CPU time each run reports.
    pub postmaster: Option<u32>,
    pub ceilings: &'a Ceilings,
    pub argon: &'a Argon,
}

/// What one probe request looks like, for the check before a scenario's load.
fn probe_request(
    client: &reqwest::Client,
    base: &str,
    scenario: Scenario,
    item: &str,
) -> reqwest::RequestBuilder {
    let body = |v: Value| {
        client
            .post(format!("{base}{}", scenario.path()))
            .header("Content-Type", MEDIA)
            .body(v.to_string())
    };
    match scenario {
        Scenario::CompanyUserAccessTokens => {
            let (token, uuid) = item.split_once(' ').unwrap_or((item, ""));
            body(json!({"data": {"type": "company-user-access-tokens", "attributes": {"idCompanyUser": uuid}}}))
                .bearer_auth(token)
        }
        Scenario::RefreshTokens => {
            body(json!({"data": {"type": "refresh-tokens", "attributes": {"refreshToken": item}}}))
        }
        Scenario::CompanyUsersMine => {
            client.get(format!("{base}{}", scenario.path())).bearer_auth(item)
        }
        Scenario::AccessTokens => body(
            json!({"data": {"type": "access-tokens", "attributes": {"username": item, "password": PASSWORD}}}),
        ),
        Scenario::TokenLogins => client.post(format!("{base}{}", scenario.path())).form(&[
            ("grant_type", "password"),
            ("username", item),
            ("password", PASSWORD),
        ]),
    }
}

async fn probe(
    client: &reqwest::Client,
    base: &str,
    scenario: Scenario,
    item: &str,
) -> Result<(), String> {
    let response =
        probe_request(client, base, scenario, item).send().await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    if status == scenario.expected_status() {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    let excerpt: String = body.chars().take(200).collect();
    Err(format!(
        "the service answered {status} (expected {}): {excerpt}{}",
        scenario.expected_status(),
        if status == 404 || status == 405 { " (endpoint not implemented yet?)" } else { "" }
    ))
}

fn write_lines(path: &Path, lines: impl Iterator<Item = String>) -> Result<usize> {
    let mut out = BufWriter::new(fs::File::create(path)?);
    let mut n = 0;
    for line in lines {
        writeln!(out, "{line}")?;
        n += 1;
    }
    out.flush()?;
    Ok(n)
}

impl RunSetup<'_> {
    pub fn label(&self) -> String {
        format!("{} ({} pass)", self.db.label(), self.pass.name)
    }

    pub fn run(&self) -> Result<DbRun> {
        let tag = format!(
            "{}-{}",
            self.pass.name,
            match self.db {
                DbKind::Sqlite => "sqlite",
                DbKind::Postgres => "postgres",
            }
        );
        let dir = self.work.path.join(&tag);
        fs::create_dir_all(&dir)?;
        println!("\n== {}: {} customers", self.label(), self.pass.customers);

        // The dataset, through the service's own import.
        let load_seconds = import(&dir, &self.url, self.pass.customers, &self.argon.phc)?;

        let mut options = ConnectOptions::new(self.url.clone());
        options.max_connections(1).sqlx_logging(false);
        let db = self.runtime.block_on(Database::connect(options))?;
        let members = self.runtime.block_on(load_members(&db))?;
        if members.len() != self.pass.customers {
            return Err(format!(
                "expected {} bench customers after the import, found {}",
                self.pass.customers,
                members.len()
            )
            .into());
        }

        let mut fill_seconds = None;
        if self.pass.filler_refresh_tokens > 0 {
            let start = Instant::now();
            let inserted = self.runtime.block_on(insert_filler(
                &db,
                &members,
                self.pass.filler_refresh_tokens,
                self.pass.name,
            ))?;
            let secs = start.elapsed().as_secs_f64();
            fill_seconds = Some(secs);
            println!("  refresh tokens: {inserted} rows bulk-inserted in {secs:.1} s");
        }

        self.runtime.block_on(settle(&db));

        // The signing key the service will use (created here, read by `serve`).
        let tokens = TokenService::new(KeySet::load(&[], &dir)?, ISSUER, AUDIENCE, ACCESS_TTL);

        let start = Instant::now();
        let mut service =
            Service::spawn(&dir, &self.url, &self.opts.service_args, self.work, &tag, true)?;
        self.runtime.block_on(service.wait_ready(self.client))?;
        let start_to_ready_ms = start.elapsed().as_secs_f64() * 1000.0;
        let idle_rss_kib = proc_status_kib(service.pid(), "VmRSS:");
        println!(
            "  service: start to ready {start_to_ready_ms:.0} ms, idle RSS {} KiB",
            idle_rss_kib.unwrap_or(0)
        );
        // Start-up work (migrations check, the first purge) must not land in the first run.
        wait_idle(service.pid(), IDLE_LIMIT);

        // Pools of distinct customers, spread over all of them. As many in the scale pass as
        // in the base pass: each access token is verified once and then found in the
        // service's cache, so a larger pool would make the scale pass verify more signatures
        // per request, and the comparison is about the database's size, not the clients'.
        let now = unix_now();
        let pool_size = MAX_POOL.min(self.opts.customers);
        let step = (members.len() / pool_size).max(1);
        let pool_members: Vec<&Member> = members.iter().step_by(step).take(pool_size).collect();
        let mut customer_tokens = Vec::with_capacity(pool_members.len());
        for m in &pool_members {
            let identity = Identity {
                customer_id: m.customer_id,
                customer_reference: m.reference.clone(),
                company_user: Some(m.company_user_uuid),
                kind: TokenKind::Customer,
            };
            customer_tokens.push((tokens.issue(&identity, now)?, m.company_user_uuid));
        }
        let cuat_pool = dir.join("cuat.pool");
        let mine_pool = dir.join("mine.pool");
        let login_pool = dir.join("login.pool");
        write_lines(&cuat_pool, customer_tokens.iter().map(|(t, u)| format!("{t} {u}")))?;
        write_lines(&mine_pool, customer_tokens.iter().map(|(t, _)| t.clone()))?;
        write_lines(&login_pool, pool_members.iter().map(|m| m.email.clone()))?;

        let mut rows = Vec::new();
        let mut skipped = Vec::new();
        let mut available = Vec::new();
        print_header();
        for &scenario in &self.opts.scenarios {
            let probe_item = match scenario {
                Scenario::CompanyUserAccessTokens => {
                    customer_tokens.first().map(|(t, u)| format!("{t} {u}"))
                }
                Scenario::CompanyUsersMine => customer_tokens.first().map(|(t, _)| t.clone()),
                Scenario::AccessTokens | Scenario::TokenLogins => {
                    pool_members.first().map(|m| m.email.clone())
                }
                Scenario::RefreshTokens => {
                    let secret = random_secret();
                    let row = refresh_row(&members[0], stored_form(&secret), 1, now, None);
                    self.runtime.block_on(insert_refresh_rows(&db, &mut std::iter::once(row)))?;
                    Some(secret)
                }
            }
            .ok_or("empty pool")?;
            if let Err(reason) =
                self.runtime.block_on(probe(self.client, &service.base(), scenario, &probe_item))
            {
                println!("  {:<SCENARIO_WIDTH$} skipped: {reason}", scenario.label());
                skipped.push(Skipped { scenario: scenario.label().into(), reason });
                continue;
            }
            available.push(scenario);
            for &connections in &self.opts.connections {
                let store = if scenario == Scenario::RefreshTokens {
                    let row = self.run_store_ceiling(connections, &db, &members, &service)?;
                    print_row(&row);
                    let rps = row.requests_per_s;
                    rows.push(row);
                    Some(rps)
                } else {
                    None
                };
                let mut row =
                    self.run_scenario(scenario, connections, &service, &db, &members, &dir)?;
                row.fraction_of_store_ceiling =
                    store.filter(|r| *r > 0.0).map(|r| row.requests_per_s / r);
                print_row(&row);
                rows.push(row);
            }
        }

        let combined = if self.opts.combined && available.contains(&Scenario::AccessTokens) {
            Some(self.run_combined(&available, &service, &dir)?)
        } else {
            if self.opts.combined {
                println!("  combined scenario skipped: POST /access-tokens is not available");
            }
            None
        };

        let under_attack = if self.opts.attack
            && self.pass.name == "base"
            && available.contains(&Scenario::AccessTokens)
        {
            Some(self.run_under_attack(&dir, &tag, &pool_members)?)
        } else {
            None
        };

        service.stop();
        let logs = target_dir().join("bench").join("logs");
        fs::create_dir_all(&logs)?;
        let _ = fs::copy(&service.log, logs.join(format!("{tag}.log")));
        self.runtime.block_on(db.close())?;

        Ok(DbRun {
            pass: self.pass.name,
            database: self.db,
            customers: self.pass.customers,
            filler_refresh_tokens: self.pass.filler_refresh_tokens,
            dataset_load_method: "glue-auth import".into(),
            dataset_load_seconds: load_seconds,
            refresh_token_fill_seconds: fill_seconds,
            start_to_ready_ms,
            idle_rss_kib,
            rows,
            combined,
            under_attack,
            skipped,
        })
    }

    /// "Login under attack": a second service on the same database, with the rules per
    /// client address at their defaults (login blocking still out of reach, so that every
    /// guess of the flood costs a password check: the worst case), is flooded with wrong
    /// passwords from many addresses while correct logins from others are timed.
    fn run_under_attack(
        &self,
        dir: &Path,
        tag: &str,
        members: &[&Member],
    ) -> Result<attack::UnderAttack> {
        let tag = format!("{tag}-attack");
        let mut service =
            Service::spawn(dir, &self.url, &self.opts.service_args, self.work, &tag, false)?;
        self.runtime.block_on(service.wait_ready(self.client))?;
        wait_idle(service.pid(), IDLE_LIMIT);
        let argon = self.argon.retime()?;
        let emails = Arc::new(members.iter().map(|m| m.email.clone()).collect::<Vec<_>>());
        let run = self.runtime.block_on(attack::run(
            service.addr,
            emails,
            PASSWORD,
            Duration::from_secs(self.opts.duration),
            argon.verify_ms,
        ));
        println!("{}", attack::describe(&run));
        service.stop();
        let logs = target_dir().join("bench").join("logs");
        fs::create_dir_all(&logs)?;
        let _ = fs::copy(&service.log, logs.join(format!("{tag}.log")));
        Ok(run)
    }

    fn run_scenario(
        &self,
        scenario: Scenario,
        connections: u32,
        service: &Service,
        db: &DatabaseConnection,
        members: &[Member],
        dir: &Path,
    ) -> Result<Row> {
        let tag = format!("{}-{connections}", scenario.lua());
        let mut pool_range = None;
        let mut pool_size = None;
        let pool = match scenario {
            Scenario::RefreshTokens => {
                let (secrets, range) = self.single_use_tokens(connections, 1.0, db, members)?;
                pool_range = Some(range);
                pool_size = Some(secrets.len() as u64);
                let path = dir.join(format!("{tag}.pool"));
                write_lines(&path, secrets.into_iter())?;
                path
            }
            Scenario::CompanyUserAccessTokens => dir.join("cuat.pool"),
            Scenario::CompanyUsersMine => dir.join("mine.pool"),
            Scenario::AccessTokens | Scenario::TokenLogins => dir.join("login.pool"),
        };
        self.runtime.block_on(settle(db));
        let in_db = self.runtime.block_on(count_refresh_tokens(db))?;
        let argon = if scenario.is_login() { Some(self.argon.retime()?) } else { None };
        let rss_reset = reset_peak_rss(service.pid());
        let perf_data = target_dir().join("bench").join("perf").join(format!(
            "{}-{}-{tag}.data",
            self.pass.name,
            self.db.label()
        ));
        let cpu_before = cpu_ticks(service.pid());
        let reading_before = CpuReading::take(service.pid(), self.postmaster);
        let perf = if self.opts.perf {
            Some(start_perf(
                service.pid(),
                &perf_data,
                self.opts.duration,
                self.opts.perf_call_graph,
            )?)
        } else {
            None
        };
        let figures = run_wrk(&WrkJob {
            scenario,
            addr: service.addr,
            connections,
            threads: self.opts.wrk_threads,
            duration: self.opts.duration,
            pool: &pool,
            once: scenario == Scenario::RefreshTokens,
            delay_ms: None,
            tag,
            dir,
        })?;
        let cpu_after = cpu_ticks(service.pid());
        let reading_after = CpuReading::take(service.pid(), self.postmaster);
        let profile =
            perf.map(|p| finish_perf(p, &perf_data, self.opts.perf_call_graph)).transpose()?;
        let busy = wait_idle(service.pid(), IDLE_LIMIT);
        let peak = proc_status_kib(service.pid(), "VmHWM:");
        if let Some(range) = pool_range {
            self.runtime.block_on(drop_unused(db, range))?;
        }

        let mut row = Row::from_figures(scenario.label(), connections, &figures);
        row = match scenario {
            Scenario::CompanyUserAccessTokens | Scenario::RefreshTokens => row
                .against(CEILING_VERIFY_SIGN, self.ceilings.get(CEILING_VERIFY_SIGN, connections)),
            Scenario::CompanyUsersMine => {
                row.against(CEILING_STATIC, self.ceilings.get(CEILING_STATIC, connections))
            }
            Scenario::AccessTokens | Scenario::TokenLogins => row,
        };
        if let Some(argon) = argon {
            row = row.against_argon2(&argon);
        }
        if scenario == Scenario::RefreshTokens {
            row.fraction_of_sign_ceiling = self
                .ceilings
                .get(CEILING_SIGN, connections)
                .filter(|c| *c > 0.0)
                .map(|c| row.requests_per_s / c);
            row.pool_size = pool_size;
            row.pool_used = Some(figures.pool_used);
            row.pool_exhausted = figures.threads_out_of_pool > 0;
        }
        row.peak_rss_kib = peak;
        row.busy_after_load_s = Some(busy.as_secs_f64());
        row.service_cpu_percent = cpu_percent(cpu_before, cpu_after, &figures);
        row.cpu = reading_before.zip(reading_after).and_then(|(a, b)| a.split_until(&b));
        row.cpu_of = "service";
        if !rss_reset {
            row.note = Some("peak RSS since start (cannot reset VmHWM)".into());
        }
        row.refresh_tokens_in_db = Some(in_db);
        if let Some(report) = profile {
            row.note = Some(format!("profile: {}", report.display()));
            row.profile = Some(report.display().to_string());
        }
        Ok(row)
    }

    /// Enough single-use refresh tokens for one run at `connections`: `times` the sign-only
    /// ceiling's rate (a refresh cannot do less work than that ceiling; the token store alone
    /// can) for the whole duration, plus margin. Inserted into the database; gives their
    /// secrets and the range of their ids.
    fn single_use_tokens(
        &self,
        connections: u32,
        times: f64,
        db: &DatabaseConnection,
        members: &[Member],
    ) -> Result<(Vec<String>, (i64, i64))> {
        let ceiling = self.ceilings.get(CEILING_SIGN, connections).unwrap_or(20_000.0);
        let n = (ceiling * times * self.opts.duration as f64 * 1.2) as usize + 1_000;
        let now = unix_now();
        let secrets: Vec<String> = (0..n).map(|_| random_secret()).collect();
        let before = self.runtime.block_on(max_refresh_id(db))?;
        let mut rows = secrets
            .iter()
            .enumerate()
            .map(|(i, s)| refresh_row(&members[i % members.len()], stored_form(s), i, now, None));
        self.runtime.block_on(insert_refresh_rows(db, &mut rows))?;
        let after = self.runtime.block_on(max_refresh_id(db))?;
        Ok((secrets, (before, after)))
    }

    /// Ceiling (d), measured before each `POST /refresh-tokens` run: refreshes with single-use
    /// tokens through the service's own token store (`TokenStore::refresh`, opened with the
    /// service's connection settings: the same SQL, group commit and durability; it reads
    /// each presented token with its customer and membership, and rotates it) from
    /// `connections` tasks in this process, for the same duration, with no HTTP, JSON or
    /// signing. It is what the database lets the refresh's write path do, on this machine,
    /// in this run; the service itself sits idle meanwhile.
    fn run_store_ceiling(
        &self,
        connections: u32,
        db: &DatabaseConnection,
        members: &[Member],
        service: &Service,
    ) -> Result<Row> {
        let (secrets, range) = self.single_use_tokens(connections, 3.0, db, members)?;
        let presented: Vec<String> = secrets.iter().map(|s| stored_form(s)).collect();
        let mut args = vec!["glue-auth".to_owned(), "--database-url".into(), self.url.clone()];
        args.extend(self.opts.service_args.iter().cloned());
        args.push("serve".into());
        let config = glue_auth::cli::Cli::try_parse_from(args)?.config;
        let duration = Duration::from_secs(self.opts.duration);
        let tokens = Arc::new(presented);
        let next = Arc::new(AtomicUsize::new(0));
        self.runtime.block_on(settle(db));

        let before = CpuReading::take(std::process::id(), self.postmaster);
        let (elapsed, mut latencies, failures, exhausted) = self.runtime.block_on(async {
            let conn = glue_auth::db::connect(&self.url, &config).await?;
            let store = TokenStore::open(&conn).await?;
            let start = Instant::now();
            let deadline = start + duration;
            let tasks: Vec<_> = (0..connections)
                .map(|_| {
                    let (store, tokens, next) = (store.clone(), tokens.clone(), next.clone());
                    tokio::spawn(async move {
                        let (mut latencies, mut failures, mut exhausted) =
                            (Vec::new(), 0u64, false);
                        while Instant::now() < deadline {
                            let Some(presented) = tokens.get(next.fetch_add(1, Ordering::Relaxed))
                            else {
                                exhausted = true;
                                break;
                            };
                            let now = unix_now();
                            let next = Successor {
                                token_hash: minted().stored,
                                client_id: AUDIENCE.to_owned(),
                                issued_at: now,
                                expires_at: now + REFRESH_TTL,
                            };
                            let sent = Instant::now();
                            match store.refresh(presented.clone(), next).await {
                                Ok(Refreshed::Rotated(..)) => latencies.push(sent.elapsed()),
                                Ok(_) | Err(_) => failures += 1,
                            }
                        }
                        (latencies, failures, exhausted)
                    })
                })
                .collect();
            let (mut latencies, mut failures, mut exhausted) = (Vec::new(), 0, false);
            for task in tasks {
                let (l, f, e) = task.await?;
                latencies.extend(l);
                failures += f;
                exhausted |= e;
            }
            let elapsed = start.elapsed();
            let writer = (*store.writer().await?).clone();
            drop(store);
            writer.close().await?;
            conn.close().await?;
            Ok::<_, BoxError>((elapsed, latencies, failures, exhausted))
        })?;
        let after = CpuReading::take(std::process::id(), self.postmaster);
        self.runtime.block_on(drop_unused(db, range))?;
        wait_idle(service.pid(), IDLE_LIMIT);

        latencies.sort_unstable();
        let ms = |q: f64| {
            let i = ((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1));
            latencies.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        let mut row = Row {
            scenario: STORE_CEILING_LABEL.into(),
            connections,
            requests_per_s: latencies.len() as f64 / elapsed.as_secs_f64(),
            p50_ms: ms(0.50),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            max_ms: latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
            requests: latencies.len() as u64,
            errors: failures,
            pool_size: Some(tokens.len() as u64),
            pool_used: Some(next.load(Ordering::Relaxed).min(tokens.len()) as u64),
            pool_exhausted: exhausted,
            cpu: before.zip(after).and_then(|(a, b)| a.split_until(&b)),
            cpu_of: "bench",
            ..Row::default()
        };
        row.error_detail.status = failures;
        Ok(row)
    }

    /// Logins at the first connection count, with a paced load of the other endpoints beside
    /// them: their p99 while Argon2 saturates the CPU (at most 50 ms, docs/benchmarks.md §2).
    fn run_combined(
        &self,
        available: &[Scenario],
        service: &Service,
        dir: &Path,
    ) -> Result<Combined> {
        let connections = self.opts.connections.first().copied().unwrap_or(32);
        let argon = self.argon.retime()?;
        let rss_reset = reset_peak_rss(service.pid());
        let cpu_before = cpu_ticks(service.pid());
        let login = spawn_wrk(&WrkJob {
            scenario: Scenario::AccessTokens,
            addr: service.addr,
            connections,
            threads: self.opts.wrk_threads,
            duration: self.opts.duration,
            pool: &dir.join("login.pool"),
            once: false,
            delay_ms: None,
            tag: "combined-login".into(),
            dir,
        })?;
        let side_scenarios: Vec<Scenario> =
            [Scenario::CompanyUsersMine, Scenario::CompanyUserAccessTokens]
                .into_iter()
                .filter(|s| available.contains(s))
                .collect();
        let mut side = Vec::new();
        for &scenario in &side_scenarios {
            let pool = match scenario {
                Scenario::CompanyUsersMine => dir.join("mine.pool"),
                _ => dir.join("cuat.pool"),
            };
            side.push(spawn_wrk(&WrkJob {
                scenario,
                addr: service.addr,
                connections: SIDE_CONNECTIONS,
                threads: 1,
                duration: self.opts.duration,
                pool: &pool,
                once: false,
                delay_ms: Some(SIDE_DELAY_MS),
                tag: format!("combined-{}", scenario.lua()),
                dir,
            })?);
        }
        let login = login.finish()?;
        let side: Vec<WrkFigures> =
            side.into_iter().map(RunningWrk::finish).collect::<Result<_>>()?;
        let cpu_after = cpu_ticks(service.pid());
        let busy = wait_idle(service.pid(), IDLE_LIMIT);
        let peak = proc_status_kib(service.pid(), "VmHWM:");

        let mut login_row = Row::from_figures(
            format!("combined: {}", Scenario::AccessTokens.label()),
            connections,
            &login,
        )
        .against_argon2(&argon);
        login_row.peak_rss_kib = peak;
        login_row.busy_after_load_s = Some(busy.as_secs_f64());
        login_row.service_cpu_percent = cpu_percent(cpu_before, cpu_after, &login);
        if !rss_reset {
            login_row.note = Some("peak RSS since start".into());
        }
        let side_rows: Vec<Row> = side_scenarios
            .iter()
            .zip(&side)
            .map(|(s, f)| {
                let mut row =
                    Row::from_figures(format!("  + {} (paced)", s.label()), SIDE_CONNECTIONS, f);
                if row.requests > 0 {
                    row.note = Some(format!(
                        "p99 {} the {SIDE_P99_TARGET_MS} ms target",
                        if row.p99_ms <= SIDE_P99_TARGET_MS { "within" } else { "ABOVE" }
                    ));
                }
                row
            })
            .collect();
        let mut all = vec![login_row.clone()];
        all.extend(side_rows.iter().cloned());
        for row in &all {
            print_row(row);
        }
        let worst = side_rows.iter().map(|r| r.p99_ms).max_by(f64::total_cmp);
        Ok(Combined {
            login_connections: connections,
            login: login_row,
            side: side_rows,
            side_p99_target_ms: SIDE_P99_TARGET_MS,
            worst_side_p99_ms: worst,
        })
    }
}
