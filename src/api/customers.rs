//! `GET /customers` and `GET /customers/{customerReference}`: the caller's own customer
//! (docs/wire-contract.md §3.7).

use std::sync::Arc;

use poem::{Request, web::Data};
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path};

use super::{
    ApiTags,
    auth::Bearer,
    errors::{ApiError, CUSTOMER_NOT_FOUND, INVALID_ACCESS_TOKEN, MISSING_ACCESS_TOKEN, error_set},
    jsonapi::{JsonApi, SelfLinks, resource_type, self_link},
};
use crate::{app::AppState, error::Error};

/// The attributes of a customer.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct CustomersAttributes {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    /// `Mr`, `Ms`, … as stored.
    pub salutation: String,
}

resource_type!(CustomersType, Customers, "customers");

/// A `customers` resource; its id is the customer reference.
#[derive(Debug, Clone, Object)]
pub struct CustomersResource {
    /// Always `customers`.
    #[oai(rename = "type")]
    pub ty: CustomersType,
    /// The customer reference, e.g. `DE--21`.
    pub id: String,
    pub attributes: CustomersAttributes,
    pub links: SelfLinks,
}

/// The document of one customer.
#[derive(Debug, Object)]
pub struct CustomersDocument {
    pub data: CustomersResource,
}

/// The document of the customers collection: the caller alone.
#[derive(Debug, Object)]
pub struct CustomersCollectionDocument {
    pub data: Vec<CustomersResource>,
    pub links: SelfLinks,
}

#[derive(ApiResponse)]
pub enum CustomerResponse {
    /// The caller's customer.
    #[oai(status = 200)]
    Ok(JsonApi<CustomersDocument>),
}

#[derive(ApiResponse)]
pub enum CustomersResponse {
    /// A one-element collection: the caller's customer.
    #[oai(status = 200)]
    Ok(JsonApi<CustomersCollectionDocument>),
}

// A valid token whose customer was deleted meanwhile (tokens live up to their `exp`).
error_set!(CustomersErrors: INVALID_ACCESS_TOKEN, MISSING_ACCESS_TOKEN, CUSTOMER_NOT_FOUND);
error_set!(CustomerErrors: INVALID_ACCESS_TOKEN, MISSING_ACCESS_TOKEN, CUSTOMER_NOT_FOUND);

async fn resource(
    state: &AppState,
    customer_id: i32,
    base: &str,
) -> Result<CustomersResource, Error> {
    let customer = crate::service::directory::customer_by_id(&state.db, customer_id)
        .await?
        .ok_or(Error::CustomerNotFound)?;
    Ok(CustomersResource {
        ty: CustomersType::Customers,
        links: SelfLinks { self_link: format!("{base}/customers/{}", customer.customer_reference) },
        id: customer.customer_reference,
        attributes: CustomersAttributes {
            first_name: customer.first_name,
            last_name: customer.last_name,
            email: customer.email,
            salutation: customer.salutation,
        },
    })
}

/// The base URL of `links` (the self link without the path).
fn base(req: &Request, state: &AppState) -> String {
    let link = self_link(req, state.config.public_base_url.as_deref());
    let path = req.original_uri().path_and_query().map_or("", |pq| pq.as_str());
    link.strip_suffix(path).unwrap_or(&link).to_owned()
}

pub struct CustomersApi;

#[OpenApi(tag = "ApiTags::Customers")]
impl CustomersApi {
    /// Retrieve the caller's customer (as a collection).
    ///
    /// A token that is still valid but whose customer has been deleted since gets 404/402.
    #[oai(path = "/customers", method = "get", operation_id = "getCustomers")]
    async fn list(
        &self,
        caller: Bearer,
        state: Data<&Arc<AppState>>,
        req: &Request,
    ) -> Result<CustomersResponse, ApiError<CustomersErrors>> {
        let data = resource(&state, caller.0.customer_id, &base(req, &state)).await?;
        let links =
            SelfLinks { self_link: self_link(req, state.config.public_base_url.as_deref()) };
        Ok(CustomersResponse::Ok(JsonApi(CustomersCollectionDocument { data: vec![data], links })))
    }

    /// Retrieve the caller's customer.
    ///
    /// Any reference other than the caller's own gets 404/402.
    #[oai(path = "/customers/:customerReference", method = "get", operation_id = "getCustomer")]
    async fn get(
        &self,
        /// The customer reference, e.g. `DE--21`.
        #[oai(name = "customerReference")]
        customer_reference: Path<String>,
        caller: Bearer,
        state: Data<&Arc<AppState>>,
        req: &Request,
    ) -> Result<CustomerResponse, ApiError<CustomerErrors>> {
        if customer_reference.0 != caller.0.customer_reference {
            return Err(Error::CustomerNotFound.into());
        }
        let data = resource(&state, caller.0.customer_id, &base(req, &state)).await?;
        Ok(CustomerResponse::Ok(JsonApi(CustomersDocument { data })))
    }
}
