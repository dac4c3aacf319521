//! `GET /company-business-units/mine` and `GET /company-business-units/{id}`: the business
//! units of the caller's company (docs/wire-contract.md §3.6), with `include=companies,
//! company-business-unit-addresses`.

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
        AGENT_TOKEN_NOT_ACCEPTED, ApiError, COMPANY_BUSINESS_UNIT_CODES, INVALID_ACCESS_TOKEN,
        MISSING_ACCESS_TOKEN, Never, NotImplementedErrors, error_set, not_implemented,
    },
    includes::{COMPANY_BUSINESS_UNITS, IncludedResource, Includes, Relationships, wanted},
    jsonapi::{JsonApi, SelfLinks, resource_type},
    links::{base, resource_link},
    paging::{CollectionLinks, unpaged_links},
};
use crate::service::company::{self, BusinessUnit};

/// The attributes of a company business unit.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct CompanyBusinessUnitsAttributes {
    /// The unit's name.
    pub name: String,
    /// The unit's e-mail address.
    pub email: String,
    /// The unit's phone number.
    pub phone: String,
    /// The unit's web address.
    pub external_url: String,
    /// The unit's bank identifier code.
    pub bic: String,
    /// The unit's international bank account number.
    pub iban: String,
    /// The uuid of the unit's default billing address (a `company-business-unit-addresses`
    /// resource), or null when it has none.
    #[oai(nullable)]
    pub default_billing_address: Option<Uuid>,
}

resource_type!(CompanyBusinessUnitsType, CompanyBusinessUnits, "company-business-units");

/// A `company-business-units` resource.
#[derive(Debug, Clone, Object)]
pub struct CompanyBusinessUnitsResource {
    /// Always `company-business-units`.
    #[oai(rename = "type")]
    pub ty: CompanyBusinessUnitsType,
    /// The unit's uuid.
    pub id: Uuid,
    /// The unit's attributes.
    pub attributes: CompanyBusinessUnitsAttributes,
    /// `companies` and `company-business-unit-addresses`, when asked with `include`.
    #[oai(skip_serializing_if_is_none)]
    pub relationships: Option<Relationships>,
    /// The unit's URL.
    pub links: SelfLinks,
}

impl CompanyBusinessUnitsResource {
    pub fn new(base: &str, unit: &BusinessUnit, relationships: Option<Relationships>) -> Self {
        let u = unit;
        Self {
            ty: CompanyBusinessUnitsType::CompanyBusinessUnits,
            id: u.uuid,
            attributes: CompanyBusinessUnitsAttributes {
                name: u.name.clone(),
                email: u.email.clone(),
                phone: u.phone.clone(),
                external_url: u.external_url.clone(),
                bic: u.bic.clone(),
                iban: u.iban.clone(),
                default_billing_address: u.default_billing_address,
            },
            relationships,
            links: resource_link(base, COMPANY_BUSINESS_UNITS, u.uuid),
        }
    }
}

/// The document of one company business unit.
#[derive(Debug, Object)]
pub struct CompanyBusinessUnitsDocument {
    /// The unit.
    pub data: CompanyBusinessUnitsResource,
    /// The related resources asked for with `include`, each once.
    #[oai(skip_serializing_if_is_none)]
    pub included: Option<Vec<IncludedResource>>,
}

/// The document of `GET /company-business-units/mine`.
#[derive(Debug, Object)]
pub struct CompanyBusinessUnitsCollectionDocument {
    /// The caller's unit (one element, or none when the company user has no unit).
    pub data: Vec<CompanyBusinessUnitsResource>,
    /// The document's URL.
    pub links: CollectionLinks,
    /// The related resources asked for with `include`, each once.
    #[oai(skip_serializing_if_is_none)]
    pub included: Option<Vec<IncludedResource>>,
}

#[derive(ApiResponse)]
pub enum CompanyBusinessUnitResponse {
    /// The business unit.
    #[oai(status = 200)]
    Ok(JsonApi<CompanyBusinessUnitsDocument>),
}

