//! Login attempts whose password check is still running, beside the failures.
//!
//! An attempt is counted before its password is checked, so that however many arrive at
//! once at most the limit are checked. Counted as a failure straight away, a burst of right
//! passwords from one address (an office behind one gateway) would block that address for
//! minutes; counted as `pending`, an attempt holds its place until its check is done, and
//! only a wrong password becomes a failure.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000001_login_attempt_pending"
    }
}

#[derive(DeriveIden)]
enum LoginAttempt {
    Table,
    Pending,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(LoginAttempt::Table)
                    .add_column(
                        ColumnDef::new(LoginAttempt::Pending).integer().not_null().default(0),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(LoginAttempt::Table)
                    .drop_column(LoginAttempt::Pending)
                    .to_owned(),
            )
            .await
    }
}
