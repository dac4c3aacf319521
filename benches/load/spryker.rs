//! `--spryker-import`: how fast `glue-auth import-spryker` moves a large shop over
//! (docs/benchmarks.md §4). A throwaway MariaDB (Debian's `mariadb-server`, through
//! `testkit::mariadb`) gets Spryker's tables as Propel makes them and is filled by MariaDB
//! itself (its SEQUENCE engine): N customers with one bcrypt hash, one company user each
//! with one role, spread over N / 1000 companies with a business unit, an address and a role
//! each. Then, for each target database, the release binary imports it (a first import, then
//! an unchanged re-run that syncs), timed, and set against two ceilings measured in the same
//! run: (r) the same source queries in the same chunks with nothing written, and (w) the same
//! rows written here by plain multi-row INSERTs in one transaction, with nothing read.

use std::{
    fs,
    process::Command,
    time::{Duration, Instant},
};

use clap::Parser as _;
use entity::{
    company, company_business_unit, company_role, company_user, company_user_role, customer,
};
use glue_auth::spryker::{CHUNK, source::Source};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ConnectionTrait, Database, EntityTrait, IntoActiveModel,
    PaginatorTrait, TransactionTrait,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    PASSWORD, Result, SERVICE_BIN,
    database::{PgCluster, sqlite_url},
    options::{DbKind, Options},
    service::WorkDir,
};

/// Spryker's MySQL tables, as the import tests create them.
const SCHEMA: &str = include_str!("../../tests/api/spryker/schema-mysql.sql");

/// Customers per company in the generated shop.
const PER_COMPANY: usize = 1000;

/// The shop's size.
#[derive(Debug, Clone, Copy)]
struct Shop {
    customers: usize,
    companies: usize,
}

impl Shop {
    /// Rows the import reads: every table's rows and links.
    fn rows(self) -> usize {
        // customers, company users, their role links; per company: the company, an address,
        // its unit link, a unit, a role and its permission.
        3 * self.customers + 6 * self.companies
    }
}

/// The source server; killed when dropped (and by a watchdog if the benchmark is killed).
struct ShopServer {
    server: testkit::mariadb::Server,
    version: String,
}

impl Drop for ShopServer {
    fn drop(&mut self) {
        // By its pid file: as root, the child is `runuser`, not the server. Before the
        // working directory (and the pid file in it) is removed.
        let _ = Command::new("sh").arg("-c").arg(self.server.stop_shell()).status();
        let _ = self.server.server.wait();
    }
}

fn start_mariadb(work: &WorkDir) -> Result<ShopServer> {
    let bins = testkit::mariadb::Binaries::find().ok_or(
        "--spryker-import needs MariaDB's server binaries (mariadbd, mariadb-install-db); \
         Debian: apt-get install mariadb-server",
    )?;
    let version = Command::new(&bins.server)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let dir = work.path.join("mariadb");
    fs::create_dir_all(&dir)?;
    // The source is only read during the measured runs; filling it need not be durable.
    let settings = ["innodb-buffer-pool-size=1G", "innodb-flush-log-at-trx-commit=0"];
    let mut server = testkit::mariadb::Server::start(&bins, &dir, &settings)?;
    testkit::cleanup_on_exit(&server.stop_shell())?;
    server.wait_ready()?;
    Ok(ShopServer { server, version })
}

/// One bcrypt hash as Spryker stores them (`$2y$`, cost 12) for every customer.
fn spryker_hash() -> Result<String> {
    Ok(bcrypt::hash_with_result(PASSWORD, 12)?.format_for_version(bcrypt::Version::TwoY))
}

