//! Scenario "login under attack" (`docs/security.md`): wrong passwords flood
//! `POST /access-tokens` from many loopback addresses while correct logins from other
//! addresses are timed. wrk cannot choose its source address, so the load is made here,
//! with one HTTP client bound to each address.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Arc,
    time::{Duration, Instant},
};

use serde::Serialize;
use serde_json::json;

/// Flooding addresses, 127.0.0.10 and up.
pub const FLOOD_ADDRESSES: u8 = 20;
/// Connections (requests in flight) per flooding address.
pub const FLOOD_CONNECTIONS: usize = 20;
/// Addresses of the timed correct logins, 127.0.0.200 and up, one login in flight each.
pub const VICTIMS: u8 = 4;
/// Pause between a victim's logins.
const VICTIM_PAUSE: Duration = Duration::from_millis(100);
/// The flood runs alone for this long before the victims start.
const WARM_UP: Duration = Duration::from_secs(1);
/// The target: p99 of the correct logins.
pub const TARGET_P99_MS: f64 = 500.0;

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct UnderAttack {
    pub flood_addresses: u8,
    pub flood_connections_per_address: usize,
    pub flood_requests_per_s: f64,
    /// Answers to the flood, by status (401: checked; 429: its share was full; 503: the
    /// queue was full).
    pub flood_statuses: BTreeMap<u16, u64>,
    pub victims: u8,
    pub logins: u64,
    /// Correct logins that did not get 201.
    pub failed_logins: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// One Argon2 verify, timed just before: no login can be faster.
    pub verify_ms: f64,
    pub target_p99_ms: f64,
}

fn client_from(last: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
        .pool_max_idle_per_host(FLOOD_CONNECTIONS)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client")
}

fn login_body(email: &str, password: &str) -> String {
    json!({"data": {"type": "access-tokens", "attributes": {"username": email, "password": password}}})
        .to_string()
}

async fn post(client: &reqwest::Client, url: &str, body: String) -> Option<u16> {
    let answer = client
        .post(url)
        .header("content-type", "application/vnd.api+json")
        .body(body)
        .send()
        .await
        .ok()?;
    let status = answer.status().as_u16();
    // Read the body, so the connection is reused.
    answer.bytes().await.ok()?;
    Some(status)
}

/// Runs the flood and the timed logins against `addr` for `duration`. `emails` are the
/// dataset's customers, whose password is `password`; `verify_ms` is reported beside.
pub async fn run(
    addr: SocketAddr,
    emails: Arc<Vec<String>>,
    password: &str,
    duration: Duration,
    verify_ms: f64,
) -> UnderAttack {
    let url = Arc::new(format!("http://{addr}/access-tokens"));
    let started = Instant::now();
    let flood_until = started + WARM_UP + duration;
    let mut flood = Vec::new();
    for address in 0..FLOOD_ADDRESSES {
        let client = client_from(10 + address);
        for connection in 0..FLOOD_CONNECTIONS {
            let (client, url, emails) = (client.clone(), url.clone(), emails.clone());
            flood.push(tokio::spawn(async move {
                let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
                let mut n = usize::from(address) * 7919 + connection * 104_729;
                while Instant::now() < flood_until {
                    n += 1;
                    let body = login_body(&emails[n % emails.len()], "not-the-password");
                    let status = post(&client, &url, body).await.unwrap_or(0);
                    *statuses.entry(status).or_default() += 1;
                }
                statuses
            }));
        }
    }
    tokio::time::sleep(WARM_UP).await;
    let victims_until = Instant::now() + duration;
    let mut victims = Vec::new();
    for victim in 0..VICTIMS {
        let (url, emails, password) = (url.clone(), emails.clone(), password.to_owned());
        victims.push(tokio::spawn(async move {
            let client = client_from(200 + victim);
            let mut latencies = Vec::new();
            let mut failed = 0u64;
            let mut n = usize::from(victim) * 1_000;
            while Instant::now() < victims_until {
                n += 1;
                let body = login_body(&emails[n % emails.len()], &password);
                let sent = Instant::now();
                let status = post(&client, &url, body).await;
                latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                if status != Some(201) {
                    failed += 1;
                }
                tokio::time::sleep(VICTIM_PAUSE).await;
            }
            (latencies, failed)
        }));
    }
    let mut latencies = Vec::new();
    let mut failed_logins = 0;
    for victim in victims {
        if let Ok((mine, failed)) = victim.await {
            latencies.extend(mine);
            failed_logins += failed;
        }
    }
    let mut flood_statuses: BTreeMap<u16, u64> = BTreeMap::new();
    for task in flood {
        if let Ok(statuses) = task.await {
            for (status, n) in statuses {
                *flood_statuses.entry(status).or_default() += n;
            }
        }
    }
    let flood_seconds = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(f64::NAN)
    };
    UnderAttack {
        flood_addresses: FLOOD_ADDRESSES,
        flood_connections_per_address: FLOOD_CONNECTIONS,
        flood_requests_per_s: flood_statuses.values().sum::<u64>() as f64 / flood_seconds,
        flood_statuses,
        victims: VICTIMS,
        logins: latencies.len() as u64,
        failed_logins,
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        max_ms: latencies.last().copied().unwrap_or(f64::NAN),
        verify_ms,
        target_p99_ms: TARGET_P99_MS,
    }
}

/// The figures as lines for the report.
pub fn describe(run: &UnderAttack) -> String {
    let statuses = run
        .flood_statuses
        .iter()
        .map(|(status, n)| format!("{status}: {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "  login under attack: flood from {} addresses x {} connections, {:.0} req/s ({statuses})\n\
         \x20   correct logins from {} other addresses: {} ({} failed), p50 {:.1} ms, p99 {:.1} ms, \
         max {:.1} ms; ceiling: one Argon2 verify {:.1} ms; target p99 <= {:.0} ms: {}",
        run.flood_addresses,
        run.flood_connections_per_address,
        run.flood_requests_per_s,
        run.victims,
        run.logins,
        run.failed_logins,
        run.p50_ms,
        run.p99_ms,
        run.max_ms,
        run.verify_ms,
        run.target_p99_ms,
        if met(run) { "met" } else { "NOT met" },
    )
}

/// Whether the run meets its target.
pub fn met(run: &UnderAttack) -> bool {
    run.logins > 0 && run.failed_logins == 0 && run.p99_ms <= run.target_p99_ms
}
