//! The reads behind the company operations: each confined to a company or to ids the
//! caller already holds, related resources in one query per relationship type (no N+1).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use entity::{
    company, company_business_unit, company_role, company_role_permission, company_unit_address,
    company_unit_address_to_business_unit, company_user, company_user_role, customer,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, ExprTrait, JoinType, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, RelationDef, sea_query::Query,
};
use uuid::Uuid;

use super::{
    Wanted,
    model::{Address, BusinessUnit, Company, CompanyUser, Role},
};
use crate::service::{customers::Customer, membership, sql::first};

/// The caller's company context: its company user, if the token carries one that is still
/// usable (active, in an approved and active company). Read on every request, so a
/// deactivated membership loses its context at once.
pub async fn context(
    db: &impl ConnectionTrait,
    customer_id: i32,
    company_user: Option<Uuid>,
) -> Result<Option<CompanyUser>, DbErr> {
    match company_user {
        Some(uuid) => Ok(membership::usable_by_uuid(db, customer_id, uuid).await?.map(Into::into)),
        None => Ok(None),
    }
}

/// Whether one of the company user's roles grants `permission_key` (read from the database,
/// never from the token: docs/wire-contract.md §2.1).
pub async fn has_permission(
    db: &impl ConnectionTrait,
    company_user_id: i32,
    permission_key: &str,
) -> Result<bool, DbErr> {
    let roles = Query::select()
        .column(company_user_role::Column::RoleId)
        .from(company_user_role::Entity)
        .and_where(company_user_role::Column::CompanyUserId.eq(company_user_id))
        .to_owned();
    let granted = company_role_permission::Entity::find()
        .filter(company_role_permission::Column::PermissionKey.eq(permission_key))
        .filter(company_role_permission::Column::RoleId.in_subquery(roles))
        .count(db)
        .await?;
    Ok(granted > 0)
}

/// Filters of the company-user collection. `None`: no filter; `Some(values)`: a user
/// matches when any of the values matches (an empty list matches nothing).
#[derive(Debug, Clone, Default)]
pub struct CompanyUserFilter {
    pub business_units: Option<Vec<Uuid>>,
    pub roles: Option<Vec<Uuid>>,
}

/// The company users of `company_id` (active or not) matching `filter`, by id.
pub async fn company_users(
    db: &impl ConnectionTrait,
    company_id: i32,
    filter: &CompanyUserFilter,
    offset: u64,
    limit: u64,
) -> Result<(Vec<CompanyUser>, u64), DbErr> {
    let mut select =
        company_user::Entity::find().filter(company_user::Column::CompanyId.eq(company_id));
    if let Some(units) = &filter.business_units {
        let ids = Query::select()
            .column(company_business_unit::Column::Id)
            .from(company_business_unit::Entity)
            .and_where(company_business_unit::Column::Uuid.is_in(units.iter().copied()))
            .to_owned();
        select = select.filter(company_user::Column::BusinessUnitId.in_subquery(ids));
    }
    if let Some(roles) = &filter.roles {
        let role_ids = Query::select()
            .column(company_role::Column::Id)
            .from(company_role::Entity)
            .and_where(company_role::Column::Uuid.is_in(roles.iter().copied()))
            .to_owned();
        let users = Query::select()
            .column(company_user_role::Column::CompanyUserId)
            .from(company_user_role::Entity)
            .and_where(company_user_role::Column::RoleId.in_subquery(role_ids))
            .to_owned();
        select = select.filter(company_user::Column::Id.in_subquery(users));
    }
    let total = select.clone().count(db).await?;
    let items = if limit == 0 || offset >= total {
        Vec::new()
    } else {
        let page = select.order_by_asc(company_user::Column::Id).offset(offset).limit(limit);
        page.all(db).await?.into_iter().map(Into::into).collect()
    };
    Ok((items, total))
}

/// A company user by uuid, in any company (the caller decides what another company means).
pub async fn company_user_by_uuid(
    db: &impl ConnectionTrait,
    uuid: Uuid,
) -> Result<Option<CompanyUser>, DbErr> {
    let select = company_user::Entity::find().filter(company_user::Column::Uuid.eq(uuid));
    Ok(first(db, select).await?.map(Into::into))
}

/// A company by its internal id.
pub async fn company_by_id(db: &impl ConnectionTrait, id: i32) -> Result<Option<Company>, DbErr> {
    Ok(first(db, company::Entity::find_by_id(id)).await?.map(Into::into))
}

