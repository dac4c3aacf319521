//! The one place where an error becomes an HTTP status, a Glue code and a JSON:API error
//! document (docs/wire-contract.md §1.3, §1.5): domain errors, framework errors and panics alike.
//!
//! Each operation declares the errors it can answer with as an [`ErrorSet`]; [`ApiError`]
//! publishes them in the OpenAPI document, one example per case.

use std::{borrow::Cow, collections::BTreeMap, marker::PhantomData};

use poem::{Response, http::StatusCode, http::header};
use poem_openapi::{
    ApiResponse,
    registry::{MetaMediaType, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef, Registry},
    types::{ToJSON, Type},
};
use serde_json::{Value, json};

use super::jsonapi::{ErrorDocument, ErrorObject, MEDIA_TYPE};
use crate::error::{CompanyResource, ContextResource, Error, Permission, Violation};

/// One Glue error: what a client receives in `errors[]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlueError {
    pub status: StatusCode,
    pub code: Option<&'static str>,
    pub detail: Cow<'static, str>,
}

const fn generic(status: StatusCode, detail: &'static str) -> GlueError {
    GlueError { status, code: None, detail: Cow::Borrowed(detail) }
}

pub const POST_DATA_INVALID: GlueError = generic(StatusCode::BAD_REQUEST, "Post data is invalid.");
pub const INVALID_TYPE: GlueError = generic(StatusCode::BAD_REQUEST, "Invalid type.");
pub const RESOURCE_ID_NOT_SPECIFIED: GlueError =
    generic(StatusCode::BAD_REQUEST, "Resource id is not specified.");
pub const NOT_FOUND: GlueError = generic(StatusCode::NOT_FOUND, "Not Found");
pub const NOT_IMPLEMENTED: GlueError =
    generic(StatusCode::NOT_IMPLEMENTED, "Resource is not implemented.");