/// The statements that fill the shop, each one `INSERT … SELECT` over a MariaDB sequence.
fn fill_statements(shop: Shop, hash: &str) -> Vec<String> {
    let (n, c) = (shop.customers, shop.companies);
    let company = format!("((seq - 1) % {c}) + 1");
    vec![
        "INSERT INTO spy_country (id_country, iso2_code, iso3_code, name) \
         VALUES (1, 'DE', 'DEU', 'Germany')"
            .into(),
        "INSERT INTO spy_permission (id_permission, `key`) VALUES (1, 'AddCartItemPermissionPlugin')"
            .into(),
        format!(
            "INSERT INTO spy_customer (id_customer, customer_reference, email, salutation, \
             first_name, last_name, gender, date_of_birth, password, created_at, updated_at) \
             SELECT seq, CONCAT('DE--', seq), CONCAT('customer', seq, '@example.com'), seq % 5, \
             CONCAT('First', seq), CONCAT('Last', seq), seq % 2, \
             DATE('1960-01-01') + INTERVAL (seq % 15000) DAY, '{hash}', \
             '2024-01-01 00:00:00', '2025-06-01 12:00:00' FROM seq_1_to_{n}"
        ),
        format!(
            "INSERT INTO spy_company (id_company, is_active, `key`, name, status, uuid) \
             SELECT seq, 1, CONCAT('company-', seq), CONCAT('Company ', seq), 1, UUID() \
             FROM seq_1_to_{c}"
        ),
        format!(
            "INSERT INTO spy_company_unit_address (id_company_unit_address, fk_company, \
             fk_country, address1, address2, city, zip_code, uuid) \
             SELECT seq, seq, 1, CONCAT('Street ', seq), '1', 'Berlin', '10115', UUID() \
             FROM seq_1_to_{c}"
        ),
        format!(
            "INSERT INTO spy_company_business_unit (id_company_business_unit, fk_company, \
             default_billing_address, email, name, uuid) \
             SELECT seq, seq, seq, CONCAT('unit', seq, '@example.com'), \
             CONCAT('Headquarters ', seq), UUID() FROM seq_1_to_{c}"
        ),
        format!(
            "INSERT INTO spy_company_unit_address_to_company_business_unit \
             (fk_company_business_unit, fk_company_unit_address) SELECT seq, seq FROM seq_1_to_{c}"
        ),
        format!(
            "INSERT INTO spy_company_role (id_company_role, fk_company, is_default, name, uuid) \
             SELECT seq, seq, 1, 'Buyer', UUID() FROM seq_1_to_{c}"
        ),
        format!(
            "INSERT INTO spy_company_role_to_permission (fk_company_role, fk_permission, \
             configuration) SELECT seq, 1, '[]' FROM seq_1_to_{c}"
        ),
        format!(
            "INSERT INTO spy_company_user (id_company_user, fk_company, fk_company_business_unit, \
             fk_customer, is_active, is_default, uuid) \
             SELECT seq, {company}, {company}, seq, 1, 1, UUID() FROM seq_1_to_{n}"
        ),
        format!(
            "INSERT INTO spy_company_role_to_company_user (fk_company_role, fk_company_user, \
             created_at, updated_at) SELECT {company}, seq, '2024-01-01 00:00:00', \
             '2024-01-01 00:00:00' FROM seq_1_to_{n}"
        ),
    ]
}

/// Creates the `spryker` database with Spryker's tables and fills it; gives its URL.
async fn fill(source: &ShopServer, shop: Shop, hash: &str) -> Result<String> {
    let admin = Database::connect(source.server.url("mysql")).await?;
    admin.execute_unprepared("CREATE DATABASE spryker CHARACTER SET utf8mb4").await?;
    admin.close().await?;
    let url = source.server.url("spryker");
    let db = Database::connect(&url).await?;
    for statement in SCHEMA.split(';').filter(|s| s.contains("CREATE")) {
        db.execute_unprepared(statement).await?;
    }
    for statement in fill_statements(shop, hash) {
        db.execute_unprepared(&statement).await?;
    }
    db.close().await?;
    Ok(url)
}

