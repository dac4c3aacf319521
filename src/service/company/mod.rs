//! What a company user may read of its company (docs/wire-contract.md §3.5, §3.6): one
//! function per operation. Each checks the caller's company context, then the permission
//! the operation needs, then looks the resource up within the caller's company, and loads
//! the related resources `include` asked for. A resource of another company is not found
//! (a company user of another company is the one exception the contract names).

mod model;
mod queries;

use std::sync::Arc;

use sea_orm::ConnectionTrait;

pub use self::{
    model::{Address, BusinessUnit, Company, CompanyUser, Role},
    queries::{CompanyUserFilter, Primary, Related},
};
use super::{
    Reader,
    membership_cache::{Listing, MembershipCache},
    validate::parse_uuid,
};
use crate::{
    auth::tokens::Identity,
    error::{CompanyResource, ContextResource, Error, Permission},
};

/// Which related resources a document asks for (its `include`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wanted {
    pub companies: bool,
    pub business_units: bool,
    pub roles: bool,
    pub customers: bool,
    pub addresses: bool,
}

/// Resources and what `include` asked for of them.
#[derive(Debug, Clone)]
pub struct Found<T> {
    pub items: Vec<T>,
    pub related: Related,
}

/// One resource and what `include` asked for of it.
#[derive(Debug, Clone)]
pub struct FoundOne<T> {
    pub item: T,
    pub related: Related,
}

/// A page of a collection, the size of the whole collection, and what `include` asked for.
#[derive(Debug, Clone)]
pub struct FoundPage<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub related: Related,
}

/// The caller's memberships as remembered, and what `include` asked for of them.
#[derive(Debug, Clone)]
pub struct Memberships {
    pub listing: Arc<Listing>,
    pub related: Related,
}

/// `GET /company-users` asks for a window of the company's users, filtered.
#[derive(Debug, Clone, Default)]
pub struct CompanyUsersQuery {
    pub filter: CompanyUserFilter,
    pub offset: u64,
    pub limit: u64,
    pub wanted: Wanted,
}

/// The caller's usable company user, or the resource's "no company context" error.
async fn context(
    db: &impl ConnectionTrait,
    caller: &Identity,
    resource: ContextResource,
) -> Result<CompanyUser, Error> {
    queries::context(db, caller.customer_id, caller.company_user)
        .await?
        .ok_or(Error::NoCompanyContext(resource))
}

/// The caller's usable company user for reading one resource by id: without a company
/// context nothing is in the caller's company, so the resource is not found
/// (docs/wire-contract.md §3.6).
async fn context_for_id(
    db: &impl ConnectionTrait,
    caller: &Identity,
    resource: CompanyResource,
) -> Result<CompanyUser, Error> {
    queries::context(db, caller.customer_id, caller.company_user)
        .await?
        .ok_or(Error::NotFound(resource))
}

/// The caller's company user, holding `permission` through one of its roles (read from the
/// database, never from the token: docs/wire-contract.md §2.1).
async fn context_with(
    db: &impl ConnectionTrait,
    caller: &Identity,
    resource: ContextResource,
    permission: Permission,
) -> Result<CompanyUser, Error> {
    let user = context(db, caller, resource).await?;
    if !queries::has_permission(db, user.id, permission.key()).await? {
        return Err(Error::PermissionMissing(permission));
    }
    Ok(user)
}

/// The related resources `wanted` asks for: nothing is read when nothing is asked.
async fn related(
    db: &impl ConnectionTrait,
    wanted: Wanted,
    primary: Primary<'_>,
) -> Result<Related, Error> {
    if wanted == Wanted::default() {
        return Ok(Related::default());
    }
    Ok(queries::related(db, wanted, primary).await?)
}

/// `GET /company-users/mine`: every usable membership of the caller's customer, from the
/// membership cache; no company context needed.
pub async fn my_company_users(
    db: &Reader,
    cache: &MembershipCache,
    caller: &Identity,
    wanted: Wanted,
) -> Result<Memberships, Error> {
    let db = db.connection();
    let listing = cache.usable_memberships(db, caller.customer_id).await?;
    let primary = Primary { company_users: &listing.users, ..Primary::default() };
    let related = related(db, wanted, primary).await?;
    Ok(Memberships { listing, related })
}

/// `GET /company-users`: the company users of the caller's company (active or not), by
/// creation, for a caller allowed to see them.
pub async fn company_users(
    db: &Reader,
    caller: &Identity,
    query: &CompanyUsersQuery,
) -> Result<FoundPage<CompanyUser>, Error> {
    let db = db.connection();
    let reader =
        context_with(db, caller, ContextResource::CompanyUsers, Permission::SeeCompanyUsers)
            .await?;
    let (items, total) =
        queries::company_users(db, reader.company_id, &query.filter, query.offset, query.limit)
            .await?;
    let primary = Primary { company_users: &items, ..Primary::default() };
    let related = related(db, query.wanted, primary).await?;
    Ok(FoundPage { items, total, related })
}

