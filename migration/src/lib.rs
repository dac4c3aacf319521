//! Append-only schema migrations for glue-auth. They run on SQLite and PostgreSQL alike:
//! only portable column types, and every index named so `down` can drop it.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_initial;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(m20261122_000001_initial::Migration)]
    }
}
