//! `POST /token`: OAuth 2.0 (RFC 6749) for the clients that sign in the standard way, as
//! Glue does, and RFC 8693 token exchange for a company user (docs/wire-contract.md §3.8a).
//! A form in, RFC 6749 JSON out; the errors are OAuth error objects, not JSON:API.

use std::{collections::BTreeMap, sync::Arc};

use poem::{
    Request, RequestBody, Response,
    http::{HeaderValue, StatusCode, header},
    web::Data,
};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ApiResponse, ExtractParamOptions, Object, OpenApi,
    payload::Json,
    registry::{MetaMediaType, MetaRequest, MetaResponses, Registry},
    types::{ParseFromParameter, ToJSON, Type},
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    ApiTags, AppState,
    errors::{LOGIN_BLOCKED_DETAIL, LOGIN_QUEUE_FULL_DETAIL, LOGINS_WAITING_DETAIL},
};
use crate::{
    auth::password::Password,
    client_address::ClientKey,
    error::Error,
    service::sessions::{Credentials, Grant, Issued},
};

/// The media type of the request.
const FORM: &str = "application/x-www-form-urlencoded";
/// `grant_type` of RFC 8693 token exchange.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The token type of an access token in a token exchange (RFC 8693 §3).
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// The grant types of `POST /token`, as the OpenAPI document shows them.
// Their names are the `oai` renames: the form is parsed with them and the metadata lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename = "GrantType")]
pub enum GrantType {
    #[oai(rename = "password")]
    Password,
    #[oai(rename = "refresh_token")]
    RefreshToken,
    #[oai(rename = "urn:ietf:params:oauth:grant-type:token-exchange")]
    TokenExchange,
}

impl GrantType {
    /// Every grant type, in the order the metadata lists them.
    const ALL: [Self; 3] = [Self::Password, Self::RefreshToken, Self::TokenExchange];

    /// The name a form gives it.
    fn name(self) -> String {
        self.to_json().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
    }
}

/// The parameters of `POST /token`, as the OpenAPI document shows them. Which of them a
/// request needs depends on its `grant_type`.
#[derive(Debug, Object)]
#[oai(rename = "TokenRequest")]
pub struct TokenRequestForm {
    /// The grant: a login, a rotation, or a token exchange for a company user.
    pub grant_type: GrantType,
    /// `password`: the customer's e-mail address.
    pub username: Option<String>,
    /// `password`: the customer's password.
    pub password: Option<String>,
    /// `refresh_token`: the refresh token to rotate.
    pub refresh_token: Option<String>,
    /// Token exchange: a customer or company-user access token.
    pub subject_token: Option<String>,
    /// Token exchange: `urn:ietf:params:oauth:token-type:access_token`.
    pub subject_token_type: Option<String>,
    /// Token exchange: the uuid of the company user to act as.
    pub id_company_user: Option<String>,
    /// The client id; when given, the configured one (`frontend` by default).
    pub client_id: Option<String>,
    /// Accepted and ignored, as Spryker drops scopes it does not grant: a token carries
    /// its kind's scope (`customer` or `company_user`).
    pub scope: Option<String>,
}

/// The parameters of `POST /revoke` (RFC 7009 §2.1), as the OpenAPI document shows them.
#[derive(Debug, Object)]
#[oai(rename = "RevocationRequest")]
pub struct RevocationRequestForm {
    /// The refresh token to revoke.
    pub token: String,
    /// `refresh_token` or `access_token` (an access token cannot be revoked: it expires).
    pub token_type_hint: Option<String>,
    /// The client id; when given, the configured one.
    pub client_id: Option<String>,
}

/// The parameters of a form request, each given once; `D` is the form the OpenAPI document
/// shows for it.
pub struct Form<D> {
    params: BTreeMap<String, String>,
    _documented: std::marker::PhantomData<D>,
}

/// The form of `POST /token`.
pub type TokenForm = Form<TokenRequestForm>;
/// The form of `POST /revoke`.
pub type RevocationForm = Form<RevocationRequestForm>;

/// The parameters the OAuth forms define; any other is ignored (RFC 6749 §3.1, §3.2).
const PARAMETERS: [&str; 11] = [
    "grant_type",
    "username",
    "password",
    "refresh_token",
    "subject_token",
    "subject_token_type",
    "id_company_user",
    "client_id",
    "scope",
    "token",
    "token_type_hint",
];

