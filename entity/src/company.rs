//! A company (B2B account) that customers work for.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "company")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    #[sea_orm(unique)]
    pub uuid: Uuid,
    pub name: String,
    /// `pending`, `approved` or `denied`; only approved companies can be entered.
    pub status: String,
    pub is_active: bool,
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
