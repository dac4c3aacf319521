//! The import format: a whole dataset (customers, companies, units, addresses, roles,
//! company users) in one YAML or JSON file, loaded in one transaction: all of it or nothing.
//! A bad row is named by its line. The demo dataset and the admin `add` verbs use it too.
//!
//! Rows refer to each other by `key` within the file; a reference that is no key of the
//! file is looked up in the database (a uuid; for customers a reference or an e-mail), so a
//! file can add to data that is already there.

/// The demo dataset, compiled in so `demo` works from any directory.
pub const DEMO_DATASET: &str = include_str!("../demo/acme-demo.yaml");

use std::collections::{HashMap, HashSet};

use entity::{
    agent, company, company_business_unit, company_role, company_role_permission,
    company_unit_address, company_unit_address_to_business_unit, company_user, company_user_role,
    customer,
};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, QueryFilter, SqlErr, TransactionTrait,
};
use serde::Deserialize;
use uuid::Uuid;

use crate::{
    auth::password::{self, Password},
    service::password_policy::PasswordPolicy,
};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dataset {
    #[serde(default)]
    pub customers: Vec<CustomerRow>,
    #[serde(default)]
    pub companies: Vec<CompanyRow>,
    #[serde(default)]
    pub business_units: Vec<BusinessUnitRow>,
    #[serde(default)]
    pub addresses: Vec<AddressRow>,
    #[serde(default)]
    pub roles: Vec<RoleRow>,
    #[serde(default)]
    pub company_users: Vec<CompanyUserRow>,
    #[serde(default)]
    pub agents: Vec<AgentRow>,
}

fn yes() -> bool {
    true
}

/// The genders a customer may have, as Spryker stores them.
pub const GENDERS: [&str; 2] = ["Male", "Female"];

/// Whether `text` is a calendar date written `YYYY-MM-DD`.
pub fn is_iso_date(text: &str) -> bool {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    text.len() == 10 && time::Date::parse(text, format).is_ok()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerRow {
    pub reference: String,
    pub email: String,
    #[serde(default)]
    pub salutation: String,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default = "yes")]
    pub active: bool,
    /// A password in clear (hashed on import): for demo and test data.
    #[serde(default)]
    pub password: Option<String>,
    /// A hash, for data moved from elsewhere: an Argon2id PHC string, or a bcrypt hash as
    /// Spryker stores them (`$2y$…`), which the customer's next login replaces with Argon2id.
    #[serde(default)]
    pub password_hash: Option<String>,
    /// `Male` or `Female` (Spryker's values); absent when unknown.
    #[serde(default)]
    pub gender: Option<String>,
    /// `YYYY-MM-DD`; absent when unknown.
    #[serde(default)]
    pub date_of_birth: Option<String>,
}

/// A sales agent (docs/wire-contract.md §3.12).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentRow {
    /// The login name, usually an e-mail address; unique without regard to case.
    pub username: String,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default = "yes")]
    pub active: bool,
    /// As for customers: a password in clear, or an Argon2id or bcrypt hash.
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub password_hash: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompanyRow {
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub uuid: Option<Uuid>,
    pub name: String,
    #[serde(default = "approved")]
    pub status: String,
    #[serde(default = "yes")]
    pub active: bool,
}

