//! The rest of Glue's customer attributes: gender, date of birth, and when the record last
//! changed. Existing customers have no gender or date of birth (null, as in Spryker when
//! unknown) and were last changed when they were created.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261203_000001_customer_profile"
    }
}

#[derive(DeriveIden)]
enum Customer {
    Table,
    /// `Male` or `Female` (Spryker's values), or null.
    Gender,
    /// An ISO 8601 date, `YYYY-MM-DD`, or null.
    DateOfBirth,
    CreatedAt,
    /// Unix seconds of the last change of the record.
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per statement.
        for column in [
            ColumnDef::new(Customer::Gender).string().null().to_owned(),
            ColumnDef::new(Customer::DateOfBirth).string().null().to_owned(),
            ColumnDef::new(Customer::UpdatedAt).big_integer().not_null().default(0).to_owned(),
        ] {
            let mut column = column;
            manager
                .alter_table(
                    Table::alter().table(Customer::Table).add_column(&mut column).to_owned(),
                )
                .await?;
        }
        let update = Query::update()
            .table(Customer::Table)
            .value(Customer::UpdatedAt, Expr::col(Customer::CreatedAt))
            .to_owned();
        manager.exec_stmt(update).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Customer::UpdatedAt, Customer::DateOfBirth, Customer::Gender] {
            manager
                .alter_table(Table::alter().table(Customer::Table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
