//! The URLs in documents: the base every link starts from, `links.self` of a document, and
//! the link of a resource.

use poem::Request;

use super::AppState;
use super::jsonapi::{SelfLinks, base_url, link_under};

/// The base of `links` (the public base URL, or `http://` + `Host`).
pub fn base(req: &Request, state: &AppState) -> String {
    base_url(req, state.config.public_base_url.as_deref())
}

/// `links.self` of a document: the base followed by the path and query as requested.
pub fn self_link(req: &Request, state: &AppState) -> String {
    link_under(base(req, state), req)
}

/// `links.self` of a resource.
pub fn resource_link(base: &str, ty: &str, id: impl std::fmt::Display) -> SelfLinks {
    SelfLinks { self_link: format!("{base}/{ty}/{id}") }
}
