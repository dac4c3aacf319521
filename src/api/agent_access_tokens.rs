//! `POST /agent-access-tokens`: authenticate as a sales agent (docs/wire-contract.md §3.12).

use std::sync::Arc;

use poem::{Request, web::Data};
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::AppState;
use super::{
    ApiTags,
    bearer::OptionalBearer,
    errors::{
        AGENT_AUTHENTICATION_FAILED, ApiError, INVALID_ACCESS_TOKEN, LOGIN_BLOCKED,
        LOGIN_QUEUE_FULL, LOGINS_WAITING_FROM_CLIENT, error_set,
    },
    jsonapi::{Attributes, JsonApi, JsonApiRequest, RequestDocument, resource_type},
    links::self_link,
    token_documents::{token_attributes, token_document},
};
use crate::{
    auth::password::Password, client_address::ClientKey, error::Violation,
    service::sessions::Credentials,
};

/// The attributes of an agent login.
#[derive(Debug, Object)]
#[oai(example)]
pub struct AgentAccessTokensRequestAttributes {
    /// The agent's username (in Spryker, the back-office user's e-mail address).
    #[oai(validator(max_length = 255))]
    pub username: String,
    /// The agent's password.
    #[oai(validator(max_length = 4096))]
    pub password: String,
}

impl poem_openapi::types::Example for AgentAccessTokensRequestAttributes {
    fn example() -> Self {
        Self { username: "admin@spryker.com".into(), password: "change123".into() }
    }
}

resource_type!(AgentAccessTokensRequestType, AgentAccessTokens, "agent-access-tokens");

/// `data` of an agent login request.
#[derive(Debug, Object)]
pub struct AgentAccessTokensRequestData {
    /// Always `agent-access-tokens`.
    #[oai(rename = "type")]
    pub ty: AgentAccessTokensRequestType,
    pub attributes: AgentAccessTokensRequestAttributes,
}

/// The request document of `POST /agent-access-tokens`.
#[derive(Debug, Object)]
pub struct AgentAccessTokensRequest {
    pub data: AgentAccessTokensRequestData,
}

impl RequestDocument for AgentAccessTokensRequest {
    const RESOURCE_TYPE: &'static str = "agent-access-tokens";
    type Input = Credentials;

    /// As in Spryker, a missing or blank username or password is a failed login (401/4101),
    /// not a 422: it is checked like any other, so it costs the same and counts the same.
    fn input(attributes: &Attributes<'_>) -> Result<Credentials, Vec<Violation>> {
        let text = |name| attributes.string(name).unwrap_or_default();
        Ok(Credentials {
            username: text("username").to_owned(),
            password: Password::new(text("password")),
        })
    }
}

token_attributes!("agent-access-tokens", AgentAccessTokensAttributes);
token_document!(
    "agent-access-tokens",
    AgentAccessTokensType,
    AgentAccessTokensAttributes,
    AgentAccessTokensResource,
    AgentAccessTokensDocument
);

#[derive(ApiResponse)]
pub enum AgentAccessTokensResponse {
    /// The agent is authenticated: its access token has the scope `agent`.
    #[oai(status = 201)]
    Created(JsonApi<AgentAccessTokensDocument>),
}

error_set!(
    AgentAccessTokensErrors: body;
    INVALID_ACCESS_TOKEN,
    AGENT_AUTHENTICATION_FAILED,
    LOGIN_BLOCKED,
    LOGINS_WAITING_FROM_CLIENT,
    LOGIN_QUEUE_FULL,
);

pub struct AgentAccessTokensApi;

#[OpenApi(tag = "ApiTags::AgentAccessTokens")]
impl AgentAccessTokensApi {
    /// Authenticate as an agent.
    ///
    /// Exchanges a sales agent's username and password for an agent access token (scope
    /// `agent`, `sub` with `id_agent` and no customer) and a refresh token, which
    /// `POST /refresh-tokens` rotates. A wrong password, an unknown username, an inactive
    /// agent and a blank field all get the same 401/4101. Attempts are counted and blocked
    /// as customer logins are (per username and per client address), and wait their turn
    /// for the password check in the same queue.
    #[oai(path = "/agent-access-tokens", method = "post", operation_id = "createAgentAccessToken")]
    async fn create(
        &self,
        body: JsonApiRequest<AgentAccessTokensRequest>,
        _caller: OptionalBearer,
        state: Data<&Arc<AppState>>,
        req: &Request,
    ) -> Result<AgentAccessTokensResponse, ApiError<AgentAccessTokensErrors>> {
        let credentials = body.input()?;
        let client = super::client::address(req, &state.trusted_proxies).map(ClientKey::of);
        let issued = state.sessions.agent_login(&state.db, credentials, client).await?;
        let link = self_link(req, &state);
        Ok(AgentAccessTokensResponse::Created(JsonApi(AgentAccessTokensDocument::new(
            issued, link,
        ))))
    }
}
