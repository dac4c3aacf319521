//! The bounds the service is measured against: Argon2id verifies timed in-process, and the
//! ceilings (a), (b) and (c) served by a tiny poem server in this process, with no database.

use std::{
    collections::BTreeMap,
    fs,
    io::{BufWriter, Write as _},
    sync::Arc,
    time::{Duration, Instant},
};

use glue_auth::auth::{
    keys::KeySet,
    password::{self, Password},
    refresh_token::{Minted, mint},
    tokens::{Identity, TokenKind, TokenService},
};
use poem::{
    EndpointExt, Request, Response, Route, Server, get, handler,
    http::StatusCode,
    listener::{Acceptor, Listener, TcpListener},
    post,
    web::Data,
};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    ACCESS_TTL, AUDIENCE, BoxError, ISSUER, MEDIA, PASSWORD, Result,
    options::{Options, Scenario, cpus},
    report::Row,
    scenarios::MAX_POOL,
    service::{WorkDir, cpu_percent, cpu_ticks},
    unix_now,
    wrk::{WrkJob, run_wrk},
};

#[derive(Debug, Clone, Serialize)]
pub struct Argon {
    /// The fastest of a series of verifies, milliseconds: the time one verify takes when
    /// nothing else runs (a median moved by 50% between runs on a shared 2-CPU machine and
    /// put logins above 100% of their bound). The fastest gives the highest bound, so the
    /// share of it the service reaches is never flattered.
    pub verify_ms: f64,
    pub samples_ms: Vec<f64>,
    pub cpus: u32,
    /// cpus ÷ one verify: the most logins per second the CPUs allow.
    pub bound_rps: f64,
    /// Verifies per second with one running on every CPU at once, in-process: what the
    /// CPUs allow when they share their caches and memory bandwidth, as they do under a
    /// load of logins (each verify walks 19 MiB). Shown beside `bound_rps`, which the
    /// target is measured against.
    pub all_cpus_rps: f64,
    /// The PHC string every bench customer gets.
    #[serde(skip)]
    pub phc: String,
}

pub fn measure_argon2() -> Result<Argon> {
    let pw = Password::new(PASSWORD);
    let phc = password::hash(&pw).map_err(|e| format!("argon2: {e}"))?;
    if !password::verify(&pw, Some(&phc)) {
        return Err("argon2: the fresh hash does not verify".into());
    }
    time_argon2(phc)
}

impl Argon {
    /// The same timings again, now: the VM's speed for Argon2 drifts between minutes (one
    /// verify took 15.3 to 19.1 ms in passes of one day), so each login run is set against
    /// verifies timed just before it rather than at the start of the benchmark.
    pub fn retime(&self) -> Result<Self> {
        time_argon2(self.phc.clone())
    }
}

/// Times verifies of `phc` (a hash of [`PASSWORD`]): 15 one after the other, then one on
/// every CPU at once.
fn time_argon2(phc: String) -> Result<Argon> {
    let pw = Password::new(PASSWORD);
    let mut samples: Vec<f64> = (0..15)
        .map(|_| {
            let start = Instant::now();
            let ok = password::verify(&pw, Some(&phc));
            let ms = start.elapsed().as_secs_f64() * 1000.0;
            (ok, ms)
        })
        .filter_map(|(ok, ms)| ok.then_some(ms))
        .collect();
    samples.sort_by(f64::total_cmp);
    let verify_ms = samples.first().copied().ok_or("argon2: no sample")?;
    const EACH: u32 = 10;
    let start = Instant::now();
    let verified: u32 = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..cpus())
            .map(|_| {
                scope.spawn(|| (0..EACH).filter(|_| password::verify(&pw, Some(&phc))).count())
            })
            .collect();
        threads.into_iter().map(|t| t.join().map_or(0, |n| n as u32)).sum()
    });
    let all_cpus_rps = f64::from(verified) / start.elapsed().as_secs_f64();
    Ok(Argon {
        verify_ms,
        cpus: cpus(),
        bound_rps: f64::from(cpus()) * 1000.0 / verify_ms,
        all_cpus_rps,
        samples_ms: samples,
        phc,
    })
}