pub const METHOD_NOT_ALLOWED: GlueError =
    generic(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
pub const NOT_ACCEPTABLE: GlueError = generic(StatusCode::NOT_ACCEPTABLE, "Not acceptable.");
pub const PAYLOAD_TOO_LARGE: GlueError =
    generic(StatusCode::PAYLOAD_TOO_LARGE, "Payload too large.");
pub const UNSUPPORTED_MEDIA_TYPE: GlueError =
    generic(StatusCode::UNSUPPORTED_MEDIA_TYPE, "Unsupported media type.");
pub const MISSING_ACCESS_TOKEN: GlueError = GlueError {
    status: StatusCode::FORBIDDEN,
    code: Some("002"),
    detail: Cow::Borrowed("Missing access token."),
};
pub const INVALID_ACCESS_TOKEN: GlueError = GlueError {
    status: StatusCode::UNAUTHORIZED,
    code: Some("001"),
    detail: Cow::Borrowed("Invalid access token."),
};
pub const AUTHENTICATION_FAILED: GlueError = GlueError {
    status: StatusCode::UNAUTHORIZED,
    code: Some("003"),
    detail: Cow::Borrowed("Failed to authenticate user."),
};
/// docs/wire-contract.md §3.12: Spryker's `AgentAuthRestApiConfig::RESPONSE_CODE_INVALID_LOGIN`.
pub const AGENT_AUTHENTICATION_FAILED: GlueError = GlueError {
    status: StatusCode::UNAUTHORIZED,
    code: Some("4101"),
    detail: Cow::Borrowed("Failed to authenticate an agent."),
};
/// docs/wire-contract.md §3.12: an agent's own token speaks for no customer.
pub const AGENT_TOKEN_NOT_ACCEPTED: GlueError = GlueError {
    status: StatusCode::FORBIDDEN,
    code: Some("4105"),
    detail: Cow::Borrowed(
        "An agent access token cannot be used here: impersonate a customer first.",
    ),
};
/// docs/wire-contract.md §3.2 (documented over runtime: Spryker's PHP answers 003 here; its
/// documentation says 001).
pub const COMPANY_USER_AUTHENTICATION_FAILED: GlueError = GlueError {
    status: StatusCode::UNAUTHORIZED,
    code: Some("001"),
    detail: Cow::Borrowed("Failed to authenticate user."),
};
/// What a blocked login is told, here and at `POST /token`.
pub const LOGIN_BLOCKED_DETAIL: &str =
    "Too many log in attempts from your address. Please wait 5 minutes before trying again.";
/// What a client with as many password checks waiting as it may is told.
pub const LOGINS_WAITING_DETAIL: &str =
    "Too many log in attempts from your address at once. Please try again in a moment.";
/// What a login is told when the password-check queue is full.
pub const LOGIN_QUEUE_FULL_DETAIL: &str =
    "Too many log in attempts at once. Please try again in a moment.";
pub const LOGIN_BLOCKED: GlueError = GlueError {
    status: StatusCode::TOO_MANY_REQUESTS,
    code: Some("4401"),
    detail: Cow::Borrowed(LOGIN_BLOCKED_DETAIL),
};
/// A client with as many password checks waiting as it may (`docs/security.md`).
pub const LOGINS_WAITING_FROM_CLIENT: GlueError =
    generic(StatusCode::TOO_MANY_REQUESTS, LOGINS_WAITING_DETAIL);
/// The password-check queue is full (`docs/security.md`).
pub const LOGIN_QUEUE_FULL: GlueError =
    generic(StatusCode::SERVICE_UNAVAILABLE, LOGIN_QUEUE_FULL_DETAIL);
pub const REFRESH_FAILED: GlueError = GlueError {
    status: StatusCode::UNAUTHORIZED,
    code: Some("004"),
    detail: Cow::Borrowed("Failed to refresh token."),
};
pub const CUSTOMER_NOT_FOUND: GlueError = GlueError {
    status: StatusCode::NOT_FOUND,
    code: Some("402"),
    detail: Cow::Borrowed("Customer not found."),
};
/// A password change for another customer's reference (docs/wire-contract.md §3.9).
pub const CUSTOMER_UNAUTHORIZED: GlueError =
    coded(StatusCode::FORBIDDEN, "411", "Unauthorized request.");
/// The current password of a password change is wrong (Glue's detail has no full stop).
pub const INVALID_PASSWORD: GlueError = coded(StatusCode::BAD_REQUEST, "408", "Invalid password");
/// An unknown, used, replaced or expired restore key (docs/wire-contract.md §3.10).
pub const RESTORE_KEY_INVALID: GlueError =
    coded(StatusCode::UNPROCESSABLE_ENTITY, "415", "Restore password key is not valid.");

/// Too many password-reset requests for one e-mail or from one address.
pub const RESET_REQUESTS_LIMITED: GlueError = generic(
    StatusCode::TOO_MANY_REQUESTS,
    "Too many password reset requests. Please wait and try again later.",
);

/// A new password and its confirmation differ; `attribute` names the new password.
pub fn passwords_differ(attribute: &str) -> GlueError {
    GlueError {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        code: Some("406"),
        detail: Cow::Owned(format!(
            "Value in field {attribute} should be identical to value in the confirmPassword field."
        )),
    }
}

pub const PAGINATION_INVALID: GlueError =
    generic(StatusCode::BAD_REQUEST, "Pagination parameters are invalid.");

/// The detail of every "no company context" error (docs/wire-contract.md §3.5, §3.6).
const NO_COMPANY_CONTEXT: &str = "Current company user is not set. You need to select the \
     current company user with /company-user-access-tokens in order to access the resource \
     collection.";

const fn coded(status: StatusCode, code: &'static str, detail: &'static str) -> GlueError {
    GlueError { status, code: Some(code), detail: Cow::Borrowed(detail) }
}

/// The codes of one company resource with a `mine` read (docs/wire-contract.md §3.5, §3.6).
pub struct ResourceCodes {
    /// Read without a company context (403).
    pub no_context: GlueError,
    /// Unknown, or of another company (404).
    pub not_found: GlueError,
}

const fn resource_codes(
    no_context: &'static str,
    not_found: &'static str,
    detail: &'static str,
) -> ResourceCodes {
    ResourceCodes {
        no_context: coded(StatusCode::FORBIDDEN, no_context, NO_COMPANY_CONTEXT),
        not_found: coded(StatusCode::NOT_FOUND, not_found, detail),
    }
}

pub const COMPANY_USER_CODES: ResourceCodes =
    resource_codes("1403", "1404", "Company user not found");
pub const COMPANY_CODES: ResourceCodes = resource_codes("1803", "1801", "Company not found.");
pub const COMPANY_BUSINESS_UNIT_CODES: ResourceCodes =
    resource_codes("1903", "1901", "Company business unit not found.");
/// Addresses have no `mine` read, so no "no company context" code.
pub const COMPANY_BUSINESS_UNIT_ADDRESS_NOT_FOUND: GlueError =
    coded(StatusCode::NOT_FOUND, "2001", "Company business unit address not found.");
pub const COMPANY_ROLE_CODES: ResourceCodes =
    resource_codes("2103", "2101", "Company role not found.");
/// A company user whose roles lack the permission to see its company's users.
pub const COMPANY_USERS_FORBIDDEN: GlueError = coded(StatusCode::FORBIDDEN, "1405", "Forbidden");

/// The 403 of reading `resource`'s `mine` without a company context.
fn no_context(resource: ContextResource) -> GlueError {
    match resource {
        ContextResource::CompanyUsers => COMPANY_USER_CODES.no_context,
        ContextResource::Companies => COMPANY_CODES.no_context,
        ContextResource::CompanyBusinessUnits => COMPANY_BUSINESS_UNIT_CODES.no_context,
        ContextResource::CompanyRoles => COMPANY_ROLE_CODES.no_context,
    }
}

/// The 404 of `resource`.
fn not_found(resource: CompanyResource) -> GlueError {
    match resource {
        CompanyResource::CompanyUsers => COMPANY_USER_CODES.not_found,
        CompanyResource::Companies => COMPANY_CODES.not_found,
        CompanyResource::CompanyBusinessUnits => COMPANY_BUSINESS_UNIT_CODES.not_found,
        CompanyResource::CompanyRoles => COMPANY_ROLE_CODES.not_found,
        CompanyResource::CompanyBusinessUnitAddresses => COMPANY_BUSINESS_UNIT_ADDRESS_NOT_FOUND,
    }
}

/// The 403 of a missing permission.
const fn permission_missing(permission: Permission) -> GlueError {
    match permission {
        Permission::SeeCompanyUsers => COMPANY_USERS_FORBIDDEN,
    }
}

pub const INTERNAL: GlueError = generic(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
pub const UNAVAILABLE: GlueError = generic(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
// Transport limits (docs/wire-contract.md §1.6): they can meet any request, so they are
// documented there rather than on every operation.
pub const HEADERS_TOO_LARGE: GlueError =
    generic(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "Request header fields too large.");
pub const REQUEST_TIMEOUT: GlueError =
    generic(StatusCode::REQUEST_TIMEOUT, "The request was not completed in time.");
pub const TOO_MANY_CONNECTIONS: GlueError =
    generic(StatusCode::SERVICE_UNAVAILABLE, "Too many connections.");
pub const TOO_MANY_CONNECTIONS_FROM_ADDRESS: GlueError =
    generic(StatusCode::SERVICE_UNAVAILABLE, "Too many connections from your address.");

/// The documented example of a 901 error.
pub fn violation_example(attribute: &'static str, message: &'static str) -> GlueError {
    violation(&Violation::new(attribute, message))
}

/// A 422/901 error for one violated rule.
pub fn violation(v: &Violation) -> GlueError {
    GlueError {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        code: Some("901"),
        detail: Cow::Owned(format!("{} => {}", v.attribute, v.message)),
    }
}

/// What the API layer refuses on its own, before or beside an operation's service call:
/// the request's shape (docs/wire-contract.md §1.4), paging, a missing token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Protocol {
    /// The request body is not a JSON:API document with `data.type` and `data.attributes`.
    #[error("the request body is not a JSON:API document")]
    PostDataInvalid,
    /// `data.type` is not the route's resource type.
    #[error("the request document has the wrong resource type")]
    InvalidType,
    /// A protected operation was called without an `Authorization` header.
    #[error("missing access token")]
    MissingAccessToken,
    /// `page[offset]` or `page[limit]` is not a valid number for paging.
    #[error("invalid pagination parameters")]
    PaginationInvalid,
    /// A route Glue has with nothing behind it (docs/wire-contract.md §3.6).
    #[error("resource not implemented")]
    NotImplemented,
}

impl Protocol {
    const fn glue_error(self) -> GlueError {
        match self {
            Self::PostDataInvalid => POST_DATA_INVALID,
            Self::InvalidType => INVALID_TYPE,
            Self::MissingAccessToken => MISSING_ACCESS_TOKEN,
            Self::PaginationInvalid => PAGINATION_INVALID,
            Self::NotImplemented => NOT_IMPLEMENTED,
        }
    }
}

/// Why an operation did not succeed: the protocol, or what the service said.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Protocol(#[from] Protocol),
    #[error(transparent)]
    Domain(#[from] Error),
}

/// The Glue errors a domain error is answered with (several for a 422).
pub fn glue_errors(err: &Error) -> Vec<GlueError> {
    let one = match err {
        Error::InvalidAccessToken => INVALID_ACCESS_TOKEN,
        Error::AuthenticationFailed => AUTHENTICATION_FAILED,
        Error::AgentAuthenticationFailed => AGENT_AUTHENTICATION_FAILED,
        Error::AgentTokenNotAccepted => AGENT_TOKEN_NOT_ACCEPTED,
        Error::CompanyUserAuthenticationFailed => COMPANY_USER_AUTHENTICATION_FAILED,
        Error::LoginBlocked => LOGIN_BLOCKED,
        Error::LoginsWaitingFromClient => LOGINS_WAITING_FROM_CLIENT,
        Error::LoginQueueFull => LOGIN_QUEUE_FULL,
        Error::RefreshFailed => REFRESH_FAILED,
        Error::CustomerNotFound => CUSTOMER_NOT_FOUND,
        Error::CustomerUnauthorized => CUSTOMER_UNAUTHORIZED,
        Error::PasswordsDiffer { attribute } => passwords_differ(attribute),
        Error::WrongPassword => INVALID_PASSWORD,
        Error::RestoreKeyInvalid => RESTORE_KEY_INVALID,
        Error::ResetRequestsLimited => RESET_REQUESTS_LIMITED,
        Error::NoCompanyContext(resource) => no_context(*resource),
        Error::NotFound(resource) => not_found(*resource),
        Error::CompanyUserOfAnotherCompany => COMPANY_USER_CODES.no_context,
        Error::PermissionMissing(permission) => permission_missing(*permission),
        Error::Validation(violations) => return violations.iter().map(violation).collect(),
        Error::Unavailable(_) => UNAVAILABLE,
        Error::Internal(_) => INTERNAL,
    };
    vec![one]
}

/// Renders an error document; the response's status is that of the first error.
pub fn render(errors: &[GlueError]) -> Response {
    let status = errors.first().map_or(StatusCode::INTERNAL_SERVER_ERROR, |e| e.status);
    let mut resp = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, MEDIA_TYPE)
        .body(envelope(errors));
    if errors.first().is_some_and(|e| *e == LOGINS_WAITING_FROM_CLIENT || *e == LOGIN_QUEUE_FULL) {
        // A place in the queue frees up within a few password checks.
        resp.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static(r#"Bearer realm="Access to shop API""#),
        );
    }
    resp
}

/// The error document of `errors`: the type the OpenAPI document shows.
fn document(errors: &[GlueError]) -> ErrorDocument {
    ErrorDocument {
        errors: errors
            .iter()
            .map(|e| ErrorObject {
                code: e.code.map(str::to_owned),
                status: e.status.as_u16(),
                detail: e.detail.clone().into_owned(),
            })
            .collect(),
    }
}

/// The JSON:API error document of `errors`, serialized.
pub fn envelope(errors: &[GlueError]) -> Vec<u8> {
    serde_json::to_vec(&document(errors).to_json().unwrap_or_default()).unwrap_or_default()
}

/// Renders a failure, logging what must not reach the client.
pub fn render_failure(failure: &Failure) -> Response {
    match failure {
        Failure::Protocol(protocol) => render(&[protocol.glue_error()]),
        Failure::Domain(err) => {
            if matches!(err, Error::Internal(_) | Error::Unavailable(_)) {
                tracing::error!(error = %error_chain(err), "request failed");
            }
            render(&glue_errors(err))
        }
    }
}

/// `err` and all its sources, joined: the whole story for the log.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

impl From<Failure> for poem::Error {
    fn from(failure: Failure) -> Self {
        poem::Error::from_response(render_failure(&failure))
    }
}

impl From<Error> for poem::Error {
    fn from(err: Error) -> Self {
        Failure::from(err).into()
    }
}

impl From<Protocol> for poem::Error {
    fn from(protocol: Protocol) -> Self {
        Failure::from(protocol).into()
    }
}

/// Turns any error the framework raised into the JSON:API envelope (docs/wire-contract.md §1.3).
pub fn render_framework_error(err: poem::Error) -> Response {
    use poem::error::{MethodNotAllowedError, NotFoundError};
    use poem_openapi::error::{ContentTypeError, ParseParamError, ParseRequestPayloadError};

    if err.is_from_response() {
        return err.into_response();
    }
    if err.is::<NotFoundError>() {
        return render(&[NOT_FOUND]);
    }
    if err.is::<MethodNotAllowedError>() {
        return render(&[METHOD_NOT_ALLOWED]);
    }
    if err.is::<ContentTypeError>() {
        return render(&[UNSUPPORTED_MEDIA_TYPE]);
    }
    if err.is::<ParseRequestPayloadError>() {
        return render(&[POST_DATA_INVALID]);
    }
    // The paging parameters carry their rule as a pattern in the document (see
    // `api::paging`); poem-openapi checks it before the operation runs.
    if err.downcast_ref::<ParseParamError>().is_some_and(|e| e.name.starts_with("page[")) {
        return render_failure(&Protocol::PaginationInvalid.into());
    }
    let status = err.status();
    if status.is_client_error() {
        let detail = status.canonical_reason().unwrap_or("Bad Request");
        return render(&[GlueError { status, code: None, detail: Cow::Borrowed(detail) }]);
    }
    tracing::error!(error = %error_chain(&err), "request failed in the framework");
    render(&[INTERNAL])
}

/// The errors an operation documents.
pub trait ErrorSet: Send {
    fn cases() -> Vec<GlueError>;
}

/// Declares an [`ErrorSet`]: `error_set!(Name: CASE, CASE, ...)`. An operation that reads a
/// JSON:API request body starts the list with `body;`, which adds [`BODY_ERRORS`].
macro_rules! error_set {
    ($(#[$meta:meta])* $name:ident: body; $($case:expr),* $(,)?) => {
        $(#[$meta])*
        pub struct $name;
        impl $crate::api::errors::ErrorSet for $name {
            fn cases() -> Vec<$crate::api::errors::GlueError> {
                let mut cases = $crate::api::errors::BODY_ERRORS.to_vec();
                cases.extend([$($case),*]);
                cases
            }
        }
    };
    ($(#[$meta:meta])* $name:ident: $($case:expr),* $(,)?) => {
        $(#[$meta])*
        pub struct $name;
        impl $crate::api::errors::ErrorSet for $name {
            fn cases() -> Vec<$crate::api::errors::GlueError> {
                vec![$($case),*]
            }
        }
    };
}
pub(crate) use error_set;

/// What reading a JSON:API request body can answer (docs/wire-contract.md §1.4 steps 1 and 3).
pub const BODY_ERRORS: [GlueError; 4] =
    [POST_DATA_INVALID, INVALID_TYPE, PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE];

error_set!(
    /// What any operation may answer, whatever it does.
    CommonErrors: NOT_ACCEPTABLE, INTERNAL, UNAVAILABLE
);

/// An operation's error response: renders the failure and documents the set `S`.
pub struct ApiError<S> {
    pub failure: Failure,
    _set: PhantomData<S>,
}

impl<S> From<Error> for ApiError<S> {
    fn from(error: Error) -> Self {
        Self { failure: error.into(), _set: PhantomData }
    }
}

impl<S> From<Protocol> for ApiError<S> {
    fn from(protocol: Protocol) -> Self {
        Self { failure: protocol.into(), _set: PhantomData }
    }
}

impl<S> From<ApiError<S>> for poem::Error {
    fn from(err: ApiError<S>) -> Self {
        err.failure.into()
    }
}

error_set!(
    /// What a route without a resource behind it answers (docs/wire-contract.md §3.6).
    NotImplementedErrors: INVALID_ACCESS_TOKEN,
    MISSING_ACCESS_TOKEN,
    NOT_IMPLEMENTED
);

/// The success of an operation that never succeeds: it documents no response.
pub enum Never {}

impl ApiResponse for Never {
    fn meta() -> MetaResponses {
        MetaResponses { responses: Vec::new() }
    }

    fn register(_registry: &mut Registry) {}
}

impl poem::IntoResponse for Never {
    fn into_response(self) -> Response {
        match self {}
    }
}

/// The answer of a route Glue has with nothing behind it, once the caller's token is valid.
pub fn not_implemented() -> Result<Never, ApiError<NotImplementedErrors>> {
    Err(Protocol::NotImplemented.into())
}

/// The key under which a response schema carries its examples until
/// `api::document` moves them to the media type (poem-openapi has no field for that).
pub const EXAMPLES_MARKER: &str = "x-glue-examples";

impl<S: ErrorSet> ApiResponse for ApiError<S> {
    fn meta() -> MetaResponses {
        let mut by_status: BTreeMap<u16, Vec<GlueError>> = BTreeMap::new();
        for case in S::cases().into_iter().chain(CommonErrors::cases()) {
            let cases = by_status.entry(case.status.as_u16()).or_default();
            if !cases.contains(&case) {
                cases.push(case);
            }
        }
        let examples = by_status
            .into_iter()
            .map(|(status, cases)| (status, cases.iter().map(example).collect()));
        error_responses(examples, MEDIA_TYPE, ErrorDocument::schema_ref())
    }

    fn register(registry: &mut Registry) {
        ErrorDocument::register(registry);
    }
}

/// One documented response per status, of `content_type` and `schema`, carrying the
/// status's examples (moved to the media type by `api::document`).
pub fn error_responses(
    examples: impl IntoIterator<Item = (u16, Vec<Value>)>,
    content_type: &'static str,
    schema: MetaSchemaRef,
) -> MetaResponses {
    let responses = examples
        .into_iter()
        .map(|(status, examples)| MetaResponse {
            description: StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Error"),
            status: Some(status),
            status_range: None,
            content: vec![MetaMediaType {
                content_type,
                schema: MetaSchemaRef::Inline(Box::new(MetaSchema {
                    all_of: vec![schema.clone()],
                    example: Some(json!({ EXAMPLES_MARKER: examples })),
                    ..MetaSchema::ANY
                })),
            }],
            headers: vec![],
        })
        .collect();
    MetaResponses { responses }
}

/// The error document a client receives for `case`.
fn example(case: &GlueError) -> Value {
    document(std::slice::from_ref(case)).to_json().unwrap_or_default()
}
