//! What happens to every request before and after its operation (docs/wire-contract.md §1.1, §1.4
//! steps 1–2): media types (406, 415), the body limit (413), trailing slashes, the JSON:API
//! envelope for framework errors (404, 405 with `Allow`, 500 for panics), and one log line per
//! request.

use std::{sync::Arc, time::Instant};

use poem::{
    Endpoint, IntoResponse, Request, Response,
    error::ReadBodyError,
    http::{HeaderValue, Method, StatusCode, Uri, header},
};

use super::errors::{
    GlueError, HEADERS_TOO_LARGE, NOT_ACCEPTABLE, PAYLOAD_TOO_LARGE, POST_DATA_INVALID,
    REQUEST_TIMEOUT, RESOURCE_ID_NOT_SPECIFIED, UNSUPPORTED_MEDIA_TYPE, render,
    render_framework_error,
};

/// The service's routes: path templates and their methods, for `Allow` and for the log.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
}

#[derive(Debug)]
struct Route {
    template: String,
    /// The template's segments, split once; `None` stands for a parameter.
    segments: Vec<Option<String>>,
    params: usize,
    methods: Vec<Method>,
}

impl RouteTable {
    pub fn add(&mut self, template: impl Into<String>, method: Method) {
        let template = template.into();
        match self.routes.iter_mut().find(|r| r.template == template) {
            Some(r) if !r.methods.contains(&method) => r.methods.push(method),
            Some(_) => {}
            None => {
                let segments: Vec<Option<String>> =
                    template.split('/').map(|s| (!is_param(s)).then(|| s.to_owned())).collect();
                let params = segments.iter().filter(|s| s.is_none()).count();
                self.routes.push(Route { template, segments, params, methods: vec![method] });
            }
        }
    }

    /// The template matching `path`, and its methods. Literal templates win over ones with
    /// parameters (`/refresh-tokens/mine` before `/refresh-tokens/{refreshToken}`).
    pub fn lookup(&self, path: &str) -> Option<(&str, &[Method])> {
        let count = path.split('/').count();
        self.routes
            .iter()
            .filter(|route| {
                route.segments.len() == count
                    && route.segments.iter().zip(path.split('/')).all(|(t, s)| match t {
                        Some(literal) => literal == s,
                        None => !s.is_empty(),
                    })
            })
            .min_by_key(|route| route.params)
            .map(|route| (route.template.as_str(), route.methods.as_slice()))
    }

    /// Whether `path/{id}` answers `method` though `path` itself does not (docs/wire-contract.md
    /// §1.4 step 4: DELETE or PATCH on a collection without an id).
    pub fn only_members_accept(&self, path: &str, method: &Method) -> bool {
        // The collection may be a route of its own (`/refresh-tokens`) or none at all
        // (`/customer-password`).
        let (collection, methods) = self.lookup(path).unwrap_or((path, &[]));
        !methods.contains(method)
            && self.routes.iter().any(|route| {
                route.methods.contains(method)
                    && route
                        .template
                        .rsplit_once('/')
                        .is_some_and(|(parent, last)| parent == collection && is_param(last))
            })
    }
}

fn is_param(segment: &str) -> bool {
    segment.starts_with(':') || (segment.starts_with('{') && segment.ends_with('}'))
}

/// Settings of the request pipeline.
pub struct Pipeline {
    pub routes: RouteTable,
    pub body_limit: usize,
    pub header_limit: usize,
    pub request_timeout: std::time::Duration,
}

/// The bytes the request's headers took on the wire (`name: value\r\n` each).
fn header_bytes(req: &Request) -> usize {
    req.headers().iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum()
}

/// Paths exempt from the JSON `Accept` rule: those serving HTML or the OpenAPI document,
/// and the OAuth endpoints, which answer RFC 6749 JSON whatever the client accepts.
fn exempt_from_accept(path: &str) -> bool {
    path == "/docs"
        || path.starts_with("/docs/")
        || path.starts_with("/openapi.")
        || path == "/token"
        || path == "/revoke"
        || path == "/.well-known/oauth-authorization-server"
}

