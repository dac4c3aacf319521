//! `GET /company-roles/mine` and `GET /company-roles/{id}`: the roles of the caller's
//! company (docs/wire-contract.md §3.6), with `include=companies`.

use std::sync::Arc;

use poem::{Request, web::Data};
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Path, Query},
};
use uuid::Uuid;

use super::AppState;
use super::{
    ApiTags,
    bearer::Bearer,
    errors::{
        AGENT_TOKEN_NOT_ACCEPTED, ApiError, COMPANY_ROLE_CODES, INVALID_ACCESS_TOKEN,
        MISSING_ACCESS_TOKEN, Never, NotImplementedErrors, error_set, not_implemented,
    },
    includes::{COMPANY_ROLES, IncludedResource, Includes, Relationships, wanted},
    jsonapi::{JsonApi, SelfLinks, resource_type},
    links::{base, resource_link},
    paging::{CollectionLinks, unpaged_links},
};
use crate::service::company::{self, Role};

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
    pub fn new(base: &str, role: &Role, relationships: Option<Relationships>) -> Self {
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

error_set!(
    MyCompanyRolesErrors: INVALID_ACCESS_TOKEN,
    MISSING_ACCESS_TOKEN,
    AGENT_TOKEN_NOT_ACCEPTED,
    COMPANY_ROLE_CODES.no_context
);
error_set!(
    CompanyRoleErrors: INVALID_ACCESS_TOKEN,
    MISSING_ACCESS_TOKEN,
    AGENT_TOKEN_NOT_ACCEPTED,
    COMPANY_ROLE_CODES.not_found
);

pub struct CompanyRolesApi;

#[OpenApi(tag = "ApiTags::CompanyRoles")]
impl CompanyRolesApi {
    /// List company roles (not implemented).
    ///
    /// Glue has this route, protected, with no collection behind it: a valid token gets
    /// 501. Read the caller's own through `mine`, or one by its id.
    #[oai(path = "/company-roles", method = "get", operation_id = "getCompanyRoles")]
    async fn list(&self, _caller: Bearer) -> Result<Never, ApiError<NotImplementedErrors>> {
        not_implemented()
    }

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
        let wanted = wanted(include.0.as_deref(), COMPANY_ROLES);
        let found = company::my_roles(&state.db, &caller.0, wanted).await?;
        let base = base(req, &state);
        let includes = Includes::new(&base, wanted, &found.related);
        let (data, included) = includes
            .render(&found.items, |r| CompanyRolesResource::new(&base, r, includes.of_role(r)));
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
    /// that is not a uuid gets 404/2101, as does a caller without a usable company user.
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
        let wanted = wanted(include.0.as_deref(), COMPANY_ROLES);
        let found = company::role(&state.db, &caller.0, &id.0, wanted).await?;
        let base = base(req, &state);
        let includes = Includes::new(&base, wanted, &found.related);
        let data = CompanyRolesResource::new(&base, &found.item, includes.of_role(&found.item));
        let included = includes.included();
        Ok(CompanyRoleResponse::Ok(JsonApi(CompanyRolesDocument { data, included })))
    }
}
