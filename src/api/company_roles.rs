//! `GET /company-roles/mine` and `GET /company-roles/{id}`: the roles of the caller's
//! company (docs/wire-contract.md §3.6), with `include=companies`.

use std::sync::Arc;

use entity::company_role;
use poem::{Request, web::Data};
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Path, Query},
};
use uuid::Uuid;

use super::{
    ApiTags,
    auth::Bearer,
    company_documents::{
        COMPANY_ROLES, CollectionLinks, IncludedResource, Includes, Relationships, base,
        company_context, parse_uuid, resource_link, unpaged_links, wanted,
    },
    errors::{
        ApiError, COMPANY_ROLE_NOT_FOUND, COMPANY_ROLES_NO_CONTEXT, INVALID_ACCESS_TOKEN,
        MISSING_ACCESS_TOKEN, error_set,
    },
    jsonapi::{JsonApi, SelfLinks, resource_type},
};
use crate::{
    app::AppState,
    error::{CompanyResource, Error},
    service::{self, company::Primary},
};

/// The attributes of a company role.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct CompanyRolesAttributes {
    /// The role's name.
    pub name: String,
    /// Whether new company users get this role by default.
    pub is_default: bool,
}

resource_type!(CompanyRolesType, CompanyRoles, "company-roles");

/// A `company-roles` resource.
#[derive(Debug, Clone, Object)]
pub struct CompanyRolesResource {
    /// Always `company-roles`.
    #[oai(rename = "type")]
    pub ty: CompanyRolesType,
    /// The role's uuid.
    pub id: Uuid,
    /// The role's attributes.
    pub attributes: CompanyRolesAttributes,
    /// `companies`, when asked with `include`.
    #[oai(skip_serializing_if_is_none)]
    pub relationships: Option<Relationships>,
    /// The role's URL.
    pub links: SelfLinks,
}

impl CompanyRolesResource {
    pub fn new(
        base: &str,
        role: &company_role::Model,
        relationships: Option<Relationships>,
    ) -> Self {
        Self {
            ty: CompanyRolesType::CompanyRoles,
            id: role.uuid,
            attributes: CompanyRolesAttributes {
                name: role.name.clone(),
                is_default: role.is_default,
            },
            relationships,
            links: resource_link(base, COMPANY_ROLES, role.uuid),
        }
    }
}

/// The document of one company role.
#[derive(Debug, Object)]
pub struct CompanyRolesDocument {
    /// The role.
    pub data: CompanyRolesResource,
    /// The related resources asked for with `include`, each once.
    #[oai(skip_serializing_if_is_none)]
    pub included: Option<Vec<IncludedResource>>,
}

/// The document of `GET /company-roles/mine`.
#[derive(Debug, Object)]
pub struct CompanyRolesCollectionDocument {
    /// The caller's roles.
    pub data: Vec<CompanyRolesResource>,
    /// The document's URL.
    pub links: CollectionLinks,
    /// The related resources asked for with `include`, each once.
    #[oai(skip_serializing_if_is_none)]
    pub included: Option<Vec<IncludedResource>>,
}

#[derive(ApiResponse)]
pub enum CompanyRoleResponse {
    /// The role.
    #[oai(status = 200)]
    Ok(JsonApi<CompanyRolesDocument>),
}

#[derive(ApiResponse)]
pub enum CompanyRolesResponse {
    /// The caller's roles.
    #[oai(status = 200)]
    Ok(JsonApi<CompanyRolesCollectionDocument>),
}

error_set!(MyCompanyRolesErrors: INVALID_ACCESS_TOKEN, MISSING_ACCESS_TOKEN, COMPANY_ROLES_NO_CONTEXT);
error_set!(
    CompanyRoleErrors: INVALID_ACCESS_TOKEN,
    MISSING_ACCESS_TOKEN,
    COMPANY_ROLES_NO_CONTEXT,
    COMPANY_ROLE_NOT_FOUND
);

const RESOURCE: CompanyResource = CompanyResource::CompanyRoles;

/// The roles as resources, with what `include` asks for.
async fn resources(
    state: &Arc<AppState>,
    req: &Request,
    include: Option<&str>,
    roles: &[company_role::Model],
) -> Result<(Vec<CompanyRolesResource>, Option<Vec<IncludedResource>>), Error> {
    let base = base(req, state);
    let primary = Primary { roles, ..Primary::default() };
    let includes = Includes::load(state, &base, wanted(include, COMPANY_ROLES), primary).await?;
    let data =
        roles.iter().map(|r| CompanyRolesResource::new(&base, r, includes.of_role(r))).collect();
    Ok((data, includes.included()))
}

pub struct CompanyRolesApi;

#[OpenApi(tag = "ApiTags::CompanyRoles")]
impl CompanyRolesApi {
    /// Retrieve the caller's roles.
    ///
    /// The roles of the caller's company user, in the order they were created. Without a usable
    /// company user: 403/2103.
    #[oai(path = "/company-roles/mine", method = "get", operation_id = "getMyCompanyRoles")]
    async fn mine(
        &self,
        caller: Bearer,
        /// Related resources to include: `companies`. Unknown names are ignored.
        include: Query<Option<String>>,
        state: Data<&Arc<AppState>>,
        req: &Request,
    ) -> Result<CompanyRolesResponse, ApiError<MyCompanyRolesErrors>> {
        let user = company_context(&state, &caller, RESOURCE).await?;
        let roles: Vec<company_role::Model> = service::company::roles_of(&state.db, [user.id])
            .await?
            .into_iter()
            .map(|(_, role)| role)
            .collect();
        let (data, included) = resources(&state, req, include.0.as_deref(), &roles).await?;
        let links = unpaged_links(req, &state);
        Ok(CompanyRolesResponse::Ok(JsonApi(CompanyRolesCollectionDocument {
            data,
            links,
            included,
        })))
    }

    /// Retrieve a company role.
    ///
    /// Any role of the caller's company; a role of another company, an unknown id or one
    /// that is not a uuid gets 404/2101. Without a usable company user: 403/2103.
    #[oai(path = "/company-roles/:id", method = "get", operation_id = "getCompanyRole")]
    async fn get(
        &self,
        /// The role's uuid.
        id: Path<String>,
        caller: Bearer,
        /// Related resources to include: `companies`. Unknown names are ignored.
        include: Query<Option<String>>,
        state: Data<&Arc<AppState>>,
        req: &Request,
    ) -> Result<CompanyRoleResponse, ApiError<CompanyRoleErrors>> {
        let user = company_context(&state, &caller, RESOURCE).await?;
        let uuid = parse_uuid(&id.0).ok_or(Error::NotFound(RESOURCE))?;
        let role = service::company::role_in_company(&state.db, user.company_id, uuid)
            .await?
            .ok_or(Error::NotFound(RESOURCE))?;
        let (data, included) = resources(&state, req, include.0.as_deref(), &[role]).await?;
        let data = data.into_iter().next().ok_or_else(|| Error::internal("one role expected"))?;
        Ok(CompanyRoleResponse::Ok(JsonApi(CompanyRolesDocument { data, included })))
    }
}
