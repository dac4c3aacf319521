//! Sales agents and their own refresh tokens (docs/wire-contract.md §3.12).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_000001_agent"
    }
}

#[derive(DeriveIden)]
enum Agent {
    Table,
    Id,
    Username,
    UsernameNormalized,
    PasswordHash,
    FirstName,
    LastName,
    IsActive,
    CreatedAt,
    UpdatedAt,
    RevokedRefreshTokensThrough,
}

#[derive(DeriveIden)]
enum AgentRefreshToken {
    Table,
    Id,
    TokenHash,
    FamilyId,
    AgentId,
    ClientId,
    IssuedAt,
    ExpiresAt,
    RevokedAt,
    RotatedIntoId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Agent::Table)
                    .col(
                        ColumnDef::new(Agent::Id)
                            .integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Agent::Username).string().not_null())
                    .col(ColumnDef::new(Agent::UsernameNormalized).string().not_null().unique_key())
                    .col(ColumnDef::new(Agent::PasswordHash).string().null())
                    .col(ColumnDef::new(Agent::FirstName).string().not_null())
                    .col(ColumnDef::new(Agent::LastName).string().not_null())
                    .col(ColumnDef::new(Agent::IsActive).boolean().not_null())
                    .col(ColumnDef::new(Agent::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Agent::UpdatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Agent::RevokedRefreshTokensThrough).big_integer().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AgentRefreshToken::Table)
                    .col(
                        ColumnDef::new(AgentRefreshToken::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(AgentRefreshToken::TokenHash)
                            .string()
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(AgentRefreshToken::FamilyId).uuid().not_null())
                    .col(ColumnDef::new(AgentRefreshToken::AgentId).integer().not_null())
                    .col(ColumnDef::new(AgentRefreshToken::ClientId).string().not_null())
                    .col(ColumnDef::new(AgentRefreshToken::IssuedAt).big_integer().not_null())
                    .col(ColumnDef::new(AgentRefreshToken::ExpiresAt).big_integer().not_null())
                    .col(ColumnDef::new(AgentRefreshToken::RevokedAt).big_integer().null())
                    .col(ColumnDef::new(AgentRefreshToken::RotatedIntoId).big_integer().null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(AgentRefreshToken::Table, AgentRefreshToken::AgentId)
                            .to(Agent::Table, Agent::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("ix_agent_refresh_token_agent", AgentRefreshToken::AgentId),
            ("ix_agent_refresh_token_family", AgentRefreshToken::FamilyId),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(AgentRefreshToken::Table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(AgentRefreshToken::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Agent::Table).to_owned()).await
    }
}
