//! Reading Spryker's tables (MySQL/MariaDB or PostgreSQL), in chunks of ascending id, inside
//! one read-only repeatable-read transaction: every chunk sees the same snapshot of the shop.
//! The column types are Propel's (docs/migrating-from-spryker.md §2): an ENUM is the index of
//! its value in the schema's value set (TINYINT / INT2), a BOOLEAN is TINYINT(1) or BOOLEAN,
//! and timestamps are read as Unix seconds in UTC.

use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    IsolationLevel, QueryResult, Statement, TransactionTrait, Value,
};

/// An open snapshot of the source database.
pub struct Source {
    txn: DatabaseTransaction,
    backend: DbBackend,
}

/// A row of `spy_customer`.
#[derive(Debug)]
pub struct Customer {
    pub id: i32,
    pub reference: String,
    pub email: String,
    pub salutation: Option<i64>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub gender: Option<i64>,
    pub date_of_birth: Option<String>,
    pub password: Option<String>,
    pub anonymized: bool,
    pub created_at: Option<i64>,
    pub updated_at: Option<i64>,
}

/// A row of `spy_company`.
#[derive(Debug)]
pub struct Company {
    pub id: i32,
    pub uuid: Option<String>,
    pub name: String,
    pub status: i64,
    pub active: bool,
}

/// A row of `spy_company_unit_address`, with its country's ISO code.
#[derive(Debug)]
pub struct Address {
    pub id: i32,
    pub uuid: Option<String>,
    pub company: Option<i32>,
    pub address1: Option<String>,
    pub address2: Option<String>,
    pub address3: Option<String>,
    pub zip_code: Option<String>,
    pub city: Option<String>,
    pub phone: Option<String>,
    pub comment: Option<String>,
    pub iso2_code: Option<String>,
}

/// A row of `spy_company_business_unit`.
#[derive(Debug)]
pub struct BusinessUnit {
    pub id: i32,
    pub uuid: Option<String>,
    pub company: i32,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub external_url: Option<String>,
    pub bic: Option<String>,
    pub iban: Option<String>,
    pub default_billing_address: Option<i32>,
}

/// A row of `spy_company_role`.
#[derive(Debug)]
pub struct Role {
    pub id: i32,
    pub uuid: Option<String>,
    pub company: i32,
    pub name: String,
    pub default: bool,
}

/// A row of `spy_company_user`.
#[derive(Debug)]
pub struct CompanyUser {
    pub id: i32,
    pub uuid: Option<String>,
    pub customer: i32,
    pub company: i32,
    pub business_unit: Option<i32>,
    pub active: bool,
    pub default: bool,
}

/// Spryker's table names, as the import names them in its progress and its errors.
pub mod table {
    pub const CUSTOMER: &str = "spy_customer";
    pub const COMPANY: &str = "spy_company";
    pub const ADDRESS: &str = "spy_company_unit_address";
    pub const ADDRESS_TO_UNIT: &str = "spy_company_unit_address_to_company_business_unit";
    pub const BUSINESS_UNIT: &str = "spy_company_business_unit";
    pub const ROLE: &str = "spy_company_role";
    pub const ROLE_TO_PERMISSION: &str = "spy_company_role_to_permission";
    pub const COMPANY_USER: &str = "spy_company_user";
    pub const ROLE_TO_COMPANY_USER: &str = "spy_company_role_to_company_user";
}

/// An integer column whatever its width (TINYINT, INT2, INTEGER, BIGINT) or a boolean.
fn int(row: &QueryResult, index: usize) -> Result<Option<i64>, DbErr> {
    if let Ok(v) = row.try_get_by_index::<Option<i64>>(index) {
        return Ok(v);
    }
    if let Ok(v) = row.try_get_by_index::<Option<i32>>(index) {
        return Ok(v.map(i64::from));
    }
    if let Ok(v) = row.try_get_by_index::<Option<i16>>(index) {
        return Ok(v.map(i64::from));
    }
    if let Ok(v) = row.try_get_by_index::<Option<i8>>(index) {
        return Ok(v.map(i64::from));
    }
    if let Ok(v) = row.try_get_by_index::<Option<bool>>(index) {
        return Ok(v.map(i64::from));
    }
    row.try_get_by_index::<Option<i64>>(index)
}

