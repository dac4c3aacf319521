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
    types::Type,
};
use serde_json::{Value, json};

use super::jsonapi::{ErrorDocument, MEDIA_TYPE};
use crate::error::{CompanyResource, Error, Violation};

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
/// docs/wire-contract.md §3.2 (documented over runtime: Spryker's PHP answers 003 here; its
/// documentation says 001).
pub const COMPANY_USER_AUTHENTICATION_FAILED: GlueError = GlueError {
    status: StatusCode::UNAUTHORIZED,
    code: Some("001"),
    detail: Cow::Borrowed("Failed to authenticate user."),
};
pub const LOGIN_BLOCKED: GlueError = GlueError {
    status: StatusCode::TOO_MANY_REQUESTS,
    code: Some("4401"),
    detail: Cow::Borrowed(
        "Too many log in attempts from your address. Please wait 5 minutes before trying again.",
    ),
};
/// A client with as many password checks waiting as it may (`docs/security.md`).
pub const LOGINS_WAITING_FROM_CLIENT: GlueError = generic(
    StatusCode::TOO_MANY_REQUESTS,
    "Too many log in attempts from your address at once. Please try again in a moment.",
);
/// The password-check queue is full (`docs/security.md`).
pub const LOGIN_QUEUE_FULL: GlueError = generic(
    StatusCode::SERVICE_UNAVAILABLE,
    "Too many log in attempts at once. Please try again in a moment.",
);
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
pub const PAGINATION_INVALID: GlueError =
    generic(StatusCode::BAD_REQUEST, "Pagination parameters are invalid.");

/// The detail of every "no company context" error (docs/wire-contract.md §3.5, §3.6).
const NO_COMPANY_CONTEXT: &str = "Current company user is not set. You need to select the \
     current company user with /company-user-access-tokens in order to access the resource \
     collection.";

const fn coded(status: StatusCode, code: &'static str, detail: &'static str) -> GlueError {
    GlueError { status, code: Some(code), detail: Cow::Borrowed(detail) }
}

pub const COMPANY_USERS_NO_CONTEXT: GlueError =
    coded(StatusCode::FORBIDDEN, "1403", NO_COMPANY_CONTEXT);
pub const COMPANY_USER_NOT_FOUND: GlueError =
    coded(StatusCode::NOT_FOUND, "1404", "Company user not found");
pub const COMPANY_USERS_FORBIDDEN: GlueError = coded(StatusCode::FORBIDDEN, "1405", "Forbidden");
pub const COMPANY_NOT_FOUND: GlueError = coded(StatusCode::NOT_FOUND, "1801", "Company not found.");
pub const COMPANIES_NO_CONTEXT: GlueError =
    coded(StatusCode::FORBIDDEN, "1803", NO_COMPANY_CONTEXT);
pub const COMPANY_BUSINESS_UNIT_NOT_FOUND: GlueError =
    coded(StatusCode::NOT_FOUND, "1901", "Company business unit not found.");
pub const COMPANY_BUSINESS_UNITS_NO_CONTEXT: GlueError =
    coded(StatusCode::FORBIDDEN, "1903", NO_COMPANY_CONTEXT);
pub const COMPANY_BUSINESS_UNIT_ADDRESS_NOT_FOUND: GlueError =
    coded(StatusCode::NOT_FOUND, "2001", "Company business unit address not found.");
pub const COMPANY_BUSINESS_UNIT_ADDRESSES_NO_CONTEXT: GlueError =
    coded(StatusCode::FORBIDDEN, "2003", NO_COMPANY_CONTEXT);
pub const COMPANY_ROLE_NOT_FOUND: GlueError =
    coded(StatusCode::NOT_FOUND, "2101", "Company role not found.");
pub const COMPANY_ROLES_NO_CONTEXT: GlueError =
    coded(StatusCode::FORBIDDEN, "2103", NO_COMPANY_CONTEXT);

/// The 403 of a company resource read without a company context.
pub const fn no_company_context(resource: CompanyResource) -> GlueError {
    match resource {
        CompanyResource::CompanyUsers => COMPANY_USERS_NO_CONTEXT,
        CompanyResource::Companies => COMPANIES_NO_CONTEXT,
        CompanyResource::CompanyBusinessUnits => COMPANY_BUSINESS_UNITS_NO_CONTEXT,
        CompanyResource::CompanyRoles => COMPANY_ROLES_NO_CONTEXT,
        CompanyResource::CompanyBusinessUnitAddresses => COMPANY_BUSINESS_UNIT_ADDRESSES_NO_CONTEXT,
    }
}