pub const CEILING_STATIC: &str = "(a)";
pub const CEILING_VERIFY_SIGN: &str = "(b)";
pub const CEILING_SIGN: &str = "(c)";
pub const ARGON2_BOUND: &str = "argon2";
pub const CEILING_STORE: &str = "(d)";
pub const STORE_CEILING_LABEL: &str = "(d) token store alone: refreshes";

struct CeilingState {
    tokens: TokenService,
    static_doc: &'static str,
}

pub struct Ceilings {
    pub rows: Vec<Row>,
    /// (ceiling, connections) -> requests/s
    rps: BTreeMap<(&'static str, u32), f64>,
}

impl Ceilings {
    pub fn get(&self, name: &'static str, connections: u32) -> Option<f64> {
        self.rps.get(&(name, connections)).copied()
    }
}

/// A new refresh token as the service makes them.
pub fn minted() -> Minted {
    // Minting only fails when the OS has no randomness; the bench cannot go on then.
    mint().expect("randomness from the OS")
}

/// A new refresh token's text.
pub fn random_secret() -> String {
    minted().token
}

fn token_response(kind: &str, access: &str, refresh: &str, company_user: Option<Uuid>) -> String {
    let mut attributes = json!({
        "tokenType": "Bearer",
        "expiresIn": ACCESS_TTL,
        "accessToken": access,
        "refreshToken": refresh,
    });
    if let Some(cu) = company_user {
        attributes["idCompanyUser"] = json!(cu);
    }
    json!({"data": {"type": kind, "id": null, "attributes": attributes,
        "links": {"self": format!("http://127.0.0.1/{kind}")}}})
    .to_string()
}

fn created(body: String) -> Response {
    Response::builder().status(StatusCode::CREATED).content_type(MEDIA).body(body)
}

fn unauthorized() -> Response {
    Response::builder()
        .status(StatusCode::UNAUTHORIZED)
        .content_type(MEDIA)
        .body(r#"{"errors":[{"code":"001","status":401,"detail":"Invalid access token."}]}"#)
}

/// (a): a token-sized static document.
#[handler]
async fn ceiling_static(state: Data<&Arc<CeilingState>>) -> Response {
    Response::builder().content_type(MEDIA).body(state.static_doc)
}

/// (b): what `POST /company-user-access-tokens` does without its database: verify the
/// caller's token, read the body, sign a company-user token, answer a fresh refresh token.
#[handler]
async fn ceiling_verify_sign(
    req: &Request,
    body: String,
    state: Data<&Arc<CeilingState>>,
) -> Response {
    let now = unix_now();
    let token = req.header("authorization").and_then(|h| h.strip_prefix("Bearer "));
    let Some(caller) = token.and_then(|t| state.tokens.verify(t, now).ok()) else {
        return unauthorized();
    };
    let requested = serde_json::from_str::<Value>(&body).ok().and_then(|v| {
        v["data"]["attributes"]["idCompanyUser"].as_str().and_then(|s| Uuid::parse_str(s).ok())
    });
    let identity = Identity {
        company_user: requested.or(caller.company_user),
        kind: TokenKind::CompanyUser,
        ..caller
    };
    match state.tokens.issue(&identity, now) {
        Ok(access) => {
            created(token_response("company-user-access-tokens", &access, &random_secret(), None))
        }
        Err(_) => Response::builder().status(StatusCode::INTERNAL_SERVER_ERROR).finish(),
    }
}

/// (c): what `POST /refresh-tokens` does without its database: read the body, sign a token.
#[handler]
async fn ceiling_sign(body: String, state: Data<&Arc<CeilingState>>) -> Response {
    let now = unix_now();
    let presented = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["data"]["attributes"]["refreshToken"].as_str().map(str::len));
    if presented.is_none() {
        return unauthorized();
    }
    let identity = Identity {
        customer_id: 1,
        customer_reference: "BENCH--1".into(),
        company_user: Some(Uuid::nil()),
        kind: TokenKind::CompanyUser,
    };
    match state.tokens.issue(&identity, now) {
        Ok(access) => {
            created(token_response("refresh-tokens", &access, &random_secret(), Some(Uuid::nil())))
        }
        Err(_) => Response::builder().status(StatusCode::INTERNAL_SERVER_ERROR).finish(),
    }
}

pub fn run_ceilings(
    runtime: &tokio::runtime::Runtime,
    opts: &Options,
    work: &WorkDir,
) -> Result<Ceilings> {
    let dir = work.path.join("ceilings");
    fs::create_dir_all(&dir)?;
    let tokens =
        TokenService::new(KeySet::load(&[], &dir.join("keys"))?, ISSUER, AUDIENCE, ACCESS_TTL);
    let now = unix_now();

    // Pools in the service's formats, with tokens of the ceiling's own key.
    let mut cuat = BufWriter::new(fs::File::create(dir.join("cuat.pool"))?);
    let mut mine = BufWriter::new(fs::File::create(dir.join("mine.pool"))?);
    let mut refresh = BufWriter::new(fs::File::create(dir.join("refresh.pool"))?);
    for i in 0..opts.customers.min(MAX_POOL) {
        let id = i32::try_from(i + 1).unwrap_or(i32::MAX);
        let company_user = Uuid::new_v4();
        let token = tokens.issue(
            &Identity {
                customer_id: id,
                customer_reference: format!("BENCH--{id}"),
                company_user: Some(company_user),
                kind: TokenKind::Customer,
            },
            now,
        )?;
        writeln!(cuat, "{token} {company_user}")?;
        writeln!(mine, "{token}")?;
        writeln!(refresh, "{}", random_secret())?;
    }
    cuat.flush()?;
    mine.flush()?;
    refresh.flush()?;

    // A token-sized document: an access-token answer with a real token in it (~1 KB).
    let sample = tokens.issue(
        &Identity {
            customer_id: 21,
            customer_reference: "DE--21".into(),
            company_user: Some(Uuid::new_v4()),
            kind: TokenKind::CompanyUser,
        },
        now,
    )?;
    let static_doc: &'static str =
        token_response("company-users", &sample, &random_secret(), Some(Uuid::new_v4())).leak();
    let state = Arc::new(CeilingState { tokens, static_doc });
    let app = Route::new()
        .at("/company-users/mine", get(ceiling_static))
        .at("/company-user-access-tokens", post(ceiling_verify_sign))
        .at("/refresh-tokens", post(ceiling_sign))
        .data(state);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let addr = runtime.block_on(async {
        let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await?;
        let addr = acceptor
            .local_addr()
            .into_iter()
            .find_map(|a| a.as_socket_addr().copied())
            .ok_or("the ceiling server has no address")?;
        tokio::spawn(async move {
            let _ = Server::new_with_acceptor(acceptor)
                .run_with_graceful_shutdown(
                    app,
                    async {
                        let _ = stopped.await;
                    },
                    Some(Duration::from_secs(1)),
                )
                .await;
        });
        Ok::<_, BoxError>(addr)
    })?;

    let mut rows = Vec::new();
    let mut rps = BTreeMap::new();
    let runs = [
        (CEILING_STATIC, Scenario::CompanyUsersMine, "mine.pool", "static ~1 KB JSON"),
        (
            CEILING_VERIFY_SIGN,
            Scenario::CompanyUserAccessTokens,
            "cuat.pool",
            "ES256 verify + sign",
        ),
        (CEILING_SIGN, Scenario::RefreshTokens, "refresh.pool", "ES256 sign only"),
    ];
    for (name, scenario, pool, what) in runs {
        for &connections in &opts.connections {
            let cpu_before = cpu_ticks(std::process::id());
            let figures = run_wrk(&WrkJob {
                scenario,
                addr,
                connections,
                threads: opts.wrk_threads,
                duration: opts.duration,
                pool: &dir.join(pool),
                once: false,
                delay_ms: None,
                tag: format!("{}-{connections}", scenario.lua()),
                dir: &dir,
            })?;
            let mut row =
                Row::from_figures(format!("ceiling {name} {what}"), connections, &figures);
            row.note = Some(format!("driven like {}", scenario.label()));
            row.service_cpu_percent =
                cpu_percent(cpu_before, cpu_ticks(std::process::id()), &figures);
            rps.insert((name, connections), row.requests_per_s);
            rows.push(row);
        }
    }
    let _ = stop.send(());
    Ok(Ceilings { rows, rps })
}
