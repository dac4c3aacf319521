//! `GET /company-business-unit-addresses/{id}`: an address of the caller's company
//! (docs/wire-contract.md §3.6). Any member of the company may read any of its addresses.

use std::sync::Arc;

use poem::{Request, web::Data};
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path};
use uuid::Uuid;

use super::AppState;
use super::{
    ApiTags,
    bearer::Bearer,
    errors::{
        AGENT_TOKEN_NOT_ACCEPTED, ApiError, COMPANY_BUSINESS_UNIT_ADDRESS_NOT_FOUND,
        INVALID_ACCESS_TOKEN, MISSING_ACCESS_TOKEN, Never, NotImplementedErrors, error_set,
        not_implemented,
    },
    includes::COMPANY_BUSINESS_UNIT_ADDRESSES,
    jsonapi::{JsonApi, SelfLinks, resource_type},
    links::{base, resource_link},
};
use crate::service::company::{self, Address};

/// The attributes of a company business unit address.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct CompanyBusinessUnitAddressesAttributes {
    /// First address line (street).
    pub address1: String,
    /// Second address line (house number).
    pub address2: String,
    /// Third address line.
    pub address3: String,
    /// Postal code.
    pub zip_code: String,
    /// City.
    pub city: String,
    /// Phone number.
    pub phone: String,
    /// ISO 3166-1 alpha-2 country code.
    pub iso2_code: String,
    /// Free-text comment.
    pub comment: String,
}

resource_type!(
    CompanyBusinessUnitAddressesType,
    CompanyBusinessUnitAddresses,
    "company-business-unit-addresses"
);

/// A `company-business-unit-addresses` resource.
#[derive(Debug, Clone, Object)]
pub struct CompanyBusinessUnitAddressesResource {
    /// Always `company-business-unit-addresses`.
    #[oai(rename = "type")]
    pub ty: CompanyBusinessUnitAddressesType,
    /// The address's uuid.
    pub id: Uuid,
    /// The address's attributes.
    pub attributes: CompanyBusinessUnitAddressesAttributes,
    /// The address's URL.
    pub links: SelfLinks,
}

impl CompanyBusinessUnitAddressesResource {
    pub fn new(base: &str, address: &Address) -> Self {
        Self {
            ty: CompanyBusinessUnitAddressesType::CompanyBusinessUnitAddresses,
            id: address.uuid,
            attributes: CompanyBusinessUnitAddressesAttributes {
                address1: address.address1.clone(),
                address2: address.address2.clone(),
                address3: address.address3.clone(),
                zip_code: address.zip_code.clone(),
                city: address.city.clone(),
                phone: address.phone.clone(),
                iso2_code: address.iso2_code.clone(),
                comment: address.comment.clone(),
            },
            links: resource_link(base, COMPANY_BUSINESS_UNIT_ADDRESSES, address.uuid),
        }
    }
}

/// The document of one company business unit address.
#[derive(Debug, Object)]
pub struct CompanyBusinessUnitAddressesDocument {
    /// The address.
    pub data: CompanyBusinessUnitAddressesResource,
}

#[derive(ApiResponse)]
pub enum CompanyBusinessUnitAddressResponse {
    /// The address.
    #[oai(status = 200)]
    Ok(JsonApi<CompanyBusinessUnitAddressesDocument>),
}

error_set!(
    CompanyBusinessUnitAddressErrors: INVALID_ACCESS_TOKEN,
    MISSING_ACCESS_TOKEN,
    AGENT_TOKEN_NOT_ACCEPTED,
    COMPANY_BUSINESS_UNIT_ADDRESS_NOT_FOUND
);

pub struct CompanyBusinessUnitAddressesApi;

#[OpenApi(tag = "ApiTags::CompanyBusinessUnitAddresses")]
impl CompanyBusinessUnitAddressesApi {
    /// List company business unit addresses (not implemented).
    ///
    /// Glue has this route, protected, with no collection behind it: a valid token gets
    /// 501. Read the caller's own through `mine`, or one by its id.
    #[oai(
        path = "/company-business-unit-addresses",
        method = "get",
        operation_id = "getCompanyBusinessUnitAddresses"
    )]
    async fn list(&self, _caller: Bearer) -> Result<Never, ApiError<NotImplementedErrors>> {
        not_implemented()
    }

    /// Retrieve a company business unit address.
    ///
    /// Any address of the caller's company; an address of another company, an unknown id
    /// or one that is not a uuid gets 404/2001, as does a caller without a usable company user.
    #[oai(
        path = "/company-business-unit-addresses/:id",
        method = "get",
        operation_id = "getCompanyBusinessUnitAddress"
    )]
    async fn get(
        &self,
        /// The address's uuid.
        id: Path<String>,
        caller: Bearer,
        state: Data<&Arc<AppState>>,
        req: &Request,
    ) -> Result<CompanyBusinessUnitAddressResponse, ApiError<CompanyBusinessUnitAddressErrors>>
    {
        let address = company::address(&state.db, &caller.0, &id.0).await?;
        let data = CompanyBusinessUnitAddressesResource::new(&base(req, &state), &address);
        Ok(CompanyBusinessUnitAddressResponse::Ok(JsonApi(CompanyBusinessUnitAddressesDocument {
            data,
        })))
    }
}
