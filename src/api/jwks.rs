//! `GET /.well-known/jwks.json` (docs/wire-contract.md §2.4): the public keys that verify our
//! access tokens, so other services check tokens without sharing a secret.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json, types::ParseFromJSON};

use super::AppState;
use super::{
    ApiTags,
    errors::{ApiError, error_set},
};
use crate::error::Error;

/// A public key (RFC 7517).
#[derive(Debug, Object)]
pub struct JsonWebKey {
    /// Key type: `EC`, `RSA` or `OKP`.
    pub kty: String,
    /// Always `sig`.
    #[oai(rename = "use", skip_serializing_if_is_none)]
    pub use_: Option<String>,
    /// The algorithm: `ES256`, `RS256` or `EdDSA`.
    #[oai(skip_serializing_if_is_none)]
    pub alg: Option<String>,
    /// The key id: the `kid` in our tokens' headers (RFC 7638 thumbprint).
    #[oai(skip_serializing_if_is_none)]
    pub kid: Option<String>,
    /// Curve (`EC`, `OKP`).
    #[oai(skip_serializing_if_is_none)]
    pub crv: Option<String>,
    /// Public x coordinate or key (`EC`, `OKP`), base64url.
    #[oai(skip_serializing_if_is_none)]
    pub x: Option<String>,
    /// Public y coordinate (`EC`), base64url.
    #[oai(skip_serializing_if_is_none)]
    pub y: Option<String>,
    /// Modulus (`RSA`), base64url.
    #[oai(skip_serializing_if_is_none)]
    pub n: Option<String>,
    /// Exponent (`RSA`), base64url.
    #[oai(skip_serializing_if_is_none)]
    pub e: Option<String>,
}

/// A JSON Web Key Set (RFC 7517 §5).
#[derive(Debug, Object)]
pub struct JsonWebKeySet {
    /// The keys; the first signs new tokens, all verify.
    pub keys: Vec<JsonWebKey>,
}

#[derive(ApiResponse)]
pub enum JwksResponse {
    /// The public signing keys.
    #[oai(status = 200)]
    Ok(Json<JsonWebKeySet>),
}

error_set!(JwksErrors:);

pub struct JwksApi;

#[OpenApi(tag = "ApiTags::Keys")]
impl JwksApi {
    /// The public keys that verify access tokens (JWKS).
    #[oai(path = "/.well-known/jwks.json", method = "get", operation_id = "getJwks")]
    async fn jwks(
        &self,
        state: Data<&Arc<AppState>>,
    ) -> Result<JwksResponse, ApiError<JwksErrors>> {
        let set = JsonWebKeySet::parse_from_json(Some(state.sessions.jwks()))
            .map_err(|e| Error::internal(e.into_message()))?;
        Ok(JwksResponse::Ok(Json(set)))
    }
}
