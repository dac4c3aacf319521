//! `glue-auth import-spryker`: a Spryker shop's customers, companies, business units,
//! addresses, roles and company users, read from its own database and written here in one
//! transaction, keeping every uuid and customer reference (docs/migrating-from-spryker.md).
//! A re-run updates what changed and adds what is new; a dry run does the same and rolls
//! back. A row that cannot be imported is named by its table and id, and nothing is written.

pub mod progress;
pub mod source;

use std::{
    collections::{HashMap, HashSet},
    hash::Hash,
    time::{Duration, Instant},
};

use entity::{
    company, company_business_unit, company_role, company_role_permission, company_unit_address,
    company_unit_address_to_business_unit, company_user, company_user_role, customer,
};
use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction,
    DbErr, EntityTrait, IdenStatic, IntoActiveModel, Iterable, ModelTrait, PrimaryKeyToColumn,
    QueryFilter, SqlErr, TransactionTrait, Value,
};
use uuid::Uuid;

use self::source::{Source, table};
use crate::auth::password;

/// Rows read and written per round trip.
pub const CHUNK: usize = 1000;

/// How many changed rows a report lists per table.
const LISTED: usize = 20;

/// What happened to one source table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableReport {
    pub table: &'static str,
    /// Rows (or links) read from the source.
    pub read: u64,
    /// Added here.
    pub new: u64,
    /// Present here and changed.
    pub changed: u64,
    pub unchanged: u64,
    /// Links present here and not in the source, removed.
    pub removed: u64,
    /// Not imported, and why (an anonymized customer, an address of no company).
    pub skipped: u64,
    /// The first changed rows, with the columns that changed.
    pub changes: Vec<String>,
    pub elapsed: Duration,
}

/// What an import did (or, dry, would do).
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub tables: Vec<TableReport>,
    pub dry_run: bool,
    pub elapsed: Duration,
}

/// Why nothing was imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{table} {id_column}={id}: {message}; nothing was imported")]
    Row { table: &'static str, id_column: &'static str, id: i32, message: String },
    #[error("reading the Spryker database: {0}; nothing was imported")]
    Source(DbErr),
    #[error("writing the database: {0}; nothing was imported")]
    Target(DbErr),
}

/// Told how far an import is: a table begins with its row count, rows are done, it ends.
pub trait Progress {
    fn begin(&mut self, table: &'static str, total: u64);
    fn advance(&mut self, rows: u64);
    fn end(&mut self, report: &TableReport);
}

/// Imports everything from `source_db` into `target`; rolls back at the end when `dry_run`.
pub async fn import(
    source_db: &DatabaseConnection,
    target: &DatabaseConnection,
    dry_run: bool,
    progress: &mut dyn Progress,
) -> Result<Report, ImportError> {
    let started = Instant::now();
    let source = Source::open(source_db).await.map_err(ImportError::Source)?;
    let txn = target.begin().await.map_err(ImportError::Target)?;
    let mut run =
        Run { source: &source, txn: &txn, progress, maps: Maps::default(), tables: vec![] };
    run.all().await?;
    let tables = std::mem::take(&mut run.tables);
    if dry_run {
        txn.rollback().await.map_err(ImportError::Target)?;
    } else {
        txn.commit().await.map_err(ImportError::Target)?;
    }
    source.close().await.map_err(ImportError::Source)?;
    Ok(Report { tables, dry_run, elapsed: started.elapsed() })
}

/// Source ids to the rows written here.
#[derive(Default)]
struct Maps {
    customers: HashMap<i32, i32>,
    /// Anonymized customers that are not here: their company users are skipped too.
    skipped_customers: HashSet<i32>,
    companies: HashMap<i32, i32>,
    /// Address and unit ids with their company here.
    addresses: HashMap<i32, (i32, i32)>,
    units: HashMap<i32, (i32, i32)>,
    roles: HashMap<i32, (i32, i32)>,
    company_users: HashMap<i32, i32>,
}

struct Run<'a> {
    source: &'a Source,
    txn: &'a DatabaseTransaction,
    progress: &'a mut dyn Progress,
    maps: Maps,
    tables: Vec<TableReport>,
}