impl<D> Form<D> {
    /// Reads a form body: a parameter given twice is refused, one no form defines is
    /// ignored (RFC 6749 §3.2).
    pub fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        let mut params = BTreeMap::new();
        for (name, value) in form_urlencoded::parse(body) {
            let Some(name) = PARAMETERS.iter().find(|known| **known == name) else { continue };
            if params.insert((*name).to_owned(), value.into_owned()).is_some() {
                return Err(OAuthError::invalid_request(name));
            }
        }
        Ok(Self { params, _documented: std::marker::PhantomData })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    fn required(&self, name: &'static str) -> Result<&str, OAuthError> {
        self.get(name).ok_or_else(|| OAuthError::invalid_request(name))
    }

    /// A given `client_id` must be the configured one.
    fn check_client(&self, client_id: &str) -> Result<(), OAuthError> {
        if self.get("client_id").is_some_and(|given| given != client_id) {
            return Err(OAuthError::invalid_client());
        }
        Ok(())
    }
}

impl RevocationForm {
    /// The refresh token to revoke.
    pub fn token(&self, client_id: &str) -> Result<&str, OAuthError> {
        self.check_client(client_id)?;
        self.required("token")
    }
}

impl TokenForm {
    /// The grant the form asks for, checked in the order league/oauth2-server checks it:
    /// the grant type, the client, then the grant's own parameters.
    pub fn grant(&self, client_id: &str) -> Result<Grant, OAuthError> {
        let grant_type = self
            .get("grant_type")
            .and_then(|name| GrantType::parse_from_parameter(name).ok())
            .ok_or(OAuthError::INVALID_GRANT)?;
        self.check_client(client_id)?;
        match grant_type {
            GrantType::Password => {
                let username = self.required("username")?.to_owned();
                let password = Password::new(self.required("password")?.to_owned());
                Ok(Grant::Password(Credentials { username, password }))
            }
            GrantType::RefreshToken => {
                Ok(Grant::RefreshToken(self.required("refresh_token")?.to_owned()))
            }
            GrantType::TokenExchange => {
                let subject_token = self.required("subject_token")?.to_owned();
                if self.required("subject_token_type")? != ACCESS_TOKEN_TYPE {
                    return Err(OAuthError::invalid_request("subject_token_type"));
                }
                let company_user = self
                    .required("id_company_user")?
                    .parse::<Uuid>()
                    .map_err(|_| OAuthError::invalid_request("id_company_user"))?;
                Ok(Grant::CompanyUser { subject_token, company_user })
            }
        }
    }
}

impl<'a, D: Type> ApiExtractor<'a> for Form<D> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        D::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType { content_type: FORM, schema: D::schema_ref() }],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let form_given = request
            .content_type()
            .is_none_or(|ct| ct.parse::<mime::Mime>().is_ok_and(|m| m.essence_str() == FORM));
        if !form_given {
            return Err(OAuthError::invalid_request("Content-Type").into());
        }
        // The body limit is enforced before routing (api::middleware), so this read is bounded.
        let bytes = match body.take() {
            Ok(body) => body.into_vec().await.map_err(|_| OAuthError::malformed())?,
            Err(_) => Vec::new(),
        };
        Ok(Self::parse(&bytes)?)
    }
}

/// The answer of a grant (RFC 6749 §5.1).
#[derive(Debug, Object)]
#[oai(rename = "TokenResponse")]
pub struct TokenBody {
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The access token (a JWT).
    pub access_token: String,
    /// The token to get the next access token with (`grant_type=refresh_token`).
    pub refresh_token: String,
    /// Token exchange only: `urn:ietf:params:oauth:token-type:access_token`.
    #[oai(skip_serializing_if_is_none)]
    pub issued_token_type: Option<String>,
}

#[derive(ApiResponse)]
pub enum TokenResponse {
    /// The tokens; never to be cached.
    #[oai(status = 200)]
    Ok(
        Json<TokenBody>,
        /// `no-store`.
        #[oai(header = "Cache-Control")]
        String,
        /// `no-cache`.
        #[oai(header = "Pragma")]
        String,
    ),
}

impl TokenResponse {
    fn issued(issued: Issued, exchanged: bool) -> Self {
        let body = TokenBody {
            token_type: "Bearer".into(),
            expires_in: issued.expires_in,
            access_token: issued.access_token,
            refresh_token: issued.refresh_token,
            issued_token_type: exchanged.then(|| ACCESS_TOKEN_TYPE.to_owned()),
        };
        Self::Ok(Json(body), "no-store".into(), "no-cache".into())
    }
}