/// The join from a unit to its default billing address.
fn default_billing_address() -> RelationDef {
    company_business_unit::Entity::belongs_to(company_unit_address::Entity)
        .from(company_business_unit::Column::DefaultBillingAddressId)
        .to(company_unit_address::Column::Id)
        .into()
}

async fn business_units(
    db: &impl ConnectionTrait,
    condition: sea_orm::sea_query::Expr,
) -> Result<Vec<BusinessUnit>, DbErr> {
    Ok(company_business_unit::Entity::find()
        .select_also(company_unit_address::Entity)
        .join(JoinType::LeftJoin, default_billing_address())
        .filter(condition)
        .order_by_asc(company_business_unit::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(|(unit, address)| BusinessUnit::new(unit, address.map(|a| a.uuid)))
        .collect())
}

/// The business unit `uuid` if it belongs to `company_id`.
pub async fn business_unit_in_company(
    db: &impl ConnectionTrait,
    company_id: i32,
    uuid: Uuid,
) -> Result<Option<BusinessUnit>, DbErr> {
    let condition = company_business_unit::Column::Uuid
        .eq(uuid)
        .and(company_business_unit::Column::CompanyId.eq(company_id));
    Ok(business_units(db, condition).await?.into_iter().next())
}

/// Business units by internal id.
pub async fn business_units_by_ids(
    db: &impl ConnectionTrait,
    ids: impl IntoIterator<Item = i32>,
) -> Result<Vec<BusinessUnit>, DbErr> {
    business_units(db, company_business_unit::Column::Id.is_in(ids)).await
}

/// The role `uuid` if it belongs to `company_id`.
pub async fn role_in_company(
    db: &impl ConnectionTrait,
    company_id: i32,
    uuid: Uuid,
) -> Result<Option<Role>, DbErr> {
    let select = company_role::Entity::find()
        .filter(company_role::Column::Uuid.eq(uuid))
        .filter(company_role::Column::CompanyId.eq(company_id));
    Ok(first(db, select).await?.map(Into::into))
}

/// The roles each of the company users holds: (company user id, role), by role id.
pub async fn roles_of(
    db: &impl ConnectionTrait,
    company_user_ids: impl IntoIterator<Item = i32>,
) -> Result<Vec<(i32, Role)>, DbErr> {
    let to_role: RelationDef = company_user_role::Entity::belongs_to(company_role::Entity)
        .from(company_user_role::Column::RoleId)
        .to(company_role::Column::Id)
        .into();
    Ok(company_user_role::Entity::find()
        .select_also(company_role::Entity)
        .join(JoinType::InnerJoin, to_role)
        .filter(company_user_role::Column::CompanyUserId.is_in(company_user_ids))
        .order_by_asc(company_user_role::Column::CompanyUserId)
        .order_by_asc(company_role::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .filter_map(|(link, role)| role.map(|role| (link.company_user_id, role.into())))
        .collect())
}

/// The address `uuid` if it belongs to `company_id`.
pub async fn address_in_company(
    db: &impl ConnectionTrait,
    company_id: i32,
    uuid: Uuid,
) -> Result<Option<Address>, DbErr> {
    let select = company_unit_address::Entity::find()
        .filter(company_unit_address::Column::Uuid.eq(uuid))
        .filter(company_unit_address::Column::CompanyId.eq(company_id));
    Ok(first(db, select).await?.map(Into::into))
}

/// The addresses linked to each of the units: (unit id, address), by address id.
pub async fn addresses_of(
    db: &impl ConnectionTrait,
    unit_ids: impl IntoIterator<Item = i32>,
) -> Result<Vec<(i32, Address)>, DbErr> {
    use company_unit_address_to_business_unit as link;
    let to_address: RelationDef = link::Entity::belongs_to(company_unit_address::Entity)
        .from(link::Column::AddressId)
        .to(company_unit_address::Column::Id)
        .into();
    Ok(link::Entity::find()
        .select_also(company_unit_address::Entity)
        .join(JoinType::InnerJoin, to_address)
        .filter(link::Column::BusinessUnitId.is_in(unit_ids))
        .order_by_asc(link::Column::BusinessUnitId)
        .order_by_asc(company_unit_address::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .filter_map(|(link, address)| address.map(|a| (link.business_unit_id, a.into())))
        .collect())
}

/// The related resources of a document's primary data, keyed by internal id, with the
/// links between them.
#[derive(Debug, Clone, Default)]
pub struct Related {
    pub companies: BTreeMap<i32, Company>,
    pub business_units: BTreeMap<i32, BusinessUnit>,
    pub roles: BTreeMap<i32, Role>,
    pub customers: BTreeMap<i32, Customer>,
    pub addresses: BTreeMap<i32, Address>,
    /// Role ids by company user id.
    pub roles_of_user: HashMap<i32, Vec<i32>>,
    /// Address ids by business unit id.
    pub addresses_of_unit: HashMap<i32, Vec<i32>>,
}

/// The primary data of a document, whose related resources are to be loaded.
#[derive(Debug, Clone, Copy, Default)]
pub struct Primary<'a> {
    pub company_users: &'a [CompanyUser],
    pub business_units: &'a [BusinessUnit],
    pub roles: &'a [Role],
}

/// Loads what `wanted` asks for, for the primary data and, transitively, for the related
/// resources themselves (a unit included with company users brings its company and
/// addresses when those are wanted too): at most one query per relationship type.
pub async fn related(
    db: &impl ConnectionTrait,
    wanted: Wanted,
    primary: Primary<'_>,
) -> Result<Related, DbErr> {
    let mut out = Related::default();
    let user_ids: Vec<i32> = primary.company_users.iter().map(|u| u.id).collect();

    if wanted.business_units {
        let ids: BTreeSet<i32> =
            primary.company_users.iter().filter_map(|u| u.business_unit_id).collect();
        if !ids.is_empty() {
            for unit in business_units_by_ids(db, ids).await? {
                out.business_units.insert(unit.id, unit);
            }
        }
    }
    if wanted.roles && !user_ids.is_empty() {
        for (user_id, role) in roles_of(db, user_ids.iter().copied()).await? {
            out.roles_of_user.entry(user_id).or_default().push(role.id);
            out.roles.insert(role.id, role);
        }
    }
    if wanted.addresses {
        let unit_ids: BTreeSet<i32> = primary
            .business_units
            .iter()
            .map(|u| u.id)
            .chain(out.business_units.keys().copied())
            .collect();
        if !unit_ids.is_empty() {
            for (unit_id, address) in addresses_of(db, unit_ids).await? {
                out.addresses_of_unit.entry(unit_id).or_default().push(address.id);
                out.addresses.insert(address.id, address);
            }
        }
    }
    if wanted.companies {
        let ids: BTreeSet<i32> = primary
            .company_users
            .iter()
            .map(|u| u.company_id)
            .chain(primary.business_units.iter().map(|u| u.company_id))
            .chain(primary.roles.iter().map(|r| r.company_id))
            .chain(out.business_units.values().map(|u| u.company_id))
            .chain(out.roles.values().map(|r| r.company_id))
            .collect();
        if !ids.is_empty() {
            for company in company::Entity::find()
                .filter(company::Column::Id.is_in(ids))
                .order_by_asc(company::Column::Id)
                .all(db)
                .await?
            {
                out.companies.insert(company.id, company.into());
            }
        }
    }
    if wanted.customers {
        let ids: BTreeSet<i32> = primary.company_users.iter().map(|u| u.customer_id).collect();
        if !ids.is_empty() {
            let rows = customer::Entity::find()
                .select_only()
                .columns([
                    customer::Column::Id,
                    customer::Column::CustomerReference,
                    customer::Column::FirstName,
                    customer::Column::LastName,
                    customer::Column::Email,
                    customer::Column::Salutation,
                    customer::Column::Gender,
                    customer::Column::DateOfBirth,
                    customer::Column::CreatedAt,
                    customer::Column::UpdatedAt,
                ])
                .filter(customer::Column::Id.is_in(ids))
                .into_model::<CustomerColumns>()
                .all(db)
                .await?;
            for row in rows {
                let customer = Customer {
                    reference: row.customer_reference,
                    first_name: row.first_name,
                    last_name: row.last_name,
                    email: row.email,
                    salutation: row.salutation,
                    gender: row.gender,
                    date_of_birth: row.date_of_birth,
                    created_at: row.created_at,
                    updated_at: row.updated_at,
                };
                out.customers.insert(row.id, customer);
            }
        }
    }
    Ok(out)
}

/// The columns of a customer an included `customers` resource shows (no password hash).
#[derive(Debug, sea_orm::FromQueryResult)]
struct CustomerColumns {
    id: i32,
    customer_reference: String,
    first_name: String,
    last_name: String,
    email: String,
    salutation: String,
    gender: Option<String>,
    date_of_birth: Option<String>,
    created_at: i64,
    updated_at: i64,
}