/// The 404 of a company resource that is unknown or of another company.
pub const fn not_found(resource: CompanyResource) -> GlueError {
    match resource {
        CompanyResource::CompanyUsers => COMPANY_USER_NOT_FOUND,
        CompanyResource::Companies => COMPANY_NOT_FOUND,
        CompanyResource::CompanyBusinessUnits => COMPANY_BUSINESS_UNIT_NOT_FOUND,
        CompanyResource::CompanyRoles => COMPANY_ROLE_NOT_FOUND,
        CompanyResource::CompanyBusinessUnitAddresses => COMPANY_BUSINESS_UNIT_ADDRESS_NOT_FOUND,
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

impl Error {
    /// The Glue errors this error is answered with (several for a 422).
    pub fn glue_errors(&self) -> Vec<GlueError> {
        match self {
            Self::PostDataInvalid => vec![POST_DATA_INVALID],
            Self::InvalidType => vec![INVALID_TYPE],
            Self::ResourceIdNotSpecified => vec![RESOURCE_ID_NOT_SPECIFIED],
            Self::MissingAccessToken => vec![MISSING_ACCESS_TOKEN],
            Self::InvalidAccessToken => vec![INVALID_ACCESS_TOKEN],
            Self::AuthenticationFailed => vec![AUTHENTICATION_FAILED],
            Self::CompanyUserAuthenticationFailed => vec![COMPANY_USER_AUTHENTICATION_FAILED],
            Self::LoginBlocked => vec![LOGIN_BLOCKED],
            Self::LoginsWaitingFromClient => vec![LOGINS_WAITING_FROM_CLIENT],
            Self::LoginQueueFull => vec![LOGIN_QUEUE_FULL],
            Self::RefreshFailed => vec![REFRESH_FAILED],
            Self::CustomerNotFound => vec![CUSTOMER_NOT_FOUND],
            Self::NoCompanyContext(resource) => vec![no_company_context(*resource)],
            Self::NotFound(resource) => vec![not_found(*resource)],
            Self::CompanyUserOfAnotherCompany => vec![COMPANY_USERS_NO_CONTEXT],
            Self::Forbidden => vec![COMPANY_USERS_FORBIDDEN],
            Self::PaginationInvalid => vec![PAGINATION_INVALID],
            Self::Validation(violations) => violations.iter().map(violation).collect(),
            Self::Unavailable(_) => vec![UNAVAILABLE],
            Self::Internal(_) => vec![INTERNAL],
        }
    }
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

/// The JSON:API error document of `errors`, serialized.
pub fn envelope(errors: &[GlueError]) -> Vec<u8> {
    let body = json!({
        "errors": errors.iter().map(|e| {
            let mut obj = json!({"status": e.status.as_u16(), "detail": e.detail});
            if let Some(code) = e.code {
                obj["code"] = json!(code);
            }
            obj
        }).collect::<Vec<_>>()
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// Renders a domain error, logging what must not reach the client.
pub fn render_error(err: &Error) -> Response {
    match err {
        Error::Internal(_) | Error::Unavailable(_) => {
            tracing::error!(error = %error_chain(err), "request failed");
        }
        _ => {}
    }
    render(&err.glue_errors())
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

impl From<Error> for poem::Error {
    fn from(err: Error) -> Self {
        poem::Error::from_response(render_error(&err))
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
    // The paging parameters carry their pattern in the document; a value that breaks it is
    // refused by poem-openapi before the operation runs, with the operation's own answer.
    if err.downcast_ref::<ParseParamError>().is_some_and(|e| e.name.starts_with("page[")) {
        return render(&[PAGINATION_INVALID]);
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

/// An operation's error response: renders the error and documents the set `S`.
pub struct ApiError<S> {
    pub error: Error,
    _set: PhantomData<S>,
}

impl<S> From<Error> for ApiError<S> {
    fn from(error: Error) -> Self {
        Self { error, _set: PhantomData }
    }
}

impl<S> From<sea_orm::DbErr> for ApiError<S> {
    fn from(err: sea_orm::DbErr) -> Self {
        Error::from(err).into()
    }
}

impl<S> From<ApiError<S>> for poem::Error {
    fn from(err: ApiError<S>) -> Self {
        err.error.into()
    }
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
        let responses = by_status
            .into_iter()
            .map(|(status, cases)| {
                let examples: Vec<Value> = cases.iter().map(example).collect();
                let schema = MetaSchema {
                    all_of: vec![ErrorDocument::schema_ref()],
                    example: Some(json!({ EXAMPLES_MARKER: examples })),
                    ..MetaSchema::ANY
                };
                MetaResponse {
                    description: StatusCode::from_u16(status)
                        .ok()
                        .and_then(|s| s.canonical_reason())
                        .unwrap_or("Error"),
                    status: Some(status),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: MEDIA_TYPE,
                        schema: MetaSchemaRef::Inline(Box::new(schema)),
                    }],
                    headers: vec![],
                }
            })
            .collect();
        MetaResponses { responses }
    }

    fn register(registry: &mut Registry) {
        ErrorDocument::register(registry);
    }
}

/// The error document a client receives for `case`.
fn example(case: &GlueError) -> Value {
    let mut obj = json!({"status": case.status.as_u16(), "detail": case.detail});
    if let Some(code) = case.code {
        obj["code"] = json!(code);
    }
    json!({ "errors": [obj] })
}