/// An OAuth error object (RFC 6749 §5.2) with its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: &'static str,
    /// Seconds to wait, for an answer that asks the client to come back later.
    pub retry_after: Option<u32>,
}

/// league/oauth2-server's message of a request it cannot read.
const MALFORMED: &str = "The request is missing a required parameter, includes an invalid \
     parameter value, includes a parameter more than once, or is otherwise malformed.";

impl OAuthError {
    const fn new(status: StatusCode, error: &'static str, description: &'static str) -> Self {
        Self { status, error, description, retry_after: None }
    }

    /// An answer that asks the client to come back after `seconds`.
    const fn later(status: StatusCode, description: &'static str, seconds: u32) -> Self {
        Self { status, error: "temporarily_unavailable", description, retry_after: Some(seconds) }
    }

    fn malformed() -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", MALFORMED)
    }

    /// A missing, repeated or malformed parameter (or header) `name`: Spryker's answer
    /// names none (it keeps league's message, not its hint).
    pub fn invalid_request(name: &str) -> Self {
        tracing::debug!(parameter = name, "a token request was malformed");
        Self::malformed()
    }

    pub fn invalid_client() -> Self {
        // 400, as Spryker answers it: it hands league no headers, so no 401 challenge.
        Self::new(StatusCode::BAD_REQUEST, "invalid_client", "Client authentication failed")
    }

    const INVALID_CREDENTIALS: Self =
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", "The user credentials were incorrect.");

    /// league 8's `invalidRefreshToken`, with Spryker's status.
    const INVALID_REFRESH_TOKEN: Self =
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", "The refresh token is invalid.");

    const INVALID_GRANT: Self = Self::new(
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "The provided authorization grant (e.g., authorization code, resource owner \
         credentials) or refresh token is invalid, expired, revoked, does not match the \
         redirection URI used in the authorization request, or was issued to another client.",
    );

    const LOGIN_BLOCKED: Self =
        Self::later(StatusCode::TOO_MANY_REQUESTS, LOGIN_BLOCKED_DETAIL, 300);

    const LOGINS_WAITING: Self =
        Self::later(StatusCode::TOO_MANY_REQUESTS, LOGINS_WAITING_DETAIL, 1);

    const QUEUE_FULL: Self =
        Self::later(StatusCode::SERVICE_UNAVAILABLE, LOGIN_QUEUE_FULL_DETAIL, 1);

    const UNAVAILABLE: Self = Self::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "The service is unavailable. Please try again later.",
    );

    const SERVER_ERROR: Self = Self::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        "The authorization server encountered an unexpected condition.",
    );

    /// The OAuth answer of a domain error of a grant.
    fn of(err: &Error) -> Self {
        match err {
            Error::AuthenticationFailed => Self::INVALID_CREDENTIALS,
            Error::RefreshFailed => Self::INVALID_REFRESH_TOKEN,
            Error::CompanyUserAuthenticationFailed | Error::InvalidAccessToken => {
                Self::INVALID_GRANT
            }
            Error::LoginBlocked => Self::LOGIN_BLOCKED,
            Error::LoginsWaitingFromClient => Self::LOGINS_WAITING,
            Error::LoginQueueFull => Self::QUEUE_FULL,
            Error::Unavailable(_) => Self::UNAVAILABLE,
            _ => Self::SERVER_ERROR,
        }
    }

    /// The error object a client receives.
    fn body(&self) -> Value {
        json!({"error": self.error, "error_description": self.description})
    }

    fn render(&self) -> Response {
        let mut resp = Response::builder()
            .status(self.status)
            .content_type("application/json")
            .header(header::CACHE_CONTROL, "no-store")
            .header(header::PRAGMA, "no-cache")
            .body(self.body().to_string());
        if let Some(seconds) = self.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        resp
    }

    /// Every answer `POST /token` documents, with its example.
    fn documented() -> Vec<Self> {
        vec![
            Self::invalid_request("username"),
            Self::INVALID_CREDENTIALS,
            Self::INVALID_REFRESH_TOKEN,
            Self::INVALID_GRANT,
            Self::invalid_client(),
            Self::LOGIN_BLOCKED,
            Self::LOGINS_WAITING,
            Self::QUEUE_FULL,
            Self::UNAVAILABLE,
            Self::SERVER_ERROR,
        ]
    }
}

impl From<OAuthError> for poem::Error {
    fn from(err: OAuthError) -> Self {
        if err.status.is_server_error() {
            tracing::warn!(error = err.error, "a token request failed");
        }
        poem::Error::from_response(err.render())
    }
}

