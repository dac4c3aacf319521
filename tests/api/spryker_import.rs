//! `import-spryker` (docs/migrating-from-spryker.md): a Spryker-shaped shop (Propel's column
//! names and types) in a real MariaDB and a real PostgreSQL, imported into both target
//! databases; the original passwords log in and become Argon2id, the company users and
//! company resources answer under their original uuids; a re-import applies changes, a dry
//! run writes nothing, and a bad row is named and stops the whole import.

use entity::customer;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::{
    helpers::{Db, TestApp, on_both_databases},
    legacy_hashes::symfony_bcrypt,
    mariadb, postgres,
};
use glue_auth::spryker::{self, Progress, Report, TableReport};

on_both_databases!(a_shop_in_mariadb_moves_over_and_syncs, a_shop_in_postgres_moves_over);

const SCHEMA_MYSQL: &str = include_str!("spryker/schema-mysql.sql");
const SCHEMA_POSTGRES: &str = include_str!("spryker/schema-postgres.sql");

/// The uuid Spryker's uuid behaviour gives a row: uuid5(OID, "<table>.<key columns>").
fn spryker_uuid(name: &str) -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_OID, name.as_bytes())
}

fn long_password() -> String {
    format!("{}-and-its-tail", "a-long-passphrase ".repeat(5))
}

const UNICODE: &str = "Пароль-密码-🔑-lang";

/// The shop: SQL that MySQL and PostgreSQL both take (TRUE/FALSE, ENUMs as their index).
fn shop_rows() -> Vec<String> {
    let c = |name: &str| spryker_uuid(name);
    let short = symfony_bcrypt("change123");
    let long = symfony_bcrypt(&long_password());
    let unicode = symfony_bcrypt(UNICODE);
    vec![
        "INSERT INTO spy_country (id_country, iso2_code, iso3_code, name) VALUES \
         (1, 'DE', 'DEU', 'Germany'), (2, 'AT', 'AUT', 'Austria')"
            .into(),
        "INSERT INTO spy_permission (id_permission, configuration_signature, key) VALUES \
         (1, '[]', 'SeeCompanyUsersPermissionPlugin'), (2, '[]', 'AddCompanyUserPermissionPlugin')"
            .into(),
        format!(
            "INSERT INTO spy_company (id_company, is_active, key, name, status, uuid) VALUES \
             (1, TRUE, 'acme', 'Acme Corp', 1, '{}'), (2, TRUE, 'beta', 'Beta GmbH', 1, '{}'), \
             (3, FALSE, 'gamma', 'Gamma Ltd', 2, '{}')",
            c("spy_company.1"),
            c("spy_company.2"),
            c("spy_company.3")
        ),
        format!(
            "INSERT INTO spy_company_unit_address (id_company_unit_address, fk_company, fk_country, \
             address1, address2, city, zip_code, phone, comment, uuid) VALUES \
             (1, 1, 1, 'Julie-Wolfthorn-Straße', '1', 'Berlin', '10115', '+49 30 1', 'HQ', '{}'), \
             (2, 1, 2, 'Ring', '2', 'Wien', '1010', NULL, NULL, '{}'), \
             (3, NULL, 1, 'Nowhere', '0', 'Berlin', '10115', NULL, NULL, '{}')",
            c("spy_company_unit_address.1.1"),
            c("spy_company_unit_address.2.1"),
            c("spy_company_unit_address.3.")
        ),
        format!(
            "INSERT INTO spy_company_business_unit (id_company_business_unit, fk_company, \
             default_billing_address, name, email, phone, iban, bic, uuid) VALUES \
             (1, 1, 1, 'Acme HQ', 'hq@acme.example', '+49 30 1', 'DE02120300000000202051', 'BYLADEM1001', '{}'), \
             (2, 1, NULL, 'Acme Sales', NULL, NULL, NULL, NULL, '{}'), \
             (3, 2, NULL, 'Beta Main', 'main@beta.example', NULL, NULL, NULL, '{}')",
            c("spy_company_business_unit.1.1"),
            c("spy_company_business_unit.2.1"),
            c("spy_company_business_unit.3.2")
        ),
        "INSERT INTO spy_company_unit_address_to_company_business_unit \
         (fk_company_unit_address, fk_company_business_unit) VALUES (1, 1), (2, 1), (2, 2)"
            .into(),
        format!(
            "INSERT INTO spy_company_role (id_company_role, fk_company, is_default, name, uuid) VALUES \
             (1, 1, FALSE, 'Admin', '{}'), (2, 1, TRUE, 'Buyer', '{}'), (3, 2, TRUE, 'Admin', '{}')",
            c("spy_company_role.1.1"),
            c("spy_company_role.2.1"),
            c("spy_company_role.3.2")
        ),
        "INSERT INTO spy_company_role_to_permission (fk_company_role, fk_permission, configuration) \
         VALUES (1, 1, '[]'), (1, 2, '[]'), (2, 1, '[]'), (3, 1, '[]')"
            .into(),
        format!(
            "INSERT INTO spy_customer (id_customer, customer_reference, email, salutation, \
             first_name, last_name, gender, date_of_birth, password, registered, anonymized_at, \
             created_at, updated_at) VALUES \
             (1, 'DE--1', 'sonia@acme.example', 1, 'Sonia', 'Wagner', 1, '1990-04-12', '{short}', '2020-01-01', NULL, '2020-01-01 10:00:00', '2024-05-06 07:08:09'), \
             (2, 'DE--2', 'long@acme.example', 0, 'Karl', 'Lang', 0, NULL, '{long}', '2020-01-02', NULL, '2020-01-02 10:00:00', '2020-01-02 10:00:00'), \
             (3, 'DE--3', 'unicode@beta.example', NULL, 'Юлия', 'Schmidt', NULL, NULL, '{unicode}', NULL, NULL, '2021-01-01 00:00:00', '2021-01-01 00:00:00'), \
             (4, 'DE--4', 'gone@acme.example', NULL, NULL, NULL, NULL, NULL, NULL, NULL, '2023-03-03 03:03:03', '2020-01-01 00:00:00', '2023-03-03 03:03:03'), \
             (5, 'DE--5', 'nopassword@acme.example', 4, 'No', 'Password', NULL, NULL, NULL, NULL, NULL, '2020-01-01 00:00:00', '2020-01-01 00:00:00')"
        ),
        format!(
            "INSERT INTO spy_company_user (id_company_user, fk_company, fk_company_business_unit, \
             fk_customer, is_active, is_default, uuid) VALUES \
             (1, 1, 1, 1, TRUE, TRUE, '{}'), (2, 2, 3, 1, TRUE, FALSE, '{}'), \
             (3, 1, 2, 2, TRUE, TRUE, '{}'), (4, 2, 3, 3, TRUE, TRUE, '{}'), \
             (5, 1, 2, 1, TRUE, FALSE, '{}'), (6, 1, 1, 4, TRUE, TRUE, '{}')",
            c("spy_company_user.1.1"),
            c("spy_company_user.2.1"),
            c("spy_company_user.3.2"),
            c("spy_company_user.4.3"),
            c("spy_company_user.5.1"),
            c("spy_company_user.6.4")
        ),
        "INSERT INTO spy_company_role_to_company_user (fk_company_role, fk_company_user) VALUES \
         (1, 1), (3, 2), (2, 3), (3, 4), (2, 5), (2, 6)"
            .into(),
    ]
}

