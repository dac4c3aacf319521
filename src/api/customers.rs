//! `GET /customers` and `GET /customers/{customerReference}`: the caller's own customer
//! (docs/wire-contract.md §3.7).

use std::sync::Arc;

use poem::{Request, web::Data};
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path};

use super::AppState;
use super::{
    ApiTags,
    bearer::Bearer,
    errors::{
        AGENT_TOKEN_NOT_ACCEPTED, ApiError, CUSTOMER_NOT_FOUND, INVALID_ACCESS_TOKEN,
        MISSING_ACCESS_TOKEN, error_set,
    },
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
    /// `Male` or `Female`; null when unknown.
    #[oai(nullable)]
    pub gender: Option<String>,
    /// `YYYY-MM-DD`; null when unknown.
    #[oai(nullable)]
    pub date_of_birth: Option<String>,
    /// When the customer was created, UTC, as Glue writes it: `2026-01-31 09:15:00.000000`.
    pub created_at: String,
    /// When the customer's record last changed, UTC, written as `createdAt`.
    pub updated_at: String,
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
error_set!(CustomersErrors: INVALID_ACCESS_TOKEN, MISSING_ACCESS_TOKEN, AGENT_TOKEN_NOT_ACCEPTED, CUSTOMER_NOT_FOUND);
error_set!(CustomerErrors: INVALID_ACCESS_TOKEN, MISSING_ACCESS_TOKEN, AGENT_TOKEN_NOT_ACCEPTED, CUSTOMER_NOT_FOUND);

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
                gender: customer.gender.clone(),
                date_of_birth: customer.date_of_birth.clone(),
                created_at: glue_timestamp(customer.created_at),
                updated_at: glue_timestamp(customer.updated_at),
            },
            links: resource_link(base, CUSTOMERS, &customer.reference),
        }
    }
}

/// Unix seconds as Glue writes a timestamp (Propel's `Y-m-d H:i:s.u`), in UTC.
fn glue_timestamp(seconds: i64) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:6]"
    );
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|at| at.format(format).ok())
        .unwrap_or_default()
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
