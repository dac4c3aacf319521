//! The databases: the dataset and its import, the SQLite file, the throwaway PostgreSQL
//! cluster (through `testkit`), the bench's own rows (refresh tokens, the scale pass's filler).

use std::{
    collections::BTreeMap,
    fs,
    io::{BufWriter, Write as _},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use aws_lc_rs::digest;
use entity::{company_user, customer, refresh_token};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, Database, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait, sea_query::Expr,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{AUDIENCE, REFRESH_TTL, Result, SERVICE_BIN, service::WorkDir, unix_now};

/// Rows per multi-row INSERT (9 values each: under SQLite's and PostgreSQL's limits).
const INSERT_CHUNK: usize = 1_000;

/// The database URL of a pass's SQLite file, in the working directory.
pub fn sqlite_url(work: &WorkDir, pass: &str) -> String {
    format!(
        "sqlite://{}?mode=rwc",
        work.path.join(format!("{pass}-sqlite")).join("glue-auth.db").display()
    )
}

/// The throwaway PostgreSQL cluster, in the working directory, whose watchdog stops it with
/// `pg.stop` if the benchmark is killed.
pub struct PgCluster {
    cluster: testkit::Cluster,
    stop_file: PathBuf,
}

impl PgCluster {
    /// Creates the cluster and starts it, or says why it cannot.
    pub fn start(work: &WorkDir) -> Result<Self, String> {
        let bin = testkit::bin_dir().ok_or(
            "no PostgreSQL server binaries ($PG_BIN, initdb on PATH, /usr/lib/postgresql/*/bin); \
             Debian: apt-get install postgresql",
        )?;
        let dir = work.path.join("pg");
        fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        // Durable defaults (fsync, synchronous_commit on), as a production server would run.
        let cluster = testkit::Cluster::start(
            bin,
            &dir,
            &work.path.join("postgres.log"),
            &["max_connections=300"],
        )?;
        let stop_file = work.path.join("pg.stop");
        fs::write(&stop_file, cluster.stop_shell()).map_err(|e| e.to_string())?;
        let cluster = Self { cluster, stop_file };
        cluster.cluster.wait_ready()?;
        println!(
            "\nPostgreSQL: a throwaway cluster from {} on 127.0.0.1:{}",
            cluster.cluster.bin.display(),
            cluster.cluster.port
        );
        Ok(cluster)
    }

    /// The server's process, whose CPU time each run reports.
    pub fn pid(&self) -> u32 {
        self.cluster.server.id()
    }

    /// Creates the database `name` and gives its URL.
    pub async fn create_database(&self, name: &str) -> Result<String> {
        let admin = Database::connect(self.cluster.url("postgres")).await?;
        admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await?;
        admin.close().await?;
        Ok(self.cluster.url(name))
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let server = &mut self.cluster.server;
        let stopped = testkit::as_server_user(&self.cluster.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.cluster.data)
            .args(["stop", "-m", "fast", "-w"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !stopped {
            let _ = server.kill();
        }
        let _ = server.wait();
        let _ = fs::remove_file(&self.stop_file);
    }
}

const COMPANIES: usize = 8;

/// The dataset in the import format (src/dataset.rs), as JSON: `customers` customers, each
/// with one default company user in one of a handful of approved, active companies.
fn write_dataset(path: &Path, customers: usize, phc: &str) -> Result<()> {
    let companies = COMPANIES.min(customers);
    let mut out = BufWriter::new(fs::File::create(path)?);
    let rows = |out: &mut BufWriter<fs::File>,
                name: &str,
                items: &mut dyn Iterator<Item = Value>|
     -> Result<()> {
        write!(out, "\"{name}\":[")?;
        for (i, item) in items.enumerate() {
            if i > 0 {
                out.write_all(b",\n")?;
            }
            serde_json::to_writer(&mut *out, &item)?;
        }
        out.write_all(b"]")?;
        Ok(())
    };
    out.write_all(b"{")?;
    rows(
        &mut out,
        "customers",
        &mut (1..=customers).map(|i| {
            json!({"reference": format!("BENCH--{i}"), "email": format!("bench{i}@example.com"),
                   "salutation": "Ms", "first_name": "Bench", "last_name": format!("Customer {i}"),
                   "password_hash": phc})
        }),
    )?;
    out.write_all(b",\n")?;
    rows(
        &mut out,
        "companies",
        &mut (0..companies).map(|c| json!({"key": format!("c{c}"), "name": format!("Bench Company {c}"), "status": "approved", "active": true})),
    )?;
    out.write_all(b",\n")?;
    rows(
        &mut out,
        "business_units",
        &mut (0..companies).map(|c| json!({"key": format!("bu{c}"), "company": format!("c{c}"), "name": format!("Head office {c}"), "email": format!("office{c}@example.com")})),
    )?;
    out.write_all(b",\n")?;
    rows(
        &mut out,
        "roles",
        &mut (0..companies).map(|c| json!({"key": format!("r{c}"), "company": format!("c{c}"), "name": "Buyer", "default": true, "permissions": ["SeeCompanyUsersPermissionPlugin"]})),
    )?;
    out.write_all(b",\n")?;
    rows(
        &mut out,
        "company_users",
        &mut (1..=customers).map(|i| {
            let c = i % companies;
            json!({"customer": format!("BENCH--{i}"), "company": format!("c{c}"),
                   "business_unit": format!("bu{c}"), "roles": [format!("r{c}")], "default": true})
        }),
    )?;
    out.write_all(b"}\n")?;
    out.flush()?;
    Ok(())
}

/// Writes the dataset of `customers` customers into `dir` and loads it into `url` with
/// `glue-auth import`; gives the seconds the import took.
pub fn import(dir: &Path, url: &str, customers: usize, phc: &str) -> Result<f64> {
    let file = dir.join("dataset.json");
    write_dataset(&file, customers, phc)?;
    let start = Instant::now();
    let out = Command::new(SERVICE_BIN)
        .arg("--data-dir")
        .arg(dir)
        .arg("--database-url")
        .arg(url)
        .args(["--log", "warn", "import"])
        .arg(&file)
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "glue-auth import failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let load_seconds = start.elapsed().as_secs_f64();
    println!(
        "  dataset: `glue-auth import` of {customers} customers and company users: {load_seconds:.1} s"
    );
    Ok(load_seconds)
}

/// The scale pass's filler: `n` refresh tokens of `members` (issued over the last 20 days, a
/// third of them revoked), bulk-inserted; gives how many rows went in.
pub async fn insert_filler(
    db: &DatabaseConnection,
    members: &[Member],
    n: usize,
    pass: &str,
) -> Result<u64> {
    let now = unix_now();
    let mut rows = (0..n).map(|i| {
        let member = &members[i % members.len()];
        // Issued over the last 20 days; a third of them revoked (rotated or logged out).
        let issued_at = now - i64::try_from(i % (20 * 86_400)).unwrap_or(0);
        let revoked = (i % 3 == 0).then_some(issued_at + 60);
        refresh_row(member, sha256_hex(&format!("filler {pass} {i}")), i, issued_at, revoked)
    });
    insert_refresh_rows(db, &mut rows).await
}

/// A bench customer with its company user, as stored.
#[derive(Debug, Clone)]
pub struct Member {
    pub customer_id: i32,
    pub reference: String,
    pub email: String,
    pub company_user_id: i32,
    pub company_user_uuid: Uuid,
}

pub async fn load_members(db: &DatabaseConnection) -> Result<Vec<Member>> {
    let customers: Vec<(i32, String, String)> = customer::Entity::find()
        .select_only()
        .column(customer::Column::Id)
        .column(customer::Column::CustomerReference)
        .column(customer::Column::EmailNormalized)
        .filter(customer::Column::CustomerReference.starts_with("BENCH--"))
        .order_by_asc(customer::Column::Id)
        .into_tuple()
        .all(db)
        .await?;
    let members: Vec<(i32, Uuid, i32)> = company_user::Entity::find()
        .select_only()
        .column(company_user::Column::Id)
        .column(company_user::Column::Uuid)
        .column(company_user::Column::CustomerId)
        .into_tuple()
        .all(db)
        .await?;
    let by_customer: BTreeMap<i32, (i32, Uuid)> =
        members.into_iter().map(|(id, uuid, customer)| (customer, (id, uuid))).collect();
    Ok(customers
        .into_iter()
        .filter_map(|(customer_id, reference, email)| {
            let (company_user_id, company_user_uuid) = *by_customer.get(&customer_id)?;
            Some(Member { customer_id, reference, email, company_user_id, company_user_uuid })
        })
        .collect())
}

fn sha256_hex(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = digest::digest(&digest::SHA256, text.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest.as_ref() {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
    out
}

/// A refresh-token row as the service stores it: even rows are customer tokens, odd rows
/// company-user tokens.
pub fn refresh_row(
    member: &Member,
    token_hash: String,
    i: usize,
    issued_at: i64,
    revoked_at: Option<i64>,
) -> refresh_token::ActiveModel {
    let company_user = i % 2 == 1;
    refresh_token::ActiveModel {
        token_hash: Set(token_hash),
        family_id: Set(Uuid::new_v4()),
        customer_id: Set(member.customer_id),
        company_user_id: Set(company_user.then_some(member.company_user_id)),
        scopes: Set(if company_user { "company_user" } else { "customer" }.to_owned()),
        client_id: Set(AUDIENCE.to_owned()),
        issued_at: Set(issued_at),
        expires_at: Set(issued_at + REFRESH_TTL),
        revoked_at: Set(revoked_at),
        rotated_into_id: Set(None),
        ..Default::default()
    }
}

/// Multi-row INSERTs of `rows`, `INSERT_CHUNK` rows a statement, 100 statements a transaction.
pub async fn insert_refresh_rows(
    db: &DatabaseConnection,
    rows: &mut dyn Iterator<Item = refresh_token::ActiveModel>,
) -> Result<u64> {
    let mut inserted = 0u64;
    loop {
        let txn = db.begin().await?;
        let mut in_txn = 0;
        while in_txn < 100 {
            let chunk: Vec<_> = (&mut *rows).take(INSERT_CHUNK).collect();
            if chunk.is_empty() {
                break;
            }
            inserted += chunk.len() as u64;
            refresh_token::Entity::insert_many(chunk).exec_without_returning(&txn).await?;
            in_txn += 1;
        }
        txn.commit().await?;
        if in_txn < 100 {
            return Ok(inserted);
        }
    }
}

/// Deletes the tokens of a single-use pool (ids in `range`) that a run did not use, so they
/// do not pile up run after run.
pub async fn drop_unused(db: &DatabaseConnection, (before, after): (i64, i64)) -> Result<()> {
    refresh_token::Entity::delete_many()
        .filter(refresh_token::Column::Id.gt(before))
        .filter(refresh_token::Column::Id.lte(after))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Lets PostgreSQL catch up with the benchmark's own bulk writes (the dataset, the filler
/// tokens, each single-use pool and its removal) before a run is measured: `VACUUM (ANALYZE)`
/// sets the rows' hint bits and visibility and refreshes the planner's statistics, and
/// `CHECKPOINT` writes the dirty buffers out. Otherwise autovacuum and the checkpointer do
/// that work during the next runs, and the table charges the service for the benchmark's
/// set-up (as a DBA would, after a bulk import). SQLite has no such debt: the bulk writes
/// checkpoint their own WAL. A failure is reported, not fatal.
pub async fn settle(db: &DatabaseConnection) {
    if db.get_database_backend() != sea_orm::DbBackend::Postgres {
        return;
    }
    for sql in ["VACUUM (ANALYZE)", "CHECKPOINT"] {
        if let Err(e) = db.execute_unprepared(sql).await {
            println!("  note: `{sql}` before the run failed: {e}");
        }
    }
}

pub async fn max_refresh_id(db: &DatabaseConnection) -> Result<i64> {
    use sea_orm::sea_query::ExprTrait;
    let max: Option<Option<i64>> = refresh_token::Entity::find()
        .select_only()
        .column_as(Expr::col(refresh_token::Column::Id).max(), "max_id")
        .into_tuple()
        .one(db)
        .await?;
    Ok(max.flatten().unwrap_or(0))
}

pub async fn count_refresh_tokens(db: &DatabaseConnection) -> Result<u64> {
    Ok(refresh_token::Entity::find().count(db).await?)
}
