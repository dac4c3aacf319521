//! The service under test and the machine around it: the working directory and its watchdog,
//! starting, readying and stopping the release binary, its memory, CPU time and profile.

use std::{
    fs,
    net::SocketAddr,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde::Serialize;

use crate::{Result, SERVICE_BIN, options::cpus, wrk::WrkFigures};

/// `glue-auth serve` options that lift the rules per client address (see `Service::spawn`).
const ONE_SOURCE: [&str; 6] = [
    "--login-queue-per-address",
    "1000000",
    "--login-queue",
    "1000000",
    "--max-connections-per-address",
    "1000000",
];
/// Longest wait for the service to go idle after a run.
pub const IDLE_LIMIT: Duration = Duration::from_secs(120);

/// `/tmp/glue-auth-bench-<pid>`: databases, pools, logs, the PostgreSQL cluster. A watchdog
/// process (in its own process group, so Ctrl-C does not reach it) waits for this process to
/// end, then stops what is left (`*.pid` files, `pg.stop`) and removes the directory.
pub struct WorkDir {
    pub path: PathBuf,
}

impl WorkDir {
    pub fn create() -> Result<Self> {
        let path = testkit::fresh_temp_dir(&format!("glue-auth-bench-{}", std::process::id()))?;
        // The postgres user must be able to walk into it.
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        let cleanup = format!(
            "for f in {dir}/*.pid; do [ -f \"$f\" ] && kill -TERM $(cat \"$f\") 2>/dev/null; done; \
             [ -f {dir}/pg.stop ] && sh {dir}/pg.stop >/dev/null 2>&1; \
             sleep 1; rm -rf {dir}",
            dir = path.display()
        );
        testkit::watchdog(&cleanup)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start the cleanup watchdog: {e}"))?;
        Ok(Self { path })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

pub struct Service {
    child: Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
    pid_file: PathBuf,
}

impl Service {
    /// Starts `glue-auth serve`. With `one_source`, the rules per client address are set
    /// out of reach: wrk's load comes from one address, and these runs measure throughput;
    /// the rules are measured by the "login under attack" run, with their defaults.
    pub fn spawn(
        dir: &Path,
        url: &str,
        extra: &[String],
        work: &WorkDir,
        tag: &str,
        one_source: bool,
    ) -> Result<Self> {
        let port = testkit::free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log = dir.join("service.log");
        let child = Command::new(SERVICE_BIN)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--data-dir")
            .arg(dir)
            .arg("--database-url")
            .arg(url)
            .args(["--log", "warn", "--login-block-attempts", "1000000000"])
            .args(if one_source { ONE_SOURCE.as_slice() } else { &[] })
            .args(extra)
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(fs::File::create(dir.join("service.out"))?)
            .stderr(fs::File::create(&log)?)
            .spawn()
            .map_err(|e| format!("cannot start {SERVICE_BIN}: {e}"))?;
        let pid_file = work.path.join(format!("{tag}.pid"));
        fs::write(&pid_file, child.id().to_string())?;
        Ok(Self { child, addr, log, pid_file })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Polls `/health/ready` until it answers 200.
    pub async fn wait_ready(&mut self, client: &reqwest::Client) -> Result<()> {
        let url = format!("{}/health/ready", self.base());
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(r) = client.get(&url).timeout(Duration::from_secs(2)).send().await
                && r.status().as_u16() == 200
            {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                return Err(format!("the service exited ({status}):\n{}", self.log_tail()).into());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the service was not ready within 120 s:\n{}",
                    self.log_tail()
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// SIGTERM (graceful shutdown), then SIGKILL after 15 s.
    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill").arg("-TERM").arg(self.pid().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        let _ = fs::remove_file(&self.pid_file);
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with(field))?.split_whitespace().nth(1)?.parse().ok()
}

/// Resets VmHWM to the current RSS (Linux: `echo 5 > /proc/PID/clear_refs`).
pub fn reset_peak_rss(pid: u32) -> bool {
    fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// `perf record` of every thread of `pid` for `seconds`: a flat profile (the release binary
/// has symbols, but neither frame pointers nor debug info), or with `call_graph` DWARF call
/// graphs, which need a build with debug info (`CARGO_PROFILE_BENCH_DEBUG=line-tables-only`).
pub fn start_perf(pid: u32, data: &Path, seconds: u64, call_graph: bool) -> Result<Child> {
    if let Some(dir) = data.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut cmd = Command::new("perf");
    cmd.args(["record", "-F", "499", "-p", &pid.to_string()]);
    if call_graph {
        cmd.args(["--call-graph", "dwarf,16384"]);
    }
    Ok(cmd
        .arg("-o")
        .arg(data)
        .args(["--", "sleep", &seconds.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start perf: {e}"))?)
}

/// Waits for `perf record`, writes the report next to the data, returns the report's path.
pub fn finish_perf(mut perf: Child, data: &Path, call_graph: bool) -> Result<PathBuf> {
    perf.wait()?;
    let report = data.with_extension("txt");
    let out = Command::new("perf")
        .args(["report", "--stdio", "--sort", "dso,symbol", "--percent-limit", "0.5"])
        .args(if call_graph { ["--children", "-G"] } else { ["--no-children", "-g"] })
        .args(if call_graph { None } else { Some("none") })
        .arg("-i")
        .arg(data)
        .stderr(Stdio::null())
        .output()?;
    fs::write(&report, &out.stdout)?;
    Ok(report)
}

/// CPU time (user + system) of a process, in clock ticks (1/100 s on Linux).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: count fields after its closing parenthesis, where
    // field 3 (state) comes first; utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// CPU used between two `cpu_ticks` readings over a wrk run, in % of one CPU.
pub fn cpu_percent(before: Option<u64>, after: Option<u64>, run: &WrkFigures) -> Option<f64> {
    let ticks = after?.checked_sub(before?)?;
    (run.duration_us > 0).then(|| ticks as f64 / 100.0 / (run.duration_us as f64 / 1e6) * 100.0)
}

/// A reading of where the machine's CPU time has gone so far, in clock ticks.
#[derive(Debug, Clone, Copy)]
pub struct CpuReading {
    /// /proc/stat's first line: running (user, nice, system, irq, softirq), idle, iowait
    /// and steal (taken by the hypervisor), summed over all CPUs.
    busy: u64,
    idle: u64,
    iowait: u64,
    steal: u64,
    /// The process measured (the service, or this benchmark for ceiling (d)).
    subject: Option<u64>,
    /// The PostgreSQL server: the postmaster and every process it started.
    postgres: Option<u64>,
}

impl CpuReading {
    pub fn take(subject: u32, postmaster: Option<u32>) -> Option<Self> {
        let stat = fs::read_to_string("/proc/stat").ok()?;
        let ticks: Vec<u64> = stat
            .lines()
            .next()?
            .strip_prefix("cpu ")?
            .split_whitespace()
            .map(|t| t.parse().unwrap_or(0))
            .collect();
        let at = |i: usize| ticks.get(i).copied().unwrap_or(0);
        Some(Self {
            busy: at(0) + at(1) + at(2) + at(5) + at(6),
            idle: at(3),
            iowait: at(4),
            steal: at(7),
            subject: cpu_ticks(subject),
            postgres: postmaster.map(process_tree_ticks),
        })
    }

    /// The time between `self` and `later`, in % of one CPU (all parts add up to the number
    /// of CPUs × 100).
    pub fn split_until(&self, later: &Self) -> Option<CpuSplit> {
        let d = |a: u64, b: u64| b.saturating_sub(a) as f64;
        let busy = d(self.busy, later.busy);
        let total = busy
            + d(self.idle, later.idle)
            + d(self.iowait, later.iowait)
            + d(self.steal, later.steal);
        if total <= 0.0 {
            return None;
        }
        let share = |ticks: f64| ticks / total * f64::from(cpus()) * 100.0;
        let subject = d(self.subject?, later.subject?);
        let postgres = self.postgres.zip(later.postgres).map(|(a, b)| d(a, b));
        Some(CpuSplit {
            subject: share(subject),
            postgres: postgres.map(share),
            other: share((busy - subject - postgres.unwrap_or(0.0)).max(0.0)),
            idle: share(d(self.idle, later.idle)),
            iowait: share(d(self.iowait, later.iowait)),
            steal: share(d(self.steal, later.steal)),
        })
    }
}

/// Where the machine's CPU time went during a run, each part in % of one CPU.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct CpuSplit {
    /// The process measured: the service (this benchmark for ceiling (d)).
    subject: f64,
    postgres: Option<f64>,
    /// Every other process: mostly wrk (and this benchmark while the service is measured).
    other: f64,
    idle: f64,
    iowait: f64,
    steal: f64,
}

impl CpuSplit {
    pub fn describe(&self, subject: &str) -> String {
        let postgres = self.postgres.map(|p| format!(", postgres {p:.0}")).unwrap_or_default();
        format!(
            "CPU: {subject} {:.0}{postgres}, other {:.0}, idle {:.0}, iowait {:.0}, steal {:.0}",
            self.subject, self.other, self.idle, self.iowait, self.steal
        )
    }
}

/// CPU ticks of `root` and of all its descendants (the server's process may be `runuser`,
/// whose child is the postmaster, whose children are PostgreSQL's backends and workers).
fn process_tree_ticks(root: u32) -> u64 {
    let Ok(entries) = fs::read_dir("/proc") else {
        return 0;
    };
    let parents: Vec<(u32, u32)> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, parent_pid(pid)?)))
        .collect();
    let mut tree = vec![root];
    let mut i = 0;
    while let Some(&pid) = tree.get(i) {
        tree.extend(parents.iter().filter(|(_, parent)| *parent == pid).map(|(child, _)| *child));
        i += 1;
    }
    tree.into_iter().filter_map(cpu_ticks).sum()
}

fn parent_pid(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

/// Waits until the service is idle (under ~10% of a CPU over 250 ms), at most `limit`, so
/// that work left from one run does not land in the next. Returns how long it stayed busy.
pub fn wait_idle(pid: u32, limit: Duration) -> Duration {
    const WINDOW: Duration = Duration::from_millis(250);
    let start = Instant::now();
    let Some(mut last) = cpu_ticks(pid) else {
        return Duration::ZERO;
    };
    loop {
        std::thread::sleep(WINDOW);
        let Some(now) = cpu_ticks(pid) else {
            break;
        };
        if now.saturating_sub(last) < 3 || start.elapsed() > limit {
            break;
        }
        last = now;
    }
    start.elapsed().saturating_sub(WINDOW)
}