/// MySQL wants the reserved word `key` quoted; PostgreSQL takes it bare.
async fn run_sql(db: &DatabaseConnection, statements: &[String]) {
    let mysql = db.get_database_backend() == sea_orm::DbBackend::MySql;
    for sql in statements {
        let sql = if mysql {
            sql.replace(" key,", " `key`,").replace(" key)", " `key`)")
        } else {
            sql.clone()
        };
        db.execute_unprepared(&sql).await.unwrap_or_else(|e| panic!("{e}: {sql}"));
    }
}

async fn source_with_shop(url: &str, schema: &str) -> DatabaseConnection {
    let db = sea_orm::Database::connect(url).await.unwrap();
    for statement in schema.split(';').filter(|s| s.contains("CREATE")) {
        db.execute_unprepared(statement).await.unwrap_or_else(|e| panic!("{e}: {statement}"));
    }
    run_sql(&db, &shop_rows()).await;
    db
}

/// Keeps what the import reports as it goes, and checks its order.
#[derive(Default)]
struct Recorded {
    begun: Vec<(&'static str, u64)>,
    advanced: u64,
    ended: Vec<TableReport>,
}

impl Progress for Recorded {
    fn begin(&mut self, table: &'static str, total: u64) {
        self.begun.push((table, total));
    }
    fn advance(&mut self, rows: u64) {
        self.advanced += rows;
    }
    fn end(&mut self, report: &TableReport) {
        assert_eq!(self.begun.last().map(|b| b.0), Some(report.table));
        self.ended.push(report.clone());
    }
}

async fn import(source: &DatabaseConnection, app: &TestApp, dry_run: bool) -> Report {
    let mut progress = Recorded::default();
    let report = spryker::import(source, &app.db, dry_run, &mut progress).await.unwrap();
    assert_eq!(progress.ended, report.tables);
    report
}

fn table<'r>(report: &'r Report, name: &str) -> &'r TableReport {
    report.tables.iter().find(|t| t.table == name).unwrap_or_else(|| panic!("no {name}"))
}