/// A source row's own error, before it is named.
type RowResult<T> = Result<T, String>;

fn uuid_of(uuid: &Option<String>) -> RowResult<Uuid> {
    let text = uuid.as_deref().ok_or(
        "it has no uuid (Spryker's `vendor/bin/console uuid:generate` gives every row one)",
    )?;
    crate::service::validate::parse_uuid(text).ok_or_else(|| format!("uuid `{text}` is no uuid"))
}

/// Spryker's ENUM value sets, in their schema's order (the column holds the index).
const SALUTATIONS: [&str; 5] = ["Mr", "Mrs", "Dr", "Ms", "n/a"];
const GENDERS: [&str; 2] = ["Male", "Female"];
const STATUSES: [&str; 3] = ["pending", "approved", "denied"];

fn enum_value(set: &[&'static str], index: i64, column: &str) -> RowResult<&'static str> {
    usize::try_from(index)
        .ok()
        .and_then(|i| set.get(i).copied())
        .ok_or_else(|| format!("`{column}` is {index}, not one of {}", set.join(", ")))
}

/// What a re-import compares with the stored password: a digest of the source's hash.
fn digest(hash: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, hash.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A database error on a row, in words: constraint violations are the row's fault.
fn why(err: &DbErr) -> String {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(e)) => {
            format!("it clashes with a row already here ({e})")
        }
        Some(SqlErr::ForeignKeyConstraintViolation(e)) => {
            format!("it refers to a row that is not here ({e})")
        }
        _ => err.to_string(),
    }
}

/// The rows of a chunk now here, by source id, and the source ids whose password changed.
struct Synced<M> {
    here: HashMap<i32, M>,
    password_changed: Vec<i32>,
}

/// The rows of one chunk to write.
struct Writes<A> {
    inserts: Vec<(i32, A)>,
    updates: Vec<(i32, A)>,
}

impl Run<'_> {
    fn row_error(
        table: &'static str,
        id_column: &'static str,
        id: i32,
        message: String,
    ) -> ImportError {
        ImportError::Row { table, id_column, id, message }
    }

    fn begin(&mut self, table: &'static str, total: u64) -> (TableReport, Instant) {
        self.progress.begin(table, total);
        (TableReport { table, ..TableReport::default() }, Instant::now())
    }

    fn end(&mut self, mut report: TableReport, started: Instant) {
        report.elapsed = started.elapsed();
        self.progress.end(&report);
        self.tables.push(report);
    }

    async fn all(&mut self) -> Result<(), ImportError> {
        self.customers().await?;
        self.companies().await?;
        self.addresses().await?;
        self.business_units().await?;
        self.address_links().await?;
        self.roles().await?;
        self.company_users().await?;
        Ok(())
    }

    async fn count(&self, table: &str) -> Result<u64, ImportError> {
        self.source.count(table).await.map_err(ImportError::Source)
    }

    /// Writes a chunk: new rows with one multi-row insert (row by row, in savepoints, to
    /// name the first bad one when it fails), changed rows one by one.
    async fn write<A>(
        &self,
        table: &'static str,
        id_column: &'static str,
        writes: Writes<A>,
    ) -> Result<(), ImportError>
    where
        A: ActiveModelTrait + ActiveModelBehavior + Send + Clone,
        <A::Entity as EntityTrait>::Model: IntoActiveModel<A>,
    {
        if !writes.inserts.is_empty() {
            let batch = self.txn.begin().await.map_err(ImportError::Target)?;
            let models = writes.inserts.iter().map(|(_, a)| a.clone());
            match <A::Entity as EntityTrait>::insert_many(models)
                .exec_without_returning(&batch)
                .await
            {
                Ok(_) => batch.commit().await.map_err(ImportError::Target)?,
                Err(_) => {
                    batch.rollback().await.map_err(ImportError::Target)?;
                    for (id, model) in writes.inserts {
                        let one = self.txn.begin().await.map_err(ImportError::Target)?;
                        if let Err(e) = model.insert(&one).await {
                            return Err(Self::row_error(table, id_column, id, why(&e)));
                        }
                        one.commit().await.map_err(ImportError::Target)?;
                    }
                }
            }
        }
        for (id, model) in writes.updates {
            model
                .update(self.txn)
                .await
                .map_err(|e| Self::row_error(table, id_column, id, why(&e)))?;
        }
        Ok(())
    }

    /// Compares each source row's wanted row with the one here (found by `row_key` in
    /// `key_column`), writes the differences, and returns the rows now here by source id
    /// with the source ids whose password hash changed.
    #[allow(clippy::too_many_arguments)]
    async fn sync<E, R, K>(
        &self,
        report: &mut TableReport,
        id_column: &'static str,
        rows: &[R],
        source_id: impl Fn(&R) -> i32,
        key_column: E::Column,
        row_key: impl Fn(&R) -> RowResult<K>,
        key: impl Fn(&E::Model) -> K,
        wanted: impl Fn(&R, Option<&E::Model>) -> RowResult<Option<E::Model>>,
    ) -> Result<Synced<E::Model>, ImportError>
    where
        E: EntityTrait,
        E::Model: IntoActiveModel<E::ActiveModel> + Sync,
        E::ActiveModel: ActiveModelBehavior + Send + Clone,
        K: Eq + Hash + Clone + Into<Value>,
    {
        let table = report.table;
        let named = |id: i32| move |m: String| Self::row_error(table, id_column, id, m);
        let mut keys = Vec::with_capacity(rows.len());
        for r in rows {
            keys.push(row_key(r).map_err(named(source_id(r)))?);
        }
        let existing = self.by_key::<E, K>(key_column, &keys, &key).await?;
        let mut writes = Writes { inserts: vec![], updates: vec![] };
        let mut password_changed = vec![];
        let primary: Vec<&'static str> =
            <E::PrimaryKey as Iterable>::iter().map(|k| k.into_column().as_str()).collect();
        for (r, k) in rows.iter().zip(&keys) {
            let id = source_id(r);
            let current = existing.get(k);
            let Some(want) = wanted(r, current).map_err(named(id))? else {
                report.skipped += 1;
                continue;
            };
            let Some(current) = current else {
                let mut model = want.into_active_model();
                for column in E::Column::iter().filter(|c| primary.contains(&c.as_str())) {
                    model.not_set(column);
                }
                writes.inserts.push((id, model));
                report.new += 1;
                continue;
            };
            let mut model: E::ActiveModel = current.clone().into_active_model();
            let mut changed = vec![];
            for column in E::Column::iter() {
                if primary.contains(&column.as_str()) {
                    continue;
                }
                let value = want.get(column);
                if current.get(column) != value {
                    model.set(column, value);
                    changed.push(column.as_str());
                }
            }
            if changed.is_empty() {
                report.unchanged += 1;
                continue;
            }
            if changed.contains(&"password_hash") {
                password_changed.push(id);
            }
            report.changed += 1;
            if report.changes.len() < LISTED {
                report.changes.push(format!("{id_column}={id}: {}", changed.join(", ")));
            }
            writes.updates.push((id, model));
        }
        self.write(table, id_column, writes).await?;
        let mut now_here = self.by_key::<E, K>(key_column, &keys, &key).await?;
        let mut here = HashMap::new();
        for (r, k) in rows.iter().zip(&keys) {
            if let Some(model) = now_here.remove(k) {
                here.insert(source_id(r), model);
            }
        }
        Ok(Synced { here, password_changed })
    }

    /// Makes the links of `owners` (ids here) in `E` the `wanted` ones: removes the others,
    /// adds the missing ones with one insert, and counts both into `report`.
    #[allow(clippy::too_many_arguments)]
    async fn mirror<E, V>(
        &self,
        report: &mut TableReport,
        owner_column: E::Column,
        owners: Vec<i32>,
        wanted: HashSet<(i32, V)>,
        pair: impl Fn(&E::Model) -> (i32, V),
        link: impl Fn(i32, V) -> E::ActiveModel,
    ) -> Result<(), ImportError>
    where
        E: EntityTrait,
        E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send,
        V: Eq + Hash + Clone,
    {
        if owners.is_empty() {
            return Ok(());
        }
        let present: HashSet<(i32, V)> = E::find()
            .filter(owner_column.is_in(owners))
            .all(self.txn)
            .await
            .map_err(ImportError::Target)?
            .iter()
            .map(pair)
            .collect();
        for (owner, value) in present.difference(&wanted) {
            link(*owner, value.clone()).delete(self.txn).await.map_err(ImportError::Target)?;
            report.removed += 1;
        }
        let added: Vec<E::ActiveModel> =
            wanted.difference(&present).map(|(owner, value)| link(*owner, value.clone())).collect();
        report.new += added.len() as u64;
        report.unchanged += wanted.intersection(&present).count() as u64;
        if !added.is_empty() {
            E::insert_many(added)
                .exec_without_returning(self.txn)
                .await
                .map_err(ImportError::Target)?;
        }
        Ok(())
    }

    async fn by_key<E, K>(
        &self,
        column: E::Column,
        keys: &[K],
        key: &impl Fn(&E::Model) -> K,
    ) -> Result<HashMap<K, E::Model>, ImportError>
    where
        E: EntityTrait,
        K: Eq + Hash + Clone + Into<Value>,
    {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let found = E::find()
            .filter(column.is_in(keys.iter().cloned()))
            .all(self.txn)
            .await
            .map_err(ImportError::Target)?;
        Ok(found.into_iter().map(|m| (key(&m), m)).collect())
    }

    async fn customers(&mut self) -> Result<(), ImportError> {
        let total = self.count(table::CUSTOMER).await?;
        let (mut report, started) = self.begin(table::CUSTOMER, total);
        let mut after = 0;
        loop {
            let rows = self.source.customers(after, CHUNK).await.map_err(ImportError::Source)?;
            let Some(last) = rows.last() else { break };
            after = last.id;
            report.read += rows.len() as u64;
            for r in rows.iter().filter(|r| r.anonymized) {
                self.maps.skipped_customers.insert(r.id);
            }
            let now = crate::clock::now();
            let synced = self
                .sync::<customer::Entity, _, _>(
                    &mut report,
                    "id_customer",
                    &rows,
                    |r| r.id,
                    customer::Column::CustomerReference,
                    |r| Ok(r.reference.clone()),
                    |m| m.customer_reference.clone(),
                    |r, current| wanted_customer(r, current, now),
                )
                .await?;
            for (source_id, model) in &synced.here {
                self.maps.skipped_customers.remove(source_id);
                self.maps.customers.insert(*source_id, model.id);
            }
            // A password changed in Spryker ends the customer's sessions here, as a change
            // here does (docs/wire-contract.md §3.9).
            for source_id in &synced.password_changed {
                if let Some(model) = synced.here.get(source_id) {
                    crate::service::sessions::revoke_all_in(self.txn, model.id)
                        .await
                        .map_err(ImportError::Target)?;
                }
            }
            self.progress.advance(rows.len() as u64);
        }
        self.end(report, started);
        Ok(())
    }

    async fn companies(&mut self) -> Result<(), ImportError> {
        let total = self.count(table::COMPANY).await?;
        let (mut report, started) = self.begin(table::COMPANY, total);
        let mut after = 0;
        loop {
            let rows = self.source.companies(after, CHUNK).await.map_err(ImportError::Source)?;
            let Some(last) = rows.last() else { break };
            after = last.id;
            report.read += rows.len() as u64;
            let here = self
                .sync::<company::Entity, _, _>(
                    &mut report,
                    "id_company",
                    &rows,
                    |r| r.id,
                    company::Column::Uuid,
                    |r| uuid_of(&r.uuid),
                    |m| m.uuid,
                    |r, current| {
                        Ok(Some(company::Model {
                            id: current.map_or(0, |c| c.id),
                            uuid: uuid_of(&r.uuid)?,
                            name: r.name.clone(),
                            status: enum_value(&STATUSES, r.status, "status")?.to_owned(),
                            is_active: r.active,
                        }))
                    },
                )
                .await?
                .here;
            for (source_id, model) in here {
                self.maps.companies.insert(source_id, model.id);
            }
            self.progress.advance(rows.len() as u64);
        }
        self.end(report, started);
        Ok(())
    }

    async fn addresses(&mut self) -> Result<(), ImportError> {
        let total = self.count(table::ADDRESS).await?;
        let (mut report, started) = self.begin(table::ADDRESS, total);
        let mut after = 0;
        loop {
            let rows = self.source.addresses(after, CHUNK).await.map_err(ImportError::Source)?;
            let Some(last) = rows.last() else { break };
            after = last.id;
            report.read += rows.len() as u64;
            let companies = &self.maps.companies;
            let here = self
                .sync::<company_unit_address::Entity, _, _>(
                    &mut report,
                    "id_company_unit_address",
                    &rows,
                    |r| r.id,
                    company_unit_address::Column::Uuid,
                    |r| uuid_of(&r.uuid),
                    |m| m.uuid,
                    |r, current| {
                        // An address of no company is no company's: Glue never shows it.
                        let Some(company) = r.company else { return Ok(None) };
                        let company_id = companies.get(&company).copied().ok_or_else(|| {
                            format!("its company (id_company={company}) is not in spy_company")
                        })?;
                        let text = |v: &Option<String>| v.clone().unwrap_or_default();
                        Ok(Some(company_unit_address::Model {
                            id: current.map_or(0, |c| c.id),
                            uuid: uuid_of(&r.uuid)?,
                            company_id,
                            address1: text(&r.address1),
                            address2: text(&r.address2),
                            address3: text(&r.address3),
                            zip_code: text(&r.zip_code),
                            city: text(&r.city),
                            phone: text(&r.phone),
                            iso2_code: text(&r.iso2_code),
                            comment: text(&r.comment),
                        }))
                    },
                )
                .await?
                .here;
            for (source_id, model) in here {
                self.maps.addresses.insert(source_id, (model.id, model.company_id));
            }
            self.progress.advance(rows.len() as u64);
        }
        self.end(report, started);
        Ok(())
    }

    async fn business_units(&mut self) -> Result<(), ImportError> {
        let total = self.count(table::BUSINESS_UNIT).await?;
        let (mut report, started) = self.begin(table::BUSINESS_UNIT, total);
        let mut after = 0;
        loop {
            let rows =
                self.source.business_units(after, CHUNK).await.map_err(ImportError::Source)?;
            let Some(last) = rows.last() else { break };
            after = last.id;
            report.read += rows.len() as u64;
            let (companies, addresses) = (&self.maps.companies, &self.maps.addresses);
            let here = self
                .sync::<company_business_unit::Entity, _, _>(
                    &mut report,
                    "id_company_business_unit",
                    &rows,
                    |r| r.id,
                    company_business_unit::Column::Uuid,
                    |r| uuid_of(&r.uuid),
                    |m| m.uuid,
                    |r, current| {
                        let company_id = companies.get(&r.company).copied().ok_or_else(|| {
                            format!("its company (id_company={}) is not in spy_company", r.company)
                        })?;
                        let billing = match r.default_billing_address {
                            None => None,
                            Some(address) => match addresses.get(&address) {
                                Some((id, owner)) if *owner == company_id => Some(*id),
                                Some(_) => {
                                    return Err(format!(
                                        "its default billing address \
                                         (id_company_unit_address={address}) belongs to another company"
                                    ));
                                }
                                None => None,
                            },
                        };
                        let text = |v: &Option<String>| v.clone().unwrap_or_default();
                        Ok(Some(company_business_unit::Model {
                            id: current.map_or(0, |c| c.id),
                            uuid: uuid_of(&r.uuid)?,
                            company_id,
                            name: r.name.clone(),
                            email: text(&r.email),
                            phone: text(&r.phone),
                            external_url: text(&r.external_url),
                            bic: text(&r.bic),
                            iban: text(&r.iban),
                            default_billing_address_id: billing,
                        }))
                    },
                )
                .await?
                .here;
            for (source_id, model) in here {
                self.maps.units.insert(source_id, (model.id, model.company_id));
            }
            self.progress.advance(rows.len() as u64);
        }
        self.end(report, started);
        Ok(())
    }

    /// The links of the imported addresses to units, made equal to the source's.
    async fn address_links(&mut self) -> Result<(), ImportError> {
        let total = self.count(table::ADDRESS_TO_UNIT).await?;
        let (mut report, started) = self.begin(table::ADDRESS_TO_UNIT, total);
        let mut owners: Vec<i32> = self.maps.addresses.keys().copied().collect();
        owners.sort_unstable();
        for chunk in owners.chunks(CHUNK) {
            let links = self.source.address_links(chunk).await.map_err(ImportError::Source)?;
            report.read += links.len() as u64;
            let mut wanted = HashSet::new();
            for (address, unit) in &links {
                let (address_id, company_id) = self.maps.addresses[address];
                // A link to a unit of no imported company (or another company) is no link.
                match self.maps.units.get(unit) {
                    Some((unit_id, owner)) if *owner == company_id => {
                        wanted.insert((address_id, *unit_id));
                    }
                    _ => report.skipped += 1,
                }
            }
            let owners: Vec<i32> = chunk.iter().map(|a| self.maps.addresses[a].0).collect();
            self.mirror::<company_unit_address_to_business_unit::Entity, _>(
                &mut report,
                company_unit_address_to_business_unit::Column::AddressId,
                owners,
                wanted,
                |l| (l.address_id, l.business_unit_id),
                |address_id, business_unit_id| company_unit_address_to_business_unit::ActiveModel {
                    address_id: sea_orm::Set(address_id),
                    business_unit_id: sea_orm::Set(business_unit_id),
                },
            )
            .await?;
            self.progress.advance(links.len() as u64);
        }
        self.end(report, started);
        Ok(())
    }

    async fn roles(&mut self) -> Result<(), ImportError> {
        let total = self.count(table::ROLE).await?;
        let (mut report, started) = self.begin(table::ROLE, total);
        let mut permissions =
            TableReport { table: table::ROLE_TO_PERMISSION, ..Default::default() };
        let mut after = 0;
        loop {
            let rows = self.source.roles(after, CHUNK).await.map_err(ImportError::Source)?;
            let Some(last) = rows.last() else { break };
            after = last.id;
            report.read += rows.len() as u64;
            let companies = &self.maps.companies;
            let here = self
                .sync::<company_role::Entity, _, _>(
                    &mut report,
                    "id_company_role",
                    &rows,
                    |r| r.id,
                    company_role::Column::Uuid,
                    |r| uuid_of(&r.uuid),
                    |m| m.uuid,
                    |r, current| {
                        let company_id = companies.get(&r.company).copied().ok_or_else(|| {
                            format!("its company (id_company={}) is not in spy_company", r.company)
                        })?;
                        Ok(Some(company_role::Model {
                            id: current.map_or(0, |c| c.id),
                            uuid: uuid_of(&r.uuid)?,
                            company_id,
                            name: r.name.clone(),
                            is_default: r.default,
                        }))
                    },
                )
                .await?
                .here;
            for (source_id, model) in &here {
                self.maps.roles.insert(*source_id, (model.id, model.company_id));
            }
            let ids: Vec<i32> = rows.iter().map(|r| r.id).collect();
            let links = self.source.role_permissions(&ids).await.map_err(ImportError::Source)?;
            permissions.read += links.len() as u64;
            let mut wanted = HashSet::new();
            for (role, key) in links {
                if key.trim().is_empty() {
                    return Err(Self::row_error(
                        table::ROLE,
                        "id_company_role",
                        role,
                        "a permission of it has an empty key".into(),
                    ));
                }
                wanted.insert((self.maps.roles[&role].0, key));
            }
            let owners: Vec<i32> = here.values().map(|m| m.id).collect();
            self.mirror::<company_role_permission::Entity, _>(
                &mut permissions,
                company_role_permission::Column::RoleId,
                owners,
                wanted,
                |p| (p.role_id, p.permission_key.clone()),
                |role_id, key| company_role_permission::ActiveModel {
                    role_id: sea_orm::Set(role_id),
                    permission_key: sea_orm::Set(key),
                },
            )
            .await?;
            self.progress.advance(rows.len() as u64);
        }
        self.end(report, started);
        self.progress.begin(table::ROLE_TO_PERMISSION, permissions.read);
        self.end(permissions, Instant::now());
        Ok(())
    }

    async fn company_users(&mut self) -> Result<(), ImportError> {
        let total = self.count(table::COMPANY_USER).await?;
        let (mut report, started) = self.begin(table::COMPANY_USER, total);
        let mut roles = TableReport { table: table::ROLE_TO_COMPANY_USER, ..Default::default() };
        let mut after = 0;
        loop {
            let rows =
                self.source.company_users(after, CHUNK).await.map_err(ImportError::Source)?;
            let Some(last) = rows.last() else { break };
            after = last.id;
            report.read += rows.len() as u64;
            let maps = &self.maps;
            let now = crate::clock::now();
            let here = self
                .sync::<company_user::Entity, _, _>(
                    &mut report,
                    "id_company_user",
                    &rows,
                    |r| r.id,
                    company_user::Column::Uuid,
                    |r| uuid_of(&r.uuid),
                    |m| m.uuid,
                    |r, current| {
                        let Some(customer_id) = maps.customers.get(&r.customer).copied() else {
                            if maps.skipped_customers.contains(&r.customer) {
                                return Ok(None);
                            }
                            return Err(format!(
                                "its customer (id_customer={}) is not in spy_customer",
                                r.customer
                            ));
                        };
                        let company_id =
                            maps.companies.get(&r.company).copied().ok_or_else(|| {
                                format!(
                                    "its company (id_company={}) is not in spy_company",
                                    r.company
                                )
                            })?;
                        let business_unit_id = match r.business_unit {
                            None => None,
                            Some(unit) => match maps.units.get(&unit) {
                                Some((id, owner)) if *owner == company_id => Some(*id),
                                Some(_) => {
                                    return Err(format!(
                                        "its business unit (id_company_business_unit={unit}) \
                                         belongs to another company"
                                    ));
                                }
                                None => {
                                    return Err(format!(
                                        "its business unit (id_company_business_unit={unit}) \
                                         is not in spy_company_business_unit"
                                    ));
                                }
                            },
                        };
                        Ok(Some(company_user::Model {
                            id: current.map_or(0, |c| c.id),
                            uuid: uuid_of(&r.uuid)?,
                            customer_id,
                            company_id,
                            business_unit_id,
                            is_active: r.active,
                            is_default: r.default,
                            created_at: current.map_or(now, |c| c.created_at),
                        }))
                    },
                )
                .await?
                .here;
            for (source_id, model) in &here {
                self.maps.company_users.insert(*source_id, model.id);
            }
            let ids: Vec<i32> = here.keys().copied().collect();
            let links = self.source.company_user_roles(&ids).await.map_err(ImportError::Source)?;
            roles.read += links.len() as u64;
            let mut wanted = HashSet::new();
            for (user, role) in links {
                let user_model = &here[&user];
                match self.maps.roles.get(&role) {
                    Some((role_id, owner)) if *owner == user_model.company_id => {
                        wanted.insert((user_model.id, *role_id));
                    }
                    _ => {
                        return Err(Self::row_error(
                            table::COMPANY_USER,
                            "id_company_user",
                            user,
                            format!("its role id_company_role={role} is not a role of its company"),
                        ));
                    }
                }
            }
            let owners: Vec<i32> = here.values().map(|m| m.id).collect();
            self.mirror::<company_user_role::Entity, _>(
                &mut roles,
                company_user_role::Column::CompanyUserId,
                owners,
                wanted,
                |l| (l.company_user_id, l.role_id),
                |company_user_id, role_id| company_user_role::ActiveModel {
                    company_user_id: sea_orm::Set(company_user_id),
                    role_id: sea_orm::Set(role_id),
                },
            )
            .await?;
            self.progress.advance(rows.len() as u64);
        }
        self.end(report, started);
        self.progress.begin(table::ROLE_TO_COMPANY_USER, roles.read);
        self.end(roles, Instant::now());
        Ok(())
    }
}

