//! The HTTP API: poem-openapi operations, one module per resource, and the pipeline that
//! wraps them. Handlers are thin: extract, call one service function, convert.

pub mod access_tokens;
pub mod agent_access_tokens;
pub mod bearer;
pub mod client;
pub mod companies;
pub mod company_business_unit_addresses;
pub mod company_business_units;
pub mod company_roles;
pub mod company_user_access_tokens;
pub mod company_users;
pub mod cors;
pub mod customer_password;
pub mod customers;
pub mod document;
pub mod errors;
pub mod health;
pub mod includes;
pub mod jsonapi;
pub mod jwks;
pub mod links;
pub mod middleware;
pub mod oauth;
pub mod paging;
pub mod refresh_tokens;
mod state;
pub mod token_documents;

use std::sync::Arc;

use poem::{
    Endpoint, EndpointExt, Response, Route, endpoint::make_sync, get, http::Method, http::header,
    middleware::CatchPanic,
};
use poem_openapi::{OpenApi, Tags};

pub use self::state::AppState;

/// The tags that group operations in the document and in Swagger UI.
#[derive(Tags)]
pub enum ApiTags {
    /// Authenticate as a customer.
    #[oai(rename = "access-tokens")]
    AccessTokens,
    /// Authenticate as a sales agent, who acts for customers (Agent Assist).
    #[oai(rename = "agent-access-tokens")]
    AgentAccessTokens,
    /// Authenticate as a company user: switch to one of the customer's memberships.
    #[oai(rename = "company-user-access-tokens")]
    CompanyUserAccessTokens,
    /// Refresh and revoke tokens.
    #[oai(rename = "refresh-tokens")]
    RefreshTokens,
    /// OAuth 2.0: the token endpoint, as Glue's, with company-user token exchange.
    #[oai(rename = "oauth")]
    OAuth,
    /// The authenticated customer.
    #[oai(rename = "customers")]
    Customers,
    /// Change a customer's password, or restore a forgotten one by mail.
    #[oai(rename = "customer-password")]
    CustomerPassword,
    /// The caller's memberships and the company users of the caller's company.
    #[oai(rename = "company-users")]
    CompanyUsers,
    /// The caller's company.
    #[oai(rename = "companies")]
    Companies,
    /// The business units of the caller's company.
    #[oai(rename = "company-business-units")]
    CompanyBusinessUnits,
    /// The roles of the caller's company.
    #[oai(rename = "company-roles")]
    CompanyRoles,
    /// The addresses of the caller's company's business units.
    #[oai(rename = "company-business-unit-addresses")]
    CompanyBusinessUnitAddresses,
    /// The public keys that verify access tokens.
    #[oai(rename = "keys")]
    Keys,
    /// Liveness and readiness of the service.
    #[oai(rename = "health")]
    Health,
}

/// Every operation of the service.
pub type Apis = (
    access_tokens::AccessTokensApi,
    agent_access_tokens::AgentAccessTokensApi,
    company_user_access_tokens::CompanyUserAccessTokensApi,
    refresh_tokens::RefreshTokensApi,
    oauth::OAuthApi,
    customers::CustomersApi,
    customer_password::CustomerPasswordApi,
    CompanyApis,
    jwks::JwksApi,
    health::HealthApi,
);

/// The company resources a company user reads (docs/wire-contract.md §3.5, §3.6).
pub type CompanyApis = (
    company_users::CompanyUsersApi,
    companies::CompaniesApi,
    company_business_units::CompanyBusinessUnitsApi,
    company_roles::CompanyRolesApi,
    company_business_unit_addresses::CompanyBusinessUnitAddressesApi,
);

pub fn apis() -> Apis {
    (
        access_tokens::AccessTokensApi,
        agent_access_tokens::AgentAccessTokensApi,
        company_user_access_tokens::CompanyUserAccessTokensApi,
        refresh_tokens::RefreshTokensApi,
        oauth::OAuthApi,
        customers::CustomersApi,
        customer_password::CustomerPasswordApi,
        (
            company_users::CompanyUsersApi,
            companies::CompaniesApi,
            company_business_units::CompanyBusinessUnitsApi,
            company_roles::CompanyRolesApi,
            company_business_unit_addresses::CompanyBusinessUnitAddressesApi,
        ),
        jwks::JwksApi,
        health::HealthApi,
    )
}

/// The routes and methods of the service, from the operations' metadata.
fn route_table() -> middleware::RouteTable {
    let mut table = middleware::RouteTable::default();
    for api in Apis::meta() {
        for path in api.paths {
            for op in path.operations {
                table.add(path.path.clone(), op.method.clone());
            }
        }
    }
    for path in ["/openapi.json", "/openapi.yaml", "/docs"] {
        table.add(path, Method::GET);
    }
    table
}

fn document_endpoint(body: String, content_type: &'static str) -> impl Endpoint<Output = Response> {
    make_sync(move |_| {
        Response::builder().header(header::CONTENT_TYPE, content_type).body(body.clone())
    })
}

/// The whole HTTP endpoint of the service.
pub fn endpoint(state: Arc<AppState>) -> impl Endpoint<Output = Response> {
    let pipeline = Arc::new(middleware::Pipeline {
        routes: route_table(),
        body_limit: state.config.body_limit,
        header_limit: state.config.header_limit,
        request_timeout: std::time::Duration::from_secs(state.config.request_timeout),
    });
    let origins = cors::Origins::new(&state.config.cors_allow_origins);
    let served = Route::new()
        .at("/openapi.json", get(document_endpoint(document::json(), "application/json")))
        .at("/openapi.yaml", get(document_endpoint(document::yaml(), "application/yaml")))
        .at(
            "/docs",
            get(document_endpoint(document::swagger_ui_html(), "text/html; charset=utf-8")),
        )
        .nest("/", document::service())
        .data(state)
        .with(CatchPanic::new().with_handler(middleware::panic_response))
        .map_to_response()
        .around(move |ep, req| middleware::handle(pipeline.clone(), ep, req));
    cors::CorsGate::new(served, origins)
}
