//! Collection `links`, and the paging of `GET /company-users` (docs/wire-contract.md §3.5):
//! `page[offset]` and `page[limit]`, read once into a [`Paging`].

use poem::Request;
use poem_openapi::Object;

use super::AppState;
use super::{
    errors::Protocol,
    links::{base, self_link},
};

/// `links` of a collection document. `self` is always there; the paging links appear when
/// the request gave `page[offset]` or `page[limit]`, or when more items exist than returned.
#[derive(Debug, Clone, Object)]
pub struct CollectionLinks {
    /// The URL as requested.
    #[oai(rename = "self")]
    pub self_link: String,
    /// The first page.
    #[oai(skip_serializing_if_is_none)]
    pub first: Option<String>,
    /// The last page.
    #[oai(skip_serializing_if_is_none)]
    pub last: Option<String>,
    /// The previous page, when this one does not start at offset 0.
    #[oai(skip_serializing_if_is_none)]
    pub prev: Option<String>,
    /// The next page, when more items follow this one.
    #[oai(skip_serializing_if_is_none)]
    pub next: Option<String>,
}

/// `links` of a collection that is never paged (the `mine` collections).
pub fn unpaged_links(req: &Request, state: &AppState) -> CollectionLinks {
    CollectionLinks {
        self_link: self_link(req, state),
        first: None,
        last: None,
        prev: None,
        next: None,
    }
}

/// The page a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    pub offset: u64,
    pub limit: u64,
    /// Whether `page[offset]` or `page[limit]` was given.
    pub requested: bool,
}

/// A non-negative integer: digits with an optional `+`; saturates instead of overflowing.
fn non_negative(text: &str) -> Option<u64> {
    let digits = text.strip_prefix('+').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.parse().unwrap_or(u64::MAX))
}

impl Paging {
    /// Reads `page[offset]` and `page[limit]`: integers, offset ≥ 0, limit > 0, else 400.
    /// The limit defaults to, and is capped at, `max`.
    pub fn parse(offset: Option<&str>, limit: Option<&str>, max: u64) -> Result<Self, Protocol> {
        let parsed_offset = match offset {
            Some(text) => non_negative(text).ok_or(Protocol::PaginationInvalid)?,
            None => 0,
        };
        let parsed_limit = match limit {
            Some(text) => {
                non_negative(text).filter(|l| *l > 0).ok_or(Protocol::PaginationInvalid)?
            }
            None => max,
        };
        Ok(Self {
            offset: parsed_offset,
            limit: parsed_limit.min(max),
            requested: offset.is_some() || limit.is_some(),
        })
    }
}

/// Whether a raw query pair is a paging parameter (`page[...]`, percent-encoded or not).
fn is_page_param(pair: &str) -> bool {
    let key = pair.split('=').next().unwrap_or_default().to_ascii_lowercase();
    let key = key.replace("%5b", "[").replace("%5d", "]");
    key == "page[offset]" || key == "page[limit]"
}

/// `links` of a paged collection: `self` as requested; `first`, `last`, `prev` and `next`
/// (on the canonical path, the request's other query parameters kept in order, the page
/// parameters replaced) when the request was paged or more items exist than returned.
pub fn paged_links(
    req: &Request,
    state: &AppState,
    paging: Paging,
    total: u64,
    returned: usize,
) -> CollectionLinks {
    let mut links = unpaged_links(req, state);
    if !paging.requested && total <= returned as u64 {
        return links;
    }
    let mut prefix = format!("{}{}?", base(req, state), req.uri().path());
    for pair in req.uri().query().unwrap_or_default().split('&') {
        if !pair.is_empty() && !is_page_param(pair) {
            prefix.push_str(pair);
            prefix.push('&');
        }
    }
    let limit = paging.limit;
    let page = |offset: u64| format!("{prefix}page[offset]={offset}&page[limit]={limit}");
    let last = total.saturating_sub(1) / limit * limit;
    links.first = Some(page(0));
    links.last = Some(page(last));
    if paging.offset > 0 {
        links.prev = Some(page(paging.offset.saturating_sub(limit).min(last)));
    }
    if paging.offset.saturating_add(limit) < total {
        links.next = Some(page(paging.offset + limit));
    }
    links
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::Value;

    use super::Paging;

    /// The pattern the OpenAPI document shows for a query parameter of `GET /company-users`.
    fn documented_pattern(name: &str) -> String {
        let doc: Value = serde_json::from_str(&crate::api::document::json()).unwrap();
        let params = doc["paths"]["/company-users"]["get"]["parameters"].as_array().unwrap();
        let param = params.iter().find(|p| p["name"] == name).unwrap();
        let pattern = param["schema"]["pattern"].as_str().unwrap();
        // Wholly anchored; the generator takes the pattern without its anchors.
        pattern.strip_prefix('^').and_then(|p| p.strip_suffix('$')).unwrap().to_owned()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// The documented patterns are the rule poem-openapi checks first; every value they
        /// let through reads as the number it spells.
        #[test]
        fn every_documented_page_value_reads(
            offset in proptest::string::string_regex(&documented_pattern("page[offset]")).unwrap(),
            limit in proptest::string::string_regex(&documented_pattern("page[limit]")).unwrap(),
        ) {
            let page = Paging::parse(Some(&offset), Some(&limit), 100).unwrap();
            let digits = |s: &str| s.trim_start_matches('+').parse::<u64>().unwrap_or(u64::MAX);
            prop_assert_eq!(page.offset, digits(&offset));
            prop_assert_eq!(page.limit, digits(&limit).min(100));
            prop_assert!(page.limit > 0 && page.requested);
        }
    }

    #[test]
    fn values_outside_the_patterns_are_refused() {
        for (offset, limit) in [(Some("-1"), None), (None, Some("0")), (Some("1e3"), None)] {
            assert!(Paging::parse(offset, limit, 100).is_err(), "{offset:?} {limit:?}");
        }
        let page = Paging::parse(None, None, 100).unwrap();
        assert_eq!((page.offset, page.limit, page.requested), (0, 100, false));
    }
}
