//! An issued refresh token. Only a SHA-256 hash of the token is stored (docs/wire-contract.md
//! §2.3).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refresh_token")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Hex SHA-256 of the opaque token.
    #[sea_orm(unique)]
    pub token_hash: String,
    /// The rotation chain this token belongs to (one login or one company-user authentication).
    pub family_id: Uuid,
    pub customer_id: i32,
    /// Set for company-user tokens: the membership the token is bound to.
    pub company_user_id: Option<i32>,
    /// Space-separated scopes, e.g. `customer` or `company_user`.
    pub scopes: String,
    pub client_id: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// The token this one was rotated into; a rotated token presented again is a reuse.
    pub rotated_into_id: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
