//! Company-user memberships: which one a plain customer token carries (docs/wire-contract.md §2.2)
//! and whether one may still be used (active, in an approved and active company).
//!
//! These queries run on every company-user token, refresh and `GET /company-users/mine`:
//! their SQL is rendered once ([`CachedSql`]).

use entity::{company, company_user, customer};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, JoinType, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait, RelationTrait, Select, Statement, Value,
    sea_query::{Expr, ExprTrait, SubQueryStatement},
};
use uuid::Uuid;

use super::sql::{CachedSql, SizedSql, equals_constant};

/// Active memberships of active customers in approved, active companies.
fn usable_of_anyone() -> Select<company_user::Entity> {
    company_user::Entity::find()
        .join(JoinType::InnerJoin, company_user::Relation::Company.def())
        .join(JoinType::InnerJoin, company_user::Relation::Customer.def())
        .filter(equals_constant(company_user::Column::IsActive, true))
        .filter(equals_constant(company::Column::IsActive, true))
        .filter(equals_constant(company::Column::Status, "approved"))
        .filter(equals_constant(customer::Column::IsActive, true))
}

/// The usable memberships of `customer`: a value, or a column of an outer query.
fn usable(customer: impl Into<Expr>) -> Select<company_user::Entity> {
    usable_of_anyone()
        .filter(Expr::col(company_user::Column::CustomerId.as_column_ref()).eq(customer))
}

/// The uuids of the customer's usable memberships, the default one first: marked default,
/// else the oldest.
fn by_default_first(customer: impl Into<Expr>) -> Select<company_user::Entity> {
    usable(customer)
        .select_only()
        .column(company_user::Column::Uuid)
        .order_by_desc(company_user::Column::IsDefault)
        .order_by_asc(company_user::Column::CreatedAt)
        .order_by_asc(company_user::Column::Id)
}

/// A scalar subquery for a refresh: the uuid of the membership `company_user_id` of
/// `customer_id` if it is usable (both columns of the outer query).
pub fn usable_uuid_by_id(customer_id: Expr, company_user_id: Expr) -> Expr {
    let select = usable(customer_id)
        .select_only()
        .column(company_user::Column::Uuid)
        .filter(Expr::col(company_user::Column::Id.as_column_ref()).eq(company_user_id))
        .into_query();
    Expr::SubQuery(None, Box::new(SubQueryStatement::SelectStatement(select)))
}

/// A scalar subquery for a refresh: the uuid of the default company user of `customer_id`
/// (a column of the outer query). Its `LIMIT 1` is written into the SQL, not bound.
pub fn default_uuid_of(backend: DbBackend, customer_id: Expr) -> Expr {
    let select = by_default_first(customer_id).build(backend);
    debug_assert!(select.values.as_ref().is_none_or(|v| v.0.is_empty()), "{select:?}");
    Expr::cust(format!("({} LIMIT 1)", select.sql))
}

fn by_uuid_query(backend: DbBackend, customer_id: i32, uuid: Uuid) -> Statement {
    usable(customer_id).filter(company_user::Column::Uuid.eq(uuid)).build(backend)
}
static BY_UUID: CachedSql = CachedSql::new(|backend| by_uuid_query(backend, 0, Uuid::nil()));

/// The membership `uuid` if it belongs to the customer and is usable.
pub async fn usable_by_uuid(
    db: &impl ConnectionTrait,
    customer_id: i32,
    uuid: Uuid,
) -> Result<Option<company_user::Model>, DbErr> {
    let stmt = BY_UUID.bind(db.get_database_backend(), [customer_id.into(), uuid.into()]);
    company_user::Entity::find().from_raw_sql(stmt).one(db).await
}

fn all_query(backend: DbBackend, customer_id: i32) -> Statement {
    usable(customer_id).order_by_asc(company_user::Column::Id).build(backend)
}
static ALL: CachedSql = CachedSql::new(|backend| all_query(backend, 0));

/// Every usable membership of the customer (`GET /company-users/mine`): exactly the ones
/// `POST /company-user-access-tokens` accepts.
pub async fn usable_memberships(
    db: &impl ConnectionTrait,
    customer_id: i32,
) -> Result<Vec<company_user::Model>, DbErr> {
    let stmt = ALL.bind(db.get_database_backend(), [customer_id.into()]);
    company_user::Entity::find().from_raw_sql(stmt).all(db).await
}

/// A usable membership, as a company-user token is stored with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usable {
    pub id: i32,
    pub customer_id: i32,
}

fn usable_ids_query(backend: DbBackend, uuids: &[Uuid]) -> Statement {
    use company_user::Column as U;
    usable_of_anyone()
        .select_only()
        .columns([U::Uuid, U::Id, U::CustomerId])
        .filter(U::Uuid.is_in(uuids.iter().copied()))
        .build(backend)
}
static USABLE_IDS: SizedSql =
    SizedSql::new(|backend, n| usable_ids_query(backend, &vec![Uuid::nil(); n]));

/// Which of the memberships `uuids` (at most [`SizedSql::MAX`]) are usable, whoever's they
/// are: their uuid, id and customer, in that order (for the token store's groups: one read
/// for many company-user tokens). Each caller checks the customer.
pub fn usable_ids_statement(backend: DbBackend, uuids: &[Uuid]) -> Statement {
    USABLE_IDS.bind(backend, uuids.len(), uuids.iter().map(|u| Value::from(*u)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::sql::tests::{assert_same, assert_same_sized};

    #[test]
    fn cached_statements_match_a_fresh_rendering() {
        let uuid = Uuid::new_v4();
        assert_same(&BY_UUID, &[7.into(), uuid.into()], |b| by_uuid_query(b, 7, uuid));
        assert_same(&ALL, &[7.into()], |b| all_query(b, 7));
        for rows in [1usize, 4] {
            let uuids: Vec<Uuid> = (0..rows).map(|_| Uuid::new_v4()).collect();
            let values: Vec<Value> = uuids.iter().map(|u| (*u).into()).collect();
            assert_same_sized(&USABLE_IDS, rows, &values, |b| usable_ids_query(b, &uuids));
        }
    }
}