#[derive(ApiResponse)]
pub enum CompanyBusinessUnitsResponse {
    /// The caller's business unit, as a collection.
    #[oai(status = 200)]
    Ok(JsonApi<CompanyBusinessUnitsCollectionDocument>),
}

error_set!(
    MyCompanyBusinessUnitsErrors: INVALID_ACCESS_TOKEN,
    MISSING_ACCESS_TOKEN,
    AGENT_TOKEN_NOT_ACCEPTED,
    COMPANY_BUSINESS_UNIT_CODES.no_context
);
error_set!(
    CompanyBusinessUnitErrors: INVALID_ACCESS_TOKEN,
    MISSING_ACCESS_TOKEN,
    AGENT_TOKEN_NOT_ACCEPTED,
    COMPANY_BUSINESS_UNIT_CODES.not_found
);

pub struct CompanyBusinessUnitsApi;

#[OpenApi(tag = "ApiTags::CompanyBusinessUnits")]
impl CompanyBusinessUnitsApi {
    /// List company business units (not implemented).
    ///
    /// Glue has this route, protected, with no collection behind it: a valid token gets
    /// 501. Read the caller's own through `mine`, or one by its id.
    #[oai(
        path = "/company-business-units",
        method = "get",
        operation_id = "getCompanyBusinessUnits"
    )]
    async fn list(&self, _caller: Bearer) -> Result<Never, ApiError<NotImplementedErrors>> {
        not_implemented()
    }

    /// Retrieve the caller's business unit.
    ///
    /// The business unit of the caller's company user, as a collection of one (empty when
    /// the company user belongs to no unit). Without a usable company user: 403/1903.
    #[oai(
        path = "/company-business-units/mine",
        method = "get",
        operation_id = "getMyCompanyBusinessUnits"
    )]
    async fn mine(
        &self,
        caller: Bearer,
        /// Related resources to include, comma-separated: `companies`,
        /// `company-business-unit-addresses`. Unknown names are ignored.
        include: Query<Option<String>>,
        state: Data<&Arc<AppState>>,
        req: &Request,
    ) -> Result<CompanyBusinessUnitsResponse, ApiError<MyCompanyBusinessUnitsErrors>> {
        let wanted = wanted(include.0.as_deref(), COMPANY_BUSINESS_UNITS);
        let found = company::my_business_units(&state.db, &caller.0, wanted).await?;
        let base = base(req, &state);
        let includes = Includes::new(&base, wanted, &found.related);
        let (data, included) = includes.render(&found.items, |u| {
            CompanyBusinessUnitsResource::new(&base, u, includes.of_business_unit(u))
        });
        let links = unpaged_links(req, &state);
        Ok(CompanyBusinessUnitsResponse::Ok(JsonApi(CompanyBusinessUnitsCollectionDocument {
            data,
            links,
            included,
        })))
    }

    /// Retrieve a company business unit.
    ///
    /// Any unit of the caller's company; a unit of another company, an unknown id or one
    /// that is not a uuid gets 404/1901, as does a caller without a usable company user.
    #[oai(
        path = "/company-business-units/:id",
        method = "get",
        operation_id = "getCompanyBusinessUnit"
    )]
    async fn get(
        &self,
        /// The unit's uuid.
        id: Path<String>,
        caller: Bearer,
        /// Related resources to include, comma-separated: `companies`,
        /// `company-business-unit-addresses`. Unknown names are ignored.
        include: Query<Option<String>>,
        state: Data<&Arc<AppState>>,
        req: &Request,
    ) -> Result<CompanyBusinessUnitResponse, ApiError<CompanyBusinessUnitErrors>> {
        let wanted = wanted(include.0.as_deref(), COMPANY_BUSINESS_UNITS);
        let found = company::business_unit(&state.db, &caller.0, &id.0, wanted).await?;
        let base = base(req, &state);
        let includes = Includes::new(&base, wanted, &found.related);
        let relationships = includes.of_business_unit(&found.item);
        let data = CompanyBusinessUnitsResource::new(&base, &found.item, relationships);
        let included = includes.included();
        Ok(CompanyBusinessUnitResponse::Ok(JsonApi(CompanyBusinessUnitsDocument {
            data,
            included,
        })))
    }
}