/// Runs the release binary's `import-spryker` into `url`; gives its seconds and summary.
fn run_import(work: &WorkDir, url: &str, source_url: &str) -> Result<(f64, String)> {
    let start = Instant::now();
    let out = Command::new(SERVICE_BIN)
        .arg("--data-dir")
        .arg(&work.path)
        .args(["--database-url", url, "--log", "warn", "import-spryker", "--source-url"])
        .arg(source_url)
        .output()?;
    let seconds = start.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "glue-auth import-spryker failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok((seconds, stdout))
}

fn migrate(work: &WorkDir, url: &str) -> Result<()> {
    let out = Command::new(SERVICE_BIN)
        .arg("--data-dir")
        .arg(&work.path)
        .args(["--database-url", url, "--log", "warn", "migrate"])
        .output()?;
    if !out.status.success() {
        return Err(
            format!("glue-auth migrate failed: {}", String::from_utf8_lossy(&out.stderr)).into()
        );
    }
    Ok(())
}

/// Ceiling (r): the import's own source queries, chunk by chunk, with nothing written.
async fn read_ceiling(source_url: &str) -> Result<(f64, usize)> {
    let db = Database::connect(source_url).await?;
    let start = Instant::now();
    let source = Source::open(&db).await?;
    let mut rows = 0;
    // Each table in the import's order, chunk by chunk by id, with the links of each chunk.
    macro_rules! read {
        ($read:ident $(, $links:ident)?) => {{
            let mut after = 0;
            loop {
                let chunk = source.$read(after, CHUNK).await?;
                let Some(last) = chunk.last() else { break };
                after = last.id;
                rows += chunk.len();
                $(
                    let ids: Vec<i32> = chunk.iter().map(|r| r.id).collect();
                    rows += source.$links(&ids).await?.len();
                )?
            }
        }};
    }
    read!(customers);
    read!(companies);
    read!(addresses, address_links);
    read!(business_units);
    read!(roles, role_permissions);
    read!(company_users, company_user_roles);
    source.close().await?;
    let seconds = start.elapsed().as_secs_f64();
    db.close().await?;
    Ok((seconds, rows))
}

