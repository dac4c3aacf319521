//! "Revoke all of a customer's refresh tokens" becomes one number on the customer, and
//! `refresh_token` loses its last index keyed by a random value.
//!
//! Every new refresh token added an entry to `ix_refresh_token_customer_family`, on the
//! page of its customer: a random page, one more page written to the WAL and synced at
//! each commit. The index served two revocations, both now done without it:
//! - all of a customer's tokens (`DELETE /refresh-tokens/mine`): the customer's new column
//!   `revoked_refresh_tokens_through` holds the highest token id revoked that way. Token ids
//!   only grow (AUTOINCREMENT, a sequence), so a token is revoked if its id is at most that
//!   number; tokens issued later are not.
//! - a family on reuse: its live tokens all descend from the presented one, and each token
//!   names its successor (`rotated_into_id`), so the chain is followed by primary key.
//!
//! The price: deleting a customer now finds its tokens (the foreign key's cascade) by
//! reading `refresh_token` through, as deleting a company user always did. The service
//! itself deletes neither.
//!
//! `down` writes the numbers back into the rows first (`revoked_at`), so going back revokes
//! nothing less.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261123_000002_revoke_all_by_id"
    }
}

const INDEX: &str = "ix_refresh_token_customer_family";

#[derive(DeriveIden)]
enum Customer {
    Table,
    RevokedRefreshTokensThrough,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Customer::Table)
                    .add_column(
                        ColumnDef::new(Customer::RevokedRefreshTokensThrough).big_integer().null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(Index::drop().name(INDEX).table(Alias::new("refresh_token")).to_owned())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let now = match db.get_database_backend() {
            DbBackend::Postgres => "CAST(EXTRACT(EPOCH FROM now()) AS BIGINT)",
            _ => "CAST(strftime('%s', 'now') AS INTEGER)",
        };
        db.execute_raw(Statement::from_string(
            db.get_database_backend(),
            format!(
                "UPDATE refresh_token SET revoked_at = {now} WHERE revoked_at IS NULL AND id <= \
                 (SELECT revoked_refresh_tokens_through FROM customer \
                 WHERE customer.id = refresh_token.customer_id)"
            ),
        ))
        .await?;
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(Alias::new("refresh_token"))
                    .col(Alias::new("customer_id"))
                    .col(Alias::new("family_id"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Customer::Table)
                    .drop_column(Customer::RevokedRefreshTokensThrough)
                    .to_owned(),
            )
            .await
    }
}