/// The customer a Spryker row makes, given the one here if any (docs/migrating-from-spryker.md
/// §3): `None` for an anonymized customer that was never imported.
fn wanted_customer(
    r: &source::Customer,
    current: Option<&customer::Model>,
    now: i64,
) -> RowResult<Option<customer::Model>> {
    if r.reference.trim().is_empty() {
        return Err("`customer_reference` is empty".into());
    }
    if r.anonymized {
        // Spryker anonymized the customer: one imported earlier loses its personal data,
        // its password and its access here; one never imported stays away.
        let Some(current) = current else {
            return Ok(None);
        };
        let email = format!("anonymized-{}@anonymized.invalid", r.reference);
        return Ok(Some(customer::Model {
            email_normalized: email.clone(),
            email,
            password_hash: None,
            imported_password_digest: None,
            salutation: String::new(),
            first_name: String::new(),
            last_name: String::new(),
            is_active: false,
            gender: None,
            date_of_birth: None,
            ..current.clone()
        }));
    }
    if !crate::service::validate::is_email(&r.email) {
        return Err(format!("`email` `{}` is not a valid e-mail address", r.email));
    }
    let salutation = match r.salutation {
        Some(i) => enum_value(&SALUTATIONS, i, "salutation")?.to_owned(),
        None => String::new(),
    };
    let gender = r.gender.map(|i| enum_value(&GENDERS, i, "gender")).transpose()?;
    let source_hash = r.password.as_deref().filter(|p| !p.is_empty());
    if let Some(hash) = source_hash
        && !(password::is_bcrypt(hash) || hash.starts_with("$argon2"))
    {
        return Err("`password` is neither a bcrypt hash nor an Argon2 PHC string".into());
    }
    let source_digest = source_hash.map(digest);
    // The hash here stays while Spryker's is the one imported last: this service may have
    // re-hashed it with Argon2id, or the customer changed it here.
    let (password_hash, imported_password_digest) = match current {
        Some(c) if c.imported_password_digest == source_digest => {
            (c.password_hash.clone(), c.imported_password_digest.clone())
        }
        _ => (source_hash.map(str::to_owned), source_digest),
    };
    let created_at = r.created_at.or(current.map(|c| c.created_at)).unwrap_or(now);
    Ok(Some(customer::Model {
        id: current.map_or(0, |c| c.id),
        customer_reference: r.reference.clone(),
        email_normalized: crate::service::validate::normalize_email(&r.email),
        email: r.email.clone(),
        password_hash,
        imported_password_digest,
        salutation,
        first_name: r.first_name.clone().unwrap_or_default(),
        last_name: r.last_name.clone().unwrap_or_default(),
        // Spryker has no such flag: a customer is active when first imported, and one
        // deactivated here stays so.
        is_active: current.is_none_or(|c| c.is_active),
        gender: gender.map(str::to_owned),
        date_of_birth: r.date_of_birth.clone(),
        created_at,
        updated_at: r.updated_at.unwrap_or(created_at),
        revoked_refresh_tokens_through: current.and_then(|c| c.revoked_refresh_tokens_through),
    }))
}
