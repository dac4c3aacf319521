//! JSON:API on the wire (docs/wire-contract.md §1): the `application/vnd.api+json` payloads, the
//! request document check of §1.4 step 3, and the error document.
//!
//! poem-openapi's `Json<T>` answers `application/json; charset=utf-8` and refuses bodies
//! without a Content-Type; Glue does neither, hence these payload types.

use std::marker::PhantomData;

use poem::{IntoResponse, Request, RequestBody, Response, http::header};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ApiResponse, ExtractParamOptions, Object,
    payload::Payload,
    registry::{MetaMediaType, MetaRequest, MetaResponse, MetaResponses, MetaSchemaRef, Registry},
    types::{ToJSON, Type},
};
use serde_json::{Map, Value};

use super::errors::Protocol;
use crate::error::{Error, Violation};

/// The media type of every JSON:API body.
pub const MEDIA_TYPE: &str = "application/vnd.api+json";

/// A response body in `application/vnd.api+json`.
pub struct JsonApi<T>(pub T);

impl<T: Type> Payload for JsonApi<T> {
    const CONTENT_TYPE: &'static str = MEDIA_TYPE;

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: ToJSON> IntoResponse for JsonApi<T> {
    fn into_response(self) -> Response {
        json_response(&self.0.to_json().unwrap_or(Value::Null))
    }
}

impl<T: ToJSON> ApiResponse for JsonApi<T> {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "OK",
                status: Some(200),
                status_range: None,
                content: vec![MetaMediaType { content_type: MEDIA_TYPE, schema: T::schema_ref() }],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

/// A response body in `application/vnd.api+json` that is already encoded: the bytes of a
/// `T` document, for answers assembled from kept renderings. The schema is `T`'s.
pub struct JsonApiEncoded<T>(pub Vec<u8>, pub PhantomData<T>);

impl<T> JsonApiEncoded<T> {
    pub fn new(body: Vec<u8>) -> Self {
        Self(body, PhantomData)
    }
}

impl<T: ToJSON> JsonApiEncoded<T> {
    /// The encoding of a document built the ordinary way.
    pub fn of(document: &T) -> Self {
        Self::new(
            serde_json::to_vec(&document.to_json().unwrap_or(Value::Null)).unwrap_or_default(),
        )
    }
}

impl<T: Type> Payload for JsonApiEncoded<T> {
    const CONTENT_TYPE: &'static str = MEDIA_TYPE;

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Send> IntoResponse for JsonApiEncoded<T> {
    fn into_response(self) -> Response {
        encoded_response(self.0)
    }
}

/// Serialises `value` as a JSON:API body with status 200.
pub fn json_response(value: &Value) -> Response {
    encoded_response(serde_json::to_vec(value).unwrap_or_default())
}

/// An encoded JSON:API body with status 200.
fn encoded_response(body: Vec<u8>) -> Response {
    Response::builder().header(header::CONTENT_TYPE, MEDIA_TYPE).body(body)
}

/// A request document type: its schema (for the OpenAPI document), its resource type, and
/// the one step that reads its attributes into the operation's typed input.
pub trait RequestDocument: Type + Send + Sync {
    /// The JSON:API resource type the route accepts in `data.type`.
    const RESOURCE_TYPE: &'static str;
    /// What the operation receives once the attributes are read.
    type Input;
    /// Reads the attributes: the typed input, or every rule they break
    /// (docs/wire-contract.md §1.4 step 6).
    fn input(attributes: &Attributes<'_>) -> Result<Self::Input, Vec<Violation>>;
}

/// A JSON:API request body whose shape (§1.4 step 3) has been checked: `data` is an object
/// with the route's `type` and an `attributes` object. The attributes themselves are read
/// later, after the access token (§1.4 step 6), by [`JsonApiRequest::input`].
pub struct JsonApiRequest<D> {
    attributes: Map<String, Value>,
    _document: PhantomData<D>,
}

impl<D: RequestDocument> JsonApiRequest<D> {
    /// Checks the document shape of a raw body.
    pub fn parse(body: &[u8]) -> Result<Self, Protocol> {
        let mut doc: Value = serde_json::from_slice(body).map_err(|_| Protocol::PostDataInvalid)?;
        let data =
            doc.get_mut("data").and_then(Value::as_object_mut).ok_or(Protocol::PostDataInvalid)?;
        let Some(Value::String(ty)) = data.get("type") else {
            return Err(Protocol::PostDataInvalid);
        };
        let type_matches = ty == D::RESOURCE_TYPE;
        let Some(Value::Object(attributes)) = data.remove("attributes") else {
            return Err(Protocol::PostDataInvalid);
        };
        if !type_matches {
            return Err(Protocol::InvalidType);
        }
        Ok(Self { attributes, _document: PhantomData })
    }

    /// The operation's typed input, or a 422 with every violated rule.
    pub fn input(&self) -> Result<D::Input, Error> {
        D::input(&Attributes(&self.attributes)).map_err(Error::Validation)
    }
}

impl<'a, D: RequestDocument> ApiExtractor<'a> for JsonApiRequest<D> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        D::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        // One media type: with two, generators (openapi-python-client) make the body an
        // optional union. The service also accepts `application/json` and bodies without a
        // Content-Type, as Glue does (see the description of the API).
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType { content_type: MEDIA_TYPE, schema: D::schema_ref() }],
            required: true,
        })
    }

    async fn from_request(
        _request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        // The body limit is enforced before routing (api::middleware), so this read is bounded.
        let bytes = match body.take() {
            Ok(body) => body.into_bytes().await.map_err(|_| Protocol::PostDataInvalid)?,
            Err(_) => return Err(Protocol::PostDataInvalid.into()),
        };
        Ok(Self::parse(&bytes)?)
    }
}

