//! `POST /access-tokens`: authenticate as a customer (docs/wire-contract.md §3.1).

use std::sync::Arc;

use poem::{Request, web::Data};
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::AppState;
use super::{
    ApiTags,
    bearer::OptionalBearer,
    errors::{
        AUTHENTICATION_FAILED, ApiError, INVALID_ACCESS_TOKEN, LOGIN_BLOCKED, LOGIN_QUEUE_FULL,
        LOGINS_WAITING_FROM_CLIENT, error_set, violation_example,
    },
    jsonapi::{Attributes, JsonApi, JsonApiRequest, RequestDocument, both, resource_type},
    links::self_link,
    token_documents::{token_attributes_with_company_user, token_document},
};
use crate::{
    auth::password::Password,
    client_address::ClientKey,
    error::Violation,
    service::{sessions::Credentials, validate::is_email},
};

/// The attributes of a customer login.
#[derive(Debug, Object)]
#[oai(example)]
pub struct AccessTokensRequestAttributes {
    /// The customer's e-mail address.
    #[oai(validator(
        max_length = 320,
        pattern = r"^[!-?A-~]{1,64}@[A-Za-z0-9-]{1,60}(\.[A-Za-z0-9-]{1,60}){1,3}$"
    ))]
    pub username: String,
    /// The customer's password.
    #[oai(validator(min_length = 1, pattern = r"\S"))]
    pub password: String,
}

impl poem_openapi::types::Example for AccessTokensRequestAttributes {
    fn example() -> Self {
        Self { username: "sonia@acme.com".into(), password: "change123".into() }
    }
}

resource_type!(AccessTokensRequestType, AccessTokens, "access-tokens");

/// `data` of a login request.
#[derive(Debug, Object)]
pub struct AccessTokensRequestData {
    /// Always `access-tokens`.
    #[oai(rename = "type")]
    pub ty: AccessTokensRequestType,
    pub attributes: AccessTokensRequestAttributes,
}

/// The request document of `POST /access-tokens`.
#[derive(Debug, Object)]
pub struct AccessTokensRequest {
    pub data: AccessTokensRequestData,
}

impl RequestDocument for AccessTokensRequest {
    const RESOURCE_TYPE: &'static str = "access-tokens";
    type Input = Credentials;

    fn input(attributes: &Attributes<'_>) -> Result<Credentials, Vec<Violation>> {
        let username = attributes.string("username").and_then(|username| {
            if is_email(username) {
                Ok(username)
            } else {
                Err(Violation::new("username", Violation::NOT_AN_EMAIL))
            }
        });
        let (username, password) = both(username, attributes.string("password"))?;
        Ok(Credentials { username: username.to_owned(), password: Password::new(password) })
    }
}

token_attributes_with_company_user!("access-tokens", AccessTokensAttributes);
token_document!(
    "access-tokens",
    AccessTokensType,
    AccessTokensAttributes,
    AccessTokensResource,
    AccessTokensDocument
);

#[derive(ApiResponse)]
pub enum AccessTokensResponse {
    /// The customer is authenticated; the access token carries its default company user.
    #[oai(status = 201)]
    Created(JsonApi<AccessTokensDocument>),
}

error_set!(
    AccessTokensErrors: body;
    INVALID_ACCESS_TOKEN,
    AUTHENTICATION_FAILED,
    violation_example("username", Violation::BLANK),
    violation_example("username", Violation::NOT_AN_EMAIL),
    violation_example("password", Violation::BLANK),
    LOGIN_BLOCKED,
    LOGINS_WAITING_FROM_CLIENT,
    LOGIN_QUEUE_FULL,
);

pub struct AccessTokensApi;

#[OpenApi(tag = "ApiTags::AccessTokens")]
impl AccessTokensApi {
    /// Authenticate as a customer.
    ///
    /// Exchanges a customer's e-mail and password for an access token and a refresh token.
    /// The access token carries the customer's default company user (`idCompanyUser`), if
    /// any. Wrong password, unknown e-mail and inactive account get the same 401/003.
    ///
    /// Each attempt is counted before its password is checked: after 10 attempts within 10
    /// minutes for one e-mail or from one address (a successful one is not kept), further
    /// attempts get 429/4401 for 5 minutes, however many are sent at once. Password checks
    /// are shared out between client addresses in turns; a client with 16 waiting gets 429
    /// and a full queue 503, both at once and with `Retry-After`. Behind trusted proxies the
    /// client is the right-most untrusted `X-Forwarded-For` entry; IPv6 clients count by /64.
    #[oai(path = "/access-tokens", method = "post", operation_id = "createAccessToken")]
    async fn create(
        &self,
        body: JsonApiRequest<AccessTokensRequest>,
        _caller: OptionalBearer,
        state: Data<&Arc<AppState>>,
        req: &Request,
    ) -> Result<AccessTokensResponse, ApiError<AccessTokensErrors>> {
        let credentials = body.input()?;
        let client = super::client::address(req, &state.trusted_proxies).map(ClientKey::of);
        let issued = state.sessions.login(&state.db, credentials, client).await?;
        let link = self_link(req, &state);
        Ok(AccessTokensResponse::Created(JsonApi(AccessTokensDocument::new(issued, link))))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::Value;

    use crate::service::validate::is_email;

    /// The pattern the OpenAPI document shows for `username`.
    fn documented_username_pattern() -> String {
        let doc: Value = serde_json::from_str(&crate::api::document::json()).unwrap();
        let schema = &doc["components"]["schemas"]["AccessTokensRequestAttributes"];
        let pattern = schema["properties"]["username"]["pattern"].as_str().unwrap();
        // Wholly anchored; the generator takes the pattern without its anchors.
        pattern.strip_prefix('^').and_then(|p| p.strip_suffix('$')).unwrap().to_owned()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// The documented pattern is a part of the service's rule: a client (or a generated
        /// SDK) that keeps to it never gets the 901 "not a valid email address".
        #[test]
        fn every_documented_username_is_an_email(
            username in proptest::string::string_regex(&documented_username_pattern()).unwrap(),
        ) {
            prop_assert!(is_email(&username), "{username}");
        }
    }
}