fn approved() -> String {
    "approved".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessUnitRow {
    #[serde(default)]
    pub key: Option<String>,
    pub company: String,
    #[serde(default)]
    pub uuid: Option<Uuid>,
    pub name: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub external_url: String,
    #[serde(default)]
    pub bic: String,
    #[serde(default)]
    pub iban: String,
    /// An address (key or uuid) of the same company.
    #[serde(default)]
    pub default_billing_address: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressRow {
    #[serde(default)]
    pub key: Option<String>,
    pub company: String,
    #[serde(default)]
    pub uuid: Option<Uuid>,
    #[serde(default)]
    pub address1: String,
    #[serde(default)]
    pub address2: String,
    #[serde(default)]
    pub address3: String,
    #[serde(default)]
    pub zip_code: String,
    #[serde(default)]
    pub city: String,
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub iso2_code: String,
    #[serde(default)]
    pub comment: String,
    /// Units (keys or uuids) of the same company this address belongs to.
    #[serde(default)]
    pub business_units: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleRow {
    #[serde(default)]
    pub key: Option<String>,
    pub company: String,
    #[serde(default)]
    pub uuid: Option<Uuid>,
    pub name: String,
    #[serde(default)]
    pub default: bool,
    #[serde(default)]
    pub permissions: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompanyUserRow {
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub uuid: Option<Uuid>,
    /// A customer reference or e-mail.
    pub customer: String,
    pub company: String,
    #[serde(default)]
    pub business_unit: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub default: bool,
    #[serde(default = "yes")]
    pub active: bool,
}

/// Why an import failed, with the line of the bad row where there is one.
#[derive(Debug, thiserror::Error)]
#[error("{}{location}: {message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
pub struct ImportError {
    pub line: Option<usize>,
    /// `section[index]`, or the file itself.
    pub location: String,
    pub message: String,
}

impl ImportError {
    fn file(message: impl Into<String>) -> Self {
        Self { line: None, location: "file".into(), message: message.into() }
    }
}

/// What an import added.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    pub customers: usize,
    pub companies: usize,
    pub business_units: usize,
    pub addresses: usize,
    pub roles: usize,
    pub company_users: usize,
    pub agents: usize,
    /// The uuids given to the rows without one, in file order (for the admin `add` verbs).
    pub created: Vec<Uuid>,
}

/// Parses a YAML or JSON dataset (JSON is read as YAML, of which it is a subset).
pub fn parse(text: &str) -> Result<(Dataset, LineIndex), ImportError> {
    let dataset: Dataset = serde_yaml::from_str(text).map_err(|e| ImportError {
        line: e.location().map(|l| l.line()),
        location: "file".into(),
        message: e.to_string(),
    })?;
    Ok((dataset, LineIndex::of(text)))
}

/// The line of each row of each section, from the YAML events.
#[derive(Debug, Default)]
pub struct LineIndex {
    rows: HashMap<String, Vec<usize>>,
    // Parser state: containers open, as (is_sequence, children seen); the current section.
    stack: Vec<(bool, usize)>,
    section: String,
}

impl LineIndex {
    pub fn of(text: &str) -> Self {
        let mut index = Self::default();
        let _ = yaml_rust2::parser::Parser::new_from_str(text).load(&mut index, false);
        index.stack.clear();
        index
    }

    fn line(&self, section: &str, row: usize) -> Option<usize> {
        self.rows.get(section).and_then(|lines| lines.get(row)).copied()
    }
}

impl yaml_rust2::parser::MarkedEventReceiver for LineIndex {
    fn on_event(&mut self, ev: yaml_rust2::Event, mark: yaml_rust2::scanner::Marker) {
        use yaml_rust2::Event;
        let starts_node = matches!(
            ev,
            Event::Scalar(..)
                | Event::MappingStart(..)
                | Event::SequenceStart(..)
                | Event::Alias(..)
        );
        if starts_node {
            match self.stack.as_slice() {
                // A key of the top-level mapping names the section.
                [(false, seen)] if seen % 2 == 0 => {
                    if let Event::Scalar(key, ..) = &ev {
                        self.section = key.clone();
                    }
                }
                // An item of a section's sequence is a row.
                [(false, _), (true, _)] => {
                    self.rows.entry(self.section.clone()).or_default().push(mark.line());
                }
                _ => {}
            }
            if let Some(top) = self.stack.last_mut() {
                top.1 += 1;
            }
        }
        match ev {
            Event::MappingStart(..) => self.stack.push((false, 0)),
            Event::SequenceStart(..) => self.stack.push((true, 0)),
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

/// Loads `text` into the database in one transaction; passwords in clear must meet `policy`.
pub async fn import_text(
    db: &DatabaseConnection,
    text: &str,
    policy: &PasswordPolicy,
) -> Result<ImportSummary, ImportError> {
    let (dataset, lines) = parse(text)?;
    import(db, &dataset, &lines, policy).await
}

/// Loads a parsed dataset in one transaction; passwords in clear must meet `policy`.
pub async fn import(
    db: &DatabaseConnection,
    dataset: &Dataset,
    lines: &LineIndex,
    policy: &PasswordPolicy,
) -> Result<ImportSummary, ImportError> {
    let txn = db.begin().await.map_err(|e| ImportError::file(e.to_string()))?;
    let keys = Keys::default();
    let summary = Importer { db: &txn, lines, keys, summary: ImportSummary::default(), policy }
        .run(dataset)
        .await?;
    txn.commit().await.map_err(|e| ImportError::file(e.to_string()))?;
    Ok(summary)
}

/// Ids of rows inserted so far, by key, with their company.
#[derive(Default)]
struct Keys {
    customers: HashMap<String, i32>,
    companies: HashMap<String, i32>,
    units: HashMap<String, (i32, i32)>,
    addresses: HashMap<String, (i32, i32)>,
    roles: HashMap<String, (i32, i32)>,
}

struct Importer<'a, C> {
    db: &'a C,
    lines: &'a LineIndex,
    keys: Keys,
    summary: ImportSummary,
    policy: &'a PasswordPolicy,
}

/// A row's place in the file, for error messages.
#[derive(Clone, Copy)]
struct At<'s> {
    section: &'s str,
    row: usize,
}

impl<C: ConnectionTrait> Importer<'_, C> {
    fn error(&self, at: At<'_>, message: impl Into<String>) -> ImportError {
        ImportError {
            line: self.lines.line(at.section, at.row),
            location: format!("{}[{}]", at.section, at.row),
            message: message.into(),
        }
    }

    /// A database error on a row: constraint violations are the row's fault.
    fn db_error(&self, at: At<'_>, err: DbErr, what: &str) -> ImportError {
        let message = match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => format!("{what} already exists"),
            Some(SqlErr::ForeignKeyConstraintViolation(_)) => {
                format!("{what} refers to something that does not exist")
            }
            _ => err.to_string(),
        };
        self.error(at, message)
    }

    fn remember(
        &mut self,
        at: At<'_>,
        map: fn(&mut Keys) -> &mut HashMap<String, (i32, i32)>,
        key: &Option<String>,
        value: (i32, i32),
    ) -> Result<(), ImportError> {
        if let Some(key) = key
            && map(&mut self.keys).insert(key.clone(), value).is_some()
        {
            return Err(self.error(at, format!("the key `{key}` is used twice")));
        }
        Ok(())
    }

    fn uuid_for(&mut self, given: Option<Uuid>) -> Uuid {
        given.unwrap_or_else(|| {
            let id = Uuid::new_v4();
            self.summary.created.push(id);
            id
        })
    }

    async fn run(mut self, data: &Dataset) -> Result<ImportSummary, ImportError> {
        for (row, c) in data.customers.iter().enumerate() {
            self.customer(At { section: "customers", row }, c).await?;
        }
        for (row, c) in data.companies.iter().enumerate() {
            self.company(At { section: "companies", row }, c).await?;
        }
        for (row, a) in data.addresses.iter().enumerate() {
            self.address(At { section: "addresses", row }, a).await?;
        }
        for (row, u) in data.business_units.iter().enumerate() {
            self.business_unit(At { section: "business_units", row }, u).await?;
        }
        for (row, a) in data.addresses.iter().enumerate() {
            self.link_address(At { section: "addresses", row }, a).await?;
        }
        for (row, r) in data.roles.iter().enumerate() {
            self.role(At { section: "roles", row }, r).await?;
        }
        let mut defaults = HashSet::new();
        for (row, u) in data.company_users.iter().enumerate() {
            self.company_user(At { section: "company_users", row }, u, &mut defaults).await?;
        }
        for (row, a) in data.agents.iter().enumerate() {
            self.agent(At { section: "agents", row }, a).await?;
        }
        Ok(self.summary)
    }

    /// The hash to store of a row's `password` (in clear, under the policy) or
    /// `password_hash` (Argon2id or bcrypt), if either.
    fn stored_password(
        &self,
        at: At<'_>,
        clear: &Option<String>,
        hash: &Option<String>,
    ) -> Result<Option<String>, ImportError> {
        match (clear, hash) {
            (Some(_), Some(_)) => {
                Err(self.error(at, "give `password` or `password_hash`, not both"))
            }
            (Some(pw), None) => {
                self.policy.check(pw).map_err(|message| self.error(at, message))?;
                let phc = password::hash(&Password::new(pw.clone()))
                    .map_err(|e| self.error(at, format!("cannot hash the password: {e}")))?;
                Ok(Some(phc))
            }
            (None, Some(phc)) => {
                if !(phc.starts_with("$argon2") || password::bcrypt_cost(phc).is_some()) {
                    return Err(self.error(
                        at,
                        "`password_hash` is neither an Argon2 PHC string nor a bcrypt hash",
                    ));
                }
                Ok(Some(phc.clone()))
            }
            (None, None) => Ok(None),
        }
    }

    async fn agent(&mut self, at: At<'_>, a: &AgentRow) -> Result<(), ImportError> {
        let username = a.username.trim();
        if username.is_empty() || username.len() > 255 || username.chars().any(char::is_control) {
            return Err(self.error(at, "the username is empty, too long or has control characters"));
        }
        let password_hash = self.stored_password(at, &a.password, &a.password_hash)?;
        let now = crate::clock::now();
        agent::ActiveModel {
            username: Set(username.to_owned()),
            username_normalized: Set(crate::service::validate::normalize_email(username)),
            password_hash: Set(password_hash),
            first_name: Set(a.first_name.clone()),
            last_name: Set(a.last_name.clone()),
            is_active: Set(a.active),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(self.db)
        .await
        .map_err(|e| self.db_error(at, e, "an agent with this username"))?;
        self.summary.agents += 1;
        Ok(())
    }

    async fn customer(&mut self, at: At<'_>, c: &CustomerRow) -> Result<(), ImportError> {
        if c.reference.trim().is_empty() {
            return Err(self.error(at, "the reference is empty"));
        }
        if !crate::service::validate::is_email(&c.email) {
            return Err(self.error(at, format!("`{}` is not a valid e-mail address", c.email)));
        }
        let password_hash = self.stored_password(at, &c.password, &c.password_hash)?;
        if let Some(gender) = &c.gender
            && !GENDERS.contains(&gender.as_str())
        {
            return Err(self.error(at, format!("`gender` is `{gender}`, not Male or Female")));
        }
        if let Some(date) = &c.date_of_birth
            && !is_iso_date(date)
        {
            return Err(
                self.error(at, format!("`date_of_birth` `{date}` is not a YYYY-MM-DD date"))
            );
        }
        let now = crate::clock::now();
        let model = customer::ActiveModel {
            customer_reference: Set(c.reference.clone()),
            email: Set(c.email.clone()),
            email_normalized: Set(crate::service::validate::normalize_email(&c.email)),
            password_hash: Set(password_hash),
            salutation: Set(c.salutation.clone()),
            first_name: Set(c.first_name.clone()),
            last_name: Set(c.last_name.clone()),
            is_active: Set(c.active),
            gender: Set(c.gender.clone()),
            date_of_birth: Set(c.date_of_birth.clone()),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        };
        let inserted = model
            .insert(self.db)
            .await
            .map_err(|e| self.db_error(at, e, "a customer with this reference or e-mail"))?;
        if self.keys.customers.insert(c.reference.clone(), inserted.id).is_some() {
            return Err(self.error(at, format!("the reference `{}` is used twice", c.reference)));
        }
        self.summary.customers += 1;
        Ok(())
    }

    async fn company(&mut self, at: At<'_>, c: &CompanyRow) -> Result<(), ImportError> {
        if !crate::service::directory::COMPANY_STATUSES.contains(&c.status.as_str()) {
            return Err(self.error(
                at,
                format!("status `{}` is not one of pending, approved, denied", c.status),
            ));
        }
        let uuid = self.uuid_for(c.uuid);
        let model = company::ActiveModel {
            uuid: Set(uuid),
            name: Set(c.name.clone()),
            status: Set(c.status.clone()),
            is_active: Set(c.active),
            ..Default::default()
        };
        let inserted = model
            .insert(self.db)
            .await
            .map_err(|e| self.db_error(at, e, "a company with this uuid"))?;
        if let Some(key) = &c.key
            && self.keys.companies.insert(key.clone(), inserted.id).is_some()
        {
            return Err(self.error(at, format!("the key `{key}` is used twice")));
        }
        self.summary.companies += 1;
        Ok(())
    }

    async fn company_ref(&self, at: At<'_>, reference: &str) -> Result<i32, ImportError> {
        if let Some(id) = self.keys.companies.get(reference) {
            return Ok(*id);
        }
        let found = match Uuid::parse_str(reference) {
            Ok(uuid) => company::Entity::find()
                .filter(company::Column::Uuid.eq(uuid))
                .one(self.db)
                .await
                .map_err(|e| self.error(at, e.to_string()))?,
            Err(_) => None,
        };
        found.map(|c| c.id).ok_or_else(|| {
            self.error(
                at,
                format!("company `{reference}` is neither a key of this file nor a known uuid"),
            )
        })
    }

    /// Resolves a key of this file or a uuid in the database to (id, company id).
    async fn scoped_ref<E>(
        &self,
        at: At<'_>,
        what: &str,
        from_file: Option<&(i32, i32)>,
        reference: &str,
        company_id: i32,
    ) -> Result<i32, ImportError>
    where
        E: EntityTrait,
        E::Model: ScopedRow,
    {
        let (id, owner) = match from_file {
            Some(found) => *found,
            None => {
                let uuid = Uuid::parse_str(reference).map_err(|_| {
                    self.error(
                        at,
                        format!("{what} `{reference}` is neither a key of this file nor a uuid"),
                    )
                })?;
                let row = E::find()
                    .filter(<E::Model as ScopedRow>::uuid_column::<E>().eq(uuid))
                    .one(self.db)
                    .await
                    .map_err(|e| self.error(at, e.to_string()))?
                    .ok_or_else(|| {
                        self.error(at, format!("{what} `{reference}` does not exist"))
                    })?;
                (row.id(), row.company_id())
            }
        };
        if owner != company_id {
            return Err(self.error(at, format!("{what} `{reference}` belongs to another company")));
        }
        Ok(id)
    }

    async fn address(&mut self, at: At<'_>, a: &AddressRow) -> Result<(), ImportError> {
        let company_id = self.company_ref(at, &a.company).await?;
        let uuid = self.uuid_for(a.uuid);
        let model = company_unit_address::ActiveModel {
            uuid: Set(uuid),
            company_id: Set(company_id),
            address1: Set(a.address1.clone()),
            address2: Set(a.address2.clone()),
            address3: Set(a.address3.clone()),
            zip_code: Set(a.zip_code.clone()),
            city: Set(a.city.clone()),
            phone: Set(a.phone.clone()),
            iso2_code: Set(a.iso2_code.clone()),
            comment: Set(a.comment.clone()),
            ..Default::default()
        };
        let inserted = model
            .insert(self.db)
            .await
            .map_err(|e| self.db_error(at, e, "an address with this uuid"))?;
        self.remember(at, |k| &mut k.addresses, &a.key, (inserted.id, company_id))?;
        self.summary.addresses += 1;
        Ok(())
    }

    async fn link_address(&mut self, at: At<'_>, a: &AddressRow) -> Result<(), ImportError> {
        let company_id = self.company_ref(at, &a.company).await?;
        let address_id = match &a.key {
            Some(key) => self.keys.addresses[key].0,
            None => {
                let uuid =
                    a.uuid.ok_or_else(|| self.error(at, "an address without key needs a uuid"))?;
                company_unit_address::Entity::find()
                    .filter(company_unit_address::Column::Uuid.eq(uuid))
                    .one(self.db)
                    .await
                    .map_err(|e| self.error(at, e.to_string()))?
                    .map(|m| m.id)
                    .ok_or_else(|| self.error(at, "the address was not stored"))?
            }
        };
        for unit in &a.business_units {
            let unit_id = self
                .scoped_ref::<company_business_unit::Entity>(
                    at,
                    "business unit",
                    self.keys.units.get(unit),
                    unit,
                    company_id,
                )
                .await?;
            company_unit_address_to_business_unit::ActiveModel {
                address_id: Set(address_id),
                business_unit_id: Set(unit_id),
            }
            .insert(self.db)
            .await
            .map_err(|e| self.db_error(at, e, "this address-to-unit link"))?;
        }
        Ok(())
    }

    async fn business_unit(&mut self, at: At<'_>, u: &BusinessUnitRow) -> Result<(), ImportError> {
        let company_id = self.company_ref(at, &u.company).await?;
        let default_billing = match &u.default_billing_address {
            Some(addr) => Some(
                self.scoped_ref::<company_unit_address::Entity>(
                    at,
                    "address",
                    self.keys.addresses.get(addr),
                    addr,
                    company_id,
                )
                .await?,
            ),
            None => None,
        };
        let uuid = self.uuid_for(u.uuid);
        let model = company_business_unit::ActiveModel {
            uuid: Set(uuid),
            company_id: Set(company_id),
            name: Set(u.name.clone()),
            email: Set(u.email.clone()),
            phone: Set(u.phone.clone()),
            external_url: Set(u.external_url.clone()),
            bic: Set(u.bic.clone()),
            iban: Set(u.iban.clone()),
            default_billing_address_id: Set(default_billing),
            ..Default::default()
        };
        let inserted = model
            .insert(self.db)
            .await
            .map_err(|e| self.db_error(at, e, "a business unit with this uuid"))?;
        self.remember(at, |k| &mut k.units, &u.key, (inserted.id, company_id))?;
        self.summary.business_units += 1;
        Ok(())
    }

    async fn role(&mut self, at: At<'_>, r: &RoleRow) -> Result<(), ImportError> {
        let company_id = self.company_ref(at, &r.company).await?;
        let uuid = self.uuid_for(r.uuid);
        let model = company_role::ActiveModel {
            uuid: Set(uuid),
            company_id: Set(company_id),
            name: Set(r.name.clone()),
            is_default: Set(r.default),
            ..Default::default()
        };
        let inserted = model.insert(self.db).await.map_err(|e| {
            self.db_error(at, e, "a role with this uuid or this name in the company")
        })?;
        for permission in &r.permissions {
            if permission.trim().is_empty() {
                return Err(self.error(at, "a permission key is empty"));
            }
            company_role_permission::ActiveModel {
                role_id: Set(inserted.id),
                permission_key: Set(permission.clone()),
            }
            .insert(self.db)
            .await
            .map_err(|e| self.db_error(at, e, &format!("the permission `{permission}`")))?;
        }
        self.remember(at, |k| &mut k.roles, &r.key, (inserted.id, company_id))?;
        self.summary.roles += 1;
        Ok(())
    }

    async fn customer_ref(&self, at: At<'_>, reference: &str) -> Result<i32, ImportError> {
        if let Some(id) = self.keys.customers.get(reference) {
            return Ok(*id);
        }
        crate::service::directory::find_customer(self.db, reference)
            .await
            .map_err(|e| self.error(at, e.to_string()))?
            .map(|c| c.id)
            .ok_or_else(|| self.error(at, format!("customer `{reference}` does not exist")))
    }

    async fn company_user(
        &mut self,
        at: At<'_>,
        u: &CompanyUserRow,
        defaults: &mut HashSet<i32>,
    ) -> Result<(), ImportError> {
        let customer_id = self.customer_ref(at, &u.customer).await?;
        let company_id = self.company_ref(at, &u.company).await?;
        let unit_id = match &u.business_unit {
            Some(unit) => Some(
                self.scoped_ref::<company_business_unit::Entity>(
                    at,
                    "business unit",
                    self.keys.units.get(unit),
                    unit,
                    company_id,
                )
                .await?,
            ),
            None => None,
        };
        let mut role_ids = Vec::new();
        for role in &u.roles {
            role_ids.push(
                self.scoped_ref::<company_role::Entity>(
                    at,
                    "role",
                    self.keys.roles.get(role),
                    role,
                    company_id,
                )
                .await?,
            );
        }
        if u.default && !defaults.insert(customer_id) {
            return Err(self.error(at, "a second default company user for the same customer"));
        }
        let uuid = self.uuid_for(u.uuid);
        let model = company_user::ActiveModel {
            uuid: Set(uuid),
            customer_id: Set(customer_id),
            company_id: Set(company_id),
            business_unit_id: Set(unit_id),
            is_active: Set(u.active),
            is_default: Set(false),
            created_at: Set(crate::clock::now()),
            ..Default::default()
        };
        let inserted = model.insert(self.db).await.map_err(|e| {
            self.db_error(
                at,
                e,
                "a company user with this uuid, or of this customer in this company,",
            )
        })?;
        for role_id in role_ids {
            company_user_role::ActiveModel {
                company_user_id: Set(inserted.id),
                role_id: Set(role_id),
            }
            .insert(self.db)
            .await
            .map_err(|e| self.db_error(at, e, "this role of the company user"))?;
        }
        if u.default {
            crate::service::directory::set_default_company_user(self.db, &inserted)
                .await
                .map_err(|e| self.error(at, e.to_string()))?;
        }
        self.summary.company_users += 1;
        Ok(())
    }
}

/// A row that belongs to a company and is addressed by uuid.
pub trait ScopedRow {
    fn id(&self) -> i32;
    fn company_id(&self) -> i32;
    fn uuid_column<E: EntityTrait>() -> E::Column;
}

macro_rules! scoped_row {
    ($($module:ident),*) => {$(
        impl ScopedRow for $module::Model {
            fn id(&self) -> i32 {
                self.id
            }
            fn company_id(&self) -> i32 {
                self.company_id
            }
            fn uuid_column<E: EntityTrait>() -> E::Column {
                // Each entity names its uuid column `uuid`.
                E::Column::from_str("uuid").unwrap_or_else(|_| unreachable!("every scoped entity has a uuid column"))
            }
        }
    )*};
}
use std::str::FromStr;
scoped_row!(company_business_unit, company_unit_address, company_role);
