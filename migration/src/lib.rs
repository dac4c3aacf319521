//! Append-only schema migrations for glue-auth. They run on SQLite and PostgreSQL alike:
//! only portable column types, and every index named so `down` can drop it.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_initial;
mod m20261123_000001_refresh_token_customer_family;
mod m20261123_000002_revoke_all_by_id;
mod m20261123_000003_directory_version;
mod m20261202_000001_login_attempt_pending;
mod m20261203_000001_customer_profile;
mod m20261204_000001_password_restore_key;
mod m20261205_000001_spryker_import;
mod m20261206_000001_agent;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_initial::Migration),
            Box::new(m20261123_000001_refresh_token_customer_family::Migration),
            Box::new(m20261123_000002_revoke_all_by_id::Migration),
            Box::new(m20261123_000003_directory_version::Migration),
            Box::new(m20261202_000001_login_attempt_pending::Migration),
            Box::new(m20261203_000001_customer_profile::Migration),
            Box::new(m20261204_000001_password_restore_key::Migration),
            Box::new(m20261205_000001_spryker_import::Migration),
            Box::new(m20261206_000001_agent::Migration),
        ]
    }
}
