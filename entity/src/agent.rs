//! A sales agent (Spryker's `spy_user` with `is_agent`): a back-office account that signs
//! in with `POST /agent-access-tokens` and acts for customers (docs/wire-contract.md §3.12).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "agent")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    /// The login name as written, usually an e-mail address (`admin@spryker.com`).
    pub username: String,
    /// The login name lower-cased: the unique, case-insensitive login key.
    #[sea_orm(unique)]
    pub username_normalized: String,
    /// Argon2id PHC string, or a bcrypt hash brought from Spryker; `None` cannot log in.
    pub password_hash: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub is_active: bool,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last change (password, activation).
    pub updated_at: i64,
    /// `DELETE /refresh-tokens/mine` with an agent token revoked the agent's refresh tokens,
    /// and those of the impersonations it started, up to this id of each table.
    pub revoked_refresh_tokens_through: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
