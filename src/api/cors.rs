//! CORS for storefronts that run in a browser on their own origin (docs/wire-contract.md
//! §1.7). A request from an allowed origin goes through poem's `Cors`, which answers the
//! preflight of every route and adds the headers to the answer; a request from any other
//! origin (or none) is served as it is, without CORS headers, so the browser withholds the
//! answer from that page.

use std::sync::Arc;

use poem::{
    Endpoint, Middleware, Request, Response,
    http::{Method, header},
    middleware::{Cors, CorsEndpoint},
};
use wildmatch::WildMatch;

/// The origins allowed: exact ones, and patterns where `*` stands for any characters.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    patterns: Vec<WildMatch>,
}

impl Origins {
    pub fn new(allowed: &[String]) -> Self {
        Self { patterns: allowed.iter().map(|origin| WildMatch::new(origin)).collect() }
    }

    fn allows(&self, origin: &str) -> bool {
        self.patterns.iter().any(|pattern| pattern.matches(origin))
    }

    /// poem's `Cors` for these origins: the methods the routes answer, the request headers
    /// a client sends, the answer headers a client reads; no credentials mode (a bearer
    /// token is sent by the page itself, no cookie is involved).
    fn cors(&self) -> Cors {
        let cors = self
            .patterns
            .iter()
            .fold(Cors::new(), |cors, pattern| cors.allow_origin_regex(pattern.to_string()));
        cors.allow_methods([Method::GET, Method::POST, Method::DELETE, Method::PATCH])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
            .expose_headers([
                header::RETRY_AFTER,
                header::WWW_AUTHENTICATE,
                header::ALLOW,
                header::HeaderName::from_static("x-request-id"),
            ])
            .allow_credentials(false)
            .max_age(600)
    }
}

/// `inner`, with CORS for the requests from allowed origins.
pub struct CorsGate<E> {
    plain: Arc<E>,
    cors: CorsEndpoint<Arc<E>>,
    origins: Origins,
}

impl<E: Endpoint<Output = Response>> CorsGate<E> {
    pub fn new(inner: E, origins: Origins) -> Self {
        let plain = Arc::new(inner);
        Self { cors: origins.cors().transform(plain.clone()), plain, origins }
    }
}

impl<E: Endpoint<Output = Response>> Endpoint for CorsGate<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let allowed = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|origin| origin.to_str().ok())
            .is_some_and(|origin| self.origins.allows(origin));
        if allowed {
            return self.cors.call(req).await;
        }
        let mut resp = self.plain.call(req).await?;
        if !self.origins.patterns.is_empty() {
            // The answer depends on the origin: a cache must not hand this one to a page of
            // an allowed origin, nor the reverse.
            resp.headers_mut().append(header::VARY, header::HeaderValue::from_static("Origin"));
        }
        Ok(resp)
    }
}
