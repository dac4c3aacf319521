//! `POST /refresh-tokens` and `DELETE /refresh-tokens/{refreshToken}|mine` (docs/wire-contract.md
//! §3.3, §3.4).

use std::sync::Arc;

use poem::{Request, web::Data};
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path};

use super::AppState;
use super::{
    ApiTags,
    bearer::{Bearer, OptionalBearer},
    errors::{
        AGENT_TOKEN_NOT_ACCEPTED, ApiError, INVALID_ACCESS_TOKEN, MISSING_ACCESS_TOKEN,
        REFRESH_FAILED, error_set, violation_example,
    },
    jsonapi::{Attributes, JsonApi, JsonApiRequest, RequestDocument, resource_type},
    links::self_link,
    token_documents::{REFRESH_TOKEN_EXAMPLE, token_attributes_with_company_user, token_document},
};
use crate::error::Violation;

/// The attributes of a refresh request.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", example)]
pub struct RefreshTokensRequestAttributes {
    /// The refresh token received with the access token.
    #[oai(validator(min_length = 1, pattern = r"\S"))]
    pub refresh_token: String,
}

impl poem_openapi::types::Example for RefreshTokensRequestAttributes {
    fn example() -> Self {
        Self { refresh_token: REFRESH_TOKEN_EXAMPLE.into() }
    }
}

resource_type!(RefreshTokensRequestType, RefreshTokens, "refresh-tokens");

/// `data` of a refresh request.
#[derive(Debug, Object)]
pub struct RefreshTokensRequestData {
    /// Always `refresh-tokens`.
    #[oai(rename = "type")]
    pub ty: RefreshTokensRequestType,
    pub attributes: RefreshTokensRequestAttributes,
}

/// The request document of `POST /refresh-tokens`.
#[derive(Debug, Object)]
pub struct RefreshTokensRequest {
    pub data: RefreshTokensRequestData,
}

impl RequestDocument for RefreshTokensRequest {
    const RESOURCE_TYPE: &'static str = "refresh-tokens";
    /// The refresh token presented.
    type Input = String;

    fn input(attributes: &Attributes<'_>) -> Result<String, Vec<Violation>> {
        attributes.string("refreshToken").map(str::to_owned).map_err(|v| vec![v])
    }
}

token_attributes_with_company_user!("refresh-tokens", RefreshTokensAttributes);
token_document!(
    "refresh-tokens",
    RefreshTokensType,
    RefreshTokensAttributes,
    RefreshTokensResource,
    RefreshTokensDocument
);

#[derive(ApiResponse)]
pub enum RefreshTokensResponse {
    /// New tokens; the presented refresh token is used up.
    #[oai(status = 201)]
    Created(JsonApi<RefreshTokensDocument>),
}

#[derive(ApiResponse)]
pub enum RevokedResponse {
    /// Done (also when there was nothing of the caller's to revoke).
    #[oai(status = 204)]
    Revoked,
}

error_set!(
    RefreshErrors: body;
    INVALID_ACCESS_TOKEN,
    REFRESH_FAILED,
    violation_example("refreshToken", Violation::BLANK),
);

error_set!(
    RevokeErrors:
    INVALID_ACCESS_TOKEN,
    MISSING_ACCESS_TOKEN,
    AGENT_TOKEN_NOT_ACCEPTED,
);

pub struct RefreshTokensApi;

#[OpenApi(tag = "ApiTags::RefreshTokens")]
impl RefreshTokensApi {
    /// Refresh an access token.
    ///
    /// Exchanges a refresh token for a new access token and a new refresh token (rotation:
    /// the presented one is used up). A company-user refresh token yields a company-user
    /// token for the same membership, while that membership is still active. Presenting a
    /// used-up token again gets 401/004: within 10 seconds of its rotation (the grace
    /// window, `--refresh-reuse-grace`) nothing else happens, so a request sent twice or a
    /// second tab does not log the user out and the new tokens stay valid; later it counts
    /// as a reuse, and every token descended from the same login is revoked.
    #[oai(path = "/refresh-tokens", method = "post", operation_id = "createRefreshToken")]
    async fn refresh(
        &self,
        body: JsonApiRequest<RefreshTokensRequest>,
        _caller: OptionalBearer,
        state: Data<&Arc<AppState>>,
        req: &Request,
    ) -> Result<RefreshTokensResponse, ApiError<RefreshErrors>> {
        let presented = body.input()?;
        let issued = state.sessions.refresh(&state.db, &presented).await?;
        let link = self_link(req, &state);
        Ok(RefreshTokensResponse::Created(JsonApi(RefreshTokensDocument::new(issued, link))))
    }

    /// Revoke all of the caller's refresh tokens.
    ///
    /// Revokes every live refresh token of the caller's customer, including those issued
    /// for any of its company users. Access tokens already issued stay valid until they
    /// expire.
    #[oai(path = "/refresh-tokens/mine", method = "delete", operation_id = "deleteMyRefreshTokens")]
    async fn revoke_mine(
        &self,
        caller: Bearer,
        state: Data<&Arc<AppState>>,
    ) -> Result<RevokedResponse, ApiError<RevokeErrors>> {
        state.sessions.revoke_all(caller.0.customer_id).await?;
        Ok(RevokedResponse::Revoked)
    }

    /// Revoke one refresh token.
    ///
    /// Revokes the refresh token if it belongs to the caller's customer. Unknown tokens and
    /// other customers' tokens are left alone, with the same 204: nothing leaks.
    #[oai(
        path = "/refresh-tokens/:refreshToken",
        method = "delete",
        operation_id = "deleteRefreshToken"
    )]
    async fn revoke(
        &self,
        /// The refresh token to revoke.
        #[oai(name = "refreshToken")]
        refresh_token: Path<String>,
        caller: Bearer,
        state: Data<&Arc<AppState>>,
    ) -> Result<RevokedResponse, ApiError<RevokeErrors>> {
        state.sessions.revoke(caller.0.customer_id, &refresh_token.0).await?;
        Ok(RevokedResponse::Revoked)
    }
}