/// (read, new, changed, unchanged, skipped) of a table.
fn figures(report: &Report, name: &str) -> (u64, u64, u64, u64, u64) {
    let t = table(report, name);
    (t.read, t.new, t.changed, t.unchanged, t.skipped)
}

async fn stored_hash(app: &TestApp, reference: &str) -> Option<String> {
    customer::Entity::find()
        .filter(customer::Column::CustomerReference.eq(reference))
        .one(&app.db)
        .await
        .unwrap()
        .map(|c| c.password_hash)
        .unwrap_or_else(|| panic!("no customer {reference}"))
}

async fn customers_here(app: &TestApp) -> u64 {
    use sea_orm::PaginatorTrait;
    customer::Entity::find().count(&app.db).await.unwrap()
}

/// Logs in and checks the answer; the access token.
async fn logs_in(app: &TestApp, email: &str, password: &str) -> String {
    let answer = app.login(email, password).await;
    assert_eq!(answer.status, 201, "{email}: {}", answer.body);
    answer.tokens().0
}

/// Everything a storefront sees of the imported shop, for Sonia (DE--1).
async fn the_shop_answers_as_in_spryker(app: &TestApp) {
    let access = logs_in(app, "sonia@acme.example", "change123").await;
    assert!(stored_hash(app, "DE--1").await.unwrap().starts_with("$argon2id$"));
    let mine = app.get_as("/company-users/mine", Some(&access)).await;
    assert_eq!(mine.status, 200, "{}", mine.body);
    let mut ids: Vec<&str> =
        mine.body["data"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    let mut expected: Vec<String> =
        ["spy_company_user.1.1", "spy_company_user.2.1", "spy_company_user.5.1"]
            .iter()
            .map(|n| spryker_uuid(n).to_string())
            .collect();
    expected.sort_unstable();
    assert_eq!(ids, expected, "three memberships, two in the same company");

    let member =
        app.company_user_token(&access, &spryker_uuid("spy_company_user.1.1").to_string()).await;
    assert_eq!(member.status, 201, "{}", member.body);
    let (company_access, _) = member.tokens();
    let company = app.get_as("/companies/mine", Some(&company_access)).await;
    assert_eq!(company.status, 200, "{}", company.body);
    assert_eq!(company.body["data"][0]["id"], spryker_uuid("spy_company.1").to_string());
    assert_eq!(company.body["data"][0]["attributes"]["name"], "Acme Corp");
    assert_eq!(company.body["data"][0]["attributes"]["status"], "approved");
    let unit_id = spryker_uuid("spy_company_business_unit.1.1").to_string();
    let unit =
        app.get_as(&format!("/company-business-units/{unit_id}"), Some(&company_access)).await;
    assert_eq!(unit.status, 200, "{}", unit.body);
    assert_eq!(unit.body["data"]["attributes"]["name"], "Acme HQ");
    assert_eq!(unit.body["data"]["attributes"]["iban"], "DE02120300000000202051");
    let address_id = spryker_uuid("spy_company_unit_address.2.1").to_string();
    let address = app
        .get_as(&format!("/company-business-unit-addresses/{address_id}"), Some(&company_access))
        .await;
    assert_eq!(address.status, 200, "{}", address.body);
    assert_eq!(address.body["data"]["attributes"]["iso2Code"], "AT");
    assert_eq!(address.body["data"]["attributes"]["city"], "Wien");
    let role_id = spryker_uuid("spy_company_role.1.1").to_string();
    let role = app.get_as(&format!("/company-roles/{role_id}"), Some(&company_access)).await;
    assert_eq!(role.status, 200, "{}", role.body);
    assert_eq!(role.body["data"]["attributes"]["name"], "Admin");
    let me = app.get_as("/customers/DE--1", Some(&access)).await;
    assert_eq!(me.status, 200, "{}", me.body);
    let attributes = &me.body["data"]["attributes"];
    assert_eq!(attributes["salutation"], "Mrs");
    assert_eq!(attributes["gender"], "Female");
    assert_eq!(attributes["dateOfBirth"], "1990-04-12");
    assert_eq!(attributes["createdAt"], "2020-01-01 10:00:00.000000");
    assert_eq!(attributes["updatedAt"], "2024-05-06 07:08:09.000000");

    // The other original passwords: over 72 bytes (Symfony's pre-hash) and unicode.
    logs_in(app, "long@acme.example", &long_password()).await;
    assert!(stored_hash(app, "DE--2").await.unwrap().starts_with("$argon2id$"));
    logs_in(app, "unicode@beta.example", UNICODE).await;
    // Only the right password: a cut or another one fails.
    let cut = &long_password()[..72];
    assert_eq!(app.login("long@acme.example", cut).await.status, 401);
    // No password in Spryker: no login.
    assert_eq!(app.login("nopassword@acme.example", "change123").await.status, 401);
}

async fn a_shop_in_mariadb_moves_over_and_syncs(db: Db, test: &str) {
    let server = match mariadb::server() {
        Ok(server) => server,
        Err(why) if !mariadb::required() => {
            eprintln!("SKIPPED without MariaDB: {test}: {why}");
            return;
        }
        Err(why) => panic!("MariaDB is required (GLUE_AUTH_REQUIRE_MARIADB=1): {why}"),
    };
    let Some(app) = TestApp::spawn(db, test).await else { return };
    let source = source_with_shop(&server.fresh_database().await, SCHEMA_MYSQL).await;

    // A dry run says what it would do and writes nothing.
    let dry = import(&source, &app, true).await;
    assert!(dry.dry_run);
    assert_eq!(figures(&dry, "spy_customer"), (5, 4, 0, 0, 1), "the anonymized one stays away");
    assert_eq!(customers_here(&app).await, 0);

    let first = import(&source, &app, false).await;
    assert_eq!(figures(&first, "spy_customer"), (5, 4, 0, 0, 1));
    assert_eq!(figures(&first, "spy_company"), (3, 3, 0, 0, 0));
    assert_eq!(
        figures(&first, "spy_company_unit_address"),
        (3, 2, 0, 0, 1),
        "no company, no address"
    );
    assert_eq!(figures(&first, "spy_company_business_unit"), (3, 3, 0, 0, 0));
    assert_eq!(
        figures(&first, "spy_company_unit_address_to_company_business_unit"),
        (3, 3, 0, 0, 0)
    );
    assert_eq!(figures(&first, "spy_company_role"), (3, 3, 0, 0, 0));
    assert_eq!(figures(&first, "spy_company_role_to_permission"), (4, 4, 0, 0, 0));
    assert_eq!(figures(&first, "spy_company_user"), (6, 5, 0, 0, 1), "the anonymized one's too");
    assert_eq!(figures(&first, "spy_company_role_to_company_user"), (5, 5, 0, 0, 0));
    the_shop_answers_as_in_spryker(&app).await;

    // Nothing changed in Spryker: nothing changes here, and the hashes upgraded to Argon2id
    // stay (the source still holds the old bcrypt).
    let again = import(&source, &app, false).await;
    for t in &again.tables {
        assert_eq!((t.new, t.changed, t.removed), (0, 0, 0), "{}: {t:?}", t.table);
    }
    assert!(stored_hash(&app, "DE--1").await.unwrap().starts_with("$argon2id$"));
    let sessions = app.login("unicode@beta.example", UNICODE).await.tokens().1;

    // The shop goes on: a new customer with a company user, a changed name, a password
    // changed in Spryker, a role taken away, a company renamed.
    let renewed = symfony_bcrypt("a-new-secret-of-hers");
    let newcomer = symfony_bcrypt("newcomer-pass-42");
    run_sql(
        &source,
        &[
            "UPDATE spy_customer SET last_name = 'Wagner-Lang' WHERE id_customer = 2".into(),
            format!("UPDATE spy_customer SET password = '{renewed}' WHERE id_customer = 3"),
            format!(
                "INSERT INTO spy_customer (id_customer, customer_reference, email, password, \
                 created_at, updated_at) VALUES (6, 'DE--6', 'new@acme.example', '{newcomer}', \
                 '2025-01-01 00:00:00', '2025-01-01 00:00:00')"
            ),
            format!(
                "INSERT INTO spy_company_user (id_company_user, fk_company, fk_company_business_unit, \
                 fk_customer, is_active, is_default, uuid) VALUES (7, 1, 2, 6, TRUE, TRUE, '{}')",
                spryker_uuid("spy_company_user.7.6")
            ),
            "DELETE FROM spy_company_role_to_company_user WHERE fk_company_user = 3".into(),
            "UPDATE spy_company SET name = 'Beta AG' WHERE id_company = 2".into(),
        ],
    )
    .await;
    let dry = import(&source, &app, true).await;
    assert_eq!(figures(&dry, "spy_customer"), (6, 1, 2, 2, 1));
    let changes = &table(&dry, "spy_customer").changes;
    assert!(changes.contains(&"id_customer=2: last_name".to_owned()), "{changes:?}");
    assert!(
        changes.contains(&"id_customer=3: password_hash, imported_password_digest".to_owned()),
        "{changes:?}"
    );
    assert_eq!(customers_here(&app).await, 4, "the dry run wrote nothing");
    let sync = import(&source, &app, false).await;
    assert_eq!(figures(&sync, "spy_customer"), (6, 1, 2, 2, 1));
    assert_eq!(figures(&sync, "spy_company"), (3, 0, 1, 2, 0));
    assert_eq!(figures(&sync, "spy_company_user"), (7, 1, 0, 5, 1));
    assert_eq!(table(&sync, "spy_company_role_to_company_user").removed, 1);
    assert_eq!(app.login("unicode@beta.example", UNICODE).await.status, 401, "the old password");
    logs_in(&app, "unicode@beta.example", "a-new-secret-of-hers").await;
    // A password changed in Spryker ends the customer's sessions here.
    app.refresh(&sessions).await.assert_error(401, Some("004"), "Failed to refresh token.");
    let access = logs_in(&app, "new@acme.example", "newcomer-pass-42").await;
    let member =
        app.company_user_token(&access, &spryker_uuid("spy_company_user.7.6").to_string()).await;
    assert_eq!(member.status, 201, "{}", member.body);

    // A bad row: named by its table and id, and nothing of the run is written.
    run_sql(
        &source,
        &[
            "UPDATE spy_customer SET first_name = 'Charles' WHERE id_customer = 2".into(),
            "INSERT INTO spy_company_user (id_company_user, fk_company, fk_customer, is_active, \
             is_default, uuid) VALUES (8, 1, 5, TRUE, FALSE, 'not-a-uuid')"
                .into(),
        ],
    )
    .await;
    let mut progress = Recorded::default();
    let err = spryker::import(&source, &app.db, false, &mut progress).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "spy_company_user id_company_user=8: uuid `not-a-uuid` is no uuid; nothing was imported"
    );
    let karl = customer::Entity::find()
        .filter(customer::Column::CustomerReference.eq("DE--2"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(karl.first_name, "Karl", "the customers read before the bad row were not written");
}

async fn a_shop_in_postgres_moves_over(db: Db, test: &str) {
    let server = match postgres::server() {
        Ok(server) => server,
        Err(why) if !postgres::required() => {
            eprintln!("SKIPPED without PostgreSQL: {test}: {why}");
            return;
        }
        Err(why) => panic!("PostgreSQL is required: {why}"),
    };
    let Some(app) = TestApp::spawn(db, test).await else { return };
    let source_url = server.fresh_database().await;
    let source = source_with_shop(&source_url, SCHEMA_POSTGRES).await;

    // The command, dry: what it would do, per table, and nothing written.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_glue-auth"))
        .arg("--data-dir")
        .arg(app.data_dir.path())
        .args(["--log", "warn", "--database-url", &app.database_url, "import-spryker", "--dry-run"])
        .args(["--source-url", &source_url])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("dry run: nothing was written"), "{stdout}");
    let line = stdout.lines().find(|l| l.starts_with("spy_customer ")).unwrap();
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        words[1..11],
        ["5", "read", "4", "new", "0", "changed", "0", "unchanged", "0", "removed"],
        "{line}"
    );
    assert_eq!(customers_here(&app).await, 0);

    let first = import(&source, &app, false).await;
    assert_eq!(figures(&first, "spy_customer"), (5, 4, 0, 0, 1));
    assert_eq!(figures(&first, "spy_company_user"), (6, 5, 0, 0, 1));
    the_shop_answers_as_in_spryker(&app).await;
}