/// `GET /company-users/{id}`: a company user of the caller's company, for a caller allowed
/// to see them; one of another company is refused as out of context.
pub async fn company_user(
    db: &Reader,
    caller: &Identity,
    id: &str,
    wanted: Wanted,
) -> Result<FoundOne<CompanyUser>, Error> {
    let db = db.connection();
    const RESOURCE: CompanyResource = CompanyResource::CompanyUsers;
    let reader =
        context_with(db, caller, ContextResource::CompanyUsers, Permission::SeeCompanyUsers)
            .await?;
    let uuid = parse_uuid(id).ok_or(Error::NotFound(RESOURCE))?;
    let user = queries::company_user_by_uuid(db, uuid).await?.ok_or(Error::NotFound(RESOURCE))?;
    if user.company_id != reader.company_id {
        return Err(Error::CompanyUserOfAnotherCompany);
    }
    let primary = Primary { company_users: std::slice::from_ref(&user), ..Primary::default() };
    let related = related(db, wanted, primary).await?;
    Ok(FoundOne { item: user, related })
}

/// `GET /companies/mine`: the caller's company.
pub async fn my_company(db: &Reader, caller: &Identity) -> Result<Company, Error> {
    let db = db.connection();
    const RESOURCE: CompanyResource = CompanyResource::Companies;
    let user = context(db, caller, ContextResource::Companies).await?;
    queries::company_by_id(db, user.company_id).await?.ok_or(Error::NotFound(RESOURCE))
}

/// `GET /companies/{id}`: the caller's company, if `id` names it.
pub async fn company(db: &Reader, caller: &Identity, id: &str) -> Result<Company, Error> {
    const RESOURCE: CompanyResource = CompanyResource::Companies;
    let db = db.connection();
    let user = context_for_id(db, caller, RESOURCE).await?;
    let company =
        queries::company_by_id(db, user.company_id).await?.ok_or(Error::NotFound(RESOURCE))?;
    if parse_uuid(id) != Some(company.uuid) {
        return Err(Error::NotFound(RESOURCE));
    }
    Ok(company)
}

/// `GET /company-business-units/mine`: the caller's own business unit, if it has one.
pub async fn my_business_units(
    db: &Reader,
    caller: &Identity,
    wanted: Wanted,
) -> Result<Found<BusinessUnit>, Error> {
    let db = db.connection();
    let user = context(db, caller, ContextResource::CompanyBusinessUnits).await?;
    let items = match user.business_unit_id {
        Some(id) => queries::business_units_by_ids(db, [id]).await?,
        None => Vec::new(),
    };
    let primary = Primary { business_units: &items, ..Primary::default() };
    let related = related(db, wanted, primary).await?;
    Ok(Found { items, related })
}

/// `GET /company-business-units/{id}`: a business unit of the caller's company.
pub async fn business_unit(
    db: &Reader,
    caller: &Identity,
    id: &str,
    wanted: Wanted,
) -> Result<FoundOne<BusinessUnit>, Error> {
    let db = db.connection();
    const RESOURCE: CompanyResource = CompanyResource::CompanyBusinessUnits;
    let user = context_for_id(db, caller, RESOURCE).await?;
    let uuid = parse_uuid(id).ok_or(Error::NotFound(RESOURCE))?;
    let unit = queries::business_unit_in_company(db, user.company_id, uuid)
        .await?
        .ok_or(Error::NotFound(RESOURCE))?;
    let primary = Primary { business_units: std::slice::from_ref(&unit), ..Primary::default() };
    let related = related(db, wanted, primary).await?;
    Ok(FoundOne { item: unit, related })
}

/// `GET /company-roles/mine`: the roles the caller's company user holds.
pub async fn my_roles(
    db: &Reader,
    caller: &Identity,
    wanted: Wanted,
) -> Result<Found<Role>, Error> {
    let db = db.connection();
    let user = context(db, caller, ContextResource::CompanyRoles).await?;
    let items: Vec<Role> =
        queries::roles_of(db, [user.id]).await?.into_iter().map(|(_, role)| role).collect();
    let primary = Primary { roles: &items, ..Primary::default() };
    let related = related(db, wanted, primary).await?;
    Ok(Found { items, related })
}

/// `GET /company-roles/{id}`: a role of the caller's company.
pub async fn role(
    db: &Reader,
    caller: &Identity,
    id: &str,
    wanted: Wanted,
) -> Result<FoundOne<Role>, Error> {
    let db = db.connection();
    const RESOURCE: CompanyResource = CompanyResource::CompanyRoles;
    let user = context_for_id(db, caller, RESOURCE).await?;
    let uuid = parse_uuid(id).ok_or(Error::NotFound(RESOURCE))?;
    let role = queries::role_in_company(db, user.company_id, uuid)
        .await?
        .ok_or(Error::NotFound(RESOURCE))?;
    let primary = Primary { roles: std::slice::from_ref(&role), ..Primary::default() };
    let related = related(db, wanted, primary).await?;
    Ok(FoundOne { item: role, related })
}

/// `GET /company-business-unit-addresses/{id}`: an address of the caller's company; any
/// member of the company may read any of its addresses.
pub async fn address(db: &Reader, caller: &Identity, id: &str) -> Result<Address, Error> {
    let db = db.connection();
    const RESOURCE: CompanyResource = CompanyResource::CompanyBusinessUnitAddresses;
    let user = context_for_id(db, caller, RESOURCE).await?;
    let uuid = parse_uuid(id).ok_or(Error::NotFound(RESOURCE))?;
    queries::address_in_company(db, user.company_id, uuid).await?.ok_or(Error::NotFound(RESOURCE))
}