/// Ceiling (w): the shop's customers, companies, units, roles, company users and their role
/// links written into the empty, migrated `url` by multi-row INSERTs of `CHUNK` rows in one
/// transaction, with the service's connection settings; nothing is read.
async fn write_ceiling(url: &str, shop: Shop, hash: &str) -> Result<(f64, usize)> {
    let args = ["glue-auth", "--database-url", url, "serve"];
    let config = glue_auth::cli::Cli::try_parse_from(args)?.config;
    let db = glue_auth::db::connect(url, &config).await?;
    let digest = hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, hash.as_bytes()));
    let start = Instant::now();
    let txn = db.begin().await?;
    let mut rows = 0;
    let c = i32::try_from(shop.companies)?;
    let n = i32::try_from(shop.customers)?;
    let ids = |count: i32| (1..=count).collect::<Vec<i32>>();
    for chunk in ids(c).chunks(CHUNK) {
        let companies = chunk.iter().map(|&i| company::ActiveModel {
            uuid: Set(Uuid::new_v4()),
            name: Set(format!("Company {i}")),
            status: Set("approved".into()),
            is_active: Set(true),
            ..Default::default()
        });
        company::Entity::insert_many(companies).exec_without_returning(&txn).await?;
        let units = chunk.iter().map(|&i| company_business_unit::ActiveModel {
            uuid: Set(Uuid::new_v4()),
            company_id: Set(i),
            name: Set(format!("Headquarters {i}")),
            email: Set(format!("unit{i}@example.com")),
            phone: Set(String::new()),
            external_url: Set(String::new()),
            bic: Set(String::new()),
            iban: Set(String::new()),
            default_billing_address_id: Set(None),
            ..Default::default()
        });
        company_business_unit::Entity::insert_many(units).exec_without_returning(&txn).await?;
        let roles = chunk.iter().map(|&i| company_role::ActiveModel {
            uuid: Set(Uuid::new_v4()),
            company_id: Set(i),
            name: Set("Buyer".into()),
            is_default: Set(true),
            ..Default::default()
        });
        company_role::Entity::insert_many(roles).exec_without_returning(&txn).await?;
        rows += 3 * chunk.len();
    }
    for chunk in ids(n).chunks(CHUNK) {
        let customers = chunk.iter().map(|&i| {
            customer::Model {
                id: 0,
                customer_reference: format!("DE--{i}"),
                email: format!("customer{i}@example.com"),
                email_normalized: format!("customer{i}@example.com"),
                password_hash: Some(hash.to_owned()),
                salutation: "Mr".into(),
                first_name: format!("First{i}"),
                last_name: format!("Last{i}"),
                is_active: true,
                gender: Some("Male".into()),
                date_of_birth: Some("1980-01-01".into()),
                created_at: 1_704_067_200,
                updated_at: 1_748_779_200,
                revoked_refresh_tokens_through: None,
                imported_password_digest: Some(digest.clone()),
            }
            .into_active_model()
        });
        let customers = customers.map(|mut m| {
            m.not_set(customer::Column::Id);
            m
        });
        customer::Entity::insert_many(customers).exec_without_returning(&txn).await?;
        let company_of = |i: i32| (i - 1) % c + 1;
        let users = chunk.iter().map(|&i| company_user::ActiveModel {
            uuid: Set(Uuid::new_v4()),
            customer_id: Set(i),
            company_id: Set(company_of(i)),
            business_unit_id: Set(Some(company_of(i))),
            is_active: Set(true),
            is_default: Set(true),
            created_at: Set(1_704_067_200),
            ..Default::default()
        });
        company_user::Entity::insert_many(users).exec_without_returning(&txn).await?;
        let links = chunk.iter().map(|&i| company_user_role::ActiveModel {
            company_user_id: Set(i),
            role_id: Set(company_of(i)),
        });
        company_user_role::Entity::insert_many(links).exec_without_returning(&txn).await?;
        rows += 3 * chunk.len();
    }
    txn.commit().await?;
    let seconds = start.elapsed().as_secs_f64();
    db.close().await?;
    Ok((seconds, rows))
}