fn id(row: &QueryResult, index: usize) -> Result<Option<i32>, DbErr> {
    int(row, index)?
        .map(|v| i32::try_from(v).map_err(|_| DbErr::Type(format!("id {v} is out of range"))))
        .transpose()
}

fn required_id(row: &QueryResult, index: usize) -> Result<i32, DbErr> {
    id(row, index)?.ok_or_else(|| DbErr::Type(format!("column {index} is null")))
}

fn text(row: &QueryResult, index: usize) -> Result<Option<String>, DbErr> {
    row.try_get_by_index::<Option<String>>(index)
}

fn flag(row: &QueryResult, index: usize) -> Result<bool, DbErr> {
    Ok(int(row, index)?.unwrap_or(0) != 0)
}

impl Source {
    /// Opens the snapshot on `db` (a `mysql://` or `postgres://` connection).
    pub async fn open(db: &DatabaseConnection) -> Result<Self, DbErr> {
        let backend = db.get_database_backend();
        let txn = db
            .begin_with_config(Some(IsolationLevel::RepeatableRead), Some(AccessMode::ReadOnly))
            .await?;
        if backend == DbBackend::MySql {
            // DATETIME columns are read as UTC; TIMESTAMP ones are UTC whatever the zone.
            txn.execute_unprepared("SET time_zone = '+00:00'").await?;
        }
        Ok(Self { txn, backend })
    }

    /// Unix seconds of a timestamp column.
    fn epoch(&self, column: &str) -> String {
        match self.backend {
            DbBackend::MySql => format!("CAST(UNIX_TIMESTAMP({column}) AS SIGNED)"),
            _ => format!("CAST(EXTRACT(EPOCH FROM {column}) AS BIGINT)"),
        }
    }

    /// A date column as `YYYY-MM-DD`.
    fn date(&self, column: &str) -> String {
        match self.backend {
            DbBackend::MySql => format!("DATE_FORMAT({column}, '%Y-%m-%d')"),
            _ => format!("to_char({column}, 'YYYY-MM-DD')"),
        }
    }

    /// Runs `sql`, whose parameters are written `?`, with `values`. Parameters keep the text
    /// of each query the same from chunk to chunk, so the driver prepares it once: over TCP,
    /// MySQL's driver closing a statement it evicted from its cache and preparing the next
    /// one stalls on delayed ACKs, which made every chunk take ~40 ms longer.
    async fn rows(&self, sql: &str, values: Vec<Value>) -> Result<Vec<QueryResult>, DbErr> {
        let sql = match self.backend {
            DbBackend::MySql => sql.to_owned(),
            _ => {
                let mut numbered = String::with_capacity(sql.len() + 16);
                let mut n = 0;
                for c in sql.chars() {
                    if c == '?' {
                        n += 1;
                        numbered.push_str(&format!("${n}"));
                    } else {
                        numbered.push(c);
                    }
                }
                numbered
            }
        };
        self.txn.query_all_raw(Statement::from_sql_and_values(self.backend, sql, values)).await
    }

