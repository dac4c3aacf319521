//! What moving a shop over from Spryker needs (docs/migrating-from-spryker.md):
//! - a customer may have several company users in one company (one per business unit, say),
//!   as in Spryker: the unique index on (customer, company) becomes a plain one;
//! - `customer.imported_password_digest`: SHA-256 (hex) of the password hash the last
//!   `import-spryker` brought, so that a re-import tells a password changed in Spryker (a
//!   new hash there) from one this service has since re-hashed or changed (null: the
//!   hash did not come from Spryker). A digest, not the hash: the bcrypt hash of a password
//!   that was upgraded to Argon2id is not kept.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261205_000001_spryker_import"
    }
}

#[derive(DeriveIden)]
enum Customer {
    Table,
    ImportedPasswordDigest,
}

#[derive(DeriveIden)]
enum CompanyUser {
    Table,
    CustomerId,
    CompanyId,
}

const UNIQUE: &str = "uq_company_user_customer_company";
const PLAIN: &str = "ix_company_user_customer_company";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Customer::Table)
                    .add_column(ColumnDef::new(Customer::ImportedPasswordDigest).string().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(PLAIN)
                    .table(CompanyUser::Table)
                    .col(CompanyUser::CustomerId)
                    .col(CompanyUser::CompanyId)
                    .to_owned(),
            )
            .await?;
        manager.drop_index(Index::drop().name(UNIQUE).table(CompanyUser::Table).to_owned()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(UNIQUE)
                    .table(CompanyUser::Table)
                    .col(CompanyUser::CustomerId)
                    .col(CompanyUser::CompanyId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager.drop_index(Index::drop().name(PLAIN).table(CompanyUser::Table).to_owned()).await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Customer::Table)
                    .drop_column(Customer::ImportedPasswordDigest)
                    .to_owned(),
            )
            .await
    }
}
