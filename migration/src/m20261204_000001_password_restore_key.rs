//! Password restore keys (docs/wire-contract.md §3.10): at most one per customer, stored only
//! as a hash, until it is used or expires.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261204_000001_password_restore_key"
    }
}

#[derive(DeriveIden)]
enum PasswordRestoreKey {
    Table,
    /// The customer whose password the key restores: one key per customer, a new one
    /// replaces the old.
    CustomerId,
    /// The key's stored form (SHA-256, base64url), never the key.
    KeyHash,
    /// Unix seconds.
    CreatedAt,
    /// Unix seconds; at and after it the key no longer restores.
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Customer {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PasswordRestoreKey::Table)
                    .col(
                        ColumnDef::new(PasswordRestoreKey::CustomerId)
                            .integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(PasswordRestoreKey::KeyHash)
                            .string()
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(PasswordRestoreKey::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(PasswordRestoreKey::ExpiresAt).big_integer().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(PasswordRestoreKey::Table, PasswordRestoreKey::CustomerId)
                            .to(Customer::Table, Customer::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(PasswordRestoreKey::Table).to_owned()).await
    }
}
