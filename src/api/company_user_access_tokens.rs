//! `POST /company-user-access-tokens`: authenticate as a company user (docs/wire-contract.md
//! §3.2; Spryker's page "Authenticating as a company user").

use std::sync::Arc;

use poem::{Request, web::Data};
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::AppState;
use super::{
    ApiTags,
    bearer::Bearer,
    errors::{
        AGENT_TOKEN_NOT_ACCEPTED, ApiError, COMPANY_USER_AUTHENTICATION_FAILED,
        INVALID_ACCESS_TOKEN, MISSING_ACCESS_TOKEN, error_set, violation_example,
    },
    jsonapi::{Attributes, JsonApi, JsonApiRequest, RequestDocument, resource_type},
    links::self_link,
    token_documents::{token_attributes, token_document},
};
use crate::{error::Violation, service::validate::parse_uuid};

/// The attributes of a company-user authentication.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", example)]
pub struct CompanyUserAccessTokensRequestAttributes {
    /// Unique identifier of a company user to authenticate as. To get it, retrieve the
    /// available company users (`GET /company-users/mine`).
    pub id_company_user: uuid::Uuid,
}

impl poem_openapi::types::Example for CompanyUserAccessTokensRequestAttributes {
    fn example() -> Self {
        // The documentation page's sample.
        Self { id_company_user: uuid::uuid!("5daf27b3-eddf-5b81-98cb-899f140f97e5") }
    }
}

resource_type!(
    CompanyUserAccessTokensRequestType,
    CompanyUserAccessTokens,
    "company-user-access-tokens"
);

/// `data` of a company-user authentication.
#[derive(Debug, Object)]
pub struct CompanyUserAccessTokensRequestData {
    /// Always `company-user-access-tokens`.
    #[oai(rename = "type")]
    pub ty: CompanyUserAccessTokensRequestType,
    pub attributes: CompanyUserAccessTokensRequestAttributes,
}

/// The request document of `POST /company-user-access-tokens`.
#[derive(Debug, Object)]
pub struct CompanyUserAccessTokensRequest {
    pub data: CompanyUserAccessTokensRequestData,
}

impl RequestDocument for CompanyUserAccessTokensRequest {
    const RESOURCE_TYPE: &'static str = "company-user-access-tokens";
    /// The company user to authenticate as.
    type Input = uuid::Uuid;

    fn input(attributes: &Attributes<'_>) -> Result<uuid::Uuid, Vec<Violation>> {
        let id = attributes.string("idCompanyUser").map_err(|v| vec![v])?;
        parse_uuid(id).ok_or_else(|| vec![Violation::new("idCompanyUser", Violation::NOT_A_UUID)])
    }
}

token_attributes!("company-user-access-tokens", CompanyUserAccessTokensAttributes);

token_document!(
    "company-user-access-tokens",
    CompanyUserAccessTokensType,
    CompanyUserAccessTokensAttributes,
    CompanyUserAccessTokensResource,
    CompanyUserAccessTokensDocument
);

#[derive(ApiResponse)]
pub enum CompanyUserAccessTokensResponse {
    /// Authenticated as the company user: a company-user access token and its refresh token.
    #[oai(status = 201)]
    Created(JsonApi<CompanyUserAccessTokensDocument>),
}

error_set!(
    CompanyUserAccessTokensErrors: body;
    INVALID_ACCESS_TOKEN,
    COMPANY_USER_AUTHENTICATION_FAILED,
    MISSING_ACCESS_TOKEN,
    AGENT_TOKEN_NOT_ACCEPTED,
    violation_example("idCompanyUser", Violation::MISSING),
    violation_example("idCompanyUser", Violation::BLANK),
    violation_example("idCompanyUser", Violation::NOT_A_UUID),
);

/// A uuid in its canonical, hyphenated form (what Glue's UUID rule accepts).
pub struct CompanyUserAccessTokensApi;

#[OpenApi(tag = "ApiTags::CompanyUserAccessTokens")]
impl CompanyUserAccessTokensApi {
    /// Authenticate as a company user.
    ///
    /// Exchanges the caller's customer (or company-user) access token for a token of one of
    /// the customer's company users, to access the resources of that company. The company
    /// user must belong to the caller's customer, be active, and its company must be
    /// approved and active; otherwise the answer is 401/001 "Failed to authenticate user."
    /// whatever the reason, so nobody learns whether a company user exists. Its refresh
    /// token is bound to that company user. Errors are checked in this order: body (400),
    /// access token (403/002, 401/001), attributes (422/901), company user (401/001).
    /// Each call starts a session: a customer keeps the last 100 (logins included), and one
    /// more revokes the customer's oldest session (`--max-sessions-per-customer`).
    #[oai(
        path = "/company-user-access-tokens",
        method = "post",
        operation_id = "createCompanyUserAccessToken"
    )]
    async fn create(
        &self,
        body: JsonApiRequest<CompanyUserAccessTokensRequest>,
        caller: Bearer,
        state: Data<&Arc<AppState>>,
        req: &Request,
    ) -> Result<CompanyUserAccessTokensResponse, ApiError<CompanyUserAccessTokensErrors>> {
        let company_user = body.input()?;
        let issued = state.sessions.company_user_session(&caller.0, company_user).await?;
        let link = self_link(req, &state);
        Ok(CompanyUserAccessTokensResponse::Created(JsonApi(CompanyUserAccessTokensDocument::new(
            issued, link,
        ))))
    }
}
