//! `GET /customers` and `GET /customers/{customerReference}`: the caller's own customer
//! (docs/wire-contract.md §3.7).

use std::sync::Arc;

use poem::{Request, web::Data};
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path};

use super::AppState;
use super::{
    ApiTags,
    bearer::Bearer,
    errors::{ApiError, CUSTOMER_NOT_FOUND, INVALID_ACCESS_TOKEN, MISSING_ACCESS_TOKEN, error_set},
    includes::CUSTOMERS,
    jsonapi::{JsonApi, SelfLinks, resource_type},
    links::{base, resource_link, self_link},
};
use crate::service::customers::{self, Customer};

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

impl CustomersResource {
    pub fn new(base: &str, customer: &Customer) -> Self {
        Self {
            ty: CustomersType::Customers,
            id: customer.reference.clone(),
            attributes: CustomersAttributes {
                first_name: customer.first_name.clone(),
                last_name: customer.last_name.clone(),
                email: customer.email.clone(),
                salutation: customer.salutation.clone(),
            },
            links: resource_link(base, CUSTOMERS, &customer.reference),
        }
    }
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
        let customer = customers::own(&state.db, &caller.0).await?;
        let data = CustomersResource::new(&base(req, &state), &customer);
        let links = SelfLinks { self_link: self_link(req, &state) };
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
        let customer = customers::by_reference(&state.db, &caller.0, &customer_reference.0).await?;
        let data = CustomersResource::new(&base(req, &state), &customer);
        Ok(CustomerResponse::Ok(JsonApi(CustomersDocument { data })))
    }
}
