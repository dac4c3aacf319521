//! wrk, which drives the load of every scenario: a job (scenario, address, connections, pool),
//! the running process, and the figures `done()` of `benches/load.lua` writes.

use std::{
    fs,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use serde::{Deserialize, Serialize};

use crate::{PASSWORD, Result, options::Scenario};

/// The wrk script of every scenario (benches/load.lua).
const LUA_SCRIPT: &str = include_str!("../load.lua");

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct WrkErrors {
    pub connect: u64,
    pub read: u64,
    pub write: u64,
    pub status: u64,
    pub timeout: u64,
}

impl WrkErrors {
    pub fn total(&self) -> u64 {
        self.connect + self.read + self.write + self.status + self.timeout
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct WrkLatency {
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

/// What `done()` of load.lua writes.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct WrkFigures {
    pub requests: u64,
    pub duration_us: u64,
    pub bytes: u64,
    pub errors: WrkErrors,
    pub latency_us: WrkLatency,
    pub pool_used: u64,
    pub threads_out_of_pool: u64,
}

impl WrkFigures {
    pub fn rps(&self) -> f64 {
        if self.duration_us == 0 {
            0.0
        } else {
            self.requests as f64 / (self.duration_us as f64 / 1e6)
        }
    }
}

pub struct WrkJob<'a> {
    pub scenario: Scenario,
    pub addr: SocketAddr,
    pub connections: u32,
    pub threads: u32,
    pub duration: u64,
    pub pool: &'a Path,
    pub once: bool,
    pub delay_ms: Option<u32>,
    /// Files of this run are named after it, in `dir`.
    pub tag: String,
    pub dir: &'a Path,
}

pub struct RunningWrk {
    child: Child,
    out: PathBuf,
    stdout: PathBuf,
}

pub fn spawn_wrk(job: &WrkJob<'_>) -> Result<RunningWrk> {
    let script = job.dir.join("load.lua");
    if !script.exists() {
        fs::write(&script, LUA_SCRIPT)?;
    }
    let threads = job.threads.min(job.connections).max(1);
    let out = job.dir.join(format!("{}.json", job.tag));
    let stdout = job.dir.join(format!("{}.wrk.txt", job.tag));
    let _ = fs::remove_file(&out);
    let mut cmd = Command::new("wrk");
    cmd.arg(format!("-t{threads}"))
        .arg(format!("-c{}", job.connections))
        .arg(format!("-d{}s", job.duration))
        .args(["--timeout", "10s", "-s"])
        .arg(&script)
        .arg(format!("http://{}", job.addr))
        .env("BENCH_SCENARIO", job.scenario.lua())
        .env("BENCH_POOL", job.pool)
        .env("BENCH_THREADS", threads.to_string())
        .env("BENCH_ONCE", if job.once { "1" } else { "0" })
        .env("BENCH_PASSWORD", PASSWORD)
        .env("BENCH_OUT", &out)
        .env_remove("BENCH_DELAY_MS")
        .stdin(Stdio::null())
        .stdout(fs::File::create(&stdout)?)
        .stderr(Stdio::from(fs::File::create(job.dir.join(format!("{}.wrk.err", job.tag)))?));
    if let Some(ms) = job.delay_ms {
        cmd.env("BENCH_DELAY_MS", ms.to_string());
    }
    let child = cmd.spawn().map_err(|e| format!("cannot start wrk: {e}"))?;
    Ok(RunningWrk { child, out, stdout })
}

impl RunningWrk {
    pub fn finish(mut self) -> Result<WrkFigures> {
        let status = self.child.wait()?;
        let figures =
            fs::read_to_string(&self.out).ok().and_then(|t| serde_json::from_str(&t).ok());
        match figures {
            Some(f) if status.success() => Ok(f),
            _ => {
                let stdout = fs::read_to_string(&self.stdout).unwrap_or_default();
                let err = fs::read_to_string(self.stdout.with_extension("err")).unwrap_or_default();
                Err(format!("wrk failed ({status}):\n{stdout}{err}").into())
            }
        }
    }
}

pub fn run_wrk(job: &WrkJob<'_>) -> Result<WrkFigures> {
    spawn_wrk(job)?.finish()
}