fn hex(digest: aws_lc_rs::digest::Digest) -> String {
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks that `url` holds the whole shop, with Spryker's hash.
async fn check_target(url: &str, shop: Shop, hash: &str) -> Result<()> {
    let db = Database::connect(url).await?;
    let customers = customer::Entity::find().count(&db).await?;
    let users = company_user::Entity::find().count(&db).await?;
    let links = company_user_role::Entity::find().count(&db).await?;
    let sample = customer::Entity::find().one(&db).await?;
    db.close().await?;
    let n = shop.customers as u64;
    if (customers, users, links) != (n, n, n) {
        return Err(format!(
            "the import left {customers} customers, {users} company users and {links} role \
             links, not {n} of each"
        )
        .into());
    }
    if sample.and_then(|c| c.password_hash).as_deref() != Some(hash) {
        return Err("an imported customer does not have Spryker's bcrypt hash".into());
    }
    Ok(())
}

/// The figures of one target database.
struct Figures {
    import_s: f64,
    sync_s: f64,
    read_s: f64,
    write_s: f64,
    /// Rows the write ceiling inserted.
    write_rows: usize,
    summary: String,
}

fn per_second(rows: usize, seconds: f64) -> f64 {
    rows as f64 / seconds.max(1e-9)
}

/// The whole `--spryker-import` run; gives its part of results.json.
pub fn run(runtime: &tokio::runtime::Runtime, opts: &Options, work: &WorkDir) -> Result<Value> {
    let customers = opts.import_customers;
    let shop = Shop { customers, companies: customers.div_ceil(PER_COMPANY) };
    let source = start_mariadb(work)?;
    let hash = spryker_hash()?;
    println!(
        "\nSpryker import: {} customers, each with one company user and one role link, in {} \
         companies (one business unit, address and role each), from {}",
        customers, shop.companies, source.version
    );
    let start = Instant::now();
    let source_url = runtime.block_on(fill(&source, shop, &hash))?;
    println!("  source filled by MariaDB itself in {:.1} s", start.elapsed().as_secs_f64());

    let mut postgres = None;
    let mut results = Vec::new();
    for &db in &opts.databases {
        let (url, ceiling_url) = match db {
            DbKind::Sqlite => (sqlite_url(work, "import"), sqlite_url(work, "import-ceiling")),
            DbKind::Postgres => {
                let cluster = match postgres.get_or_insert_with(|| PgCluster::start(work)) {
                    Ok(cluster) => cluster,
                    Err(why) => {
                        println!("\nPostgreSQL skipped: {why}");
                        continue;
                    }
                };
                (
                    runtime.block_on(cluster.create_database("spryker_import"))?,
                    runtime.block_on(cluster.create_database("spryker_import_ceiling"))?,
                )
            }
        };
        for path in [&url, &ceiling_url] {
            if let Some(file) = path.strip_prefix("sqlite://").and_then(|p| p.split('?').next()) {
                fs::create_dir_all(std::path::Path::new(file).parent().unwrap_or(&work.path))?;
            }
        }
        println!("\n{}:", db.label());
        migrate(work, &url)?;
        let (import_s, summary) = run_import(work, &url, &source_url)?;
        runtime.block_on(check_target(&url, shop, &hash))?;
        let (sync_s, _) = run_import(work, &url, &source_url)?;
        runtime.block_on(check_target(&url, shop, &hash))?;
        let (read_s, read_rows) = runtime.block_on(read_ceiling(&source_url))?;
        if read_rows != shop.rows() {
            return Err(format!("ceiling (r) read {read_rows} rows, not {}", shop.rows()).into());
        }
        migrate(work, &ceiling_url)?;
        let (write_s, write_rows) = runtime.block_on(write_ceiling(&ceiling_url, shop, &hash))?;
        let figures = Figures { import_s, sync_s, read_s, write_s, write_rows, summary };
        print_figures(shop, &figures);
        results.push(json!({
            "database": db.label(),
            "customers": customers,
            "rows": shop.rows(),
            "import_s": figures.import_s,
            "sync_unchanged_s": figures.sync_s,
            "ceiling_read_s": figures.read_s,
            "ceiling_write_s": figures.write_s,
            "share_of_ceiling": (figures.read_s + figures.write_s) / figures.import_s,
            "summary": figures.summary,
        }));
    }
    drop(postgres);
    Ok(json!({ "source": source.version, "companies": shop.companies, "runs": results }))
}

fn print_figures(shop: Shop, f: &Figures) {
    let rows = shop.rows();
    for line in f.summary.lines() {
        println!("    {line}");
    }
    let ceiling = f.read_s + f.write_s;
    let minutes = |s: f64| Duration::from_secs_f64(s).as_secs() / 60;
    println!(
        "  first import:       {:>7.1} s ({}m{:02}s), {:>9.0} rows/s",
        f.import_s,
        minutes(f.import_s),
        f.import_s as u64 % 60,
        per_second(rows, f.import_s)
    );
    println!(
        "  unchanged re-run:   {:>7.1} s, {:>9.0} rows/s (reads both sides, compares, writes nothing)",
        f.sync_s,
        per_second(rows, f.sync_s)
    );
    println!(
        "  ceiling (r) read:   {:>7.1} s, {:>9.0} rows/s (the import's source queries, nothing written)",
        f.read_s,
        per_second(rows, f.read_s)
    );
    println!(
        "  ceiling (w) write:  {:>7.1} s, {:>9.0} rows/s (plain multi-row INSERTs of the big tables, one transaction)",
        f.write_s,
        per_second(f.write_rows, f.write_s)
    );
    println!(
        "  => the first import takes {:.0}% of the time of (r) + (w) = {:.1} s",
        100.0 * f.import_s / ceiling,
        ceiling,
    );
}