    /// The rows of a keyset chunk: `sql` ends in `> ? ORDER BY … LIMIT ?`.
    async fn chunk(&self, sql: &str, after: i32, limit: usize) -> Result<Vec<QueryResult>, DbErr> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.rows(sql, vec![after.into(), limit.into()]).await
    }

    /// The number of rows of `table`.
    pub async fn count(&self, table: &str) -> Result<u64, DbErr> {
        let rows = self.rows(&format!("SELECT COUNT(*) FROM {table}"), vec![]).await?;
        let count = rows.first().map(|r| int(r, 0)).transpose()?.flatten().unwrap_or(0);
        Ok(u64::try_from(count).unwrap_or(0))
    }

    pub async fn customers(&self, after: i32, limit: usize) -> Result<Vec<Customer>, DbErr> {
        let sql = format!(
            "SELECT id_customer, customer_reference, email, salutation, first_name, last_name, \
             gender, {dob}, password, CASE WHEN anonymized_at IS NULL THEN 0 ELSE 1 END, \
             {created}, {updated} FROM spy_customer WHERE id_customer > ? \
             ORDER BY id_customer LIMIT ?",
            dob = self.date("date_of_birth"),
            created = self.epoch("created_at"),
            updated = self.epoch("updated_at"),
        );
        let mut out = Vec::new();
        for r in self.chunk(&sql, after, limit).await? {
            out.push(Customer {
                id: required_id(&r, 0)?,
                reference: text(&r, 1)?.unwrap_or_default(),
                email: text(&r, 2)?.unwrap_or_default(),
                salutation: int(&r, 3)?,
                first_name: text(&r, 4)?,
                last_name: text(&r, 5)?,
                gender: int(&r, 6)?,
                date_of_birth: text(&r, 7)?,
                password: text(&r, 8)?,
                anonymized: flag(&r, 9)?,
                created_at: int(&r, 10)?,
                updated_at: int(&r, 11)?,
            });
        }
        Ok(out)
    }

    pub async fn companies(&self, after: i32, limit: usize) -> Result<Vec<Company>, DbErr> {
        let sql = "SELECT id_company, uuid, name, status, CASE WHEN is_active THEN 1 ELSE 0 END \
             FROM spy_company WHERE id_company > ? ORDER BY id_company LIMIT ?";
        let mut out = Vec::new();
        for r in self.chunk(sql, after, limit).await? {
            out.push(Company {
                id: required_id(&r, 0)?,
                uuid: text(&r, 1)?,
                name: text(&r, 2)?.unwrap_or_default(),
                status: int(&r, 3)?.unwrap_or(0),
                active: flag(&r, 4)?,
            });
        }
        Ok(out)
    }

    pub async fn addresses(&self, after: i32, limit: usize) -> Result<Vec<Address>, DbErr> {
        let sql = "SELECT a.id_company_unit_address, a.uuid, a.fk_company, a.address1, a.address2, \
             a.address3, a.zip_code, a.city, a.phone, a.comment, c.iso2_code \
             FROM spy_company_unit_address a LEFT JOIN spy_country c ON c.id_country = a.fk_country \
             WHERE a.id_company_unit_address > ? ORDER BY a.id_company_unit_address LIMIT ?";
        let mut out = Vec::new();
        for r in self.chunk(sql, after, limit).await? {
            out.push(Address {
                id: required_id(&r, 0)?,
                uuid: text(&r, 1)?,
                company: id(&r, 2)?,
                address1: text(&r, 3)?,
                address2: text(&r, 4)?,
                address3: text(&r, 5)?,
                zip_code: text(&r, 6)?,
                city: text(&r, 7)?,
                phone: text(&r, 8)?,
                comment: text(&r, 9)?,
                iso2_code: text(&r, 10)?,
            });
        }
        Ok(out)
    }

    pub async fn business_units(
        &self,
        after: i32,
        limit: usize,
    ) -> Result<Vec<BusinessUnit>, DbErr> {
        let sql = "SELECT id_company_business_unit, uuid, fk_company, name, email, phone, external_url, \
             bic, iban, default_billing_address FROM spy_company_business_unit \
             WHERE id_company_business_unit > ? ORDER BY id_company_business_unit LIMIT ?";
        let mut out = Vec::new();
        for r in self.chunk(sql, after, limit).await? {
            out.push(BusinessUnit {
                id: required_id(&r, 0)?,
                uuid: text(&r, 1)?,
                company: required_id(&r, 2)?,
                name: text(&r, 3)?.unwrap_or_default(),
                email: text(&r, 4)?,
                phone: text(&r, 5)?,
                external_url: text(&r, 6)?,
                bic: text(&r, 7)?,
                iban: text(&r, 8)?,
                default_billing_address: id(&r, 9)?,
            });
        }
        Ok(out)
    }

    pub async fn roles(&self, after: i32, limit: usize) -> Result<Vec<Role>, DbErr> {
        let sql = "SELECT id_company_role, uuid, fk_company, name, CASE WHEN is_default THEN 1 ELSE 0 END \
             FROM spy_company_role WHERE id_company_role > ? ORDER BY id_company_role \
             LIMIT ?";
        let mut out = Vec::new();
        for r in self.chunk(sql, after, limit).await? {
            out.push(Role {
                id: required_id(&r, 0)?,
                uuid: text(&r, 1)?,
                company: required_id(&r, 2)?,
                name: text(&r, 3)?.unwrap_or_default(),
                default: flag(&r, 4)?,
            });
        }
        Ok(out)
    }

    pub async fn company_users(&self, after: i32, limit: usize) -> Result<Vec<CompanyUser>, DbErr> {
        let sql = "SELECT id_company_user, uuid, fk_customer, fk_company, fk_company_business_unit, \
             CASE WHEN is_active THEN 1 ELSE 0 END, CASE WHEN is_default THEN 1 ELSE 0 END \
             FROM spy_company_user WHERE id_company_user > ? ORDER BY id_company_user \
             LIMIT ?";
        let mut out = Vec::new();
        for r in self.chunk(sql, after, limit).await? {
            out.push(CompanyUser {
                id: required_id(&r, 0)?,
                uuid: text(&r, 1)?,
                customer: required_id(&r, 2)?,
                company: required_id(&r, 3)?,
                business_unit: id(&r, 4)?,
                active: flag(&r, 5)?,
                default: flag(&r, 6)?,
            });
        }
        Ok(out)
    }

    /// (address, business unit) links of the addresses `ids`.
    pub async fn address_links(&self, ids: &[i32]) -> Result<Vec<(i32, i32)>, DbErr> {
        self.pairs(
            "SELECT fk_company_unit_address, fk_company_business_unit \
             FROM spy_company_unit_address_to_company_business_unit \
             WHERE fk_company_unit_address IN",
            ids,
        )
        .await
    }

    /// (company user, role) links of the company users `ids`.
    pub async fn company_user_roles(&self, ids: &[i32]) -> Result<Vec<(i32, i32)>, DbErr> {
        self.pairs(
            "SELECT fk_company_user, fk_company_role FROM spy_company_role_to_company_user \
             WHERE fk_company_user IN",
            ids,
        )
        .await
    }

    /// (role, permission key) of the roles `ids`.
    pub async fn role_permissions(&self, ids: &[i32]) -> Result<Vec<(i32, String)>, DbErr> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // `key` is a reserved word of MySQL; the alias keeps the SQL the same for both.
        let key = if self.backend == DbBackend::MySql { "p.`key`" } else { "p.\"key\"" };
        let sql = format!(
            "SELECT rp.fk_company_role, {key} FROM spy_company_role_to_permission rp \
             JOIN spy_permission p ON p.id_permission = rp.fk_permission \
             WHERE rp.fk_company_role IN ({})",
            placeholders(ids.len())
        );
        let mut out = Vec::new();
        for r in self.rows(&sql, values(ids)).await? {
            out.push((required_id(&r, 0)?, text(&r, 1)?.unwrap_or_default()));
        }
        Ok(out)
    }

    async fn pairs(&self, select: &str, ids: &[i32]) -> Result<Vec<(i32, i32)>, DbErr> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let sql = format!("{select} ({})", placeholders(ids.len()));
        for r in self.rows(&sql, values(ids)).await? {
            out.push((required_id(&r, 0)?, required_id(&r, 1)?));
        }
        Ok(out)
    }

    /// Ends the snapshot (nothing was written to the source).
    pub async fn close(self) -> Result<(), DbErr> {
        self.txn.rollback().await
    }
}

/// `?,?,?`: one parameter for each of `n` values.
fn placeholders(n: usize) -> String {
    vec!["?"; n].join(",")
}

fn values(ids: &[i32]) -> Vec<Value> {
    ids.iter().map(|&id| id.into()).collect()
}
