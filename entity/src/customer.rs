//! A shop customer: the person who logs in.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "customer")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    /// Spryker's public id of a customer, e.g. `DE--21`.
    #[sea_orm(unique)]
    pub customer_reference: String,
    /// The e-mail as the customer wrote it.
    pub email: String,
    /// The e-mail lower-cased: the unique, case-insensitive login key.
    #[sea_orm(unique)]
    pub email_normalized: String,
    /// Argon2id PHC string; `None` until a password is set (such a customer cannot log in).
    pub password_hash: Option<String>,
    pub salutation: String,
    pub first_name: String,
    pub last_name: String,
    pub is_active: bool,
    /// `Male` or `Female` (Spryker's values), or `None` when unknown.
    pub gender: Option<String>,
    /// An ISO 8601 date, `YYYY-MM-DD`, or `None` when unknown.
    pub date_of_birth: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last change of the record (profile, password, activation).
    pub updated_at: i64,
    /// `DELETE /refresh-tokens/mine` revoked the customer's refresh tokens up to this id
    /// (ids only grow, so tokens issued later are not affected).
    pub revoked_refresh_tokens_through: Option<i64>,
    /// SHA-256 (hex) of the password hash the last Spryker import brought, if any.
    pub imported_password_digest: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::company_user::Entity")]
    CompanyUser,
}

impl Related<super::company_user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::CompanyUser.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