/// Runs `ep` for `req` inside the pipeline.
pub async fn handle<E: Endpoint<Output = Response>>(
    pipeline: Arc<Pipeline>,
    ep: Arc<E>,
    mut req: Request,
) -> poem::Result<Response> {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4();
    let method = req.method().clone();
    let path = trim_trailing_slash(&mut req);

    let answer = async {
        let checked = if header_bytes(&req) > pipeline.header_limit {
            Err(HEADERS_TOO_LARGE)
        } else {
            check_media_types(&req, &path)
        };
        let checked = match checked {
            Ok(()) => read_body(&mut req, pipeline.body_limit).await,
            Err(refused) => Err(refused),
        };
        let checked = checked.and_then(|()| {
            if (method == Method::DELETE || method == Method::PATCH)
                && pipeline.routes.only_members_accept(&path, &method)
            {
                Err(RESOURCE_ID_NOT_SPECIFIED)
            } else {
                Ok(())
            }
        });
        match checked {
            Err(refused) => render(&[refused]),
            Ok(()) => match ep.call(req).await {
                Ok(resp) => resp,
                Err(err) => render_framework_error(err),
            },
        }
    };
    let mut resp = match tokio::time::timeout(pipeline.request_timeout, answer).await {
        Ok(resp) => resp,
        Err(_) => {
            // Mostly a client sending its body too slowly; the connection goes with it.
            let mut resp = render(&[REQUEST_TIMEOUT]);
            resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            resp
        }
    };

    if resp.status() == StatusCode::METHOD_NOT_ALLOWED
        && let Some((_, methods)) = pipeline.routes.lookup(&path)
    {
        let allow = methods.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
        if let Ok(value) = HeaderValue::from_str(&allow) {
            resp.headers_mut().insert(header::ALLOW, value);
        }
    }
    if resp.status() == StatusCode::UNPROCESSABLE_ENTITY {
        // RFC 9110's name; hyper would write the older "Unprocessable Entity". Set here, last:
        // `poem::Error::into_response` replaces a response's extensions.
        resp.extensions_mut()
            .insert(hyper::ext::ReasonPhrase::from_static(b"Unprocessable Content"));
    }
    if let Ok(value) = HeaderValue::from_str(&request_id.to_string()) {
        resp.headers_mut().insert("x-request-id", value);
    }
    // The route is looked up only for a log line that is written.
    tracing::info!(
        target: "glue_auth::request",
        %request_id,
        method = %method,
        route = pipeline.routes.lookup(&path).map_or("-", |(t, _)| t),
        status = resp.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    Ok(resp)
}

/// `/company-users/` is `/company-users` (docs/wire-contract.md §1.4 step 2). The original URI
/// stays available to `links` through `Request::original_uri`.
fn trim_trailing_slash(req: &mut Request) -> String {
    let path = req.uri().path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        let trimmed = if trimmed.is_empty() { "/" } else { trimmed }.to_owned();
        let pq = match req.uri().query() {
            Some(q) => format!("{trimmed}?{q}"),
            None => trimmed.clone(),
        };
        let mut parts = req.uri().clone().into_parts();
        if let Ok(pq) = pq.parse() {
            parts.path_and_query = Some(pq);
            if let Ok(uri) = Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
        }
        trimmed
    } else {
        path.to_owned()
    }
}

/// 406 when `Accept` rules JSON out; 415 for `application/vnd.api+<x>` other than json.
fn check_media_types(req: &Request, path: &str) -> Result<(), GlueError> {
    if !exempt_from_accept(path)
        && let Some(accept) = req.headers().get(header::ACCEPT)
        && !accept.to_str().is_ok_and(accepts_json)
    {
        return Err(NOT_ACCEPTABLE);
    }
    if let Some(content_type) = req.headers().get(header::CONTENT_TYPE) {
        let refused =
            content_type.to_str().ok().and_then(|ct| ct.parse::<mime::Mime>().ok()).is_some_and(
                |m| {
                    m.type_() == mime::APPLICATION
                        && m.subtype() == "vnd.api"
                        && m.suffix().is_some_and(|s| s != mime::JSON)
                },
            );
        if refused {
            return Err(UNSUPPORTED_MEDIA_TYPE);
        }
    }
    Ok(())
}

/// Whether an `Accept` header value admits a JSON answer.
pub fn accepts_json(accept: &str) -> bool {
    if accept.trim().is_empty() {
        return true;
    }
    accept.split(',').any(|range| {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let refused = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        !refused
            && matches!(
                media.as_str(),
                "*/*" | "application/*" | "application/json" | "application/vnd.api+json"
            )
    })
}

/// Reads the body up to the limit (413 beyond it) and puts it back for the operation.
async fn read_body(req: &mut Request, limit: usize) -> Result<(), GlueError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(PAYLOAD_TOO_LARGE);
    }
    match req.take_body().into_bytes_limit(limit).await {
        Ok(bytes) => {
            req.set_body(bytes);
            Ok(())
        }
        Err(ReadBodyError::PayloadTooLarge) => Err(PAYLOAD_TOO_LARGE),
        Err(_) => Err(POST_DATA_INVALID),
    }
}

/// Answers a panic in an operation with the generic 500 envelope (the panic is logged).
pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("an operation panicked");
    render(&[super::errors::INTERNAL]).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RouteTable {
        let mut table = RouteTable::default();
        table.add("/refresh-tokens", Method::POST);
        table.add("/refresh-tokens/{refreshToken}", Method::DELETE);
        table.add("/refresh-tokens/mine", Method::DELETE);
        table.add("/company-users/{id}", Method::GET);
        table.add("/company-users/{id}", Method::GET);
        table
    }

    #[test]
    fn literal_templates_win_and_parameters_need_a_segment() {
        let table = table();
        assert_eq!(
            table.lookup("/refresh-tokens/mine"),
            Some(("/refresh-tokens/mine", &[Method::DELETE][..]))
        );
        assert_eq!(
            table.lookup("/refresh-tokens/abc").map(|(t, _)| t),
            Some("/refresh-tokens/{refreshToken}")
        );
        assert_eq!(table.lookup("/company-users/"), None, "an empty segment is no parameter");
        assert_eq!(table.lookup("/company-users/1/x"), None);
        assert_eq!(table.lookup("/nowhere"), None);
        assert_eq!(table.lookup("/company-users/1").map(|(_, m)| m.len()), Some(1));
    }

    #[test]
    fn a_collection_refuses_what_only_its_members_accept() {
        let table = table();
        assert!(table.only_members_accept("/refresh-tokens", &Method::DELETE));
        assert!(!table.only_members_accept("/refresh-tokens", &Method::POST));
        assert!(!table.only_members_accept("/company-users", &Method::DELETE));
    }
}