impl From<Error> for OAuthError {
    fn from(err: Error) -> Self {
        if matches!(err, Error::Internal(_) | Error::Unavailable(_)) {
            tracing::error!(error = %super::errors::error_chain(&err), "a token request failed");
        }
        Self::of(&err)
    }
}

/// The error object of `POST /token` (RFC 6749 §5.2), as the OpenAPI document shows it.
#[derive(Debug, Object)]
#[oai(rename = "OAuthError")]
pub struct OAuthErrorBody {
    /// The RFC 6749 error code, e.g. `invalid_grant`.
    pub error: String,
    /// What went wrong, as a sentence.
    pub error_description: String,
}

/// The responses of the OAuth errors `cases`, each with its example.
fn documented(cases: Vec<OAuthError>) -> MetaResponses {
    let mut by_status: BTreeMap<u16, Vec<Value>> = BTreeMap::new();
    for case in cases {
        by_status.entry(case.status.as_u16()).or_default().push(case.body());
    }
    super::errors::error_responses(by_status, "application/json", OAuthErrorBody::schema_ref())
}

impl ApiResponse for OAuthError {
    fn meta() -> MetaResponses {
        documented(Self::documented())
    }

    fn register(registry: &mut Registry) {
        OAuthErrorBody::register(registry);
    }
}

/// The errors of `POST /revoke`: only the request itself can be wrong (RFC 7009 §2.2).
pub struct RevocationError(OAuthError);

impl From<OAuthError> for RevocationError {
    fn from(err: OAuthError) -> Self {
        Self(err)
    }
}

impl From<Error> for RevocationError {
    fn from(err: Error) -> Self {
        Self(err.into())
    }
}

impl From<RevocationError> for poem::Error {
    fn from(err: RevocationError) -> Self {
        err.0.into()
    }
}

impl ApiResponse for RevocationError {
    fn meta() -> MetaResponses {
        documented(vec![
            OAuthError::invalid_request("token"),
            OAuthError::invalid_client(),
            OAuthError::UNAVAILABLE,
            OAuthError::SERVER_ERROR,
        ])
    }

    fn register(registry: &mut Registry) {
        OAuthErrorBody::register(registry);
    }
}

#[derive(ApiResponse)]
pub enum RevocationResponse {
    /// Revoked, or nothing to revoke: the answer is the same (RFC 7009 §2.2).
    #[oai(status = 200)]
    Revoked,
}

/// The authorization server's metadata (RFC 8414 §2).
#[derive(Debug, Object)]
#[oai(rename = "AuthorizationServerMetadata")]
pub struct Metadata {
    /// The `iss` of the tokens this service issues.
    pub issuer: String,
    /// `POST /token`.
    pub token_endpoint: String,
    /// The keys that verify the access tokens.
    pub jwks_uri: String,
    /// `POST /revoke`.
    pub revocation_endpoint: String,
    /// The grant types `POST /token` takes.
    pub grant_types_supported: Vec<String>,
    /// None: there is no authorization endpoint (clients use their own login form).
    pub response_types_supported: Vec<String>,
    /// The scopes tokens carry.
    pub scopes_supported: Vec<String>,
    /// `none`: public clients (a storefront cannot keep a secret).
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// `none`, as at the token endpoint.
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// The API's documentation (Swagger UI).
    pub service_documentation: String,
}

pub struct OAuthApi;

#[OpenApi(tag = "ApiTags::OAuth")]
impl OAuthApi {
    /// Get tokens the OAuth 2.0 way.
    ///
    /// Form-encoded, answered in RFC 6749 JSON, as Glue's `/token`. `grant_type=password`
    /// (`username`, `password`) logs a customer in under the rules of `POST /access-tokens`
    /// (the same limits and counters); `grant_type=refresh_token` (`refresh_token`) rotates
    /// under the rules of `POST /refresh-tokens`; RFC 8693 token exchange
    /// (`grant_type=urn:ietf:params:oauth:grant-type:token-exchange`, `subject_token` an
    /// access token, `subject_token_type=urn:ietf:params:oauth:token-type:access_token`,
    /// `id_company_user`) issues a company-user token under the rules of
    /// `POST /company-user-access-tokens`. Errors are RFC 6749 error objects with
    /// league/oauth2-server's messages; every refused exchange is one `invalid_grant`.
    #[oai(path = "/token", method = "post", operation_id = "createToken")]
    async fn token(
        &self,
        form: TokenForm,
        state: Data<&Arc<AppState>>,
        req: &Request,
    ) -> Result<TokenResponse, OAuthError> {
        let grant = form.grant(&state.config.audience)?;
        let exchanged = matches!(grant, Grant::CompanyUser { .. });
        let client = super::client::address(req, &state.trusted_proxies).map(ClientKey::of);
        let issued = state.sessions.grant(&state.db, grant, client).await?;
        Ok(TokenResponse::issued(issued, exchanged))
    }

