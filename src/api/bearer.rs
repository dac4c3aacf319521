//! The bearer extractors (docs/wire-contract.md §1.4 step 5). A handler that receives [`Bearer`]
//! holds a verified identity; [`OptionalBearer`] serves unprotected operations, where a token that
//! is sent is still checked.

use std::sync::Arc;

use poem::{Request, RequestBody, http::header};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
    registry::{MetaSecurityScheme, Registry},
};

use super::AppState;
use super::errors::Protocol;
use crate::{
    auth::tokens::{Identity, Principal},
    error::Error,
};

/// The name of the security scheme in the OpenAPI document.
pub const SCHEME: &str = "BearerAuth";

/// The verified identity of the caller of a protected operation.
pub struct Bearer(pub Identity);

/// Whom the token of the caller of an unprotected operation speaks for, if it sent one (a
/// token that is sent must be valid; an agent's is as good as a customer's here).
pub struct OptionalBearer(pub Option<Principal>);

/// Reads and verifies the `Authorization` header of an operation for customers: `None` when
/// it is absent; an agent's own token is refused (docs/wire-contract.md §3.12).
fn identity(req: &Request) -> Result<Option<Identity>, Error> {
    match principal(req)? {
        None => Ok(None),
        Some(Principal::Customer(identity)) => Ok(Some(identity)),
        Some(Principal::Agent(_)) => Err(Error::AgentTokenNotAccepted),
    }
}

/// Reads and verifies the `Authorization` header: `None` when it is absent.
fn principal(req: &Request) -> Result<Option<Principal>, Error> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let state =
        req.data::<Arc<AppState>>().ok_or_else(|| Error::internal("no application state"))?;
    // RFC 9110 §11.1: the scheme is case-insensitive; one token, nothing after it.
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty() && !token.contains(' '))
        .ok_or(Error::InvalidAccessToken)?;
    state.sessions.authenticate(token).map(Some)
}

impl<'a> ApiExtractor<'a> for Bearer {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        registry.create_security_scheme(
            SCHEME,
            MetaSecurityScheme {
                ty: "http",
                description: Some(
                    "An access token from `POST /access-tokens` (customer) or \
                     `POST /company-user-access-tokens` (company user).",
                ),
                name: None,
                key_in: None,
                scheme: Some("bearer"),
                bearer_format: Some("JWT"),
                flows: None,
                openid_connect_url: None,
            },
        );
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![SCHEME]
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        Ok(Self(identity(req)?.ok_or(Protocol::MissingAccessToken)?))
    }
}

impl<'a> ApiExtractor<'a> for OptionalBearer {
    // Not a security requirement of the operation: it works without a token.
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::PoemExtractor];
    type ParamType = ();
    type ParamRawType = ();

    async fn from_request(
        req: &'a Request,
        _body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        Ok(Self(principal(req)?))
    }
}
