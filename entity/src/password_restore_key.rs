//! A customer's password restore key, stored only as a hash (docs/wire-contract.md §3.10).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "password_restore_key")]
pub struct Model {
    /// One key per customer: a new one replaces the old.
    #[sea_orm(primary_key, auto_increment = false)]
    pub customer_id: i32,
    /// SHA-256 of the key, base64url: the key itself is only in the mail.
    #[sea_orm(unique)]
    pub key_hash: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; at and after it the key no longer restores.
    pub expires_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::customer::Entity",
        from = "Column::CustomerId",
        to = "super::customer::Column::Id"
    )]
    Customer,
}

impl ActiveModelBehavior for ActiveModel {}

impl Related<super::customer::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Customer.def()
    }
}
