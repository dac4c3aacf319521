//! `directory_version`: one number that every change to who may use which membership
//! raises, whoever makes it (this service, the admin verbs, an import, plain SQL from
//! another system). A service caches the memberships it lists and drops the cache when the
//! number moves; reading one row a few times a second tells every instance about a change.
//!
//! Triggers raise it, in the writer's own transaction:
//! - `company_user`: any insert, update or delete;
//! - `company`: a change of `is_active` or `status`, a delete;
//! - `customer`: a change of `is_active`, a delete.
//!
//! Inserting a company or a customer changes no membership (a membership is a
//! `company_user` row, whose insert counts). On PostgreSQL the triggers run once per
//! statement and raise the number once per transaction; on SQLite once per row.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261123_000003_directory_version"
    }
}

/// The tables, the events that change a membership's use, and SQLite's trigger names.
const WATCHED: [(&str, &[(&str, &str)]); 3] = [
    ("company_user", &[("INSERT", "insert"), ("UPDATE", "update"), ("DELETE", "delete")]),
    ("company", &[("UPDATE OF is_active, status", "update"), ("DELETE", "delete")]),
    ("customer", &[("UPDATE OF is_active", "update"), ("DELETE", "delete")]),
];

const BUMP: &str = "UPDATE directory_version SET version = version + 1";

fn up_statements(backend: DbBackend) -> Vec<String> {
    let mut sql = vec![
        "CREATE TABLE directory_version (id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1), \
         version BIGINT NOT NULL)"
            .to_owned(),
        "INSERT INTO directory_version (id, version) VALUES (1, 0)".to_owned(),
    ];
    match backend {
        DbBackend::Postgres => {
            // Once per transaction: a transaction-local setting remembers the raise. An
            // import's thousands of statements would otherwise update the one row
            // thousands of times, each walking the chain of its versions (10,000 rows took
            // 34 s instead of 8).
            sql.push(format!(
                "CREATE FUNCTION directory_changed() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN \
                 IF current_setting('glue_auth.directory_changed', true) IS DISTINCT FROM 'on' THEN \
                 {BUMP}; \
                 PERFORM set_config('glue_auth.directory_changed', 'on', true); \
                 END IF; \
                 RETURN NULL; END $$"
            ));
            for (table, events) in WATCHED {
                let events: Vec<&str> = events.iter().map(|(event, _)| *event).collect();
                sql.push(format!(
                    "CREATE TRIGGER directory_changed AFTER {} OR TRUNCATE ON {table} \
                     FOR EACH STATEMENT EXECUTE FUNCTION directory_changed()",
                    events.join(" OR ")
                ));
            }
        }
        _ => {
            for (table, events) in WATCHED {
                for (event, name) in events {
                    sql.push(format!(
                        "CREATE TRIGGER directory_changed_{table}_{name} AFTER {event} ON {table} \
                         BEGIN {BUMP}; END"
                    ));
                }
            }
        }
    }
    sql
}

fn down_statements(backend: DbBackend) -> Vec<String> {
    let mut sql = Vec::new();
    match backend {
        DbBackend::Postgres => {
            for (table, _) in WATCHED {
                sql.push(format!("DROP TRIGGER directory_changed ON {table}"));
            }
            sql.push("DROP FUNCTION directory_changed()".to_owned());
        }
        _ => {
            for (table, events) in WATCHED {
                for (_, name) in events {
                    sql.push(format!("DROP TRIGGER directory_changed_{table}_{name}"));
                }
            }
        }
    }
    sql.push("DROP TABLE directory_version".to_owned());
    sql
}

async fn run(manager: &SchemaManager<'_>, statements: Vec<String>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    for statement in statements {
        db.execute_unprepared(&statement).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, up_statements(manager.get_database_backend())).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, down_statements(manager.get_database_backend())).await
    }
}
