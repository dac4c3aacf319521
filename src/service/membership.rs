//! Company-user memberships: which one a plain customer token carries (spec §2.2) and
//! whether one may still be used (active, in an approved and active company).

use entity::{company, company_user, customer};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, JoinType, QueryFilter, QueryOrder,
    QuerySelect, RelationTrait, Select,
};
use uuid::Uuid;

/// Active memberships of active customers in approved, active companies.
fn usable() -> Select<company_user::Entity> {
    company_user::Entity::find()
        .join(JoinType::InnerJoin, company_user::Relation::Company.def())
        .join(JoinType::InnerJoin, company_user::Relation::Customer.def())
        .filter(company_user::Column::IsActive.eq(true))
        .filter(company::Column::IsActive.eq(true))
        .filter(company::Column::Status.eq("approved"))
        .filter(customer::Column::IsActive.eq(true))
}

/// The customer's default company user: the usable membership marked default, else the
/// oldest usable one, else none. Deterministic where Spryker takes the first row it gets.
pub async fn default_company_user(
    db: &impl ConnectionTrait,
    customer_id: i32,
) -> Result<Option<Uuid>, DbErr> {
    usable()
        .select_only()
        .column(company_user::Column::Uuid)
        .filter(company_user::Column::CustomerId.eq(customer_id))
        .order_by_desc(company_user::Column::IsDefault)
        .order_by_asc(company_user::Column::CreatedAt)
        .order_by_asc(company_user::Column::Id)
        .into_tuple::<Uuid>()
        .one(db)
        .await
}

/// The membership `id` if it belongs to the customer and is usable.
pub async fn usable_by_id(
    db: &impl ConnectionTrait,
    customer_id: i32,
    id: i32,
) -> Result<Option<company_user::Model>, DbErr> {
    usable()
        .filter(company_user::Column::CustomerId.eq(customer_id))
        .filter(company_user::Column::Id.eq(id))
        .one(db)
        .await
}

/// The membership `uuid` if it belongs to the customer and is usable.
pub async fn usable_by_uuid(
    db: &impl ConnectionTrait,
    customer_id: i32,
    uuid: Uuid,
) -> Result<Option<company_user::Model>, DbErr> {
    usable()
        .filter(company_user::Column::CustomerId.eq(customer_id))
        .filter(company_user::Column::Uuid.eq(uuid))
        .one(db)
        .await
}

/// Every usable membership of the customer (`GET /company-users/mine`): exactly the ones
/// `POST /company-user-access-tokens` accepts.
pub async fn usable_memberships(
    db: &impl ConnectionTrait,
    customer_id: i32,
) -> Result<Vec<company_user::Model>, DbErr> {
    usable()
        .filter(company_user::Column::CustomerId.eq(customer_id))
        .order_by_asc(company_user::Column::Id)
        .all(db)
        .await
}