/// `links` of a resource or a document.
#[derive(Debug, Clone, Object)]
pub struct SelfLinks {
    /// The URL of this resource or document.
    #[oai(rename = "self")]
    pub self_link: String,
}

/// One error of an error document.
#[derive(Debug, Clone, Object)]
#[oai(rename = "ErrorObject")]
pub struct ErrorObject {
    /// The Glue error code (digits); absent on generic framework errors.
    #[oai(skip_serializing_if_is_none)]
    pub code: Option<String>,
    /// The HTTP status of the response.
    pub status: u16,
    /// What went wrong, as a sentence.
    pub detail: String,
}

/// The body of every error response.
#[derive(Debug, Clone, Object)]
#[oai(rename = "ErrorDocument")]
pub struct ErrorDocument {
    /// The errors; the response's status is theirs.
    pub errors: Vec<ErrorObject>,
}

/// `base` (see [`base_url`]) followed by the request's path and query: its `links.self`.
pub fn link_under(mut base: String, req: &Request) -> String {
    base.push_str(req.original_uri().path_and_query().map_or("/", |pq| pq.as_str()));
    base
}

/// Whether a `Host` header may appear in links: a name or address with an optional port.
fn linkable_host(host: &str) -> bool {
    !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
}

/// The attributes of a request document, read by [`RequestDocument::input`].
pub struct Attributes<'a>(&'a Map<String, Value>);

impl<'a> Attributes<'a> {
    /// A required, non-blank string attribute.
    pub fn string(&self, name: &'static str) -> Result<&'a str, Violation> {
        let message = match self.0.get(name) {
            None => Violation::MISSING,
            Some(Value::Null) => Violation::BLANK,
            Some(Value::String(s)) if s.trim().is_empty() => Violation::BLANK,
            Some(Value::String(s)) => return Ok(s),
            Some(_) => Violation::NOT_A_STRING,
        };
        Err(Violation::new(name, message))
    }
}

/// Two attributes read, or every violation of either.
pub fn both<A, B>(
    a: Result<A, Violation>,
    b: Result<B, Violation>,
) -> Result<(A, B), Vec<Violation>> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (a, b) => Err(a.err().into_iter().chain(b.err()).collect()),
    }
}

/// Three attributes read, or every violation of any of them.
pub fn all_three<A, B, C>(
    a: Result<A, Violation>,
    b: Result<B, Violation>,
    c: Result<C, Violation>,
) -> Result<(A, B, C), Vec<Violation>> {
    match (a, b, c) {
        (Ok(a), Ok(b), Ok(c)) => Ok((a, b, c)),
        (a, b, c) => Err(a.err().into_iter().chain(b.err()).chain(c.err()).collect()),
    }
}

/// The base of every `links` URL: `links.self` without the request's path and query (the
/// configured public base URL, or `http://` + the request's `Host`).
pub fn base_url(req: &Request, public_base_url: Option<&str>) -> String {
    // Room for the path and query that `link_under` may append.
    let mut base = String::with_capacity(96);
    match public_base_url {
        Some(public) => base.push_str(public.trim_end_matches('/')),
        None => {
            let host = req
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .filter(|h| linkable_host(h))
                .unwrap_or("localhost");
            base.push_str("http://");
            base.push_str(host);
        }
    }
    base
}

/// Declares a JSON:API resource type as a one-value enum, so the document states exactly
/// which `type` a document carries (and schema-driven tools generate the right one).
macro_rules! resource_type {
    ($ident:ident, $variant:ident, $name:literal) => {
        #[doc = concat!("The resource type `", $name, "`.")]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
        pub enum $ident {
            #[oai(rename = $name)]
            $variant,
        }
    };
}
pub(crate) use resource_type;

#[cfg(test)]
mod tests {
    use poem::{
        Body, RequestParts,
        http::{self, uri::Scheme},
        web::{LocalAddr, RemoteAddr},
    };

    use super::*;

    /// A request as the server hands it over (the original URI is set only then).
    fn request(uri: &str, host: Option<&str>) -> Request {
        let mut builder = http::Request::builder().uri(uri);
        if let Some(host) = host {
            builder = builder.header(header::HOST, host);
        }
        let (parts, ()) = builder.body(()).unwrap().into_parts();
        let parts =
            RequestParts::from((parts, LocalAddr::default(), RemoteAddr::default(), Scheme::HTTP));
        Request::from_parts(parts, Body::empty())
    }

    #[test]
    fn links_are_the_base_followed_by_the_path_and_query() {
        let req = request("/company-users/mine?include=companies", Some("shop.example:8080"));
        assert_eq!(base_url(&req, None), "http://shop.example:8080");
        assert_eq!(
            link_under(base_url(&req, None), &req),
            "http://shop.example:8080/company-users/mine?include=companies"
        );
        // The configured base wins over `Host`, without its trailing slashes.
        let public = Some("https://glue.example.com//");
        assert_eq!(base_url(&req, public), "https://glue.example.com");
        assert_eq!(
            link_under(base_url(&req, public), &req),
            "https://glue.example.com/company-users/mine?include=companies"
        );
    }

    #[test]
    fn a_host_that_cannot_be_linked_falls_back_to_localhost() {
        for host in [None, Some(""), Some("evil.example/path"), Some("a b"), Some("x\"y")] {
            let req = request("/refresh-tokens", host);
            let link = link_under(base_url(&req, None), &req);
            assert_eq!(link, "http://localhost/refresh-tokens", "{host:?}");
        }
        let req = request("/refresh-tokens", Some("[::1]:3000"));
        assert_eq!(link_under(base_url(&req, None), &req), "http://[::1]:3000/refresh-tokens");
    }
}