    /// Revoke a refresh token (RFC 7009).
    ///
    /// Form-encoded `token` (a refresh token) and optional `token_type_hint`. Always 200 once
    /// the request is well formed: an unknown, spent or someone else's token changes nothing
    /// and looks the same. Access tokens cannot be revoked; they expire.
    #[oai(path = "/revoke", method = "post", operation_id = "revokeToken")]
    async fn revoke(
        &self,
        form: RevocationForm,
        state: Data<&Arc<AppState>>,
    ) -> Result<RevocationResponse, RevocationError> {
        let token = form.token(&state.config.audience)?;
        state.sessions.revoke_held(token).await?;
        Ok(RevocationResponse::Revoked)
    }

    /// The OAuth 2.0 authorization server's metadata (RFC 8414).
    ///
    /// Where the token, revocation and key endpoints are, and what they take, for clients
    /// that configure themselves from it.
    #[oai(
        path = "/.well-known/oauth-authorization-server",
        method = "get",
        operation_id = "getOAuthMetadata"
    )]
    async fn metadata(&self, state: Data<&Arc<AppState>>, req: &Request) -> Json<Metadata> {
        let base = super::links::base(req, &state);
        let strings = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
        Json(Metadata {
            issuer: state.config.issuer.clone(),
            token_endpoint: format!("{base}/token"),
            jwks_uri: format!("{base}/.well-known/jwks.json"),
            revocation_endpoint: format!("{base}/revoke"),
            grant_types_supported: GrantType::ALL.map(GrantType::name).to_vec(),
            response_types_supported: Vec::new(),
            scopes_supported: strings(&["customer", "company_user"]),
            token_endpoint_auth_methods_supported: strings(&["none"]),
            revocation_endpoint_auth_methods_supported: strings(&["none"]),
            service_documentation: format!("{base}/docs"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(body: &str) -> Result<Grant, OAuthError> {
        TokenForm::parse(body.as_bytes())?.grant("frontend")
    }

    #[test]
    fn the_grant_types_are_the_documented_ones_each_once() {
        let mut registry = Registry::new();
        GrantType::register(&mut registry);
        let documented: Vec<String> = registry.schemas["GrantType"]
            .enum_items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        assert_eq!(GrantType::ALL.map(GrantType::name).to_vec(), documented);
        assert_eq!(
            GrantType::parse_from_parameter(TOKEN_EXCHANGE).ok(),
            Some(GrantType::TokenExchange)
        );
    }

    #[test]
    fn the_form_is_read_in_league_s_order() {
        assert!(matches!(
            grant("grant_type=password&username=a%40b.c&password=p%20w"),
            Ok(Grant::Password(Credentials { username, .. })) if username == "a@b.c"
        ));
        assert_eq!(grant("username=a").unwrap_err(), OAuthError::INVALID_GRANT);
        // The grant type first, then the client, then the parameters.
        let wrong_client = "grant_type=password&client_id=other&scope=admin";
        assert_eq!(grant(wrong_client).unwrap_err(), OAuthError::invalid_client());
        let missing = "grant_type=password&scope=customer";
        assert_eq!(grant(missing).unwrap_err(), OAuthError::invalid_request("username"));
        let twice = "grant_type=refresh_token&refresh_token=a&refresh_token=b";
        assert_eq!(grant(twice).unwrap_err(), OAuthError::invalid_request("refresh_token"));
        let unknown_twice = "grant_type=refresh_token&refresh_token=a&x=1&x=2";
        assert!(matches!(grant(unknown_twice), Ok(Grant::RefreshToken(token)) if token == "a"));
        let exchange = format!(
            "grant_type={TOKEN_EXCHANGE}&subject_token=t&subject_token_type={ACCESS_TOKEN_TYPE}\
             &id_company_user=ebf4b55a-cab0-5ed0-8fb7-525a3eeedeac&scope=company_user"
        );
        assert!(matches!(grant(&exchange), Ok(Grant::CompanyUser { .. })));
        let not_a_uuid = exchange.replace("ebf4b55a", "nope");
        assert_eq!(grant(&not_a_uuid).unwrap_err(), OAuthError::invalid_request("id_company_user"));
    }
}
