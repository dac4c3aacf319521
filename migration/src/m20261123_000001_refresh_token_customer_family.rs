//! One index for a refresh token's customer and family instead of one for each.
//!
//! Every new refresh token adds an entry to each index of `refresh_token`, and an entry
//! keyed by a random value (a customer, a family) lands on a random page: under load each
//! such page is one more page written to the WAL and synced at the commit. A family always
//! belongs to one customer, so `(customer_id, family_id)` serves both the family's
//! revocation (which knows the customer) and everything that looked tokens up by customer
//! (revoking all of a customer's tokens, the foreign key's cascade). One random page fewer
//! per token.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261123_000001_refresh_token_customer_family"
    }
}

const TABLE: &str = "refresh_token";
const COMBINED: &str = "ix_refresh_token_customer_family";
const SEPARATE: [(&str, &str); 2] =
    [("ix_refresh_token_family", "family_id"), ("ix_refresh_token_customer", "customer_id")];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(COMBINED)
                    .table(Alias::new(TABLE))
                    .col(Alias::new("customer_id"))
                    .col(Alias::new("family_id"))
                    .to_owned(),
            )
            .await?;
        for (name, _) in SEPARATE {
            manager
                .drop_index(Index::drop().name(name).table(Alias::new(TABLE)).to_owned())
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, col) in SEPARATE {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Alias::new(TABLE))
                        .col(Alias::new(col))
                        .to_owned(),
                )
                .await?;
        }
        manager.drop_index(Index::drop().name(COMBINED).table(Alias::new(TABLE)).to_owned()).await
    }
}
