//! `GET /companies/mine` and `GET /companies/{id}`: the caller's company (docs/wire-contract.md
//! §3.6).

use std::sync::Arc;

use poem::{Request, web::Data};
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path};
use uuid::Uuid;

use super::AppState;
use super::{
    ApiTags,
    bearer::Bearer,
    errors::{
        AGENT_TOKEN_NOT_ACCEPTED, ApiError, COMPANY_CODES, INVALID_ACCESS_TOKEN,
        MISSING_ACCESS_TOKEN, Never, NotImplementedErrors, error_set, not_implemented,
    },
    includes::COMPANIES,
    jsonapi::{JsonApi, SelfLinks, resource_type},
    links::{base, resource_link},
    paging::{CollectionLinks, unpaged_links},
};
use crate::service::company::{self, Company};

/// The attributes of a company.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct CompaniesAttributes {
    /// Whether the company is active.
    pub is_active: bool,
    /// The company's name.
    pub name: String,
    /// `pending`, `approved` or `denied`.
    pub status: String,
}

resource_type!(CompaniesType, Companies, "companies");

/// A `companies` resource.
#[derive(Debug, Clone, Object)]
pub struct CompaniesResource {
    /// Always `companies`.
    #[oai(rename = "type")]
    pub ty: CompaniesType,
    /// The company's uuid.
    pub id: Uuid,
    /// The company's attributes.
    pub attributes: CompaniesAttributes,
    /// The company's URL.
    pub links: SelfLinks,
}

impl CompaniesResource {
    pub fn new(base: &str, company: &Company) -> Self {
        Self {
            ty: CompaniesType::Companies,
            id: company.uuid,
            attributes: CompaniesAttributes {
                is_active: company.is_active,
                name: company.name.clone(),
                status: company.status.clone(),
            },
            links: resource_link(base, COMPANIES, company.uuid),
        }
    }
}

/// The document of one company.
#[derive(Debug, Object)]
pub struct CompaniesDocument {
    /// The company.
    pub data: CompaniesResource,
}

/// The document of `GET /companies/mine`.
#[derive(Debug, Object)]
pub struct CompaniesCollectionDocument {
    /// The caller's company (one element).
    pub data: Vec<CompaniesResource>,
    /// The document's URL.
    pub links: CollectionLinks,
}

#[derive(ApiResponse)]
pub enum CompanyResponse {
    /// The company.
    #[oai(status = 200)]
    Ok(JsonApi<CompaniesDocument>),
}

#[derive(ApiResponse)]
pub enum CompaniesResponse {
    /// A one-element collection: the caller's company.
    #[oai(status = 200)]
    Ok(JsonApi<CompaniesCollectionDocument>),
}

error_set!(
    MyCompaniesErrors: INVALID_ACCESS_TOKEN,
    MISSING_ACCESS_TOKEN,
    AGENT_TOKEN_NOT_ACCEPTED,
    COMPANY_CODES.no_context
);
error_set!(
    CompanyErrors: INVALID_ACCESS_TOKEN,
    MISSING_ACCESS_TOKEN,
    AGENT_TOKEN_NOT_ACCEPTED,
    COMPANY_CODES.not_found
);

/// The caller's company.
pub struct CompaniesApi;

#[OpenApi(tag = "ApiTags::Companies")]
impl CompaniesApi {
    /// List companies (not implemented).
    ///
    /// Glue has this route, protected, with no collection behind it: a valid token gets
    /// 501. Read the caller's own through `mine`, or one by its id.
    #[oai(path = "/companies", method = "get", operation_id = "getCompanies")]
    async fn list(&self, _caller: Bearer) -> Result<Never, ApiError<NotImplementedErrors>> {
        not_implemented()
    }

    /// Retrieve the caller's company.
    ///
    /// The company of the caller's company user (from a company-user token, or the default
    /// company user of a customer token), as a one-element collection. Without a usable
    /// company user: 403/1803.
    #[oai(path = "/companies/mine", method = "get", operation_id = "getMyCompanies")]
    async fn mine(
        &self,
        caller: Bearer,
        state: Data<&Arc<AppState>>,
        req: &Request,
    ) -> Result<CompaniesResponse, ApiError<MyCompaniesErrors>> {
        let company = company::my_company(&state.db, &caller.0).await?;
        let data = vec![CompaniesResource::new(&base(req, &state), &company)];
        let links = unpaged_links(req, &state);
        Ok(CompaniesResponse::Ok(JsonApi(CompaniesCollectionDocument { data, links })))
    }

    /// Retrieve a company.
    ///
    /// Only the caller's own company can be read; any other id (or one that is not a uuid)
    /// gets 404/1801, as does a caller without a usable company user.
    #[oai(path = "/companies/:id", method = "get", operation_id = "getCompany")]
    async fn get(
        &self,
        /// The company's uuid.
        id: Path<String>,
        caller: Bearer,
        state: Data<&Arc<AppState>>,
        req: &Request,
    ) -> Result<CompanyResponse, ApiError<CompanyErrors>> {
        let company = company::company(&state.db, &caller.0, &id.0).await?;
        let data = CompaniesResource::new(&base(req, &state), &company);
        Ok(CompanyResponse::Ok(JsonApi(CompaniesDocument { data })))
    }
}
